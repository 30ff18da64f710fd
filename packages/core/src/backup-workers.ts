/**
 * Dynamic number of backup workers (seed 003: ../shared/seeds/dynamic-backup-workers.md —
 * Xiong et al., consensus-based distributed optimisation with a dynamic number of backup
 * workers). A worker with n peers aggregates as soon as the fastest k = n − b have written; the b
 * slowest are backups whose late updates it does not wait for.
 *
 * Guarantee: `chooseWaitCount` returns exactly the k in [minWait, n] that maximises the
 * estimated progress rate g(k) / (c + E[T_(k)]) on the samples given (ties → the larger k),
 * where T_(k) is the k-th smallest arrival time of an iteration, E its empirical mean over the
 * samples, c a fixed compute time, and g the progress an iteration makes with k contributions.
 * A peer missing from an iteration counts as +∞, so any k that some sample never reached has
 * rate 0 and is chosen only if no k has a finite time (then minWait).
 *
 * Parameters: n peers; window W (iterations remembered — the estimate adapts as delays drift);
 * gain g, default `linearGain` g(k) = k — seed 003 proves linear speedup in the number of
 * updates averaged, so progress per second ∝ contributions per second (use `correlatedGain(ρ)`,
 * g(k) = k / (1 + (k−1)ρ), when peers' updates are correlated and averaging more of them helps
 * less); minWait (default 1); computeTime c (default 0); warmup (default min(W, 5)): until that
 * many iterations are recorded, the policy waits for all n.
 *
 * Limitation: the estimate needs the arrival times of late peers too. Report every update that
 * arrives for an iteration, also after the worker moved on without it; if late arrivals are
 * dropped they look missing (+∞) and k can only ever go down. The policy is for a fixed n: make
 * a new one when the peer set changes.
 */

/** Progress one iteration makes with k contributions. Should be non-decreasing in k. */
export type Gain = (k: number) => number;

/** Default: linear speedup, g(k) = k. */
export const linearGain: Gain = (k) => k;

/** Effective number of k equally correlated updates (correlation ρ ∈ [0, 1]). */
export function correlatedGain(rho: number): Gain {
  if (!(rho >= 0 && rho <= 1)) throw new RangeError(`correlatedGain: ρ must be in [0, 1]`);
  return (k) => (k <= 0 ? 0 : k / (1 + (k - 1) * rho));
}

export interface WaitCountOptions {
  /** Fixed time per iteration added to the waiting time (default 0). */
  computeTime?: number;
  /** Smallest k considered (default 1, clamped to n). */
  minWait?: number;
}

function checkPeers(n: number): void {
  if (!Number.isInteger(n) || n < 0) throw new RangeError(`peers must be an integer ≥ 0: ${n}`);
}

/** Sorted copy of one iteration's arrivals; +∞ entries are dropped (missing). */
function sortedArrivals(arrivals: readonly number[], n: number): Float64Array {
  if (arrivals.length > n) {
    throw new RangeError(`${arrivals.length} arrival times for ${n} peers`);
  }
  const out: number[] = [];
  for (const t of arrivals) {
    if (t === Infinity) continue;
    if (!(t >= 0) || !Number.isFinite(t)) {
      throw new RangeError(`arrival times must be finite and ≥ 0 (or +∞ for missing): ${t}`);
    }
    out.push(t);
  }
  return Float64Array.from(out).sort();
}

/** means[k−1] = E[T_(k)] over the samples (already sorted); +∞ if some sample lacks a k-th. */
function orderStatisticMeansSorted(sorted: readonly Float64Array[], n: number): Float64Array {
  const sums = new Float64Array(n);
  for (const s of sorted) {
    for (let k = 1; k <= n; k++) sums[k - 1]! += k <= s.length ? s[k - 1]! : Infinity;
  }
  for (let k = 0; k < n; k++) sums[k] = sums[k]! / sorted.length;
  return sums;
}

/**
 * E[T_(k)] for k = 1..n (index k − 1): the empirical mean of the k-th smallest arrival time,
 * +∞ when some sample has fewer than k arrivals. Samples may be in any order. Empty → all NaN.
 */
export function orderStatisticMeans(
  samples: readonly (readonly number[])[],
  n: number,
): Float64Array {
  checkPeers(n);
  return orderStatisticMeansSorted(
    samples.map((s) => sortedArrivals(s, n)),
    n,
  );
}

/** g(k) / time, with g > 0 over zero time → +∞ and +∞ time → 0. */
export function progressRate(gainValue: number, time: number): number {
  if (!Number.isFinite(gainValue)) throw new RangeError(`gain must be finite: ${gainValue}`);
  if (time === Infinity) return 0;
  if (time === 0) return gainValue > 0 ? Infinity : 0;
  return gainValue / time;
}

function argmaxRate(
  means: Float64Array,
  n: number,
  gain: Gain,
  computeTime: number,
  minWait: number,
): number {
  const lo = Math.min(Math.max(1, Math.ceil(minWait)), n);
  let best = lo;
  let bestRate = -Infinity;
  let anyFinite = false;
  for (let k = lo; k <= n; k++) {
    const time = computeTime + means[k - 1]!;
    if (time === Infinity) continue;
    anyFinite = true;
    const rate = progressRate(gain(k), time);
    if (rate >= bestRate) {
      bestRate = rate;
      best = k;
    }
  }
  return anyFinite ? best : lo;
}

function checkComputeTime(c: number): void {
  if (!(c >= 0) || !Number.isFinite(c)) throw new RangeError(`computeTime must be ≥ 0: ${c}`);
}

/**
 * The k ∈ [minWait, n] maximising g(k) / (computeTime + E[T_(k)]) over the samples (each one
 * iteration's arrival times of the peers that arrived, any order). No samples → n. n = 0 → 0.
 */
export function chooseWaitCount(
  samples: readonly (readonly number[])[],
  n: number,
  gain: Gain = linearGain,
  options: WaitCountOptions = {},
): number {
  checkPeers(n);
  const computeTime = options.computeTime ?? 0;
  checkComputeTime(computeTime);
  if (n === 0) return 0;
  if (samples.length === 0) return n;
  return argmaxRate(orderStatisticMeans(samples, n), n, gain, computeTime, options.minWait ?? 1);
}

export interface BackupWorkerPolicyOptions {
  /** n: peers whose updates this worker could wait for. */
  peers: number;
  /** Iterations remembered (sliding window), ≥ 1. */
  window: number;
  gain?: Gain;
  minWait?: number;
  computeTime?: number;
  /** Iterations to record before leaving k = n (default min(window, 5)). */
  warmup?: number;
}

/** Online policy: record each iteration's arrivals, ask how many peers to wait for next. */
export class BackupWorkerPolicy {
  readonly peers: number;
  readonly window: number;
  readonly warmup: number;
  private readonly gain: Gain;
  private readonly minWait: number;
  private readonly computeTime: number;
  /** Ring buffer of sorted arrivals, oldest first once full. */
  private readonly samples: Float64Array[] = [];
  private next = 0;
  private cached: { k: number; means: Float64Array } | undefined;

  constructor(options: BackupWorkerPolicyOptions) {
    checkPeers(options.peers);
    if (!Number.isInteger(options.window) || options.window < 1) {
      throw new RangeError(`window must be an integer ≥ 1: ${options.window}`);
    }
    this.peers = options.peers;
    this.window = options.window;
    this.gain = options.gain ?? linearGain;
    this.minWait = options.minWait ?? 1;
    this.computeTime = options.computeTime ?? 0;
    checkComputeTime(this.computeTime);
    this.warmup = Math.min(this.window, Math.max(1, options.warmup ?? Math.min(this.window, 5)));
  }

  /** Iterations currently in the window. */
  get sampleCount(): number {
    return this.samples.length;
  }

  /** One iteration's arrival times (relative to its start) of the peers that arrived. */
  recordIteration(arrivalTimes: readonly number[]): void {
    const sorted = sortedArrivals(arrivalTimes, this.peers);
    if (this.samples.length < this.window) this.samples.push(sorted);
    else this.samples[this.next] = sorted;
    this.next = (this.next + 1) % this.window;
    this.cached = undefined;
  }

  private state(): { k: number; means: Float64Array } {
    if (this.cached === undefined) {
      const n = this.peers;
      const means = orderStatisticMeansSorted(this.samples, n);
      const k =
        n === 0
          ? 0
          : this.samples.length < this.warmup
            ? n
            : argmaxRate(means, n, this.gain, this.computeTime, this.minWait);
      this.cached = { k, means };
    }
    return this.cached;
  }

  /** k = n − b: how many of the fastest peers to wait for next iteration. */
  waitFor(): number {
    return this.state().k;
  }

  /** b = n − k. */
  backups(): number {
    return this.peers - this.waitFor();
  }

  /** computeTime + E[T_(k)] over the window (+∞ if some iteration had fewer than k arrivals). */
  expectedTime(k: number): number {
    if (!Number.isInteger(k) || k < 0 || k > this.peers) {
      throw new RangeError(`k must be an integer in [0, ${this.peers}]: ${k}`);
    }
    if (k === 0) return this.computeTime;
    if (this.samples.length === 0) return NaN;
    return this.computeTime + this.state().means[k - 1]!;
  }

  /** Estimated progress per second when waiting for k: g(k) / expectedTime(k). */
  expectedRate(k: number): number {
    return progressRate(this.gain(k), this.expectedTime(k));
  }
}
