/**
 * What the operator's dashboard needs beyond the coordinator's own state: the per-iteration
 * series (curves over iterations and wall time, `GET /api/metrics.csv`) and the staleness
 * panel, seed 001's SDDE analysis (packages/core/src/sdde.ts) run on what this coordinator
 * measures:
 *
 * - delays D: the delays of proposals, iteration − base iteration plus the staleness of the
 *   stalest register each aggregates (its frame header: pipelined tabs step on the previous
 *   base, issue 16) — what the threshold S is compared with — the most recent 512, dropped ones
 *   included (a sample cut at S could never argue for a larger S);
 * - E[T]: the mean wall time of the last 32 iterations (one iteration is one task of every
 *   active tab, so λ = n / E[T]);
 * - η: the current learning rate;
 * - h: a job-level curvature estimate, fixed at start: core's `estimateCurvature` on the
 *   held-out inputs (packages/core/src/curvature.ts).
 *
 * The analysis runs over core's stalenessCandidates (auto jobs: every threshold up to
 * AUTO_MAX_STALENESS), the measured sample scaled by proportionalDelayModel, at most once every
 * 10 seconds and one root per event-loop turn; `onAnalysed` hears each recommendation (the
 * auto mode's decision, staleness-policy.ts).
 */
import {
  analyzeStaleness,
  recommend,
  stalenessCandidates,
  type StalenessPoint,
} from '@swarmgrad/core';
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
  /** `staleness: "auto"`: analyse every threshold the auto mode may choose. */
  auto?: boolean;
  /**
   * How long the open iteration has run, seconds: E[T] while no iteration has closed yet (an
   * auto job whose first threshold drops every proposal must still be able to change it).
   */
  openIterationSeconds?: number;
  /** The step factor a proposal of this delay is counted with (job.stalenessStep 'sdde'). */
  stepScale?: ((delay: number) => number) | undefined;
}

export class DashboardMetrics {
  readonly series: IterationPoint[] = [];
  private readonly ages: number[] = [];
  private readonly times: number[] = [];
  private latest: StalenessSummary | undefined;
  private analyzing = false;
  private analyzedAt = -Infinity;
  lastMajority: number[] = [];
  /** Proposals counted with a step factor below 1, and the smallest factor. */
  stepScaled = { proposals: 0, minScale: null as number | null };
  /** Hears every finished analysis: its (n, S) grid and the tab count it ran for. */
  onAnalysed: ((points: readonly StalenessPoint[], activeTabs: number) => void) | undefined;

  constructor(
    readonly curvature: number,
    readonly curvatureSource: string,
  ) {}

  /** A proposal `delay` iterations stale (its age plus its registers' staleness). */
  recordAge(delay: number): void {
    this.ages.push(Math.max(0, delay));
    if (this.ages.length > MAX_AGES) this.ages.splice(0, this.ages.length - MAX_AGES);
  }

  /** A proposal counted with step factor `scale` (staleness-policy.ts). */
  recordScale(scale: number): void {
    if (!(scale < 1)) return;
    this.stepScaled.proposals++;
    this.stepScaled.minScale = Math.min(this.stepScaled.minScale ?? 1, scale);
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
    const timed = this.times.length > 0 || (input.openIterationSeconds ?? 0) > 0;
    if (this.ages.length > 0 && timed && input.activeTabs >= 1) {
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
    const meanTask =
      this.times.length > 0
        ? this.times.reduce((a, b) => a + b, 0) / this.times.length
        : input.openIterationSeconds!;
    const { workerCounts, thresholds } = stalenessCandidates(n0, S, input.auto === true);
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
            stepScale: input.stepScale,
          }),
        );
      }
    }
    const current = points.find((p) => p.workers === n0 && p.threshold === S);
    if (!current) return null;
    const best = recommend(points);
    this.onAnalysed?.(points, n0);
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
