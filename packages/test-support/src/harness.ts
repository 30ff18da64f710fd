/** Starting real coordinators (in-process or as a child process) for integration tests. */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import pino from 'pino';
import type { JobSpecInput } from '@swarmgrad/protocol';
import {
  Coordinator,
  parseJob,
  type AddressOptions,
  type Dissemination,
  type Heartbeat,
  type IceOptions,
} from '@swarmgrad/coordinator';

export const testJobInput: JobSpecInput = {
  name: 'test-softmax',
  model: { preset: 'softmax-784-10' },
  partitions: 16,
  cluster: { size: 2, redundancy: 0 },
  // these tests isolate rounds, placement and coding: the gradient-coded mean, not the default
  // robust rule (which the e2e suite runs, and packages/protocol/test/job.test.ts pins)
  aggregator: { name: 'mean', f: 0 },
  agreement: { graceMs: 50 },
  optimizer: { learningRate: 0.5 },
  evaluateEvery: 1000,
  checkpointEvery: 4,
  staleness: 2,
};

export async function tempDir(prefix = 'swarmgrad-test-'): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix));
}

export async function startCoordinator(
  overrides: Partial<JobSpecInput> = {},
  options: {
    evaluate?: boolean;
    allowFaultInjection?: boolean;
    dataDir?: string;
    minTabs?: number;
    resumeGraceMs?: number;
    proposerPatienceMs?: number;
    /** Redis URL: start the coordinator as one node of a multi-node swarm. */
    redis?: string;
    /** Client addresses, address groups and joins per group (trusted proxies etc.). */
    addresses?: AddressOptions;
    /** Interface to listen on (default 127.0.0.1). */
    host?: string;
    /** engine.io heartbeat overrides (default: the coordinator's HEARTBEAT). */
    heartbeat?: Partial<Heartbeat>;
    /** STUN/TURN servers for the welcome (checked with checkIceOptions first). */
    ice?: IceOptions;
    /**
     * Default `direct`: the harness's fake tabs have no data channels to forward iteration
     * frames over (tests of cluster dissemination ask for `cluster`).
     */
    dissemination?: Dissemination;
  } = {},
): Promise<Coordinator> {
  return Coordinator.start({
    job: parseJob({ ...testJobInput, ...overrides }),
    port: 0,
    host: options.host ?? '127.0.0.1',
    dataDir: options.dataDir ?? (await tempDir()),
    adminToken: 'test-token',
    logger: pino({ level: 'silent' }),
    evaluate: options.evaluate ?? false,
    allowFaultInjection: options.allowFaultInjection ?? false,
    minTabs: options.minTabs ?? 1,
    resumeGraceMs: options.resumeGraceMs ?? 1000,
    ...(options.proposerPatienceMs === undefined
      ? {}
      : { proposerPatienceMs: options.proposerPatienceMs }),
    redis: options.redis,
    ...(options.addresses === undefined ? {} : { addresses: options.addresses }),
    ...(options.heartbeat === undefined ? {} : { heartbeat: options.heartbeat }),
    ...(options.ice === undefined ? {} : { ice: options.ice }),
    dissemination: options.dissemination ?? 'direct',
  });
}

export async function waitFor<T>(
  probe: () => T | undefined | false | Promise<T | undefined | false>,
  what: string,
  timeoutMs = 15_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** The coordinator's CLI entry (its package's bin), run as a child process. */
const cli = createRequire(import.meta.url).resolve('@swarmgrad/coordinator/bin/swarmgrad.js');

export interface ChildCoordinator {
  process: ChildProcess;
  url: string;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<number | null>;
}

/** Runs `swarmgrad serve` as a child process and waits for it to print its status URL. */
export async function spawnCoordinator(
  args: string[],
  env: NodeJS.ProcessEnv = {},
): Promise<ChildCoordinator> {
  const child = spawn(
    process.execPath,
    [cli, 'serve', '--host', '127.0.0.1', '--port', '0', ...args],
    {
      env: { ...process.env, SWARMGRAD_ADMIN_TOKEN: 'test-token', LOG_LEVEL: 'warn', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let out = '';
  let err = '';
  child.stdout!.on('data', (chunk: Buffer) => (out += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (err += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const url = await Promise.race([
    waitFor(
      () => /status:\s+(http:\/\/[^/\s]+)\/api\/status/.exec(out)?.[1],
      'coordinator start',
      60_000,
    ),
    exited.then((code) => {
      throw new Error(`coordinator exited with ${code}: ${err}`);
    }),
  ]);
  return {
    process: child,
    url: url.replace(/http:\/\/[^:]+:/, 'http://127.0.0.1:'),
    stdout: () => out,
    stderr: () => err,
    exited,
  };
}

/** Runs the CLI to completion (for commands that must fail fast). */
export async function runCli(
  args: string[],
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [cli, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  return { code, stdout, stderr };
}

export async function status(url: string): Promise<{
  iteration: number;
  phase: string;
  tabs: number;
  clusters: {
    id: number;
    live: boolean;
    members: { tabId: string; slot: number; live: boolean; rttMs: number | null }[];
  }[];
  accuracy: number | null;
  wire: {
    bytesSent: number;
    fp32EquivalentBytes: number;
    byPath: { peer: number; proposal: number; broadcast: number; relay: number };
  };
  staleDropped: number;
  rejected: Record<string, number>;
  /** Tabs waiting without a seat under the address-group cap. */
  unseated: number;
  /** Frames the coordinator relayed between tabs whose link failed. */
  relayedFrames: number;
  relay: { bytes: number; pairs: number };
}> {
  return (await (await fetch(`${url}/api/status`)).json()) as never;
}
