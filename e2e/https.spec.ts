/**
 * Issue 14, items 1–2 in a real browser: `swarmgrad serve --tls self-signed` with STUN/TURN
 * servers (Debian's coturn, `use-auth-secret`), both in a network lab's public namespace and the
 * browser in a home (support/lab.ts).
 *
 * 1. Two tabs open the volunteer page on https://<lab address>:<port>/ in headless Chromium started
 *    WITHOUT `--unsafely-treat-insecure-origin-as-secure` (the browser contexts only ignore the
 *    self-signed certificate's error, as a volunteer who accepted the warning would): each is a
 *    secure context, cross-origin isolated, offered WebGPU and SharedArrayBuffer, joins over wss
 *    and trains with its peer; each of its RTCPeerConnections got the welcome's ICE servers
 *    (TURN with the tab's own short-lived username).
 * 2. Chromium connects a data channel through coturn with `iceTransportPolicy: 'relay'` using
 *    the ICE servers two real welcomes carried (so the TURN credentials the coordinator derived
 *    are accepted by the TURN server): the selected candidate pair is relay ↔ relay.
 */
import {
  expect,
  test,
  chromium,
  type Browser,
  type BrowserContext,
  type Page,
} from '@playwright/test';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { io } from 'socket.io-client';
import { PROTOCOL_VERSION, type Welcome } from '@swarmgrad/protocol';
import { tabParser } from '@swarmgrad/protocol/socket-parser';
import type { WorkerStatus } from '@swarmgrad/worker';
import { chromiumBaseArgs } from '@swarmgrad/swarm/browser';
import { cli, until } from './support/coordinator.ts';
import { openLab, type E2eLab } from './support/lab.ts';
import { Coturn } from '@swarmgrad/test-support/turn';

test.describe.configure({ mode: 'serial' });

const job = {
  name: 'e2e-https',
  model: { preset: 'softmax-784-10' },
  dataset: { preset: 'mnist', train: 2000, heldOut: 500, seed: 1 },
  cluster: { size: 2, redundancy: 0 },
  evaluateEvery: 5,
};

type HookWindow = { __swarmgrad?: { status(): WorkerStatus } };

let lab: E2eLab;
let coturn: Coturn;
let server: ChildProcess;
let serverOutput = '';
let origin = '';
let ca = '';
let turnUrl = '';
let browser: Browser;
const contexts: BrowserContext[] = [];

function httpsJson(path: string): Promise<{ iteration: number; tabs: number }> {
  return new Promise((resolve, reject) => {
    const req = request(`${origin}${path}`, { ca }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => {
        try {
          resolve(JSON.parse(body) as { iteration: number; tabs: number });
        } catch (error) {
          reject(error as Error);
        }
      });
    });
    req.on('error', reject);
    req.end();
  });
}

test.beforeAll(async () => {
  test.setTimeout(120_000);
  // the coordinator and coturn in a network lab's public namespace, Chromium in a home
  lab = await openLab();
  const lan = lab.lab.publicAddress;
  coturn = await Coturn.start(lan, undefined, { execPrefix: lab.serve.execPrefix, port: 3478 });
  const dir = await mkdtemp(join(tmpdir(), 'swarmgrad-https-'));
  await writeFile(join(dir, 'job.json'), JSON.stringify(job));
  turnUrl = `turn:${lan}:${coturn.port}`;
  const turn = turnUrl;
  const [command, ...prefixArgs] = [...lab.serve.execPrefix!, process.execPath];
  server = spawn(
    command!,
    [
      ...prefixArgs,
      cli,
      'serve',
      '--port',
      '0',
      '--config',
      join(dir, 'job.json'),
      '--data-dir',
      join(dir, 'data'),
      '--tls',
      'self-signed',
      '--stun',
      `stun:${lan}:${coturn.port}`,
      '--turn',
      `${turn}?transport=udp,${turn}?transport=tcp`,
      '--turn-ttl',
      '600',
      '--turn-refresh',
      '300',
      ...lab.serve.args,
    ],
    {
      env: { ...process.env, LOG_LEVEL: 'warn', SWARMGRAD_TURN_SECRET: coturn.secret },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  server.stdout!.on('data', (c: Buffer) => (serverOutput += c.toString()));
  server.stderr!.on('data', (c: Buffer) => (serverOutput += c.toString()));
  const port = await until(
    () => {
      if (server.exitCode !== null) throw new Error(`serve exited: ${serverOutput}`);
      return /status:\s+https:\/\/[^/\s]+:(\d+)\/api\/status/.exec(serverOutput)?.[1];
    },
    'the coordinator to print its https address',
    60_000,
  );
  origin = `https://${lan}:${port}`;
  ca = await readFile(join(dir, 'data', 'tls', 'self-signed.crt'), 'utf8');
  expect(serverOutput).toContain(`ICE servers:    stun:${lan}:${coturn.port}, ${turn}`);
  expect(serverOutput).toContain('(TURN credentials valid 600 s, refreshed every 300 s)');
  // Debian's Chromium with the suite's base flags: no insecure-origin exception
  const args = [...chromiumBaseArgs, '--disable-renderer-backgrounding'];
  expect(args.some((a) => a.startsWith('--unsafely-treat-insecure-origin-as-secure'))).toBe(false);
  browser = await chromium.launch({ executablePath: lab.home.chromium, headless: true, args });
});

test.afterAll(async () => {
  for (const context of contexts) await context.close().catch(() => undefined);
  await browser?.close();
  if (server && server.exitCode === null) {
    const exited = new Promise((resolve) => server.once('exit', resolve));
    server.kill('SIGTERM');
    await exited;
  }
  await coturn?.stop();
  await lab?.destroy();
});

async function newPage(): Promise<Page> {
  const context = await browser.newContext({ ignoreHTTPSErrors: true });
  contexts.push(context);
  return context.newPage();
}

test('tabs on the https origin are secure contexts, join over wss and train', async () => {
  test.setTimeout(90_000);
  const pages: Page[] = [];
  const sockets: string[] = [];
  for (let i = 0; i < 2; i++) {
    const page = await newPage();
    page.on('websocket', (ws) => sockets.push(ws.url()));
    // records the configuration of every RTCPeerConnection the page makes (simple-peer takes
    // the global constructor when it builds a peer)
    await page.addInitScript(() => {
      const configs: RTCConfiguration[] = [];
      const Native = globalThis.RTCPeerConnection;
      (globalThis as { __iceConfigs?: RTCConfiguration[] }).__iceConfigs = configs;
      globalThis.RTCPeerConnection = class extends Native {
        constructor(config?: RTCConfiguration) {
          configs.push(JSON.parse(JSON.stringify(config ?? {})) as RTCConfiguration);
          super(config);
        }
      };
    });
    await page.goto(`${origin}/?debug&backend=wasm`);
    const env = await page.evaluate(() => ({
      protocol: location.protocol,
      secure: globalThis.isSecureContext,
      isolated: globalThis.crossOriginIsolated,
      webgpu: 'gpu' in navigator,
      sharedMemory: typeof SharedArrayBuffer === 'function',
    }));
    expect(env).toEqual({
      protocol: 'https:',
      secure: true,
      isolated: true,
      webgpu: true,
      sharedMemory: true,
    });
    await page.waitForFunction(() => (globalThis as HookWindow).__swarmgrad !== undefined);
    const donate = page.getByTestId('donate');
    await expect(donate).toBeEnabled();
    await donate.click();
    pages.push(page);
  }
  const statuses = await Promise.all(
    pages.map((page, i) =>
      until(
        async () => {
          const s = await page.evaluate(() => (globalThis as HookWindow).__swarmgrad!.status());
          if (s.error) throw new Error(`tab ${i + 1}: ${s.error}`);
          // seated with the other tab (cluster size 2) and linked to it over WebRTC
          const peers = s.cluster?.peers ?? [];
          const linked = peers.length === 1 && peers[0]!.link === 'connected';
          return s.steps > 0 && linked ? s : undefined;
        },
        `tab ${i + 1} to train with its peer`,
        60_000,
        250,
      ),
    ),
  );
  expect(statuses.map((s) => s.cluster!.peers.length)).toEqual([1, 1]);
  expect(sockets.length).toBeGreaterThanOrEqual(2);
  for (const url of sockets) expect(url).toMatch(/^wss:\/\//);
  const status = await until(
    async () => {
      const s = await httpsJson('/api/status');
      return s.iteration >= 2 ? s : undefined;
    },
    'two iterations over https',
    45_000,
  );
  expect(status.tabs).toBe(2);
  // each tab's mesh handed RTCPeerConnection the ICE servers of its own welcome: the TURN
  // entry with a username <expiry>:<tabId> and a credential (recorded by the init script)
  for (const [i, page] of pages.entries()) {
    const tabId = statuses[i]!.tabId!;
    const configs = await page.evaluate(
      () => (globalThis as { __iceConfigs?: RTCConfiguration[] }).__iceConfigs ?? [],
    );
    expect(configs.length).toBeGreaterThan(0);
    for (const config of configs) {
      const turn = config.iceServers?.find((s) => s.username !== undefined);
      expect(turn?.urls).toEqual([`${turnUrl}?transport=udp`, `${turnUrl}?transport=tcp`]);
      expect(turn?.username).toMatch(new RegExp(`^\\d+:${tabId}$`));
      expect(turn?.credential).toMatch(/^[A-Za-z0-9+/]{27}=$/);
    }
  }
});

async function welcome(): Promise<{ welcome: Welcome; close: () => void }> {
  // the protocol's own framing, as tabs speak it: once welcomed, this socket gets the binary
  // iteration frames, which socket.io's default parser cannot read (before the coordinator
  // sent them only to welcomed tabs, they reached this socket mid-hello and the default parser
  // closed the connection — "socket has been disconnected" — in a CI run)
  const socket = io(`${origin}/worker`, {
    transports: ['websocket'],
    ca,
    reconnection: false,
    parser: tabParser,
  });
  const answer = (await socket
    .timeout(10_000)
    .emitWithAck('hello', { protocolVersion: PROTOCOL_VERSION, kind: 'node' })) as {
    ok: boolean;
    value: Welcome;
  };
  expect(answer.ok).toBe(true);
  return { welcome: answer.value, close: () => socket.disconnect() };
}

test('Chromium relays a data channel through coturn with the welcome’s TURN credentials', async () => {
  test.setTimeout(60_000);
  const a = await welcome();
  const b = await welcome();
  a.close();
  b.close();
  for (const w of [a.welcome, b.welcome])
    expect(w.iceServers?.some((s) => s.username?.endsWith(`:${w.tabId}`))).toBe(true);
  const page = await newPage();
  await page.goto(`${origin}/`);
  const result = await page.evaluate(
    async ({ ice }) => {
      const pa = new RTCPeerConnection({ iceServers: ice[0], iceTransportPolicy: 'relay' });
      const pb = new RTCPeerConnection({ iceServers: ice[1], iceTransportPolicy: 'relay' });
      const errors: string[] = [];
      const gathered: string[] = [];
      pa.onicecandidateerror = (e) => errors.push(`${e.errorCode} ${e.errorText}`);
      pb.onicecandidateerror = (e) => errors.push(`${e.errorCode} ${e.errorText}`);
      pa.onicecandidate = (e) => {
        if (e.candidate) {
          gathered.push(e.candidate.type ?? '?');
          void pb.addIceCandidate(e.candidate);
        }
      };
      pb.onicecandidate = (e) => {
        if (e.candidate) void pa.addIceCandidate(e.candidate);
      };
      pb.ondatachannel = (e) => {
        e.channel.onmessage = (m) => e.channel.send(`pong:${String(m.data)}`);
      };
      const channel = pa.createDataChannel('probe');
      const reply = new Promise<string>((resolve, reject) => {
        channel.onmessage = (m) => resolve(String(m.data));
        channel.onopen = () => channel.send('ping');
        setTimeout(
          () => reject(new Error(`no relayed link in 25 s: ${errors.join('; ')}`)),
          25_000,
        );
      });
      await pa.setLocalDescription();
      await pb.setRemoteDescription(pa.localDescription!);
      await pb.setLocalDescription();
      await pa.setRemoteDescription(pb.localDescription!);
      const answer = await reply;
      const stats = await pa.getStats();
      let pairId: string | undefined;
      stats.forEach((s: { type: string; selectedCandidatePairId?: string }) => {
        if (s.type === 'transport') pairId = s.selectedCandidatePairId;
      });
      const pair = pairId ? stats.get(pairId) : undefined;
      const local = pair ? stats.get(pair.localCandidateId) : undefined;
      const remote = pair ? stats.get(pair.remoteCandidateId) : undefined;
      pa.close();
      pb.close();
      return {
        answer,
        gathered,
        local: local?.candidateType as string | undefined,
        remote: remote?.candidateType as string | undefined,
        relayAddress: local?.address as string | undefined,
      };
    },
    { ice: [a.welcome.iceServers!, b.welcome.iceServers!] },
  );
  expect(result.answer).toBe('pong:ping');
  expect(new Set(result.gathered)).toEqual(new Set(['relay']));
  expect(result.local).toBe('relay');
  expect(result.remote).toBe('relay');
  expect(result.relayAddress).toBe(coturn.host);
});
