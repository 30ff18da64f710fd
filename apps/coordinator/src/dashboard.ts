/**
 * What the operator's dashboard needs beyond the coordinator's own state: the per-iteration
 * series (curves over iterations and wall time, `GET /api/metrics.csv`) and the staleness
 * panel, seed 001's SDDE analysis (packages/core/src/sdde.ts) run on what this coordinator
 * measures:
 *
 * - delays D: the ages of accepted proposals, iteration − base iteration (the version
 *   difference the threshold S is compared with) plus the staleness of the stalest register
 *   each aggregates (its frame header: pipelined tabs step on the previous base, issue 16), the
 *   most recent 512;
 * - E[T]: the mean wall time of the last 32 iterations (one iteration is one task of every
 *   active tab, so λ = n / E[T]);
 * - η: the current learning rate;
 * - h: a job-level curvature estimate, fixed at start: core's `estimateCurvature` on the
 *   held-out inputs (packages/core/src/curvature.ts).
 *
 * The analysis runs over candidate tab counts 1–8 then 10, 12, 16, 20, 24, 32 up to max(8, 2·n0)
 * (n0 included) and thresholds 0..max(3, S+1), the measured sample scaled by
 * proportionalDelayModel, at most once every 10 seconds and one root per event-loop turn.
 */
import { analyzeStaleness, recommend, type StalenessPoint } from '@swarmgrad/core';
import type { IterationPoint, StalenessSummary } from '@swarmgrad/protocol';

const MAX_AGES = 512;
const MAX_TIMES = 32;
const MAX_SERIES = 20_000;
const RECOMPUTE_MS = 10_000;
/** Sooner when η, n0 or S changed, but not back to back while tabs churn. */
const MIN_RECOMPUTE_MS = 2000;

export interface StalenessInput {
  learningRate: number;
  activeTabs: number;
  threshold: number;
  dropped: number;
}

export class DashboardMetrics {
  readonly series: IterationPoint[] = [];
  private readonly ages: number[] = [];
  private readonly times: number[] = [];
  private latest: StalenessSummary | undefined;
  private analyzing = false;
  private analyzedAt = -Infinity;
  lastMajority: number[] = [];

  constructor(
    readonly curvature: number,
    readonly curvatureSource: string,
  ) {}

  /** An accepted proposal built on a base `age` iterations old. */
  recordAge(age: number): void {
    this.ages.push(Math.max(0, age));
    if (this.ages.length > MAX_AGES) this.ages.splice(0, this.ages.length - MAX_AGES);
  }

  recordIteration(point: IterationPoint, seconds: number, majority: number[]): void {
    this.series.push(point);
    if (this.series.length > MAX_SERIES) this.series.splice(0, this.series.length - MAX_SERIES);
    if (seconds > 0 && Number.isFinite(seconds)) {
      this.times.push(seconds);
      if (this.times.length > MAX_TIMES) this.times.splice(0, this.times.length - MAX_TIMES);
    }
    this.lastMajority = majority;
  }

  /** At most `max` points, evenly thinned, always keeping the last one. */
  thinnedSeries(max = 2000): IterationPoint[] {
    const n = this.series.length;
    if (n <= max) return this.series.slice();
    const out: IterationPoint[] = [];
    const step = n / max;
    for (let k = 0; k < max - 1; k++) out.push(this.series[Math.floor(k * step)]!);
    out.push(this.series[n - 1]!);
    return out;
  }

  /**
   * The latest staleness analysis (null until the first one is done). Asking starts a new
   * analysis when the last is older than RECOMPUTE_MS or η, n0 or S changed; it runs one (n, S) root at a time
   * between event-loop turns (each a few ms), so sockets are never held up for the whole
   * grid (a few hundred ms of root finding with mixed delays).
   */
  staleness(input: StalenessInput): StalenessSummary | null {
    if (this.ages.length > 0 && this.times.length > 0 && input.activeTabs >= 1) {
      const now = Date.now();
      const changed =
        this.latest !== undefined &&
        (this.latest.learningRate !== input.learningRate ||
          this.latest.activeTabs !== input.activeTabs ||
          this.latest.threshold !== input.threshold);
      const due = now - this.analyzedAt >= (changed ? MIN_RECOMPUTE_MS : RECOMPUTE_MS);
      if (!this.analyzing && due) {
        this.analyzing = true;
        this.analyzedAt = now;
        this.analyze(input)
          .then((value) => {
            if (value) this.latest = value;
          })
          .catch(() => undefined)
          .finally(() => {
            this.analyzing = false;
          });
      }
    }
    return this.latest ? { ...this.latest, dropped: input.dropped } : null;
  }

  /** Resolves when no analysis is running (tests). */
  async settled(): Promise<void> {
    while (this.analyzing) await new Promise((resolve) => setTimeout(resolve, 5));
  }

  private async analyze(input: StalenessInput): Promise<StalenessSummary | null> {
    const ages = this.ages.slice();
    const n0 = input.activeTabs;
    const S = input.threshold;
    const meanTask = this.times.reduce((a, b) => a + b, 0) / this.times.length;
    const maxWorkers = Math.min(32, Math.max(8, 2 * n0));
    const workerCounts = [1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 16, 20, 24, 32].filter(
      (n) => n <= maxWorkers,
    );
    if (!workerCounts.includes(n0) && n0 <= 32) workerCounts.push(n0);
    workerCounts.sort((a, b) => a - b);
    const maxThreshold = Math.min(8, Math.max(3, S + 1));
    const thresholds = Array.from({ length: maxThreshold + 1 }, (_, i) => i);
    if (!thresholds.includes(S)) thresholds.push(S);
    const points: StalenessPoint[] = [];
    for (const n of workerCounts) {
      for (const threshold of thresholds) {
        await new Promise((resolve) => setImmediate(resolve));
        points.push(
          ...analyzeStaleness({
            learningRate: input.learningRate,
            curvature: this.curvature,
            meanTaskTime: meanTask,
            delays: ages,
            sampleWorkers: n0,
            workerCounts: [n],
            thresholds: [threshold],
          }),
        );
      }
    }
    const current = points.find((p) => p.workers === n0 && p.threshold === S);
    if (!current) return null;
    const best = recommend(points);
    const counts = new Map<number, number>();
    for (const age of ages) counts.set(age, (counts.get(age) ?? 0) + 1);
    return {
      samples: ages.length,
      histogram: [...counts.entries()]
        .sort((a, b) => a[0] - b[0])
        .map(([age, count]) => ({ age, count })),
      meanAge: ages.reduce((a, b) => a + b, 0) / ages.length,
      dropped: input.dropped,
      meanTaskSeconds: meanTask,
      curvature: this.curvature,
      curvatureSource: this.curvatureSource,
      learningRate: input.learningRate,
      activeTabs: n0,
      threshold: S,
      current: {
        re: current.root.re,
        im: current.root.im,
        stable: current.stable,
        margin: -current.root.re,
        acceptance: current.acceptance,
        aTau: current.a * current.meanDelaySeconds,
      },
      recommended: {
        workers: best.workers,
        threshold: best.threshold,
        rate: best.rate,
        stable: best.stable,
        reason: best.reason,
      },
      byWorkers: points
        .filter((p) => p.threshold === S)
        .map((p) => ({ workers: p.workers, rate: p.rate, stable: p.stable })),
      computedAt: Date.now(),
    };
  }
}

const csvNumber = (value: number | null | undefined): string =>
  value === null || value === undefined || !Number.isFinite(value) ? '' : String(value);

/**
 * `GET /api/metrics.csv`: one row per closed iteration this process saw, plus evaluations
 * restored from a checkpoint; held-out loss and accuracy where that iteration was evaluated.
 */
export function metricsCsv(
  series: readonly IterationPoint[],
  evaluations: readonly { iteration: number; loss: number; accuracy: number; at: number }[],
): string {
  const rows = new Map<
    number,
    {
      at: number;
      loss?: number;
      accuracy?: number;
      trainingLoss?: number | null;
      bytes?: number;
      fp32?: number;
    }
  >();
  for (const p of series) {
    rows.set(p.iteration, {
      at: p.at,
      trainingLoss: p.trainingLoss,
      bytes: p.bytesSent,
      fp32: p.fp32EquivalentBytes,
    });
  }
  for (const e of evaluations) {
    const row = rows.get(e.iteration) ?? { at: e.at };
    row.loss = e.loss;
    row.accuracy = e.accuracy;
    rows.set(e.iteration, row);
  }
  const lines = [
    'iteration,time,heldout_loss,heldout_accuracy,training_loss,bytes_sent,fp32_equivalent_bytes',
  ];
  for (const [iteration, row] of [...rows.entries()].sort((a, b) => a[0] - b[0])) {
    lines.push(
      [
        iteration,
        new Date(row.at).toISOString(),
        csvNumber(row.loss),
        csvNumber(row.accuracy),
        csvNumber(row.trainingLoss),
        csvNumber(row.bytes),
        csvNumber(row.fp32),
      ].join(','),
    );
  }
  return `${lines.join('\n')}\n`;
}
