/**
 * The network lab (lab.ts) with real namespaces, routers and sockets (root only, as CI runs):
 * what each profile lets through, seen by a UDP echo server in the public namespace — the
 * address and port a home's packets arrive from is the NAT mapping a STUN server reports.
 */
import { execFileSync } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { createNetworkLab, LabError, type NetworkLab, type NetworkProfile } from '../src/lab.ts';

const labs: NetworkLab[] = [];
afterEach(async () => {
  for (const lab of labs.splice(0)) await lab.destroy();
});

async function lab(profile: NetworkProfile): Promise<NetworkLab> {
  const made = await createNetworkLab({ profile });
  labs.push(made);
  return made;
}

/** Runs a small Node program inside a namespace and returns what it printed. */
function nodeIn(ns: string, program: string, timeoutMs = 10_000): string {
  return execFileSync('ip', ['netns', 'exec', ns, process.execPath, '-e', program], {
    encoding: 'utf8',
    timeout: timeoutMs,
  }).trim();
}

/** A UDP and TCP echo server in the public namespace: answers `<address>:<port>` of the sender. */
function echoServer(l: NetworkLab, port: number): { stop(): void } {
  const program = `
    const dgram = require('node:dgram'), net = require('node:net');
    const u = dgram.createSocket('udp4');
    u.on('message', (m, r) => u.send(r.address + ':' + r.port, r.port, r.address));
    u.bind(${port}, '${l.publicAddress}');
    net.createServer((s) => s.end(s.remoteAddress + ':' + s.remotePort)).listen(${port}, '${l.publicAddress}');
    setTimeout(() => process.exit(0), 60000);`;
  const child = execFileSync('sh', [
    '-c',
    `ip netns exec ${l.publicNamespace} ${process.execPath} -e "${program.replace(/"/g, '\\"')}" >/dev/null 2>&1 & echo $!`,
  ]);
  const pid = Number(String(child).trim());
  execFileSync('sleep', ['0.5']);
  return { stop: () => process.kill(pid, 'SIGKILL') };
}

/** From a home: the mapped addresses two UDP probes from one socket get at two server ports. */
function udpMappings(ns: string, server: string, ports: [number, number]): string[] {
  const program = `
    const s = require('node:dgram').createSocket('udp4'); const seen = [];
    s.on('message', (m) => { seen.push(String(m)); if (seen.length === 2) { console.log(seen.join(' ')); process.exit(0); } });
    s.bind(0, () => { s.send('a', ${ports[0]}, '${server}'); setTimeout(() => s.send('b', ${ports[1]}, '${server}'), 200); });
    setTimeout(() => { console.log(seen.join(' ') || 'none'); process.exit(0); }, 3000);`;
  return nodeIn(ns, program).split(' ');
}

function tcpFrom(ns: string, host: string, port: number): string {
  const program = `
    const s = require('node:net').connect(${port}, '${host}');
    s.setTimeout(2000, () => { console.log('timeout'); process.exit(0); });
    s.on('data', (d) => { console.log(String(d)); process.exit(0); });
    s.on('error', (e) => { console.log(e.code); process.exit(0); });`;
  return nodeIn(ns, program);
}

describe('the network lab', () => {
  it('nat: homes reach the public namespace through their router, keeping one mapping per socket, and not each other', async () => {
    const l = await lab('nat');
    const [a, b] = [await l.addHome(), await l.addHome()];
    const echo = [echoServer(l, 7001), echoServer(l, 7002)];
    try {
      const mapped = udpMappings(a.namespace, l.publicAddress, [7001, 7002]);
      // seen from outside: the router's public address, the same port to both destinations
      expect(mapped).toHaveLength(2);
      const [first, second] = mapped.map((m) => m.split(':'));
      expect(first![0]).toMatch(/^100\.64\.\d+\.11$/);
      expect(first).toEqual(second);
      // home to home on private addresses: no route
      expect(tcpFrom(a.namespace, b.address, 7001)).toMatch(/ENETUNREACH|EHOSTUNREACH|timeout/);
      expect(l.serveArgs).toContain('--turn-secret-file');
    } finally {
      for (const e of echo) e.stop();
    }
  });

  it('symmetric-nat: a new mapped port per destination', async () => {
    const l = await lab('symmetric-nat');
    const a = await l.addHome();
    const echo = [echoServer(l, 7001), echoServer(l, 7002)];
    try {
      const mapped = udpMappings(a.namespace, l.publicAddress, [7001, 7002]);
      expect(mapped).toHaveLength(2);
      const [first, second] = mapped.map((m) => m.split(':'));
      expect(first![0]).toBe(second![0]);
      expect(first![1]).not.toBe(second![1]);
    } finally {
      for (const e of echo) e.stop();
    }
  });

  it('udp-blocked: UDP never leaves a home, TCP does', async () => {
    const l = await lab('udp-blocked');
    const a = await l.addHome();
    const echo = echoServer(l, 7001);
    try {
      expect(udpMappings(a.namespace, l.publicAddress, [7001, 7001])).toEqual(['none']);
      expect(tcpFrom(a.namespace, l.publicAddress, 7001)).toMatch(/^100\.64\.\d+\.11:\d+$/);
    } finally {
      echo.stop();
    }
  });

  it('lan: homes sit on the public bridge with no router, and reach each other', async () => {
    const l = await lab('lan');
    const [a, b] = [await l.addHome(), await l.addHome()];
    expect(l.serveArgs).toEqual([]);
    const echo = echoServer(l, 7001);
    try {
      // seen from the public namespace under its own address: no NAT
      expect(tcpFrom(a.namespace, l.publicAddress, 7001).split(':')[0]).toBe(a.address);
      // and one home reaches another directly (refused by a closed port, not unreachable)
      expect(tcpFrom(b.namespace, a.address, 9)).toBe('ECONNREFUSED');
    } finally {
      echo.stop();
    }
  });

  it('wan: both directions of each access link are rate-limited and lose packets; delayed where the kernel has netem', async () => {
    const l = await lab('wan');
    const a = await l.addHome();
    const router = a.namespace.replace(/-h(\d+)$/, '-r$1');
    const applied = l.wanApplied!;
    expect(applied.rateMbit).toBe(20);
    expect(applied.lossPercent).toBe(1);
    for (const dev of ['wan', 'lan']) {
      const qdisc = execFileSync(
        'ip',
        ['netns', 'exec', router, 'tc', 'qdisc', 'show', 'dev', dev],
        {
          encoding: 'utf8',
        },
      );
      expect(qdisc).toMatch(/tbf 1: root .*rate 20Mbit/);
      if (applied.delayMs > 0) expect(qdisc).toMatch(/netem .*delay 40ms\s+10ms/);
      else expect(qdisc).not.toMatch(/netem/);
    }
    const rules = execFileSync(
      'ip',
      ['netns', 'exec', router, 'nft', 'list', 'table', 'ip', 'wanloss'],
      {
        encoding: 'utf8',
      },
    );
    expect(rules).toMatch(/numgen random mod 10000 < 100 drop/);
    // 1 % loss per direction, measured: 1,000 UDP probes, paced, through the router: ~2 % lost
    // on the round trip
    const echo = echoServer(l, 7001);
    try {
      const program = `
        const s = require('node:dgram').createSocket('udp4'); let got = 0;
        s.on('message', () => got++);
        s.bind(0, async () => {
          for (let i = 0; i < 1000; i++) { s.send('x', 7001, '${l.publicAddress}'); if (i % 5 === 0) await new Promise((r) => setTimeout(r, 3)); }
          setTimeout(() => { console.log(got); process.exit(0); }, 2000);
        });`;
      const received = Number(nodeIn(a.namespace, program, 20_000));
      const lost = 1 - received / 1000;
      expect(lost).toBeGreaterThan(0.005);
      expect(lost).toBeLessThan(0.06);
    } finally {
      echo.stop();
    }
  });

  it('is torn down by destroy(), and refuses a profile it does not know', async () => {
    const l = await createNetworkLab({ profile: 'nat' });
    await l.addHome();
    const before = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' });
    expect(before).toContain(`${l.name}-pub`);
    await l.destroy();
    const after = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' });
    expect(after).not.toContain(l.name);
    const links = execFileSync('ip', ['link', 'show'], { encoding: 'utf8' });
    expect(links).not.toContain(l.name);
    await expect(createNetworkLab({ profile: 'dsl' as NetworkProfile })).rejects.toThrow(LabError);
  });
});
