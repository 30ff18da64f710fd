/**
 * Coordinator benchmark (issue 3): N simulated tabs against one coordinator process; with
 * `--nodes K` (issue 8), against K coordinator processes sharing one swarm through Redis.
 *
 *   npm run bench -- coordinator --tabs 1000,5000,10000 [--json] [--iterations M]
 *     [--procs P] [--rate R] [--max-pending H] [--think-ms T] [--ramp-proposals]
 *     [--grace-ms G] [--cluster-size m] [--timeout S] [--nodes K] [--dissemination cluster|direct]
 *     [--load-nice 0..19] [--confirmations vouchers|asked]
 *
 * --dissemination: the product's default, cluster (one frame per cluster; the load generator's tabs
 * report their links up, as a tab's mesh does, so the relays are used), or direct.
 *
 * --nodes K > 1: a redis-server on a free port (Debian's, installed by scripts/ensure-redis.mjs
 * when missing; AOF on with fsync every second) and K `swarmgrad serve --redis` nodes; the load
 * processes deal their tabs round robin over the nodes. Tabs held: per node (status
 * `node.sockets`). Round close: the nodes' histograms summed; a node times the closes it
 * decided, from its decision through the Redis log (XADD, XREAD, apply) to its broadcast done.
 * RSS and CPU: summed over the nodes (Redis not included; its CPU is printed apart).
 *
 * For each N: starts `swarmgrad serve` as a child process (job: softmax-784-10, d = 7850,
 * clusters of m = 8, redundancy 0, one-bit codec, graceMs G = 50, no evaluation and no periodic
 * checkpoint), then P load-generator processes (bench/coordinator-load.ts, default one per 2,500
 * tabs, at least 2) that open N socket.io connections in all: at most R = 200 new connections
 * per second and H = 64 handshakes in flight per process, failed ones retried. Proposers hold
 * their proposals until every tab is in (unless --ramp-proposals), so the ramp measures hello
 * handling only; then they propose T ms (default 0) after every `iteration` event. Once three
 * iterations have passed (placement settled), M iterations (default 30) are measured:
 * - connected tabs (`/api/status` `tabs`) and clusters, read when the window has ended (a
 *   status read starts the dashboard's staleness analysis on that node);
 * - the coordinator's RSS (/proc/<pid>/status VmRSS) before the first tab and with all tabs in,
 *   and their difference per tab;
 * - iterations per second; the coordinator's and the load generators' CPU time over the window
 *   (% of one core); the machine's load average (it may be shared);
 * - round close p50/p99 from the coordinator's `swarmgrad_round_close_seconds` histogram: from
 *   the decision to close (taken when the completing proposal is handled) until the broadcast
 *   has been handed to every socket; interpolated inside buckets over the window;
 * - e2e p50/p99 from the tabs' side: last proposal sent for a base → first tab (and → every
 *   tab) holding the next iteration event (one monotonic clock on one machine); it adds the
 *   time proposals queue in the coordinator and the load generators' own delays;
 * - broadcast egress per iteration per tab: `swarmgrad_wire_bytes_total{path="broadcast"}` over
 *   the window / iterations / tabs (one iteration frame per tab — 24-byte header + delta — so
 *   constant in the cluster count).
 * Goal (issue 3): 10,000 tabs, round close p99 ≤ 200 ms. Every child is killed at the end, also
 * on errors and timeouts; a phase that times out reports what was reached.
 * --load-nice N (default 0): the load generators' nice value. They stand in for tabs on other
 * machines but share this machine's two cores with the coordinator; at equal priority a load
 * generator woken by the coordinator's writes can preempt it mid-close (in a trace at 10,000
 * tabs the relay writes of one close took 32–141 ms at nice 0 and 31–48 ms at nice 19). It is
 * not neutral everywhere: with --nodes 3 at 1,000 tabs, nice 19 slowed the tabs' side and the
 * nodes' summed CPU per iteration rose by half (proposals arrive in smaller batches), so the
 * default stays at equal priority.
 * --confirmations (default vouchers, the product's path): each proposer brings its members'
 * vouchers (docs/architecture.md, _Confirmations bundled by the proposer_). The bench's tabs hold
 * no registers and keep no mesh, so a proposer signs its members' vouchers for them with their
 * keys, derived from a secret the bench gives the coordinator (SWARMGRAD_VOUCH_SECRET) — what
 * honest members that recomputed the proposal would send it; the coordinator checks every MAC
 * as it would a real swarm's. `asked`: no vouchers, the coordinator asks every member
 * (a confirm request and an answer per member per iteration), the path before vouchers.
 * BENCH_COORDINATOR_NODE_ARGS passes node flags to the coordinator (e.g. --cpu-prof).
 */
import { randomBytes } from 'node:crypto';
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { cpus, loadavg, setPriority, tmpdir } from 'node:os';
import { createServer as createNetServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { IterationTimes, LoadConfig, LoadMessage } from './coordinator-load.ts';

const GOAL = { tabs: 10_000, closeP99Ms: 200 };
const cli = fileURLToPath(new URL('../apps/coordinator/bin/swarmgrad.js', import.meta.url));
const loadScript = fileURLToPath(new URL('./coordinator-load.ts', import.meta.url));
const ensureRedisScript = fileURLToPath(new URL('../scripts/ensure-redis.mjs', import.meta.url));

interface Options {
  tabs: number[];
  json: boolean;
  procs: number | undefined;
  rate: number;
  maxPending: number;
  iterations: number;
  thinkMs: number;
  rampProposals: boolean;
  graceMs: number;
  clusterSize: number;
  timeoutS: number;
  nodes: number;
  /** The coordinator's `--dissemination` (cluster: one iteration frame per cluster). */
  dissemination: 'cluster' | 'direct';
  /** The load generators' nice value (0 = the coordinator's priority). */
  loadNice: number;
  /** vouchers: proposers bring their members' vouchers; asked: the coordinator asks members. */
  confirmations: 'vouchers' | 'asked';
}

function option(args: string[], name: string): string | undefined {
  const at = args.indexOf(name);
  return at < 0 ? undefined : args[at + 1];
}

function numberOption(args: string[], name: string, fallback: number, min = 1): number {
  const raw = option(args, name);
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < min)
    throw new RangeError(`${name} needs a number ≥ ${min}`);
  return value;
}

/** The coordinator's voucher secret in this bench, fresh per run (the load generators sign). */
const VOUCH_SECRET = randomBytes(32).toString('hex');

/** `--load-nice`: an integer nice value, 0 (the coordinator's priority) to 19 (the lowest). */
function niceOption(args: string[]): number {
  const nice = numberOption(args, '--load-nice', 0, 0);
  if (!Number.isInteger(nice) || nice > 19)
    throw new RangeError('--load-nice needs an integer from 0 to 19');
  return nice;
}

function parseOptions(args: string[]): Options {
  const tabs = (option(args, '--tabs') ?? '1000').split(',').map((s) => Number(s.trim()));
  if (tabs.some((n) => !Number.isInteger(n) || n < 1))
    throw new RangeError('--tabs needs positive integers, e.g. --tabs 1000,5000,10000');
  const procs = option(args, '--procs');
  return {
    tabs,
    json: args.includes('--json'),
    procs: procs === undefined ? undefined : numberOption(args, '--procs', 1),
    rate: numberOption(args, '--rate', 200),
    maxPending: numberOption(args, '--max-pending', 64),
    iterations: numberOption(args, '--iterations', 30),
    thinkMs: numberOption(args, '--think-ms', 0, 0),
    rampProposals: args.includes('--ramp-proposals'),
    graceMs: numberOption(args, '--grace-ms', 50, 0),
    clusterSize: numberOption(args, '--cluster-size', 8),
    timeoutS: numberOption(args, '--timeout', 120),
    nodes: numberOption(args, '--nodes', 1),
    dissemination: option(args, '--dissemination') === 'direct' ? 'direct' : 'cluster',
    loadNice: niceOption(args),
    confirmations: option(args, '--confirmations') === 'asked' ? 'asked' : 'vouchers',
  };
}

// ------------------------------------------------------------------ process and metrics probes

const clockTicks = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;
  } catch {
    return 100;
  }
})();

/** Resident set size of a process, bytes. */
function rssOf(pid: number): number {
  const match = /VmRSS:\s+(\d+)\s+kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return match ? Number(match[1]) * 1024 : NaN;
}

/** User + system CPU time of a process, seconds. */
function cpuSecondsOf(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / clockTicks;
  } catch {
    return NaN;
  }
}

interface Scrape {
  at: number;
  tabs: number;
  clusters: number;
  iteration: number;
  broadcastBytes: number;
  rejected: number;
  stale: number;
  /** Cumulative round-close histogram: [upper bound in s, count]. */
  buckets: [number, number][];
  closeCount: number;
  /** Largest event-loop delay since the previous scrape (prom-client resets it), s. */
  loopLagMax: number;
}

function metricValue(text: string, name: string, labels = ''): number {
  const escaped = `${name}${labels}`.replace(/[{}"=.+]/g, (c) => `\\${c}`);
  const match = new RegExp(`^${escaped} ([0-9.eE+-]+)$`, 'm').exec(text);
  return match ? Number(match[1]) : 0;
}

/** Fetches `path`, retrying: a busy coordinator may reset a reused keep-alive connection. */
async function fetchText(url: string, attempts = 5): Promise<string> {
  for (let attempt = 1; ; attempt++) {
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(30_000) });
      return await response.text();
    } catch (error) {
      if (attempt >= attempts) throw error;
      await new Promise((r) => setTimeout(r, 500));
    }
  }
}

async function scrape(base: string): Promise<Scrape> {
  const text = await fetchText(`${base}/metrics`);
  const buckets: [number, number][] = [];
  for (const match of text.matchAll(
    /^swarmgrad_round_close_seconds_bucket\{le="([^"]+)"\} ([0-9.eE+-]+)$/gm,
  )) {
    buckets.push([match[1] === '+Inf' ? Infinity : Number(match[1]), Number(match[2])]);
  }
  let rejected = 0;
  for (const match of text.matchAll(/^swarmgrad_rejected_messages_total\{[^}]*\} ([0-9.eE+-]+)$/gm))
    rejected += Number(match[1]);
  return {
    at: performance.now(),
    tabs: metricValue(text, 'swarmgrad_tabs'),
    clusters: metricValue(text, 'swarmgrad_clusters'),
    iteration: metricValue(text, 'swarmgrad_iteration'),
    broadcastBytes: metricValue(text, 'swarmgrad_wire_bytes_total', '{path="broadcast"}'),
    rejected,
    stale: metricValue(text, 'swarmgrad_stale_proposals_total'),
    buckets,
    closeCount: metricValue(text, 'swarmgrad_round_close_seconds_count'),
    loopLagMax: metricValue(text, 'swarmgrad_process_nodejs_eventloop_lag_max_seconds'),
  };
}

/**
 * Several nodes of one coordinator: iteration, tabs and stale proposals are the shared state's
 * (node 0's); round-close histograms, broadcast bytes and refusals are each node's own (summed).
 */
async function scrapeAll(urls: string[]): Promise<Scrape> {
  const all = await Promise.all(urls.map((u) => scrape(u)));
  const first = all[0]!;
  if (all.length === 1) return first;
  return {
    ...first,
    broadcastBytes: all.reduce((s, x) => s + x.broadcastBytes, 0),
    rejected: all.reduce((s, x) => s + x.rejected, 0),
    buckets: first.buckets.map(([le], i) => [
      le,
      all.reduce((s, x) => s + (x.buckets[i]?.[1] ?? 0), 0),
    ]),
    closeCount: all.reduce((s, x) => s + x.closeCount, 0),
    loopLagMax: Math.max(...all.map((x) => x.loopLagMax)),
  };
}

/**
 * Quantile q of the observations between two scrapes of a cumulative histogram, interpolated
 * linearly inside its bucket (as Prometheus' histogram_quantile). Infinity when it falls in
 * the +Inf bucket.
 */
export function histogramQuantile(
  before: [number, number][],
  after: [number, number][],
  q: number,
): number {
  const counts = after.map(([le, n], i) => [le, n - (before[i]?.[1] ?? 0)] as [number, number]);
  const total = counts.at(-1)?.[1] ?? 0;
  if (total <= 0) return NaN;
  const rank = q * total;
  let lower = 0;
  let below = 0;
  for (const [le, cumulative] of counts) {
    if (cumulative >= rank) {
      if (!Number.isFinite(le)) return Infinity;
      const inBucket = cumulative - below;
      return inBucket > 0 ? lower + ((le - lower) * (rank - below)) / inBucket : le;
    }
    lower = le;
    below = cumulative;
  }
  return NaN;
}

/** Nearest-rank quantile of samples. */
function quantile(samples: number[], q: number): number {
  if (samples.length === 0) return NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

async function until<T>(
  probe: () => Promise<T | undefined> | T | undefined,
  timeoutMs: number,
  everyMs = 500,
): Promise<T | undefined> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) return undefined;
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

// ------------------------------------------------------------------ children

/** Spawns through bash to raise the file-descriptor limit to the hard limit first. */
function spawnWithFds(
  command: string,
  args: string[],
  options: Parameters<typeof spawn>[2],
): ChildProcess {
  return spawn('bash', ['-c', 'ulimit -n "$(ulimit -Hn)"; exec "$@"', 'bash', command, ...args], {
    ...options,
  });
}

interface Loader {
  child: ChildProcess;
  progress: Extract<LoadMessage, { type: 'progress' }> | undefined;
  stats: ((message: Extract<LoadMessage, { type: 'stats' }>) => void) | undefined;
  exited: boolean;
  /** Largest event-loop lag reported since the last reset, ms. */
  maxLagMs: number;
}

function startLoader(config: LoadConfig, nice: number): Loader {
  const child = spawnWithFds(
    process.execPath,
    ['--import', 'tsx', loadScript, JSON.stringify(config)],
    { stdio: ['ignore', 'ignore', 'pipe', 'ipc'], env: process.env },
  );
  // --load-nice: they stand in for tabs on other machines
  if (child.pid !== undefined && nice !== 0) setPriority(child.pid, nice);
  const loader: Loader = {
    child,
    progress: undefined,
    stats: undefined,
    exited: false,
    maxLagMs: 0,
  };
  let err = '';
  child.stderr!.on('data', (chunk: Buffer) => (err = (err + chunk.toString()).slice(-2000)));
  child.on('message', (message: LoadMessage) => {
    if (message.type === 'progress') {
      loader.progress = message;
      loader.maxLagMs = Math.max(loader.maxLagMs, message.lagMs);
    } else if (message.type === 'stats') loader.stats?.(message);
  });
  child.on('exit', (code) => {
    loader.exited = true;
    if (code !== 0 && code !== null)
      process.stderr.write(`load generator exited ${code}: ${err}\n`);
  });
  return loader;
}

function requestStats(
  loader: Loader,
  from: number,
  to: number,
): Promise<Extract<LoadMessage, { type: 'stats' }> | undefined> {
  if (loader.exited) return Promise.resolve(undefined);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(undefined), 30_000);
    loader.stats = (message) => {
      clearTimeout(timer);
      resolve(message);
    };
    loader.child.send({ type: 'stats', from, to });
  });
}

interface CoordinatorChild {
  child: ChildProcess;
  url: string;
  dataDir: string;
  output: () => string;
}

interface RedisChild {
  child: ChildProcess;
  url: string;
  dir: string;
}

/** A redis-server for --nodes K > 1 (Debian's; installed when missing, as root). */
async function startRedis(): Promise<RedisChild> {
  execFileSync(process.execPath, [ensureRedisScript], { stdio: 'inherit' });
  const port = await new Promise<number>((resolve, reject) => {
    const server = createNetServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const p = (server.address() as { port: number }).port;
      server.close(() => resolve(p));
    });
  });
  const dir = await mkdtemp(join(tmpdir(), 'swarmgrad-bench-redis-'));
  const child = spawn(
    process.env.REDIS_SERVER ?? '/usr/bin/redis-server',
    [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--dir',
      dir,
      '--appendonly',
      'yes',
      '--save',
      '',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  child.stdout!.on('data', (chunk: Buffer) => (out = (out + chunk.toString()).slice(-5000)));
  const ready = await until(
    () => (/Ready to accept connections/.test(out) ? true : undefined),
    20_000,
    100,
  );
  if (!ready) {
    child.kill('SIGKILL');
    throw new Error(`redis-server did not start: ${out}`);
  }
  return { child, url: `redis://127.0.0.1:${port}`, dir };
}

async function startCoordinator(options: Options, redisUrl?: string): Promise<CoordinatorChild> {
  const dataDir = await mkdtemp(join(tmpdir(), 'swarmgrad-bench-'));
  const config = join(dataDir, 'job.json');
  await writeFile(
    config,
    JSON.stringify({
      name: 'bench-coordinator',
      model: { preset: 'softmax-784-10' },
      cluster: { size: options.clusterSize, redundancy: 0 },
      agreement: { graceMs: options.graceMs },
      codec: { name: 'one-bit', blockSize: 1024 },
      evaluateEvery: 1_000_000_000,
      checkpointEvery: 1_000_000_000,
    }),
  );
  const child = spawnWithFds(
    process.execPath,
    [
      // BENCH_COORDINATOR_NODE_ARGS: node flags for the coordinator only (e.g. --cpu-prof)
      ...(process.env.BENCH_COORDINATOR_NODE_ARGS ?? '').split(' ').filter(Boolean),
      cli,
      'serve',
      '--config',
      config,
      '--port',
      '0',
      '--host',
      '127.0.0.1',
    ]
      .concat(['--data-dir', join(dataDir, 'data')])
      .concat(['--dissemination', options.dissemination])
      .concat(redisUrl === undefined ? [] : ['--redis', redisUrl]),
    {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, LOG_LEVEL: 'warn', SWARMGRAD_VOUCH_SECRET: VOUCH_SECRET },
    },
  );
  let out = '';
  child.stdout!.on('data', (chunk: Buffer) => (out = (out + chunk.toString()).slice(-20_000)));
  child.stderr!.on('data', (chunk: Buffer) => (out = (out + chunk.toString()).slice(-20_000)));
  let exited = false;
  child.on('exit', () => (exited = true));
  try {
    const port = await until(() => {
      if (exited) throw new Error(`coordinator exited: ${out}`);
      return /status:\s+http:\/\/[^/\s]+:(\d+)\/api\/status/.exec(out)?.[1];
    }, 120_000);
    if (port === undefined) throw new Error(`coordinator did not start: ${out}`);
    return { child, url: `http://127.0.0.1:${port}`, dataDir, output: () => out };
  } catch (error) {
    if (!exited) child.kill('SIGKILL');
    await rm(dataDir, { recursive: true, force: true });
    throw error;
  }
}

async function stopAll(
  coordinators: CoordinatorChild[],
  loaders: Loader[],
  redis?: RedisChild,
): Promise<void> {
  for (const loader of loaders) if (!loader.exited) loader.child.send({ type: 'stop' });
  await until(() => (loaders.every((l) => l.exited) ? true : undefined), 3000, 100);
  for (const loader of loaders) if (!loader.exited) loader.child.kill('SIGKILL');
  await Promise.all(coordinators.map((c) => stopCoordinator(c)));
  if (redis) {
    const child = redis.child;
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const exited = await until(
        () => (child.exitCode !== null || child.signalCode !== null ? true : undefined),
        10_000,
        100,
      );
      if (!exited) child.kill('SIGKILL');
    }
    await rm(redis.dir, { recursive: true, force: true });
  }
}

async function stopCoordinator(coordinator: CoordinatorChild | undefined): Promise<void> {
  if (coordinator) {
    const child = coordinator.child;
    if (child.exitCode === null && child.signalCode === null) {
      // SIGTERM: the coordinator checkpoints (d is small) and exits; SIGKILL if it hangs
      child.kill('SIGTERM');
      const exited = await until(
        () => (child.exitCode !== null || child.signalCode !== null ? true : undefined),
        30_000,
        100,
      );
      if (!exited) child.kill('SIGKILL');
    }
    await rm(coordinator.dataDir, { recursive: true, force: true });
  }
}

// ------------------------------------------------------------------ one run

interface Row {
  tabs: number;
  /** Coordinator processes (nodes sharing Redis when > 1), and the tabs each one held. */
  nodes: number;
  held: number[];
  connected: number;
  clusters: number;
  procs: number;
  rssIdleMB: number;
  rssLoadedMB: number;
  kbPerTab: number;
  iterations: number;
  iterationsPerSecond: number;
  closeP50Ms: number;
  closeP99Ms: number;
  closeMaxBucketMs: number;
  e2eFirstP50Ms: number;
  e2eFirstP99Ms: number;
  e2eAllP50Ms: number;
  e2eAllP99Ms: number;
  /** Proposals sent for a base before the next iteration reached the first tab. */
  proposalsPerIteration: number;
  /** First tab holding an iteration → last proposal for it sent (the tabs' share of a cycle). */
  proposingP50Ms: number;
  broadcastBytesPerIterationPerTab: number;
  coordinatorCpuPercent: number;
  /** Coordinator CPU time per iteration: unlike latencies, barely moved by other load. */
  coordinatorCpuMsPerIteration: number;
  /** The same per coordinator process, in the order the nodes started. */
  coordinatorCpuMsPerIterationByNode: number[];
  loadCpuPercent: number;
  connectSeconds: number;
  /** Connection attempts that failed and were retried during the ramp. */
  retried: number;
  /** 1-minute load average of the machine before and after the measured window. */
  loadAverage: [number, number];
  /** Largest event-loop lag seen in the window: coordinator (its /metrics), load generators. */
  coordinatorLagMaxMs: number;
  loadLagMaxMs: number;
  acks: Record<string, number>;
  rejected: number;
  stale: number;
  notes: string[];
}

const log = (message: string) => process.stderr.write(`[coordinator bench] ${message}\n`);

async function runOne(n: number, options: Options): Promise<Row> {
  const procs = options.procs ?? Math.max(2, Math.ceil(n / 2500));
  const notes: string[] = [];
  const coordinators: CoordinatorChild[] = [];
  let redis: RedisChild | undefined;
  const loaders: Loader[] = [];
  let monitor: NodeJS.Timeout | undefined;
  const interrupt = () => {
    void stopAll(coordinators, loaders, redis).then(() => process.exit(130));
  };
  process.once('SIGINT', interrupt);
  process.once('SIGTERM', interrupt);
  try {
    if (options.nodes > 1) redis = await startRedis();
    // one after the other: each node's start (tsx, dataset) takes the machine's cores
    for (let k = 0; k < options.nodes; k++)
      coordinators.push(await startCoordinator(options, redis?.url));
    const pids = coordinators.map((c) => c.child.pid!);
    const urls = coordinators.map((c) => c.url);
    const url = urls[0]!;
    const coordinator = coordinators[0]!;
    const sum = (f: (pid: number) => number) => pids.reduce((total, pid) => total + f(pid), 0);
    await new Promise((r) => setTimeout(r, 5000)); // startup garbage settles
    const rssIdle = sum(rssOf);
    log(
      `N=${n}: ${urls.length} coordinator node(s) at ${urls.join(', ')}${redis ? ` sharing ${redis.url}` : ''}, ` +
        `RSS ${(rssIdle / 2 ** 20).toFixed(1)} MB; ${procs} load processes`,
    );

    // progress every 5 s (a scrape also resets the coordinator's lag maximum)
    let watching = false;
    let coordinatorLagMs = 0;
    monitor = setInterval(() => {
      if (watching) return;
      watching = true;
      scrape(url)
        .then((s) => {
          coordinatorLagMs = Math.max(coordinatorLagMs, s.loopLagMax * 1000);
          log(
            `N=${n}: iteration ${s.iteration}, ${s.tabs} tabs, RSS ${(sum(rssOf) / 2 ** 20).toFixed(0)} MB, ` +
              `event-loop lag max: coordinator ${(s.loopLagMax * 1000).toFixed(0)} ms, ` +
              `load generators ${Math.max(...loaders.map((l) => l.progress?.lagMs ?? 0)).toFixed(0)} ms`,
          );
        })
        .catch(() => log(`N=${n}: /metrics did not answer`))
        .finally(() => (watching = false));
    }, 5000);

    // ---- connect
    const connectStart = performance.now();
    for (let p = 0; p < procs; p++) {
      const count = Math.floor(n / procs) + (p < n % procs ? 1 : 0);
      loaders.push(
        startLoader(
          {
            url: urls.length === 1 ? url : urls,
            count,
            rate: options.rate,
            maxPending: options.maxPending,
            seed: 1000 + p,
            thinkMs: options.thinkMs,
            proposeFromStart: options.rampProposals,
            reportLinks: options.dissemination === 'cluster',
            ...(options.confirmations === 'vouchers' ? { vouchSecret: VOUCH_SECRET } : {}),
          },
          options.loadNice,
        ),
      );
    }
    const connectTimeoutMs = (n / (procs * options.rate)) * 3000 + 60_000;
    let lastWelcomed = -1;
    let lastChange = Date.now();
    const allIn = await until(
      async () => {
        const welcomed = loaders.reduce((s, l) => s + (l.progress?.welcomed ?? 0), 0);
        const failed = loaders.reduce((s, l) => s + (l.progress?.failed ?? 0), 0);
        const retried = loaders.reduce((s, l) => s + (l.progress?.retried ?? 0), 0);
        if (welcomed !== lastWelcomed) {
          lastWelcomed = welcomed;
          lastChange = Date.now();
          log(`N=${n}: ${welcomed} tabs welcomed, ${failed} failed, ${retried} retried`);
        }
        if (coordinator!.child.exitCode !== null) throw new Error('coordinator exited');
        if (Date.now() - lastChange > 30_000) return false; // stalled
        if (welcomed < n) return undefined;
        const s = await scrape(url);
        return s.tabs >= n ? true : undefined;
      },
      connectTimeoutMs,
      1000,
    );
    const connectSeconds = (performance.now() - connectStart) / 1000;
    const retried = loaders.reduce((s, l) => s + (l.progress?.retried ?? 0), 0);
    if (allIn !== true) {
      const failed = loaders.reduce((s, l) => s + (l.progress?.failed ?? 0), 0);
      const errors = [...new Set(loaders.flatMap((l) => l.progress?.errors ?? []))].slice(0, 5);
      notes.push(
        `not every tab got in within ${connectSeconds.toFixed(0)} s: ${lastWelcomed} welcomed, ${failed} failed${errors.length ? ` (${errors.join('; ')})` : ''}`,
      );
    }

    // ---- settle: proposals start (unless they ran during the ramp); the tabs that found no
    // vacant seat are placed at the next iteration start
    for (const loader of loaders) if (!loader.exited) loader.child.send({ type: 'propose' });
    const settled = await scrape(url);
    const ready = await until(async () => {
      const s = await scrape(url);
      return s.iteration >= settled.iteration + 3 ? s : undefined;
    }, options.timeoutS * 1000);
    if (!ready) notes.push(`iterations did not advance after the tabs connected (timeout)`);
    const rssLoaded = sum(rssOf);
    const redisCpuA = redis ? cpuSecondsOf(redis.child.pid!) : NaN;

    // ---- measure
    const loadBefore = loadavg()[0]!;
    const a = await scrapeAll(urls);
    for (const loader of loaders) loader.maxLagMs = 0;
    coordinatorLagMs = 0;
    const cpuA = sum(cpuSecondsOf);
    const cpuByNodeA = pids.map(cpuSecondsOf);
    const loadCpuA = loaders.reduce((s, l) => s + cpuSecondsOf(l.child.pid!), 0);
    const b =
      (await until(
        async () => {
          const s = await scrapeAll(urls);
          coordinatorLagMs = Math.max(coordinatorLagMs, s.loopLagMax * 1000);
          return s.iteration >= a.iteration + options.iterations ? s : undefined;
        },
        options.timeoutS * 1000,
        1000,
      )) ?? (await scrapeAll(urls));
    const cpuB = sum(cpuSecondsOf);
    const cpuByNodeB = pids.map(cpuSecondsOf);
    if (redis) {
      const redisCpu =
        ((cpuSecondsOf(redis.child.pid!) - redisCpuA) / ((b.at - a.at) / 1000)) * 100;
      notes.push(`redis-server CPU ${redisCpu.toFixed(0)} % of one core`);
    }
    const loadAfter = loadavg()[0]!;
    const loadCpuB = loaders.reduce((s, l) => s + cpuSecondsOf(l.child.pid!), 0);
    const seconds = (b.at - a.at) / 1000;
    const monotonicMs = () => Number(process.hrtime.bigint()) / 1e6;
    log(
      `N=${n}: measured iterations ${a.iteration}–${b.iteration} over ${seconds.toFixed(1)} s, ` +
        `ending at monotonic ${monotonicMs().toFixed(0)} ms`,
    );
    // read after the window: a node's /api/status starts the dashboard's staleness analysis
    // (a few hundred ms of root finding between event-loop turns), which is not a cost of
    // serving tabs and, read before, ran inside the window on every node
    const statuses = await Promise.all(
      urls.map(
        async (u) =>
          JSON.parse(await fetchText(`${u}/api/status`)) as {
            tabs: number;
            clusters: unknown[];
            node?: { sockets: number };
          },
      ),
    );
    const statusAfter = statuses[0]!;
    const held = statuses.map((s) => s.node?.sockets ?? s.tabs);
    const iterations = b.iteration - a.iteration;
    if (iterations < options.iterations)
      notes.push(`only ${iterations} of ${options.iterations} iterations in ${options.timeoutS} s`);

    // ---- the tabs' side of the window
    const stats = await Promise.all(loaders.map((l) => requestStats(l, a.iteration, b.iteration)));
    const disconnects: Record<string, number> = {};
    for (const loader of loaders) {
      for (const [reason, count] of Object.entries(loader.progress?.disconnects ?? {}))
        disconnects[reason] = (disconnects[reason] ?? 0) + count;
    }
    if (Object.keys(disconnects).length > 0) {
      const errors = [...new Set(loaders.flatMap((l) => l.progress?.errors ?? []))].slice(0, 3);
      notes.push(`tabs disconnected: ${JSON.stringify(disconnects)} (${errors.join('; ')})`);
    }
    const merged = new Map<number, IterationTimes>();
    const acks: Record<string, number> = {};
    for (const s of stats) {
      if (!s) continue;
      for (const [key, count] of Object.entries(s.acks)) acks[key] = (acks[key] ?? 0) + count;
      for (const [key, entry] of Object.entries(s.iterations)) {
        const iteration = Number(key);
        const into = merged.get(iteration) ?? { sent: [], received: 0 };
        into.sent.push(...entry.sent);
        into.received += entry.received;
        if (entry.firstRecv !== undefined)
          into.firstRecv = Math.min(into.firstRecv ?? Infinity, entry.firstRecv);
        if (entry.lastRecv !== undefined)
          into.lastRecv = Math.max(into.lastRecv ?? -Infinity, entry.lastRecv);
        merged.set(iteration, into);
      }
    }
    const e2eFirst: number[] = [];
    const e2eAll: number[] = [];
    const proposing: number[] = [];
    let proposals = 0;
    for (let j = a.iteration + 1; j <= b.iteration; j++) {
      const next = merged.get(j);
      const previous = merged.get(j - 1);
      if (next?.firstRecv === undefined || next.lastRecv === undefined) continue;
      const before = (previous?.sent ?? []).filter((t) => t <= next.firstRecv!);
      if (before.length === 0) continue;
      const lastSent = Math.max(...before);
      proposals += before.length;
      e2eFirst.push(next.firstRecv - lastSent);
      e2eAll.push(next.lastRecv - lastSent);
      if (previous?.firstRecv !== undefined) proposing.push(lastSent - previous.firstRecv);
    }

    const connected = statusAfter.tabs;
    const closeMaxBucket = b.buckets.findIndex(
      ([, count], i) => count - (a.buckets[i]?.[1] ?? 0) >= b.closeCount - a.closeCount,
    );
    return {
      tabs: n,
      nodes: urls.length,
      held,
      connected,
      clusters: statusAfter.clusters.length,
      procs,
      rssIdleMB: rssIdle / 2 ** 20,
      rssLoadedMB: rssLoaded / 2 ** 20,
      kbPerTab: connected > 0 ? (rssLoaded - rssIdle) / 1024 / connected : NaN,
      iterations,
      iterationsPerSecond: iterations / seconds,
      closeP50Ms: histogramQuantile(a.buckets, b.buckets, 0.5) * 1000,
      closeP99Ms: histogramQuantile(a.buckets, b.buckets, 0.99) * 1000,
      closeMaxBucketMs: (b.buckets[closeMaxBucket]?.[0] ?? NaN) * 1000,
      e2eFirstP50Ms: quantile(e2eFirst, 0.5),
      e2eFirstP99Ms: quantile(e2eFirst, 0.99),
      e2eAllP50Ms: quantile(e2eAll, 0.5),
      e2eAllP99Ms: quantile(e2eAll, 0.99),
      proposalsPerIteration: e2eFirst.length > 0 ? proposals / e2eFirst.length : NaN,
      proposingP50Ms: quantile(proposing, 0.5),
      broadcastBytesPerIterationPerTab:
        iterations > 0 && connected > 0
          ? (b.broadcastBytes - a.broadcastBytes) / iterations / connected
          : NaN,
      coordinatorCpuPercent: ((cpuB - cpuA) / seconds) * 100,
      coordinatorCpuMsPerIteration: iterations > 0 ? ((cpuB - cpuA) / iterations) * 1000 : NaN,
      coordinatorCpuMsPerIterationByNode: cpuByNodeB.map((cpu, i) =>
        iterations > 0 ? ((cpu - cpuByNodeA[i]!) / iterations) * 1000 : NaN,
      ),
      loadCpuPercent: ((loadCpuB - loadCpuA) / seconds) * 100,
      connectSeconds,
      retried,
      loadAverage: [loadBefore, loadAfter],
      coordinatorLagMaxMs: coordinatorLagMs,
      loadLagMaxMs: Math.max(...loaders.map((l) => l.maxLagMs)),
      acks,
      rejected: b.rejected - a.rejected,
      stale: b.stale - a.stale,
      notes,
    };
  } finally {
    clearInterval(monitor);
    process.off('SIGINT', interrupt);
    process.off('SIGTERM', interrupt);
    await stopAll(coordinators, loaders, redis);
  }
}

function failedRow(tabs: number, note: string): Row {
  return {
    tabs,
    nodes: 0,
    held: [],
    connected: 0,
    clusters: 0,
    procs: 0,
    rssIdleMB: NaN,
    rssLoadedMB: NaN,
    kbPerTab: NaN,
    iterations: 0,
    iterationsPerSecond: NaN,
    closeP50Ms: NaN,
    closeP99Ms: NaN,
    closeMaxBucketMs: NaN,
    e2eFirstP50Ms: NaN,
    e2eFirstP99Ms: NaN,
    e2eAllP50Ms: NaN,
    e2eAllP99Ms: NaN,
    proposalsPerIteration: NaN,
    proposingP50Ms: NaN,
    broadcastBytesPerIterationPerTab: NaN,
    coordinatorCpuPercent: NaN,
    coordinatorCpuMsPerIteration: NaN,
    coordinatorCpuMsPerIterationByNode: [],
    loadCpuPercent: NaN,
    connectSeconds: NaN,
    retried: 0,
    loadAverage: [NaN, NaN],
    coordinatorLagMaxMs: NaN,
    loadLagMaxMs: NaN,
    acks: {},
    rejected: 0,
    stale: 0,
    notes: [note],
  };
}

// ------------------------------------------------------------------ output

const fmt = (x: number, digits = 1) =>
  Number.isFinite(x) ? x.toFixed(digits) : Number.isNaN(x) ? '—' : '>max';

function printTable(rows: Row[], options: Options): void {
  console.log(
    `coordinator bench: softmax-784-10 (d = 7850), clusters of ${options.clusterSize}, ${options.dissemination} dissemination, confirmations ${options.confirmations}, one-bit, ` +
      `graceMs ${options.graceMs}, think ${options.thinkMs} ms, load generators at nice ${options.loadNice}, ${options.iterations} iterations measured, ` +
      `${cpus().length} cores, ${process.version}`,
  );
  console.log(
    'close = coordinator histogram (last needed proposal → broadcast done; several nodes: the ' +
      'deciding node, through the Redis log); e2e = tabs clock ' +
      '(last proposal sent → first / every tab got the iteration)',
  );
  const header = [
    'tabs',
    'nodes',
    'held per node',
    'connected',
    'clusters',
    'procs',
    'RSS idle→loaded MB',
    'KB/tab',
    'it/s',
    'close p50 ms',
    'close p99 ms',
    'e2e first p50/p99 ms',
    'e2e all p50/p99 ms',
    'bcast B/it/tab',
    'coord CPU %',
    'coord CPU ms/it',
    'load CPU %',
  ];
  const lines = rows.map((r) => [
    String(r.tabs),
    String(r.nodes),
    r.held.join('/'),
    String(r.connected),
    String(r.clusters),
    String(r.procs),
    `${fmt(r.rssIdleMB, 0)}→${fmt(r.rssLoadedMB, 0)}`,
    fmt(r.kbPerTab, 1),
    fmt(r.iterationsPerSecond, 2),
    fmt(r.closeP50Ms, 1),
    fmt(r.closeP99Ms, 1),
    `${fmt(r.e2eFirstP50Ms, 0)}/${fmt(r.e2eFirstP99Ms, 0)}`,
    `${fmt(r.e2eAllP50Ms, 0)}/${fmt(r.e2eAllP99Ms, 0)}`,
    fmt(r.broadcastBytesPerIterationPerTab, 0),
    fmt(r.coordinatorCpuPercent, 0),
    fmt(r.coordinatorCpuMsPerIteration, 0),
    fmt(r.loadCpuPercent, 0),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  const row = (cells: string[]) =>
    `| ${cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(' | ')} |`;
  console.log(row(header));
  console.log(
    `|${widths.map((w, i) => (i === 0 ? '-'.repeat(w + 2) : `${'-'.repeat(w + 1)}:`)).join('|')}|`,
  );
  for (const l of lines) console.log(row(l));
  for (const r of rows) {
    const acks = Object.entries(r.acks)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ');
    console.log(
      `N=${r.tabs}: ${r.iterations} iterations, ${fmt(r.proposalsPerIteration, 1)} proposals per iteration, ` +
        `iteration start → last proposal p50 ${fmt(r.proposingP50Ms, 0)} ms, ` +
        `connect ${fmt(r.connectSeconds, 0)} s (${r.retried} attempts retried), ` +
        `load average ${fmt(r.loadAverage[0], 1)}→${fmt(r.loadAverage[1], 1)}, ` +
        `event-loop lag max ${fmt(r.coordinatorLagMaxMs, 0)} ms (coordinator) / ${fmt(r.loadLagMaxMs, 0)} ms (load), ` +
        `proposal acks: ${acks || 'none'}, ` +
        `coordinator refused ${r.rejected} messages and dropped ${r.stale} stale proposals, slowest close ≤ ${fmt(r.closeMaxBucketMs, 0)} ms bucket` +
        (r.notes.length > 0 ? `; ${r.notes.join('; ')}` : ''),
    );
  }
  const goal = rows.find((r) => r.tabs >= GOAL.tabs);
  if (goal) {
    const met = goal.connected >= GOAL.tabs && goal.closeP99Ms <= GOAL.closeP99Ms;
    console.log(
      `goal (${GOAL.tabs} tabs, round close p99 ≤ ${GOAL.closeP99Ms} ms): ${met ? 'met' : 'not met'} ` +
        `(${goal.connected} tabs, p99 ${fmt(goal.closeP99Ms, 1)} ms)`,
    );
  }
}

export async function run(args: string[]): Promise<void> {
  const options = parseOptions(args);
  const rows: Row[] = [];
  for (const n of options.tabs) {
    let row: Row;
    try {
      row = await runOne(n, options);
    } catch (error) {
      // children are already stopped; report the failure and go on with the next N
      log(`N=${n}: run failed: ${String(error)}`);
      row = failedRow(n, `run failed: ${String(error)}`);
    }
    rows.push(row);
    if (options.json) {
      console.log(
        JSON.stringify({
          bench: 'coordinator',
          node: process.version,
          cores: cpus().length,
          clusterSize: options.clusterSize,
          dissemination: options.dissemination,
          graceMs: options.graceMs,
          thinkMs: options.thinkMs,
          nodesOption: options.nodes,
          loadNice: options.loadNice,
          confirmations: options.confirmations,
          dimension: 7850,
          goal: GOAL,
          ...row,
        }),
      );
    }
  }
  if (!options.json) printTable(rows, options);
}
