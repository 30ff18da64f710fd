/**
 * SafeguardSGD-style quarantine of workers whose updates keep straying (Allen-Zhu, Ebrahimian,
 * Li, Alistarh, "Byzantine-resilient non-convex stochastic gradient descent"; seed
 * ../shared/seeds/parle-and-byzantine-filters.md). DESIGN.md step 4: tabs that keep failing the
 * filter are quarantined.
 *
 * Idea (concentration filter): over a window of iterations an honest worker's accumulated update
 * B_i = Σ_window u_i concentrates around the honest mean (noise grows like √window, signal like
 * window), while a worker that keeps pushing a biased direction drifts away linearly. A single
 * bad step hides in the noise; a whole window of them does not.
 *
 * At each window end, over the non-quarantined workers that sent at least one update in it:
 * each worker's accumulator is turned into a mean B̄_i = B_i / c_i over its c_i updates, the
 * reference is the coordinate-wise median of the B̄_i, a worker's distance is
 * δ_i = ‖B̄_i − ref‖·√(c_i / c̃) (c̃ = median count: the noise of a mean over c updates shrinks like
 * 1/√c, so a slow tab that sent fewer updates is judged like for like — equivalently
 * ‖B_i − c_i·ref‖/√c_i, the martingale scaling of the paper), the scale is
 * max(median_i δ_i, floor), and a worker fails the window when δ_i > threshold · scale. With
 * honest workers a strict majority, the median reference lies in the honest box and the scale is
 * at most the largest honest distance, so Byzantine workers can neither drag the reference nor
 * inflate the scale. The distance test needs ≥ 3
 * judged workers (with 2 both are equidistant from their median); with fewer it is skipped.
 *
 * A worker also fails the window when the caller reports a hard rejection (`reportRejected` with
 * reason 'non-finite' or 'wrong-length', the default) or when `observe` receives a non-finite or
 * wrong-length update, and when more than `filteredShare` of its updates in the window were
 * reported 'filtered' by the aggregator (honest tabs are filtered now and then — CGE and
 * Multi-Krum always drop f — so one filtered update is no evidence). Do not report Krum's
 * non-selected inputs: Krum filters all but one input every round.
 *
 * A worker gets at most one strike per window; strikes are never forgiven (an adversary that
 * fails every other window is still caught). At `strikes` strikes the worker is quarantined: its
 * updates are ignored from then on (`observe` returns false) until the caller calls `forget`.
 *
 * Pure and deterministic: no clock. Windows are iteration ranges [w·window, (w+1)·window); a window
 * is closed when the first event of a later window arrives (`observe`, `reportRejected`,
 * `advance`) or when the caller calls `closeWindow`. Updates for an already closed window are
 * stale and ignored. The update dimension is `dim` when given, else fixed by the first finite
 * update (then pass only updates the aggregator's door admitted, or a first wrong-length update
 * would set it).
 *
 * Alignment test (`observeIteration`, when the caller hands over every worker's update of an
 * iteration at once; on with `alignment: true`). Per iteration each worker's update u_i is
 * compared by cosine with the coordinate-wise median of the OTHER workers' updates of that
 * iteration. At the window end, over workers with at least 3 such iterations,
 * A_i = mean_t cos(u_i^t, median_{j≠i} u_j^t); a worker fails when A_i < median_j A_j / threshold
 * while that median is positive and the gap exceeds `z` standard errors of A_i: an update that
 * does not point where the others' do (random noise, a flipped sign) however small its norm,
 * which the distance test misses when honest updates are noisy. Honest majority assumed.
 *
 * Not detected: a replayed stale update (an honest update of a few iterations ago). A lag test
 * (does u_i^t align better with the others' updates of k iterations ago than with the present
 * ones?) was tried on real tabs and dropped: honest 1-bit updates of the MNIST MLP show the
 * same pattern at lags 3–5 (staleness z-scores 5–11 for honest tabs, 3–6 for a tab replaying
 * its updates of 5 iterations ago), so it quarantined honest tabs.
 *
 * Parameters: window (iterations, ≥ 1), threshold (> 0, relative to the median distance; 3 is a
 * sensible start), strikes (≥ 1), floor (absolute lower bound of the scale, default 0 — set it
 * when honest updates can be exactly equal), filteredShare (default 0.5), dim (optional),
 * alignment (default false), z (default 5).
 */
import type { RejectReason } from './aggregators/aggregator.ts';
import { coordinateMedianInto } from './aggregators/coordinate-median.ts';
import { allFinite, axpy, squaredDistance } from './vector.ts';

export interface QuarantineConfig {
  /** Iterations per window. */
  window: number;
  /** A worker fails a window when its distance to the reference exceeds threshold × scale. */
  threshold: number;
  /** Failed windows before the worker is quarantined. */
  strikes: number;
  /** Absolute lower bound of the scale (default 0). */
  floor?: number;
  /** Share of a worker's updates in a window that may be reported 'filtered' (default 0.5). */
  filteredShare?: number;
  /** Update length; default: the length of the first finite update observed. */
  dim?: number;
  /** The alignment test over `observeIteration`'s per-iteration cosines (default false). */
  alignment?: boolean;
  /** Standard errors the alignment gap must exceed (default 5). */
  z?: number;
}

export interface WindowReport {
  /** Window index: the window covered iterations [index·window, (index+1)·window). */
  index: number;
  /** Workers compared by distance (sent ≥ 1 update, finite mean). */
  judged: string[];
  /** Their distances to the reference, same order; empty when the test was skipped. */
  distances: number[];
  /** max(median distance, floor); NaN when fewer than 3 workers were judged (test skipped). */
  scale: number;
  /** Workers that got a strike for this window. */
  failed: string[];
  /** Workers quarantined at the end of this window. */
  quarantined: string[];
  /** Alignment test: per judged worker, its mean cosine with the others' median and whether
   * it failed; empty when off or with fewer than 3 judged. */
  directions: { id: string; alignment: number; failed: boolean }[];
}

interface WorkerState {
  sum: Float32Array | null;
  count: number;
  hardFailures: number;
  filtered: number;
  strikes: number;
  /** Per iteration of the window: cos(u^t, median of the others' u^t). */
  cosines: number[];
}

function mean(values: readonly number[]): number {
  let s = 0;
  for (const v of values) s += v;
  return s / values.length;
}

/** Mean and standard error of the mean (0 for fewer than 2 values). */
function meanAndError(values: readonly number[]): { mean: number; se: number } {
  const m = mean(values);
  if (values.length < 2) return { mean: m, se: 0 };
  let ss = 0;
  for (const v of values) ss += (v - m) * (v - m);
  return { mean: m, se: Math.sqrt(ss / (values.length - 1) / values.length) };
}

function cosine(a: Float32Array, b: Float32Array): number {
  let ab = 0;
  let aa = 0;
  let bb = 0;
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    const y = b[i]!;
    ab += x * y;
    aa += x * x;
    bb += y * y;
  }
  return aa > 0 && bb > 0 ? ab / Math.sqrt(aa * bb) : 0;
}

export class Quarantine {
  private readonly config: Required<Omit<QuarantineConfig, 'dim'>>;
  private last: WindowReport | undefined;
  private readonly workers = new Map<string, WorkerState>();
  private readonly banned = new Set<string>();
  private dim: number | undefined;
  private current: number | undefined;
  private reference: Float32Array | null = null;

  constructor(config: QuarantineConfig) {
    const { window, threshold, strikes, floor = 0, filteredShare = 0.5, dim } = config;
    const alignment = config.alignment ?? false;
    const z = config.z ?? 5;
    if (!(z > 0) || !Number.isFinite(z)) {
      throw new RangeError(`Quarantine: z must be finite and > 0, got ${z}`);
    }
    if (!Number.isInteger(window) || window < 1) {
      throw new RangeError(`Quarantine: window must be a positive integer, got ${window}`);
    }
    if (!(threshold > 0) || !Number.isFinite(threshold)) {
      throw new RangeError(`Quarantine: threshold must be finite and > 0, got ${threshold}`);
    }
    if (!Number.isInteger(strikes) || strikes < 1) {
      throw new RangeError(`Quarantine: strikes must be a positive integer, got ${strikes}`);
    }
    if (!(floor >= 0) || !Number.isFinite(floor)) {
      throw new RangeError(`Quarantine: floor must be finite and ≥ 0, got ${floor}`);
    }
    if (!(filteredShare >= 0 && filteredShare <= 1)) {
      throw new RangeError(`Quarantine: filteredShare must be in [0, 1], got ${filteredShare}`);
    }
    if (dim !== undefined && (!Number.isInteger(dim) || dim < 0)) {
      throw new RangeError(`Quarantine: dim must be a non-negative integer, got ${dim}`);
    }
    this.config = { window, threshold, strikes, floor, filteredShare, alignment, z };
    this.dim = dim;
  }

  /** The report of the last window closed (undefined before the first). */
  get lastWindow(): WindowReport | undefined {
    return this.last;
  }

  /** Index of the open window, undefined before the first event. */
  get openWindow(): number | undefined {
    return this.current;
  }

  /**
   * Record one update of `workerId` computed at `iteration`. Returns true when it was
   * accumulated; false when the worker is quarantined, the update is stale (its window is closed)
   * or invalid (non-finite or wrong length — which also fails the worker's current window).
   */
  observe(workerId: string, iteration: number, update: Float32Array): boolean {
    if (this.banned.has(workerId)) return false;
    const w = this.windowOf(iteration);
    this.advanceTo(w);
    const state = this.state(workerId);
    if ((this.dim !== undefined && update.length !== this.dim) || !allFinite(update)) {
      state.hardFailures++;
      return false;
    }
    if (w < this.current!) return false;
    this.dim ??= update.length;
    state.sum ??= new Float32Array(this.dim);
    axpy(state.sum, 1, update);
    state.count++;
    return true;
  }

  /**
   * Every worker's update of one iteration at once: `observe` for each and, with `alignment`,
   * each accepted update's cosine with the median of the others' (see the file comment).
   * Returns the ids whose update was accumulated.
   */
  observeIteration(
    iteration: number,
    updates: readonly { id: string; update: Float32Array }[],
  ): string[] {
    const accepted = updates.filter(({ id, update }) => this.observe(id, iteration, update));
    if (!this.config.alignment || accepted.length < 3 || this.dim === undefined) {
      return accepted.map((a) => a.id);
    }
    const reference = new Float32Array(this.dim);
    for (const { id, update } of accepted) {
      coordinateMedianInto(
        accepted.filter((a) => a.id !== id).map((a) => a.update),
        reference,
      );
      this.state(id).cosines.push(cosine(update, reference));
    }
    return accepted.map((a) => a.id);
  }

  /**
   * The caller rejected an update of `workerId` at `iteration` (e.g. an aggregator's report).
   * 'non-finite' and 'wrong-length' (the default) fail the worker's current window; 'filtered'
   * fails it only when more than `filteredShare` of the worker's updates in the window were
   * filtered. Counted in the open window even when `iteration` belongs to a closed one.
   */
  reportRejected(workerId: string, iteration: number, reason: RejectReason = 'non-finite'): void {
    if (this.banned.has(workerId)) return;
    this.advanceTo(this.windowOf(iteration));
    const state = this.state(workerId);
    if (reason === 'filtered') state.filtered++;
    else state.hardFailures++;
  }

  /** Close every window before the one holding `iteration`; reports of the windows closed. */
  advance(iteration: number): WindowReport[] {
    return this.advanceTo(this.windowOf(iteration));
  }

  /** Close the open window now (e.g. at the end of training). */
  closeWindow(): WindowReport | undefined {
    if (this.current === undefined) return undefined;
    const report = this.evaluate(this.current);
    this.current++;
    return report;
  }

  isQuarantined(workerId: string): boolean {
    return this.banned.has(workerId);
  }

  /** Quarantined workers, sorted. */
  quarantined(): string[] {
    return [...this.banned].sort();
  }

  /** Strikes (failed windows) of a worker so far; 0 for an unknown one. */
  strikes(workerId: string): number {
    return this.workers.get(workerId)?.strikes ?? 0;
  }

  /** Drop everything known about a worker (quarantine included), e.g. when its tab left. */
  forget(workerId: string): void {
    this.workers.delete(workerId);
    this.banned.delete(workerId);
  }

  private windowOf(iteration: number): number {
    if (!(iteration >= 0) || !Number.isFinite(iteration)) {
      throw new RangeError(`Quarantine: iteration must be finite and ≥ 0, got ${iteration}`);
    }
    return Math.floor(iteration / this.config.window);
  }

  private state(workerId: string): WorkerState {
    let s = this.workers.get(workerId);
    if (s === undefined) {
      s = { sum: null, count: 0, hardFailures: 0, filtered: 0, strikes: 0, cosines: [] };
      this.workers.set(workerId, s);
    }
    return s;
  }

  private advanceTo(w: number): WindowReport[] {
    if (this.current === undefined) {
      this.current = w;
      return [];
    }
    if (w <= this.current) return [];
    // Windows between the open one and w saw no events: closing the open one is enough.
    const report = this.evaluate(this.current);
    this.current = w;
    return [report];
  }

  private evaluate(index: number): WindowReport {
    const { threshold, strikes, floor, filteredShare } = this.config;
    const failed = new Set<string>();
    const judged: string[] = [];
    const means: Float32Array[] = [];
    for (const [id, s] of this.workers) {
      if (this.banned.has(id)) continue;
      if (s.hardFailures > 0) failed.add(id);
      if (s.filtered > filteredShare * Math.max(s.count, s.filtered)) failed.add(id);
      if (s.count > 0 && s.sum !== null) {
        const inv = 1 / s.count;
        for (let j = 0; j < s.sum.length; j++) s.sum[j]! *= inv;
        // Finite updates near the float32 limit can still overflow the sum: that fails too.
        if (allFinite(s.sum)) {
          judged.push(id);
          means.push(s.sum);
        } else failed.add(id);
      }
    }
    const distances: number[] = [];
    let scale = NaN;
    if (judged.length >= 3) {
      this.reference ??= new Float32Array(this.dim!);
      coordinateMedianInto(means, this.reference);
      const counts = judged.map((id) => this.workers.get(id)!.count).sort((a, b) => a - b);
      const typical = (counts[(counts.length - 1) >> 1]! + counts[counts.length >> 1]!) / 2;
      for (let i = 0; i < means.length; i++) {
        const c = this.workers.get(judged[i]!)!.count;
        distances.push(Math.sqrt((squaredDistance(means[i]!, this.reference) * c) / typical));
      }
      const sorted = [...distances].sort((a, b) => a - b);
      const k = sorted.length;
      scale = Math.max((sorted[(k - 1) >> 1]! + sorted[k >> 1]!) / 2, floor);
      for (let i = 0; i < k; i++) {
        if (distances[i]! > threshold * scale) failed.add(judged[i]!);
      }
    }
    const directions = this.alignmentTest(failed);
    const quarantined: string[] = [];
    for (const [id, s] of this.workers) {
      if (this.banned.has(id)) continue;
      if (failed.has(id)) {
        s.strikes++;
        if (s.strikes >= strikes) {
          this.banned.add(id);
          quarantined.push(id);
          s.sum = null;
        }
      }
      s.sum?.fill(0);
      s.count = 0;
      s.hardFailures = 0;
      s.filtered = 0;
      s.cosines = [];
    }
    this.last = { index, judged, distances, scale, failed: [...failed], quarantined, directions };
    return this.last;
  }

  /** The window's alignment test (file comment); adds failures to `failed`. */
  private alignmentTest(failed: Set<string>): WindowReport['directions'] {
    const { alignment, z, threshold } = this.config;
    if (!alignment) return [];
    const stats: { id: string; mean: number; se: number }[] = [];
    for (const [id, s] of this.workers) {
      if (this.banned.has(id) || s.cosines.length < 3) continue;
      stats.push({ id, ...meanAndError(s.cosines) });
    }
    if (stats.length < 3) return [];
    const sorted = stats.map((t) => t.mean).sort((x, y) => x - y);
    const k = sorted.length;
    const median = (sorted[(k - 1) >> 1]! + sorted[k >> 1]!) / 2;
    return stats.map(({ id, mean: a, se }) => {
      const fails = median > 0 && a < median / threshold && median - a > z * se;
      if (fails) failed.add(id);
      return { id, alignment: a, failed: fails };
    });
  }
}
