/**
 * The network lab of `swarmgrad swarm --network <profile>` (issue 14): Linux network namespaces
 * that put every tab's browser behind its own home router, so the swarm meets the networks
 * volunteers have instead of one machine's interface.
 *
 *   root namespace ── veth (API only: the swarm command reads /api/status) ──┐
 *   <lab>-pub:  bridge br0, 100.64.X.1/24 — the coordinator and coturn (STUN + TURN on 3478)
 *      ├── <lab>-r1 (router: wan 100.64.X.11 ⇄ lan 10.1.0.1, nftables masquerade) ── <lab>-h1 (10.1.0.2: Chromium)
 *      ├── <lab>-r2 …                                                              ── <lab>-h2 …
 *
 * Profiles:
 * - `lan`: homes on the bridge itself (100.64.X.1i), no router: links connect on host candidates.
 * - `nat`: a masquerading router per home (Linux keeps the source port when it can:
 *   endpoint-independent mapping), so links connect through STUN (srflx/prflx), never host.
 * - `symmetric-nat`: masquerade `fully-random` — a new random port per destination
 *   (endpoint-dependent mapping), so hole punching fails and links relay through TURN.
 * - `udp-blocked`: `nat`, and the routers drop all forwarded UDP: only TURN over TCP works.
 * - `wan`: `nat`, plus shaping of each home's access link, both directions: a rate limit (tbf),
 *   random loss (nftables) and delay ± jitter (netem) — defaults 20 Mbit/s, 1 %, 40 ms ± 10 ms.
 *   Some kernels (this project's CI VMs) lack sch_netem: there the delay is not emulated, the
 *   lab says so (`wanApplied`, a log line), and rate and loss still are.
 *
 * Every address is inside namespaces the lab created; the root namespace only gets a route to
 * the public subnet through the API veth, and the public namespace forwards nothing, so no
 * WebRTC packet of the lab reaches the machine's own interfaces. `destroy()` (also run by a
 * process 'exit' hook, and for labs left by a dead process at the next start) kills what runs
 * in the namespaces and deletes them, which deletes their interfaces. Root only.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromiumPath } from './browser.ts';
import { until } from './coordinator.ts';

export const networkProfiles = ['lan', 'nat', 'symmetric-nat', 'udp-blocked', 'wan'] as const;
export type NetworkProfile = (typeof networkProfiles)[number];

/** netem shaping of each home's access link, per direction (`wan` profile). */
export interface WanShape {
  delayMs: number;
  jitterMs: number;
  lossPercent: number;
  rateMbit: number;
}

export const defaultWanShape: WanShape = {
  delayMs: 40,
  jitterMs: 10,
  lossPercent: 1,
  rateMbit: 20,
};

export class LabError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LabError';
  }
}

export interface NetworkLab {
  readonly profile: NetworkProfile;
  /** The lab's name: every namespace is `<name>-…`. */
  readonly name: string;
  /** The coordinator's and the TURN server's address (inside the public namespace). */
  readonly publicAddress: string;
  readonly publicNamespace: string;
  /** `swarmgrad serve` flags: the lab's STUN and TURN servers (none for `lan`). */
  readonly serveArgs: string[];
  /** `wan`: the shaping the routers apply (delay and jitter 0 when the kernel has no
   * sch_netem); undefined for the other profiles. */
  readonly wanApplied: WanShape | undefined;
  /** `argv` prefixed to run in the public namespace. */
  inPublic(argv: string[]): string[];
  /** A new home (its router too, unless `lan`); resolves with its Chromium wrapper script. */
  addHome(): Promise<LabHome>;
  readonly homes: readonly LabHome[];
  destroy(): Promise<void>;
}

export interface LabHome {
  index: number;
  namespace: string;
  /** The home's own address (private behind a router, public on `lan`). */
  address: string;
  /** An executable that runs Debian's Chromium inside the home (Playwright's executablePath). */
  chromium: string;
}

const nft = () => process.env.NFT ?? '/usr/sbin/nft';
const ensureNftScript = fileURLToPath(
  new URL('../../../scripts/ensure-nftables.mjs', import.meta.url),
);
const ensureCoturnScript = fileURLToPath(
  new URL('../../../scripts/ensure-coturn.mjs', import.meta.url),
);

function run(argv: string[], input?: string): string {
  try {
    return execFileSync(argv[0]!, argv.slice(1), {
      encoding: 'utf8',
      stdio: ['pipe', 'pipe', 'pipe'],
      ...(input === undefined ? {} : { input }),
    });
  } catch (error) {
    const stderr = (error as { stderr?: string }).stderr ?? '';
    throw new LabError(`${argv.join(' ')}: ${stderr.trim() || (error as Error).message}`);
  }
}

const ip = (...args: string[]) => run(['ip', ...args]);
const inNs = (ns: string, argv: string[]) => ['ip', 'netns', 'exec', ns, ...argv];

function namespaces(): string[] {
  return ip('netns', 'list')
    .split('\n')
    .map((line) => line.split(' ')[0]!)
    .filter((n) => n.length > 0);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Kills what runs in the namespaces, then deletes them (their veths go with them). */
function deleteNamespaces(names: readonly string[]): void {
  for (const ns of names) {
    let pids: number[];
    try {
      pids = ip('netns', 'pids', ns).split('\n').filter(Boolean).map(Number);
    } catch {
      continue; // gone already
    }
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // exited meanwhile
      }
    }
  }
  for (const ns of names) {
    try {
      ip('netns', 'del', ns);
    } catch {
      // gone already
    }
  }
}

const LAB_NAME = /^swl(\d+)n(\d+)-/;

/** Labs of processes that died without tearing theirs down. */
function removeDeadLabs(): void {
  const dead = namespaces().filter((ns) => {
    const m = LAB_NAME.exec(ns);
    return m !== null && !alive(Number(m[1]));
  });
  if (dead.length > 0) deleteNamespaces(dead);
}

let labsMade = 0;

async function tcpOpen(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port, timeout: 500 });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
    socket.once('timeout', () => {
      socket.destroy();
      resolve(false);
    });
  });
}

/** Checks what the lab needs before it touches anything: LabError with a one-line reason. */
export function checkLabPrerequisites(): void {
  if (process.platform !== 'linux' || process.getuid?.() !== 0) {
    throw new LabError(
      '--network builds network namespaces and needs root on Linux: run it as root (CI does), or leave --network out',
    );
  }
  try {
    run(['ip', '-V']);
  } catch {
    throw new LabError('--network needs iproute2 (`ip`): apt-get install -y iproute2');
  }
  for (const script of [ensureNftScript, ensureCoturnScript]) {
    try {
      execFileSync(process.execPath, [script], { stdio: ['ignore', 'ignore', 'pipe'] });
    } catch (error) {
      const stderr = String((error as { stderr?: Buffer }).stderr ?? '').trim();
      throw new LabError(stderr || `${script} failed`);
    }
  }
}

export async function createNetworkLab(options: {
  profile: NetworkProfile;
  wan?: Partial<WanShape>;
  /**
   * Hand the tabs the lab's TURN server (default true). False: STUN only, so behind
   * symmetric NATs no link connects and the coordinator relays the frames (issue 14, item 3).
   */
  turn?: boolean;
}): Promise<NetworkLab> {
  const { profile } = options;
  if (!networkProfiles.includes(profile)) {
    throw new LabError(`network must be one of ${networkProfiles.join(', ')}, got ${profile}`);
  }
  const wan = { ...defaultWanShape, ...options.wan };
  /** What the routers really apply (no delay without sch_netem in the kernel). */
  const applied: WanShape = { ...wan };
  for (const [key, value] of Object.entries(wan)) {
    if (!(value >= 0) || !Number.isFinite(value)) {
      throw new LabError(`wan ${key} must be a finite number ≥ 0, got ${value}`);
    }
  }
  if (wan.lossPercent > 100) throw new LabError(`wan loss must be ≤ 100 %, got ${wan.lossPercent}`);
  checkLabPrerequisites();
  removeDeadLabs();

  const name = `swl${process.pid}n${labsMade++}`;
  const pub = `${name}-pub`;
  const routes = ip('-4', 'route', 'show');
  const free = Array.from({ length: 250 }, (_, i) => i + 1).filter(
    (x) => !routes.includes(`100.64.${x}.0/24`),
  );
  if (free.length === 0) throw new LabError('no free 100.64.X.0/24 subnet for the lab');
  const x = free[Math.floor(Math.random() * free.length)]!;
  const publicAddress = `100.64.${x}.1`;
  const dir = mkdtempSync(join(tmpdir(), `${name}-`));
  const created: string[] = [];
  const homes: LabHome[] = [];
  let turn: ChildProcess | undefined;
  let destroyed = false;

  const destroySync = () => {
    if (destroyed) return;
    destroyed = true;
    turn?.kill('SIGKILL');
    deleteNamespaces([...created].reverse());
    // the API veth dies with its peer, but only once the kernel has let the namespace go
    try {
      ip('link', 'del', name);
    } catch {
      // gone already
    }
    rmSync(dir, { recursive: true, force: true });
  };
  const onExit = () => destroySync();
  process.once('exit', onExit);

  const addNamespace = (ns: string, { ipv6 = true } = {}) => {
    ip('netns', 'add', ns);
    created.push(ns);
    // Chromium's network-change watcher aborts a navigation in flight with
    // ERR_NETWORK_CHANGED when an address appears; IPv6 gives each new link a link-local
    // address ~2.5 s after it comes up, just when the home's browser opens the page (a CI
    // run lost the wan test to it). The lab speaks IPv4 only, so the homes and routers have
    // no IPv6 at all.
    if (!ipv6) {
      run(
        inNs(ns, [
          'sysctl',
          '-qw',
          'net.ipv6.conf.all.disable_ipv6=1',
          'net.ipv6.conf.default.disable_ipv6=1',
        ]),
      );
    }
    ip('-n', ns, 'link', 'set', 'lo', 'up');
  };

  /** A veth reports carrier ~1 s after both ends are up (the kernel's link watch); a browser
   * started before that sees the link change under its first navigation. */
  const untilCarrier = (ns: string, device: string) =>
    until(
      () => !/NO-CARRIER|state DOWN/.test(ip('-n', ns, '-o', 'link', 'show', device)),
      `carrier on ${device} in ${ns}`,
      10_000,
      50,
    );

  const secret = randomBytes(16).toString('hex');
  const secretFile = join(dir, 'turn-secret');
  writeFileSync(secretFile, secret, { mode: 0o600 });

  try {
    addNamespace(pub);
    ip('-n', pub, 'link', 'add', 'br0', 'type', 'bridge');
    ip('-n', pub, 'addr', 'add', `${publicAddress}/24`, 'dev', 'br0');
    ip('-n', pub, 'link', 'set', 'br0', 'up');
    // the API link: the root namespace reaches the public subnet, nothing else
    ip('link', 'add', name, 'type', 'veth', 'peer', 'name', 'api', 'netns', pub);
    ip('addr', 'add', `100.65.${x}.1/30`, 'dev', name);
    ip('link', 'set', name, 'up');
    ip('-n', pub, 'addr', 'add', `100.65.${x}.2/30`, 'dev', 'api');
    ip('-n', pub, 'link', 'set', 'api', 'up');
    ip('route', 'add', `100.64.${x}.0/24`, 'via', `100.65.${x}.2`);
    run(inNs(pub, ['sysctl', '-qw', 'net.ipv4.ip_forward=0']));
    if (profile === 'wan' && (wan.delayMs > 0 || wan.jitterMs > 0)) {
      // does this kernel have sch_netem? (probed on the public namespace's loopback)
      try {
        run(inNs(pub, ['tc', 'qdisc', 'add', 'dev', 'lo', 'root', 'netem', 'delay', '1ms']));
        run(inNs(pub, ['tc', 'qdisc', 'del', 'dev', 'lo', 'root']));
      } catch (error) {
        if (!/unknown/i.test((error as Error).message)) throw error;
        applied.delayMs = 0;
        applied.jitterMs = 0;
      }
    }

    if (profile !== 'lan') {
      const binary = process.env.TURNSERVER ?? '/usr/bin/turnserver';
      const log = join(dir, 'turnserver.log');
      turn = spawn(
        'ip',
        inNs(pub, [
          binary,
          '-n',
          '--listening-ip',
          publicAddress,
          '--relay-ip',
          publicAddress,
          '--listening-port',
          '3478',
          '--min-port',
          '49152',
          '--max-port',
          '49999',
          '--use-auth-secret',
          '--static-auth-secret',
          secret,
          '--realm',
          'swarmgrad.lab',
          '--no-tls',
          '--no-dtls',
          '--no-cli',
          '--pidfile',
          join(dir, 'turnserver.pid'),
          '--log-file',
          log,
          '--simple-log',
        ]).slice(1),
        { stdio: 'ignore' },
      );
      await until(
        async () => {
          if (turn!.exitCode !== null) throw new LabError(`coturn exited (log: ${log})`);
          return tcpOpen(publicAddress, 3478);
        },
        'the lab TURN server to listen',
        15_000,
        100,
      );
    }
  } catch (error) {
    destroySync();
    process.off('exit', onExit);
    throw error;
  }

  const natRules = (): string => {
    const masquerade = profile === 'symmetric-nat' ? 'masquerade fully-random' : 'masquerade';
    const lines = [
      'table ip nat {',
      '  chain postrouting {',
      '    type nat hook postrouting priority 100;',
      `    oifname "wan" ${masquerade}`,
      '  }',
      '}',
    ];
    // Unsolicited packets to the router itself are dropped as a home router does — and before
    // conntrack confirms them: a peer's early hole-punching packet would otherwise leave a
    // conntrack entry holding the very port the router then wants for its own mapping, so
    // masquerade picks another port and the NAT behaves like a symmetric one.
    lines.push(
      'table ip filter {',
      '  chain input {',
      '    type filter hook input priority 0;',
      '    iifname "wan" ct state new drop',
      '  }',
    );
    if (profile === 'udp-blocked') {
      lines.push(
        '  chain forward {',
        '    type filter hook forward priority 0;',
        '    meta l4proto udp drop',
        '  }',
      );
    }
    lines.push('}');
    return `${lines.join('\n')}\n`;
  };

  /**
   * Shapes one direction of an access link: the rate with tbf, the loss with an nftables
   * random drop (both in every kernel), the delay and jitter with netem as tbf's child — when
   * the kernel has sch_netem; without it the delay is not emulated and `wanApplied` says so.
   */
  const shape = (ns: string, dev: string) => {
    if (wan.rateMbit > 0) {
      // burst: at least one full-size frame per timer tick at this rate
      const burstKbit = Math.max(32, Math.ceil(wan.rateMbit * 10));
      run(
        inNs(ns, [
          'tc',
          'qdisc',
          'add',
          'dev',
          dev,
          'root',
          'handle',
          '1:',
          'tbf',
          'rate',
          `${wan.rateMbit}mbit`,
          'burst',
          `${burstKbit}kbit`,
          'latency',
          '200ms',
        ]),
      );
    }
    if (applied.delayMs > 0 || applied.jitterMs > 0) {
      const parent = wan.rateMbit > 0 ? ['parent', '1:1'] : ['root'];
      run(
        inNs(ns, [
          'tc',
          'qdisc',
          'add',
          'dev',
          dev,
          ...parent,
          'handle',
          '10:',
          'netem',
          'delay',
          `${wan.delayMs}ms`,
          `${wan.jitterMs}ms`,
        ]),
      );
    }
  };
  /** The loss of both directions of a router's links: each forwarded packet dropped with p. */
  const lossRules = (): string =>
    wan.lossPercent > 0
      ? [
          'table ip wanloss {',
          '  chain forward {',
          '    type filter hook forward priority -10;',
          `    numgen random mod 10000 < ${Math.round(wan.lossPercent * 100)} drop`,
          '  }',
          '}',
          '',
        ].join('\n')
      : '';

  /** A veth from the public bridge's port p<index> to `device` in namespace `ns`. */
  const plugIntoBridge = (index: number, device: string, ns: string) => {
    ip(
      'link',
      'add',
      `p${index}`,
      'netns',
      pub,
      'type',
      'veth',
      'peer',
      'name',
      device,
      'netns',
      ns,
    );
    ip('-n', pub, 'link', 'set', `p${index}`, 'master', 'br0', 'up');
  };

  const addHome = async (): Promise<LabHome> => {
    if (destroyed) throw new LabError('the lab was destroyed');
    const index = homes.length + 1;
    if (index > 200) throw new LabError('the lab holds at most 200 homes');
    const home = `${name}-h${index}`;
    addNamespace(home, { ipv6: false });
    let address: string;
    if (profile === 'lan') {
      address = `100.64.${x}.${10 + index}`;
      plugIntoBridge(index, 'eth0', home);
      ip('-n', home, 'addr', 'add', `${address}/24`, 'dev', 'eth0');
      ip('-n', home, 'link', 'set', 'eth0', 'up');
      // Chromium gathers no host candidate on an interface without a default route; the
      // public namespace forwards nothing, so the route leads nowhere past the bridge
      ip('-n', home, 'route', 'add', 'default', 'via', publicAddress);
    } else {
      const router = `${name}-r${index}`;
      addNamespace(router, { ipv6: false });
      plugIntoBridge(index, 'wan', router);
      ip('-n', router, 'addr', 'add', `100.64.${x}.${10 + index}/24`, 'dev', 'wan');
      ip('-n', router, 'link', 'set', 'wan', 'up');
      ip(
        'link',
        'add',
        'lan',
        'netns',
        router,
        'type',
        'veth',
        'peer',
        'name',
        'eth0',
        'netns',
        home,
      );
      ip('-n', router, 'addr', 'add', `10.${index}.0.1/24`, 'dev', 'lan');
      ip('-n', router, 'link', 'set', 'lan', 'up');
      address = `10.${index}.0.2`;
      ip('-n', home, 'addr', 'add', `${address}/24`, 'dev', 'eth0');
      ip('-n', home, 'link', 'set', 'eth0', 'up');
      ip('-n', home, 'route', 'add', 'default', 'via', `10.${index}.0.1`);
      run(inNs(router, ['sysctl', '-qw', 'net.ipv4.ip_forward=1']));
      run(inNs(router, [nft(), '-f', '-']), natRules());
      if (profile === 'wan') {
        shape(router, 'wan'); // uplink
        shape(router, 'lan'); // downlink
        const loss = lossRules();
        if (loss) run(inNs(router, [nft(), '-f', '-']), loss);
      }
    }
    await untilCarrier(home, 'eth0');
    const chromium = join(dir, `chromium-h${index}.sh`);
    writeFileSync(chromium, `#!/bin/sh\nexec ip netns exec ${home} ${chromiumPath} "$@"\n`);
    chmodSync(chromium, 0o755);
    const made: LabHome = { index, namespace: home, address, chromium };
    homes.push(made);
    return made;
  };

  return {
    profile,
    name,
    publicAddress,
    publicNamespace: pub,
    serveArgs:
      profile === 'lan'
        ? []
        : [
            '--stun',
            `stun:${publicAddress}:3478`,
            ...(options.turn === false
              ? []
              : [
                  '--turn',
                  `turn:${publicAddress}:3478?transport=udp,turn:${publicAddress}:3478?transport=tcp`,
                  '--turn-secret-file',
                  secretFile,
                ]),
          ],
    get wanApplied() {
      return profile === 'wan' ? { ...applied } : undefined;
    },
    inPublic: (argv) => inNs(pub, argv),
    addHome,
    homes,
    destroy: async () => {
      const exited =
        turn && turn.exitCode === null ? new Promise((r) => turn!.once('exit', r)) : undefined;
      destroySync();
      await exited;
      process.off('exit', onExit);
    },
  };
}
