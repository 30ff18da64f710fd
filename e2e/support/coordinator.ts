/**
 * A real coordinator for end-to-end tests and benchmarks: `swarmgrad serve --port 0 --host
 * 0.0.0.0` as a child process with a job file and its own data directory, and `until`, the
 * polling helper the specs share.
 *
 * WebRTC between Chromium tabs needs a non-loopback address (host candidates on 127.0.0.1 are
 * not gathered), so `url` is the coordinator on this machine's first non-internal IPv4 address
 * (found with os.networkInterfaces(), never configured); `loopbackUrl` is the same server on
 * 127.0.0.1 for API calls and for pages that need no WebRTC.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { DashboardStatus } from '@swarmgrad/protocol';

export const cli = fileURLToPath(
  new URL('../../apps/coordinator/bin/swarmgrad.js', import.meta.url),
);

/** Polls `probe` until it returns something other than undefined/false, or fails. */
export async function until<T>(
  probe: () => T | undefined | false | Promise<T | undefined | false>,
  what: string,
  timeoutMs = 30_000,
  intervalMs = 100,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined && value !== false) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline)
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (${String(last)})` : ''}`,
      );
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** This machine's first non-loopback IPv4 address (what WebRTC host candidates use). */
export function lanAddress(): string {
  for (const list of Object.values(networkInterfaces())) {
    for (const item of list ?? []) {
      if (item.family === 'IPv4' && !item.internal) return item.address;
    }
  }
  throw new Error('no non-loopback IPv4 interface: WebRTC between tabs needs one');
}

export interface CoordinatorProcess {
  /** http://<lan address>:<port>: what tabs open (WebRTC needs the LAN address). */
  url: string;
  /** http://127.0.0.1:<port>. */
  loopbackUrl: string;
  port: number;
  token: string;
  pid: number;
  status(): Promise<DashboardStatus>;
  output(): string;
  /** SIGTERM (SIGKILL after 15 s), then the temporary directory is removed. */
  stop(): Promise<void>;
}

/** Starts `swarmgrad serve` with `job` and waits until it prints its URLs. */
export async function startCoordinator(options: {
  job: object;
  args?: string[];
  logLevel?: string;
}): Promise<CoordinatorProcess> {
  const dir = await mkdtemp(join(tmpdir(), 'swarmgrad-e2e-'));
  const jobFile = join(dir, 'job.json');
  await writeFile(jobFile, JSON.stringify(options.job));
  const token = randomBytes(12).toString('base64url');
  const child: ChildProcess = spawn(
    process.execPath,
    [
      cli,
      'serve',
      '--config',
      jobFile,
      '--port',
      '0',
      '--host',
      '0.0.0.0',
      '--data-dir',
      join(dir, 'data'),
      ...(options.args ?? []),
    ],
    {
      env: {
        ...process.env,
        SWARMGRAD_ADMIN_TOKEN: token,
        LOG_LEVEL: options.logLevel ?? 'warn',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let out = '';
  child.stdout!.on('data', (chunk: Buffer) => (out += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (out += chunk.toString()));
  let exitCode: number | null | undefined;
  child.on('exit', (code) => (exitCode = code));
  const stop = async () => {
    if (exitCode === undefined) {
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(timer);
    }
    await rm(dir, { recursive: true, force: true });
  };
  let printed: string;
  try {
    printed = await until(
      () => {
        if (exitCode !== undefined) throw new Error(`coordinator exited with ${exitCode}:\n${out}`);
        return /status:\s+(http:\/\/[^/\s]+)\/api\/status/.exec(out)?.[1];
      },
      'the coordinator to start',
      90_000,
    );
  } catch (error) {
    await stop();
    throw error;
  }
  const port = Number(/:(\d+)$/.exec(printed)![1]);
  const url = `http://${lanAddress()}:${port}`;
  const loopbackUrl = `http://127.0.0.1:${port}`;
  return {
    url,
    loopbackUrl,
    port,
    token,
    pid: child.pid!,
    status: async () => {
      const response = await fetch(`${loopbackUrl}/api/status`);
      if (!response.ok) throw new Error(`/api/status: HTTP ${response.status}`);
      return (await response.json()) as DashboardStatus;
    },
    output: () => out,
    stop,
  };
}
