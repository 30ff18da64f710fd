/**
 * Swarm benchmark (issue 4): N real Chromium tabs train the default job, and each tab's compute
 * utilisation is measured for L = 1 and L = 10 local steps, lock-step and pipelined (issue 16).
 *
 *   npm run bench -- swarm [--tabs 8] [--local-steps 1,10] [--pipeline off,on] [--warmup 30]
 *                          [--measure 60] [--evaluate-every 1] [--backend wasm] [--json]
 *
 * For each (pipeline, L): starts `swarmgrad serve` with the default job (MLP 784-128-10, cluster
 * size 4, redundancy 1, 1-bit codec) but `localSteps: L` and `pipeline`, then one headless
 * Chromium (Debian's) with
 * one browser context per tab, each opening the volunteer page on the coordinator's LAN address
 * with `?debug` and pressing Donate (packages/swarm/src/browser.ts). Once every tab trains with
 * its cluster's links connected, it waits `--warmup` seconds, then reads every tab's worker
 * status (window.__swarmgrad.status()) twice, `--measure` seconds apart.
 *
 * Utilisation of a tab = Δ computeMs / Δ wall time over that window, where computeMs is the
 * worker's time inside its local training steps (trainer.ts: batch assembly, setting the
 * parameters, forward + backward pass with the read-back of the gradient, the SGD update) and
 * the wall time is the bench's clock between the two reads. Also printed: the sum over tabs
 * divided by the machine's cores. computeMs is wall-clock time, so a step that waits for a core
 * counts in full: with N tabs on fewer cores the sum can exceed the core count. For that reason
 * the bench also reads CPU time from /proc over the same window (Linux): the tabs' renderer
 * processes (found by the per-run origin flag on their command line), the rest of Chromium
 * (GPU, network and utility processes), the coordinator, and the whole machine (/proc/stat,
 * other sessions included) — N tabs on C cores can burn at most C/N of a core each.
 * Goals (issue 4): ≥ 70 % at L = 1, ≥ 90 % at L = 10 per tab; pipelined (issue 16): mean
 * ≥ 90 % at L = 1 and ≥ 95 % at L = 10.
 *
 * secondsToTarget: wall time from the first tab's Donate to the close of the first iteration
 * whose model scores the job's target (0.9) on the held-out set; null when none does within the
 * run (warm-up + window). Read from the coordinator's record (`/api/metrics.csv`: each
 * iteration's close time and, where it was evaluated, its accuracy), so neither the bench's
 * polling nor the evaluation's own time adds to it. The job evaluates every `--evaluate-every`
 * iterations (default 1, the job file's default is 5): at L = 10 an iteration takes about a
 * second here, and one evaluation every 5 put ±5 s of resolution on a number the two modes are
 * compared by. `--json` prints one line: { bench, tabs, cores, runs },
 * one run per (pipeline, L).
 *
 * `--backend` (default wasm, the backend every tab chose by measurement in every run here): the
 * tabs are opened with `?backend=wasm`, which checks wasm with one step instead of timing the
 * candidates; `--backend auto` times them, as a volunteer's tab does (a software-rendered GPU —
 * this machine's SwiftShader — only when wasm cannot run the job: packages/worker backend.ts).
 * Before that rule, eight tabs in one browser queued their software-GPU trials in its one GPU
 * process, 20–29 s of each tab's start (docs/benchmarks.md).
 *
 * Pipelined tabs step on a training thread (docs/architecture.md, _The training thread_; the
 * volunteer page's default); lock-step tabs are opened with `?thread=off`, which they ignore.
 *
 * BENCH_SWARM_PROFILE=<directory>: the first tab's page is CPU-profiled (Chrome DevTools
 * protocol) over the measurement window, written as `<pipeline>-l<L>.cpuprofile` there (open in
 * Chrome DevTools' Performance panel).
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cpus, loadavg } from 'node:os';
import type { Browser } from '@playwright/test';
import type { DashboardStatus } from '@swarmgrad/protocol';
import type { WorkerStatus } from '@swarmgrad/worker';
import {
  fetchMetrics,
  launchBrowser,
  openTab,
  startCoordinator,
  tabBackends,
  until,
  untilTraining,
  type BrowserTab,
  type MetricsRow,
  type TabBackend,
} from '@swarmgrad/swarm';

const GOALS: Record<number, number> = { 1: 0.7, 10: 0.9 };
/** Issue 16: a pipelined tab's mean utilisation. */
const PIPELINED_GOALS: Record<number, number> = { 1: 0.9, 10: 0.95 };
const TARGET_ACCURACY = 0.9;

interface Options {
  tabs: number;
  localSteps: number[];
  pipeline: boolean[];
  warmupS: number;
  measureS: number;
  evaluateEvery: number;
  /** undefined: every tab measures every backend (`--backend auto`). */
  backend: TabBackend | undefined;
  json: boolean;
}

function option(args: string[], name: string): string | undefined {
  const at = args.indexOf(name);
  return at < 0 ? undefined : args[at + 1];
}

function positive(args: string[], name: string, fallback: number): number {
  const raw = option(args, name);
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value <= 0) throw new RangeError(`${name} needs a number > 0`);
  return value;
}

function parseOptions(args: string[]): Options {
  const steps = (option(args, '--local-steps') ?? '1,10').split(',').map((s) => Number(s.trim()));
  if (steps.some((n) => !Number.isInteger(n) || n < 1)) {
    throw new RangeError('--local-steps needs positive integers, e.g. --local-steps 1,10');
  }
  const modes = (option(args, '--pipeline') ?? 'off,on').split(',').map((s) => s.trim());
  if (modes.some((m) => m !== 'on' && m !== 'off')) {
    throw new RangeError('--pipeline takes on, off or both, e.g. --pipeline off,on');
  }
  const backend = option(args, '--backend') ?? 'wasm';
  if (backend !== 'auto' && !(tabBackends as readonly string[]).includes(backend)) {
    throw new RangeError(`--backend takes auto or one of ${tabBackends.join(', ')}`);
  }
  return {
    tabs: Math.round(positive(args, '--tabs', 8)),
    localSteps: steps,
    pipeline: modes.map((m) => m === 'on'),
    warmupS: positive(args, '--warmup', 30),
    measureS: positive(args, '--measure', 60),
    evaluateEvery: Math.round(positive(args, '--evaluate-every', 1)),
    backend: backend === 'auto' ? undefined : (backend as TabBackend),
    json: args.includes('--json'),
  };
}

interface Snapshot {
  at: number;
  status: WorkerStatus;
}

interface TabRow {
  tab: string;
  tabId: string;
  backend: string;
  cluster: string;
  steps: number;
  computeMs: number;
  wallMs: number;
  utilisation: number;
}

interface Result {
  localSteps: number;
  pipeline: boolean;
  /** Seconds from the first Donate to the target accuracy; null when not reached. */
  secondsToTarget: number | null;
  /** The iteration whose close secondsToTarget is (null when not reached). */
  iterationAtTarget: number | null;
  /** Seconds from the first Donate to the first iteration's close (the swarm's start-up). */
  secondsToFirstIteration: number | null;
  tabs: number;
  cores: number;
  clusters: number;
  iterationsPerSecond: number;
  accuracy: number | null;
  /** The coordinator's proposal verdicts over the whole run (refuted and unconfirmed: lost). */
  proposals: DashboardStatus['proposals'];
  /** Tabs quarantined by the end of the run (an honest swarm: none). */
  quarantined: number;
  loadAverage: number[];
  rows: TabRow[];
  meanUtilisation: number;
  minUtilisation: number;
  /** Σ utilisation / cores (wall-clock compute time, see the file comment). */
  coreUtilisation: number;
  /** CPU time over the window, in cores (CPU seconds per second). */
  cpu: {
    renderers: number;
    rendererProcesses: number;
    perTab: number;
    chromiumOther: number;
    coordinator: number;
    /** The whole machine's busy share, other sessions included (0..1). */
    machineBusy: number;
  };
  goal: number | undefined;
}

const clockTicks = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;
  } catch {
    return 100;
  }
})();

interface ProcInfo {
  pid: number;
  ppid: number;
  cpuSeconds: number;
  cmdline: string;
}

function processes(): ProcInfo[] {
  const out: ProcInfo[] = [];
  let entries: string[];
  try {
    entries = readdirSync('/proc').filter((e) => /^\d+$/.test(e));
  } catch {
    return out;
  }
  for (const entry of entries) {
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8').replace(/\0/g, ' ');
      out.push({
        pid: Number(entry),
        ppid: Number(fields[1]),
        cpuSeconds: (Number(fields[11]) + Number(fields[12])) / clockTicks,
        cmdline,
      });
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** Busy and total jiffies of the whole machine (/proc/stat 'cpu' line). */
function machineJiffies(): { busy: number; total: number } {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!;
    const v = line.trim().split(/\s+/).slice(1).map(Number);
    const idle = (v[3] ?? 0) + (v[4] ?? 0);
    const total = v.slice(0, 8).reduce((a, b) => a + b, 0);
    return { busy: total - idle, total };
  } catch {
    return { busy: NaN, total: NaN };
  }
}

interface CpuSample {
  at: number;
  renderers: number;
  rendererCount: number;
  chromiumOther: number;
  coordinator: number;
  machine: { busy: number; total: number };
}

/** CPU seconds of the tabs' renderers, the rest of that Chromium, and the coordinator. */
function cpuSample(origin: string, coordinatorPid: number): CpuSample {
  const all = processes();
  const flag = `--unsafely-treat-insecure-origin-as-secure=${origin}`;
  const roots = all.filter((p) => p.cmdline.includes(flag) && !p.cmdline.includes('--type='));
  const inTree = new Set(roots.map((p) => p.pid));
  for (let grew = true; grew;) {
    grew = false;
    for (const p of all) {
      if (!inTree.has(p.pid) && inTree.has(p.ppid)) {
        inTree.add(p.pid);
        grew = true;
      }
    }
  }
  let renderers = 0;
  let rendererCount = 0;
  let chromiumOther = 0;
  for (const p of all) {
    if (!inTree.has(p.pid)) continue;
    if (p.cmdline.includes('--type=renderer')) {
      renderers += p.cpuSeconds;
      rendererCount++;
    } else chromiumOther += p.cpuSeconds;
  }
  const coordinator = all.find((p) => p.pid === coordinatorPid)?.cpuSeconds ?? NaN;
  return {
    at: Date.now(),
    renderers,
    rendererCount,
    chromiumOther,
    coordinator,
    machine: machineJiffies(),
  };
}

async function snapshot(tab: BrowserTab): Promise<Snapshot> {
  const status = await tab.status();
  if (!status) throw new Error(`${tab.name} has no worker`);
  return { at: Date.now(), status };
}

async function runOne(localSteps: number, pipeline: boolean, options: Options): Promise<Result> {
  const cores = cpus().length;
  const log = (line: string) => {
    if (!options.json) console.error(line);
  };
  const mode = pipeline ? 'pipelined' : 'lock-step';
  const coordinator = await startCoordinator({
    job: {
      name: `bench-swarm-l${localSteps}-${mode}`,
      localSteps,
      pipeline,
      evaluateEvery: options.evaluateEvery,
    },
  });
  let browser: Browser | undefined;
  try {
    browser = await launchBrowser(coordinator.url);
    log(`L = ${localSteps}, ${mode}: coordinator ${coordinator.url}, opening ${options.tabs} tabs`);
    const donatedAt = Date.now();
    const tabs: BrowserTab[] = [];
    for (let i = 0; i < options.tabs; i++) {
      tabs.push(
        await openTab(browser, coordinator.url, {
          name: `tab ${i + 1}`,
          thread: pipeline,
          ...(options.backend === undefined ? {} : { backend: options.backend }),
        }),
      );
    }
    await Promise.all(tabs.map((tab) => untilTraining(tab, 300_000)));
    await until(
      async () => {
        const s = await coordinator.status();
        const live = s.clusters.reduce((n, c) => n + c.members.filter((m) => m.live).length, 0);
        return live === options.tabs;
      },
      'every tab seated',
      60_000,
    );
    log(`all ${options.tabs} tabs train; warming up ${options.warmupS} s`);
    await new Promise((r) => setTimeout(r, options.warmupS * 1000));

    const startStatus = await coordinator.status();
    const startAt = Date.now();
    const cpuFirst = cpuSample(coordinator.url, coordinator.pid);
    const profileDirectory = process.env.BENCH_SWARM_PROFILE;
    const profiler = profileDirectory
      ? await tabs[0]!.context.newCDPSession(tabs[0]!.page)
      : undefined;
    if (profiler) {
      await profiler.send('Profiler.enable');
      await profiler.send('Profiler.start');
    }
    const first = await Promise.all(tabs.map(snapshot));
    log(`measuring ${options.measureS} s`);
    await new Promise((r) => setTimeout(r, options.measureS * 1000));
    const last = await Promise.all(tabs.map(snapshot));
    if (profiler && profileDirectory) {
      const { profile } = await profiler.send('Profiler.stop');
      const file = join(profileDirectory, `${mode}-l${localSteps}.cpuprofile`);
      writeFileSync(file, JSON.stringify(profile));
      log(`profile of ${tabs[0]!.name}: ${file}`);
    }
    const cpuLast = cpuSample(coordinator.url, coordinator.pid);
    const endStatus = await coordinator.status();
    const seconds = (Date.now() - startAt) / 1000;
    const record = closeTimes((await fetchMetrics(coordinator.url)).rows);
    const cpuSeconds = (cpuLast.at - cpuFirst.at) / 1000;
    const coresOf = (a: number, b: number) => (b - a) / cpuSeconds;

    const rows: TabRow[] = tabs.map((tab, i) => {
      const a = first[i]!;
      const b = last[i]!;
      const computeMs = b.status.computeMs - a.status.computeMs;
      const wallMs = b.at - a.at;
      return {
        tab: tab.name,
        tabId: b.status.tabId ?? '?',
        backend: b.status.backend?.backend ?? 'none',
        cluster: b.status.cluster ? `${b.status.cluster.id}/${b.status.cluster.slot}` : '-',
        steps: b.status.steps - a.status.steps,
        computeMs,
        wallMs,
        utilisation: computeMs / wallMs,
      };
    });
    const sum = rows.reduce((n, r) => n + r.utilisation, 0);
    for (const tab of tabs) {
      if (tab.problems.length > 0) log(`${tab.name}: ${tab.problems.join(' | ')}`);
    }
    return {
      localSteps,
      pipeline,
      secondsToTarget: record.target === undefined ? null : (record.target.at - donatedAt) / 1000,
      iterationAtTarget: record.target?.iteration ?? null,
      secondsToFirstIteration:
        record.first === undefined ? null : (record.first - donatedAt) / 1000,
      tabs: options.tabs,
      cores,
      clusters: endStatus.clusters.length,
      iterationsPerSecond: (endStatus.iteration - startStatus.iteration) / seconds,
      accuracy: endStatus.accuracy,
      proposals: endStatus.proposals,
      quarantined: endStatus.quarantined.length,
      loadAverage: loadavg().map((x) => Math.round(x * 100) / 100),
      rows,
      meanUtilisation: sum / rows.length,
      minUtilisation: Math.min(...rows.map((r) => r.utilisation)),
      coreUtilisation: sum / cores,
      cpu: {
        renderers: coresOf(cpuFirst.renderers, cpuLast.renderers),
        rendererProcesses: cpuLast.rendererCount,
        perTab: coresOf(cpuFirst.renderers, cpuLast.renderers) / options.tabs,
        chromiumOther: coresOf(cpuFirst.chromiumOther, cpuLast.chromiumOther),
        coordinator: coresOf(cpuFirst.coordinator, cpuLast.coordinator),
        machineBusy:
          (cpuLast.machine.busy - cpuFirst.machine.busy) /
          (cpuLast.machine.total - cpuFirst.machine.total),
      },
      goal: pipeline ? PIPELINED_GOALS[localSteps] : GOALS[localSteps],
    };
  } finally {
    await browser?.close();
    await coordinator.stop();
  }
}

/**
 * The first iteration's close time, and the first iteration whose held-out accuracy reached
 * TARGET_ACCURACY with its close time (ms since the epoch); undefined where there is none.
 */
function closeTimes(rows: readonly MetricsRow[]): {
  first: number | undefined;
  target: { iteration: number; at: number } | undefined;
} {
  const target = rows.find(
    (r) => r.heldOutAccuracy !== null && r.heldOutAccuracy >= TARGET_ACCURACY,
  );
  return { first: rows[0]?.at, target: target && { iteration: target.iteration, at: target.at } };
}

const pct = (x: number) => `${(100 * x).toFixed(1)} %`;

function printResult(r: Result): void {
  console.log(
    `L = ${r.localSteps}, ${r.pipeline ? 'pipelined' : 'lock-step'}: ${r.tabs} tabs in ${r.clusters} cluster${r.clusters === 1 ? '' : 's'} on ${r.cores} cores, ` +
      `${r.iterationsPerSecond.toFixed(2)} iterations/s, held-out accuracy ${r.accuracy ?? '-'}, ` +
      `${TARGET_ACCURACY} reached after ${r.secondsToTarget === null ? '- (not reached)' : `${r.secondsToTarget.toFixed(0)} s`}, ` +
      `load average ${r.loadAverage.join(' ')}`,
  );
  console.log(
    '| tab    | tab id       | backend | cluster/slot | steps | compute ms | wall ms | utilisation |',
  );
  console.log(
    '|--------|--------------|---------|--------------|------:|-----------:|--------:|------------:|',
  );
  for (const row of r.rows) {
    console.log(
      `| ${row.tab.padEnd(6)} | ${row.tabId.padEnd(12)} | ${row.backend.padEnd(7)} | ` +
        `${row.cluster.padEnd(12)} | ${String(row.steps).padStart(5)} | ` +
        `${row.computeMs.toFixed(0).padStart(10)} | ${row.wallMs.toFixed(0).padStart(7)} | ` +
        `${pct(row.utilisation).padStart(11)} |`,
    );
  }
  const goal =
    r.goal === undefined
      ? ''
      : ` — goal ≥ ${pct(r.goal)} per tab: ${r.minUtilisation >= r.goal ? 'met' : 'not met'}`;
  console.log(
    `utilisation per tab (wall-clock time in training steps / wall time): mean ` +
      `${pct(r.meanUtilisation)}, min ${pct(r.minUtilisation)}${goal}`,
  );
  console.log(`sum over tabs / cores: ${pct(r.coreUtilisation)} (wall-clock, can exceed 100 %)`);
  const c = r.cpu;
  console.log(
    `CPU time over the window: tab renderers ${c.renderers.toFixed(2)} cores ` +
      `(${c.rendererProcesses} processes), i.e. ${pct(c.perTab)} of a core per tab of at most ` +
      `${pct(Math.min(1, r.cores / r.tabs))} with ${r.tabs} tabs on ${r.cores} cores; rest of ` +
      `Chromium ${c.chromiumOther.toFixed(2)}, coordinator ${c.coordinator.toFixed(2)}; whole ` +
      `machine ${pct(c.machineBusy)} busy (other sessions included)`,
  );
  console.log('');
}

export async function run(args: string[]): Promise<void> {
  const options = parseOptions(args);
  if (!options.json) {
    console.log(
      `swarm bench: ${options.tabs} Chromium tabs, default job, warm-up ${options.warmupS} s, ` +
        `window ${options.measureS} s, backend ${options.backend ?? 'auto (measured by each tab)'}, ` +
        `Node ${process.version}`,
    );
  }
  const results: Result[] = [];
  for (const pipeline of options.pipeline) {
    for (const localSteps of options.localSteps) {
      const result = await runOne(localSteps, pipeline, options);
      results.push(result);
      if (!options.json) printResult(result);
    }
  }
  if (options.json) {
    console.log(
      JSON.stringify({
        bench: 'swarm',
        tabs: options.tabs,
        backend: options.backend ?? 'auto',
        cores: cpus().length,
        runs: results.map(({ meanUtilisation, minUtilisation, ...r }) => ({
          utilisationMean: meanUtilisation,
          utilisationMin: minUtilisation,
          ...r,
        })),
      }),
    );
    return;
  }
  console.log('| pipeline | L | utilisation mean | min | iterations/s | s to 0.9 | accuracy |');
  console.log('|----------|--:|-----------------:|----:|-------------:|---------:|---------:|');
  for (const r of results) {
    console.log(
      `| ${(r.pipeline ? 'on' : 'off').padEnd(8)} | ${r.localSteps} | ${pct(r.meanUtilisation).padStart(16)} | ` +
        `${pct(r.minUtilisation)} | ${r.iterationsPerSecond.toFixed(2).padStart(12)} | ` +
        `${r.secondsToTarget === null ? '-' : r.secondsToTarget.toFixed(0)} | ${r.accuracy ?? '-'} |`,
    );
  }
}
