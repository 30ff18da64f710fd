/**
 * A real coordinator as a child process (`swarmgrad serve --port 0 --host 0.0.0.0`) with a job
 * file and its own data directory, for `swarmgrad swarm --serve`, the swarm API and the
 * end-to-end tests; and `until`, the polling helper they share.
 *
 * WebRTC between Chromium tabs needs a non-loopback address (host candidates on 127.0.0.1 are
 * not gathered), so `url` is the coordinator on this machine's first non-internal IPv4 address
 * (found with os.networkInterfaces(), never configured); `loopbackUrl` is the same server on
 * 127.0.0.1 for API calls and for pages that need no WebRTC.
 *
 * `kill('SIGKILL')` and `restart()` serve crash tests: the restarted process gets the same port,
 * job file and data directory, so it resumes from its checkpoint and journal and the tabs'
 * socket.io clients find it again at the same URL.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DashboardStatus } from '@swarmgrad/protocol';

/**
 * The `swarmgrad` executable this package starts coordinators and Node workers with. A package
 * does not reach up into the app that ships it: that app names its own executable (apps/
 * coordinator's cli.ts calls useCli before it runs a command), and tests and benchmarks name it
 * through SWARMGRAD_CLI (set by vitest.config.ts, e2e/playwright.config.ts and bench/index.ts).
 */
let cliPath: string | undefined;

export function useCli(path: string): void {
  cliPath = path;
}

export function swarmgradCli(): string {
  const path = cliPath ?? process.env.SWARMGRAD_CLI;
  if (path === undefined || path === '')
    throw new Error(
      'no swarmgrad executable named: call useCli(path) or set SWARMGRAD_CLI to the swarmgrad bin',
    );
  return path;
}

/** Thrown by an `until` probe when waiting longer cannot help (e.g. the process exited). */
export class GiveUp extends Error {}

/**
 * Polls `probe` until it returns something other than undefined/false, or fails: after
 * `timeoutMs` (a probe's errors count as "not yet"; the last one is quoted), or at once when the
 * probe throws GiveUp.
 */
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
      if (error instanceof GiveUp) throw error;
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

/** GET <url>/api/status. */
export async function fetchStatus(url: string): Promise<DashboardStatus> {
  const response = await fetch(`${url.replace(/\/+$/, '')}/api/status`);
  if (!response.ok) throw new Error(`${url}/api/status: HTTP ${response.status}`);
  return (await response.json()) as DashboardStatus;
}

/** One row of the coordinator's `/api/metrics.csv`: a closed iteration, and its evaluation. */
export interface MetricsRow {
  iteration: number;
  /** Its close time, ms since the epoch. */
  at: number;
  /** Held-out loss and accuracy, null where the iteration was not evaluated. */
  heldOutLoss: number | null;
  heldOutAccuracy: number | null;
}

/** Parses `/api/metrics.csv` (the dashboard's export), rows in iteration order. */
export function parseMetricsCsv(csv: string): MetricsRow[] {
  const [header, ...lines] = csv.trim().split('\n');
  const columns = (header ?? '').split(',');
  const index = (name: string) => {
    const at = columns.indexOf(name);
    if (at < 0) throw new Error(`metrics.csv has no ${name} column: ${header}`);
    return at;
  };
  const [iteration, time, loss, accuracy] = [
    index('iteration'),
    index('time'),
    index('heldout_loss'),
    index('heldout_accuracy'),
  ];
  const optional = (cell: string | undefined) =>
    cell === undefined || cell === '' ? null : Number(cell);
  return lines.map((line) => {
    const cells = line.split(',');
    const at = Date.parse(cells[time] ?? '');
    if (!Number.isFinite(at)) throw new Error(`metrics.csv: bad time in "${line}"`);
    return {
      iteration: Number(cells[iteration]),
      at,
      heldOutLoss: optional(cells[loss]),
      heldOutAccuracy: optional(cells[accuracy]),
    };
  });
}

/** GET <url>/api/metrics.csv: the raw text, and its rows. */
export async function fetchMetrics(url: string): Promise<{ csv: string; rows: MetricsRow[] }> {
  const response = await fetch(`${url.replace(/\/+$/, '')}/api/metrics.csv`);
  if (!response.ok) throw new Error(`${url}/api/metrics.csv: HTTP ${response.status}`);
  const csv = await response.text();
  return { csv, rows: parseMetricsCsv(csv) };
}

export interface CoordinatorProcess {
  /** http://<lan address>:<port>: what tabs open (WebRTC needs the LAN address). */
  url: string;
  /** http://127.0.0.1:<port>. */
  loopbackUrl: string;
  port: number;
  token: string;
  /** The current process's pid (a restart changes it). */
  pid: number;
  /** Checkpoints and journal (kept across restarts, removed by stop()). */
  dataDir: string;
  status(): Promise<DashboardStatus>;
  /** Everything the process(es) printed so far. */
  output(): string;
  /** Sends `signal` and waits for the process to exit (no checkpoint on SIGKILL). */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Starts the coordinator again on the same port, job and data directory. */
  restart(): Promise<void>;
  /** SIGTERM (SIGKILL after 15 s), then the temporary directory is removed. */
  stop(): Promise<void>;
}

export interface StartCoordinatorOptions {
  /** The job (JSON-serialisable object), or the path of a job file; default: the default job. */
  job?: object | string;
  /** More `swarmgrad serve` arguments, e.g. ['--allow-fault-injection']. */
  args?: string[];
  /** LOG_LEVEL of the coordinator (default 'warn'). */
  logLevel?: string;
  /** Port (default 0: any free port, kept across restarts). */
  port?: number;
  /** Runs the process through this prefix (the network lab: `ip netns exec <ns>`). */
  execPrefix?: string[];
  /** The address tabs and the API reach it on (default: this machine's LAN address, and
   * 127.0.0.1 for the API); the network lab's public address. */
  address?: string;
}

/** Starts `swarmgrad serve` with `job` and waits until it prints its URLs. */
export async function startCoordinator(
  options: StartCoordinatorOptions = {},
): Promise<CoordinatorProcess> {
  const dir = await mkdtemp(join(tmpdir(), 'swarmgrad-swarm-'));
  const dataDir = join(dir, 'data');
  let jobFile: string | undefined;
  if (typeof options.job === 'string') {
    jobFile = options.job;
  } else if (options.job !== undefined) {
    jobFile = join(dir, 'job.json');
    await writeFile(jobFile, JSON.stringify(options.job));
  }
  const token = randomBytes(12).toString('base64url');
  let out = '';
  let child: ChildProcess | undefined;
  let exitCode: number | null | undefined;
  let exited: Promise<void> = Promise.resolve();
  let port = options.port ?? 0;

  const launch = async (): Promise<void> => {
    exitCode = undefined;
    const argv = [
      ...(options.execPrefix ?? []),
      process.execPath,
      swarmgradCli(),
      'serve',
      ...(jobFile === undefined ? [] : ['--config', jobFile]),
      '--port',
      String(port),
      '--host',
      '0.0.0.0',
      '--data-dir',
      dataDir,
      ...(options.args ?? []),
    ];
    const proc = spawn(argv[0]!, argv.slice(1), {
      env: {
        ...process.env,
        SWARMGRAD_ADMIN_TOKEN: token,
        LOG_LEVEL: options.logLevel ?? 'warn',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child = proc;
    const printedFrom = out.length;
    proc.stdout!.on('data', (chunk: Buffer) => (out += chunk.toString()));
    proc.stderr!.on('data', (chunk: Buffer) => (out += chunk.toString()));
    exited = new Promise<void>((resolve) =>
      proc.once('exit', (code) => {
        if (child === proc) exitCode = code;
        resolve();
      }),
    );
    const printed = await until(
      () => {
        if (exitCode !== undefined) {
          throw new GiveUp(`coordinator exited with ${exitCode}:\n${out.slice(printedFrom)}`);
        }
        return /status:\s+(http:\/\/[^/\s]+)\/api\/status/.exec(out.slice(printedFrom))?.[1];
      },
      'the coordinator to start',
      90_000,
    );
    port = Number(/:(\d+)$/.exec(printed)![1]);
  };

  const kill = async (signal: NodeJS.Signals = 'SIGTERM'): Promise<void> => {
    if (!child || exitCode !== undefined) return;
    child.kill(signal);
    const timer = setTimeout(() => child?.kill('SIGKILL'), 15_000);
    await exited;
    clearTimeout(timer);
  };
  const stop = async (): Promise<void> => {
    await kill('SIGTERM');
    await rm(dir, { recursive: true, force: true });
  };

  try {
    await launch();
  } catch (error) {
    await stop();
    throw error;
  }
  const lan = options.address ?? lanAddress();
  const api = options.address ?? '127.0.0.1';
  const handle: CoordinatorProcess = {
    get url() {
      return `http://${lan}:${port}`;
    },
    get loopbackUrl() {
      return `http://${api}:${port}`;
    },
    get port() {
      return port;
    },
    token,
    get pid() {
      return child!.pid!;
    },
    dataDir,
    status: () => fetchStatus(`http://${api}:${port}`),
    output: () => out,
    kill,
    restart: async () => {
      await kill('SIGTERM');
      await launch();
    },
    stop,
  };
  return handle;
}
