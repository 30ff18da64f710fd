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
 * iteration at once; on with `alignment: true`). Per iteration each worker's alignment is the
 * upper median of its cosines with each OTHER worker's update of that iteration,
 * a_i^t = upper-median_{j≠i} cos(u_i^t, u_j^t) (of k values the ⌊k/2⌋-th from the bottom, counting
 * from 0: the median for odd k, the larger middle one for even k), and its correlation
 * c_i^t = dim · (upper-median_{j≠i} |cos(u_i^t, u_j^t)|)². At the window end, over workers with at
 * least 3 such iterations, A_i = mean_t a_i^t and C_i = mean_t c_i^t, and a worker fails when
 * - it points backwards: the window's gap z_i = (−median_j A_j / threshold − A_i) / se(A_i) (0
 *   when the others share no direction: median_j A_j ≤ consensusZ (1) · middle_j se(A_j)), over
 *   the last `alignmentWindows` windows it was judged in, gives Σ z_i / √alignmentWindows > z
 *   (Stouffer) — a flipped sign; or
 * - it is uncorrelated with everyone: C_i < UNCORRELATED (4) while median_j C_j ≥ 4·UNCORRELATED.
 *   An update independent of the others (random noise) has cosines of ±1/√dim with each of them,
 *   so c ≈ χ²₁-sized (≈ 0.5–1 on real tabs, every window), while an honest update's cosines are
 *   noisy but large (±0.03 at dim 101,770 late in training: c 33–3,700 on real tabs, the
 *   cluster's proposer included).
 * Both catch an update that does not point where the others' do however small its norm, which
 * the distance test misses when honest updates are noisy, and neither judges an honest worker
 * by its level of alignment, which is not evidence: honest workers are not exchangeable. On real
 * tabs the cluster's proposer aggregates and proposes besides computing, so its registers hold
 * fewer steps and its alignment sits at 0.5–0.66 of the others' from start to end, 10–15
 * standard errors below them. Late in training, every alignment near 0.04, honest window means
 * fell to −0.01…−0.03 — 7 windows of about 200 in six chaos-job runs on 2026-12-07, 5 of them
 * the proposer's, three in a row in one clean run — while their cosines stayed ±0.03 each
 * iteration. The former rule — A_i significantly below a third of the median, judged on one
 * window or three combined — quarantined such a tab, in a CI run's IPM test and in a clean run.
 * Against a flipped sign (A ≈ −0.10…−0.16 against medians 0.02–0.06) the backwards gap is
 * 5.6–6.6 standard errors per window, the proposer's 1–1.5.
 * A window in which the others share no direction is no evidence: under the sign-optimal attack
 * (CI run, 2026-12-07, iterations 40–70) the median alignment fell to 0.0035, −0.008 and 0.010
 * (under 1.2 of the workers' standard errors of about 0.008) while the honest proposer's sat at
 * −0.053, −0.040 and −0.023, consistently (our reading: the proposer's register holds fewer
 * steps, so more of it is error-feedback residual, which points against the direction the
 * others shared before). Judged on its own standard error it was quarantined. A sign flip of a
 * consensus that weak is itself too weak to tell apart from an honest worker; the windows
 * where the consensus is clear (training's first hundred iterations, or any stronger signal)
 * still catch it. The price, in the simulator (docs/results.md, Table 8): a lone `drift`
 * attacker, caught at iteration 131 / 211 (CGE / Multi-Krum) when every window with a positive
 * median was judged, is not caught in 500 iterations (accuracy 89.0 / 89.4 % against 90.7 /
 * 90.5 %, 90.8 % without attack). At consensusZ = 2 the three `ipm` attackers of Table 5 were
 * caught 1 and 2 of 3 instead of 3 of 3; at 1 every other number of Tables 5, 7 and 8 is as
 * before.
 * Honest majority assumed. Pairwise, not against the coordinate median of the others: one
 * attacker's update sits in that median, and where two honest updates disagree it decides the
 * coordinate, so an update anti-correlated with one honest worker framed it. The browser's mimic
 * did so by accident — it copied its target's register of the previous iteration, and a 1-bit
 * register with error feedback is anti-correlated with its own predecessor — and the target's
 * alignment fell to −0.11 against the others' +0.12 (chaos suite, window 3): the target was
 * quarantined with its copier. A single other worker now moves a_i^t by one rank at most.
 *
 * Lag-symmetry test (`observeIteration` with `lagSymmetry: true`): catches a worker that replays
 * old updates (its honest update of L iterations ago, stamped as new), which passes the
 * distance and alignment tests because its statistics are an honest worker's, shifted in time.
 * With r_j^t the median of the others' updates at t and û the unit vector of u, each iteration
 * gives worker i the statistic
 *   s_i^t = mean_{k=1..lags} [ cos(u_i^t, r_i^{t−k}) − cos(u_i^{t−k}, r_i^t) ]
 * over the k whose iteration it also sent (with `segments`, the mean of that over the update's
 * parameter groups, cosines taken within each: the MLP's 1,290-parameter output layer carries
 * the time structure more clearly than its 100,480-parameter first layer, and the mean of the
 * two reached z ≈ 3.1–3.6 after 45 iterations where the whole-vector cosine reached 2.9–3.2). Honest workers are exchangeable, so the cross
 * correlation of one with the others is symmetric in time and E s_i^t = 0, whatever the
 * time structure the updates share (error feedback of 1-bit codes, oscillation of the agreed
 * model, a shared drift): a one-sided lag test was tried first and dropped because honest 1-bit
 * updates of the MNIST MLP align with the others' of a few iterations ago as well as a replay
 * does. A replay of lag L makes the first term the others' same-iteration alignment
 * (cos(h_i^{t−L}, r^{t−L}) at k = L) and the second a 2L-iteration-old one, so s_i^t > 0.
 * Per iteration s_i^t minus the median over the workers that have one (≥ 3) is accumulated
 * from a worker's first update on (not per window: the effect is small next to the noise of
 * one iteration — 0.02 against ±0.04 for real tabs, docs/architecture.md); at each window end
 * a worker with at least `lagMinIterations` values fails when their mean, less the median of
 * those means over the workers judged when that median is positive (≥ 3 workers; a majority
 * cannot be replaying, so a positive median is a common offset: attackers sending a drift built
 * from the honest past, drift.ts, shifted every honest mean up and had an honest worker
 * quarantined), exceeds the boundary b(n) = √(lagZ² + 2·ln(n / lagMinIterations)) standard
 * errors (Newey–West, 3 lags: consecutive values are correlated) after n iterations of
 * evidence. The evidence is never reset, so an honest worker's z wanders like a normalised
 * random walk, and a fixed threshold is crossed by chance in a long enough run (the law of the
 * iterated logarithm; at lagZ = 3 an honest worker of Table 8 sat at z ≈ 3.1 for three windows
 * around iteration 400 and was quarantined). The slowly growing boundary bounds that: the
 * chance of z > b(n) at one look is ≤ e^(−lagZ²/2)·(n₀/n), so over the geometric epochs
 * n₀·2^j it sums to ≤ 2·e^(−lagZ²/2) whatever the run's length (a peeling bound), while a
 * replayer's z grows like √n and crosses it almost as early as lagZ (b = 3.25 at 3.3·n₀).
 * Workers whose updates of an iteration are bit-identical (one copies the other: the mimic
 * attack) get no statistic for it and are left out of each other's reference: a copied update
 * weighs double in the aggregate, the model's response to it makes its sender look like a
 * replay, and the honest original was quarantined with its copier. (A cost: colluders that send
 * identical replays escape this test.)
 * Memory: 2 · (lags + 1) vectors of the update length per worker (its last `lags` unit updates
 * and references, and the pair the next iteration is written into while those are read).
 * Cost: the test runs in every tab every iteration, and done straightforwardly it took 26–28 %
 * of a tab's CPU (issue 16). So one sort of the n values of each coordinate serves every
 * worker's reference (not a median of n − 1 values per worker), and a worker's 2 · lags cosines
 * take one pass over each kept vector (not one pass per cosine); the results are bit for bit
 * those of the straightforward computation (test/quarantine-reference.test.ts).
 *
 * Parameters: window (iterations, ≥ 1), threshold (> 0, relative to the median distance; 3 is a
 * sensible start), strikes (≥ 1), floor (absolute lower bound of the scale, default 0 — set it
 * when honest updates can be exactly equal), filteredShare (default 0.5), dim (optional),
 * alignment (default false), z (default 5), alignmentWindows (default 3), consensusZ (default
 * 1), lagSymmetry (default
 * false), lags (default 6), lagZ (default 3: the boundary at lagMinIterations),
 * lagMinIterations (default 30), segments (default: one).
 */
import type { RejectReason } from './aggregators/aggregator.ts';
import { insertionSort } from './aggregators/aggregator.ts';
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
  /**
   * Windows whose alignment evidence is combined (default 3): a worker fails when the sum of
   * its last `alignmentWindows` window z-scores, over √alignmentWindows, exceeds `z`.
   */
  alignmentWindows?: number;
  /**
   * The alignment test judges a window only when the median alignment exceeds this many of the
   * workers' middle standard error (default 1): below it the others share no direction to point
   * against (file comment). 0: whenever the median is positive.
   */
  consensusZ?: number;
  /** The lag-symmetry test for replayed old updates, over `observeIteration` (default false). */
  lagSymmetry?: boolean;
  /** Iterations back the lag-symmetry test compares (default 6). */
  lags?: number;
  /** Standard errors the lag-symmetry statistic must exceed after lagMinIterations iterations
   * of evidence (default 3); the boundary then grows like √(lagZ² + 2 ln(n / lagMinIterations)). */
  lagZ?: number;
  /** Iterations of evidence before the lag-symmetry test judges a worker (default 30). */
  lagMinIterations?: number;
  /**
   * Lengths of the update's parameter groups (e.g. the model's layers), summing to `dim`: the
   * lag-symmetry statistic is the mean of the groups' statistics, each from cosines within
   * its group, so a small layer whose updates keep a clear time structure counts as much as a
   * large noisy one (default: one group).
   */
  segments?: readonly number[];
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
  directions: {
    id: string;
    alignment: number;
    /** This window's backwards gap (−median / threshold − alignment) in its standard errors. */
    z: number;
    /** The last alignmentWindows windows' z combined (Σz / √alignmentWindows), judged by z. */
    evidence: number;
    /** Mean dim · cos² with the others (upper median of |cos|): ≈ 1 for independent noise. */
    correlation: number;
    /** Uncorrelated with everyone while the others correlate (file comment). */
    uncorrelated: boolean;
    failed: boolean;
  }[];
  /** Lag-symmetry test: per worker with enough evidence, the mean of its relative statistic
   * (positive: its updates look older than the others'), in standard errors, over how many
   * iterations, and whether it failed; empty when off. */
  lags: {
    id: string;
    shift: number;
    z: number;
    iterations: number;
    /** The boundary z had to exceed at this many iterations (lagBoundary). */
    boundary: number;
    failed: boolean;
  }[];
}

interface WorkerState {
  sum: Float32Array | null;
  count: number;
  hardFailures: number;
  filtered: number;
  strikes: number;
  /** Per iteration of the window: a^t, the upper median of u^t's cosines with the others'. */
  cosines: number[];
  /** Per iteration of the window: c^t = dim · (upper median of |cos| with the others')². */
  correlations: number[];
  /** Alignment test: the z of the last alignmentWindows windows it was judged in, by window. */
  alignmentZ: { index: number; z: number }[];
  /** Lag-symmetry test: the worker's last `lags` iterations (unit update, unit reference). */
  past: PastIteration[];
  /** Lag-symmetry test: buffers the next iteration is written into while `past` is read (ones
   * that fell out of `past`: in steady state a tab allocates nothing per iteration). */
  spare: PastIteration | undefined;
  /** Lag-symmetry test: the worker's relative statistic so far. */
  lagEvidence: SeriesMean;
}

interface PastIteration {
  iteration: number;
  update: Float32Array;
  reference: Float32Array;
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

/**
 * The alignment test's bound on a worker's mean correlation dim · cos² with the others: an update
 * independent of them has ≈ 1 (χ²₁), an honest one on real tabs 33 and more (file comment).
 */
const UNCORRELATED = 4;

/** The middle of values: the median for an odd count, the mean of the two middle ones else. */
function middle(values: readonly number[]): number {
  const sorted = [...values].sort((x, y) => x - y);
  const k = sorted.length;
  return (sorted[(k - 1) >> 1]! + sorted[k >> 1]!) / 2;
}

/** Bound of one window's alignment z: a window with no spread (se 0) weighs this much. */
const ALIGNMENT_Z_CAP = 50;

/** An alignment gap in standard errors, within ±ALIGNMENT_Z_CAP (se 0: the gap's sign). */
function alignmentGapZ(gap: number, se: number): number {
  const z = se > 0 ? gap / se : gap > 0 ? Infinity : gap < 0 ? -Infinity : 0;
  return Math.max(-ALIGNMENT_Z_CAP, Math.min(ALIGNMENT_Z_CAP, z));
}

/** [from, to) of consecutive groups of the given lengths. */
function boundsOf(lengths: readonly number[]): (readonly [number, number])[] {
  let from = 0;
  return lengths.map((n) => {
    const bounds = [from, from + n] as const;
    from += n;
    return bounds;
  });
}

/** The lag-symmetry test's boundary in standard errors after n ≥ n₀ iterations of evidence
 * (file comment: a fixed boundary is crossed by chance in a long run). */
export function lagBoundary(lagZ: number, minIterations: number, n: number): number {
  return Math.sqrt(lagZ * lagZ + 2 * Math.log(Math.max(1, n / minIterations)));
}

/** Autocovariance lags in the lag-symmetry test's standard error (see SeriesMean). */
const LAG_BANDWIDTH = 3;

/**
 * Running mean of a series and its standard error with Newey–West (Bartlett) weights up to
 * `bandwidth` lags, in O(bandwidth) memory: consecutive lag-symmetry statistics share update
 * vectors and are positively correlated (lag-1 ≈ 0.25 on real tabs), which a plain standard error
 * would understate by about a third.
 */
class SeriesMean {
  count = 0;
  private sum = 0;
  private squares = 0;
  /** Σ_t x_t · x_{t−l} for l = 1 … bandwidth. */
  private readonly cross: number[];
  private readonly first: number[] = [];
  private readonly last: number[] = [];

  constructor(private readonly bandwidth: number) {
    this.cross = new Array<number>(bandwidth).fill(0);
  }

  push(x: number): void {
    for (let l = 1; l <= this.last.length; l++) {
      this.cross[l - 1]! += x * this.last[this.last.length - l]!;
    }
    this.last.push(x);
    if (this.last.length > this.bandwidth) this.last.shift();
    if (this.first.length < this.bandwidth) this.first.push(x);
    this.sum += x;
    this.squares += x * x;
    this.count++;
  }

  meanAndError(): { mean: number; se: number } {
    const n = this.count;
    const m = this.sum / n;
    if (n < 2) return { mean: m, se: 0 };
    const gamma0 = Math.max(0, this.squares / n - m * m);
    let longRun = gamma0;
    for (let l = 1; l <= Math.min(this.bandwidth, n - 1); l++) {
      // Σ_{t>l} (x_t − m)(x_{t−l} − m), from the running sums and the first/last l values
      const head = this.first.slice(0, l).reduce((a, b) => a + b, 0);
      const tail = this.last.slice(-l).reduce((a, b) => a + b, 0);
      const gamma = (this.cross[l - 1]! - m * (2 * this.sum - head - tail) + (n - l) * m * m) / n;
      longRun += 2 * (1 - l / (this.bandwidth + 1)) * gamma;
    }
    // negative autocorrelation can drive the estimate below zero: fall back to the plain one
    const variance = longRun > 0 ? longRun : gamma0;
    return { mean: m, se: Math.sqrt(variance / (n - 1)) };
  }
}

function dot(a: Float32Array, b: Float32Array, from = 0, to = a.length): number {
  let s = 0;
  for (let i = from; i < to; i++) s += a[i]! * b[i]!;
  return s;
}

/**
 * out[offset + k] = dot(x, ys[k], from, to), each summed in index order from 0 as `dot` does, so
 * bit for bit its value. Up to six at a time: one `dot` is bound by the latency of its one chain
 * of additions, six independent chains over one read of x take little more time than one.
 */
function dotsInto(
  x: Float32Array,
  ys: readonly Float32Array[],
  from: number,
  to: number,
  out: Float64Array,
  offset = 0,
): void {
  let k = 0;
  for (; k + 6 <= ys.length; k += 6) {
    const y0 = ys[k]!;
    const y1 = ys[k + 1]!;
    const y2 = ys[k + 2]!;
    const y3 = ys[k + 3]!;
    const y4 = ys[k + 4]!;
    const y5 = ys[k + 5]!;
    let s0 = 0;
    let s1 = 0;
    let s2 = 0;
    let s3 = 0;
    let s4 = 0;
    let s5 = 0;
    for (let i = from; i < to; i++) {
      const v = x[i]!;
      s0 += v * y0[i]!;
      s1 += v * y1[i]!;
      s2 += v * y2[i]!;
      s3 += v * y3[i]!;
      s4 += v * y4[i]!;
      s5 += v * y5[i]!;
    }
    out[offset + k] = s0;
    out[offset + k + 1] = s1;
    out[offset + k + 2] = s2;
    out[offset + k + 3] = s3;
    out[offset + k + 4] = s4;
    out[offset + k + 5] = s5;
  }
  if (k + 4 <= ys.length) {
    const y0 = ys[k]!;
    const y1 = ys[k + 1]!;
    const y2 = ys[k + 2]!;
    const y3 = ys[k + 3]!;
    let s0 = 0;
    let s1 = 0;
    let s2 = 0;
    let s3 = 0;
    for (let i = from; i < to; i++) {
      const v = x[i]!;
      s0 += v * y0[i]!;
      s1 += v * y1[i]!;
      s2 += v * y2[i]!;
      s3 += v * y3[i]!;
    }
    out[offset + k] = s0;
    out[offset + k + 1] = s1;
    out[offset + k + 2] = s2;
    out[offset + k + 3] = s3;
    k += 4;
  }
  if (k + 2 <= ys.length) {
    const y0 = ys[k]!;
    const y1 = ys[k + 1]!;
    let s0 = 0;
    let s1 = 0;
    for (let i = from; i < to; i++) {
      const v = x[i]!;
      s0 += v * y0[i]!;
      s1 += v * y1[i]!;
    }
    out[offset + k] = s0;
    out[offset + k + 1] = s1;
    k += 2;
  }
  if (k < ys.length) out[offset + k] = dot(x, ys[k]!, from, to);
}

function sameVector(a: Float32Array, b: Float32Array): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** cos(u_a, u_b) for every pair, as a symmetric matrix (the diagonal is 1). */
function pairwiseCosines(updates: readonly Float32Array[]): number[][] {
  const n = updates.length;
  // products[a][b − a] = u_a · u_b for b ≥ a: the norms and the upper triangle, row by row
  const products = updates.map((u, a) => {
    const row = new Float64Array(n - a);
    dotsInto(u, updates.slice(a), 0, u.length, row);
    return row;
  });
  const norms = products.map((row) => Math.sqrt(row[0]!));
  const out = updates.map(() => new Array<number>(n).fill(1));
  for (let a = 0; a < n; a++) {
    for (let b = a + 1; b < n; b++) {
      const norm = norms[a]! * norms[b]!;
      const c = norm > 0 ? products[a]![b - a]! / norm : 0;
      out[a]![b] = c;
      out[b]![a] = c;
    }
  }
  return out;
}

/**
 * A float32's bits as a signed integer that orders like the float (−0 just below +0): flipping
 * the magnitude bits of a negative reverses the order of the negatives. Its own inverse.
 */
function ordered(bits: number): number {
  return bits ^ ((bits >> 31) & 0x7fffffff);
}

/** −1 when a < b, else 0, for int32 a and b: the sign of a − b, corrected for overflow. */
function lessMask(a: number, b: number): number {
  const d = (a - b) | 0;
  return (d ^ ((a ^ b) & (a ^ d))) >> 31;
}

function bitsOf(v: Float32Array): Int32Array {
  return new Int32Array(v.buffer, v.byteOffset, v.length);
}

/**
 * outs[t] = the coordinate median of every vector but vectors[t] (n ≥ 3), the values
 * `coordinateMedianInto` gives over those n − 1 (a zero may differ in sign, which no cosine
 * sees). The lag-symmetry test needs all n every iteration; computed apart, they sorted n − 1
 * values n times per coordinate, where one sort of the n values serves them all.
 */
function leaveOneOutMediansInto(
  vectors: readonly Float32Array[],
  outs: readonly Float32Array[],
): void {
  const n = vectors.length;
  const d = outs[0]!.length;
  if (n === 3) {
    const [a, b, c] = vectors as [Float32Array, Float32Array, Float32Array];
    const [oa, ob, oc] = outs as [Float32Array, Float32Array, Float32Array];
    for (let j = 0; j < d; j++) {
      const x = a[j]!;
      const y = b[j]!;
      const z = c[j]!;
      oa[j] = (y + z) / 2;
      ob[j] = (x + z) / 2;
      oc[j] = (x + y) / 2;
    }
    return;
  }
  if (n === 4) {
    medianOfOthersOfFour(vectors, outs);
    return;
  }
  // Leaving out the value at rank r of the sorted s moves the ranks above r down by one, so
  // the others' middle values are s[lo + 1], s[hi + 1] when r ≤ lo, s[lo], s[hi + 1] when
  // lo < r ≤ hi and s[lo], s[hi] above (lo, hi: the middle ranks of n − 1 values). Leaving out
  // another of equal values leaves the same values, so a value's first rank will do.
  const lo = (n - 2) >> 1;
  const hi = (n - 1) >> 1;
  const sorted = new Float64Array(n);
  for (let j = 0; j < d; j++) {
    for (let i = 0; i < n; i++) sorted[i] = vectors[i]![j]!;
    insertionSort(sorted, n);
    const low = sorted[lo]!;
    const high = sorted[hi]!;
    const ifBelow = (sorted[lo + 1]! + sorted[hi + 1]!) / 2;
    const ifBetween = (low + sorted[hi + 1]!) / 2;
    const ifAbove = (low + high) / 2;
    for (let t = 0; t < n; t++) {
      const x = vectors[t]![j]!;
      outs[t]![j] = x <= low ? ifBelow : x <= high ? ifBetween : ifAbove;
    }
  }
}

/**
 * `leaveOneOutMediansInto` for four vectors: the others' median is the upper of the two middle
 * values for the two lowest, the lower one for the two highest. On the integers `ordered`
 * makes of the bits, without a branch: Math.min, Math.max and comparisons of floats branch, and
 * on gradients those branches go either way at random (a cluster of four, the default, spent
 * more time mispredicting them than on the rest of the lag-symmetry test's arithmetic).
 */
function medianOfOthersOfFour(vectors: readonly Float32Array[], outs: readonly Float32Array[]) {
  const [a, b, c, e] = vectors.map(bitsOf) as [Int32Array, Int32Array, Int32Array, Int32Array];
  const [oa, ob, oc, oe] = outs.map(bitsOf) as [Int32Array, Int32Array, Int32Array, Int32Array];
  for (let j = 0; j < oa.length; j++) {
    const w = ordered(a[j]!);
    const x = ordered(b[j]!);
    const y = ordered(c[j]!);
    const z = ordered(e[j]!);
    // min and max of each pair, then of the inner two: the sorting network of four
    const p = w ^ ((w ^ x) & lessMask(x, w));
    const pp = w ^ x ^ p;
    const q = y ^ ((y ^ z) & lessMask(z, y));
    const qq = y ^ z ^ q;
    const innerLow = p ^ ((p ^ q) & lessMask(p, q));
    const innerHigh = pp ^ ((pp ^ qq) & lessMask(qq, pp));
    const second = innerLow ^ ((innerLow ^ innerHigh) & lessMask(innerHigh, innerLow));
    const third = innerLow ^ innerHigh ^ second;
    const upper = ordered(third);
    const swap = upper ^ ordered(second);
    oa[j] = upper ^ (swap & lessMask(second, w));
    ob[j] = upper ^ (swap & lessMask(second, x));
    oc[j] = upper ^ (swap & lessMask(second, y));
    oe[j] = upper ^ (swap & lessMask(second, z));
  }
}

/** Of k values, the ⌊k/2⌋-th smallest (from 0): the median for odd k, the upper middle one for even k. */
function upperMedian(values: number[]): number {
  const sorted = [...values].sort((x, y) => x - y);
  return sorted[sorted.length >> 1]!;
}

export class Quarantine {
  private readonly config: Required<Omit<QuarantineConfig, 'dim' | 'segments'>>;
  private readonly segmentLengths: readonly number[] | undefined;
  private segmentBounds: (readonly [number, number])[] | undefined;
  private last: WindowReport | undefined;
  private readonly workers = new Map<string, WorkerState>();
  private readonly banned = new Set<string>();
  private dim: number | undefined;
  private current: number | undefined;
  private reference: Float32Array | null = null;
  /** Lag-symmetry test: where the shared pass puts the references nobody reads. */
  private scratch: Float32Array | null = null;

  constructor(config: QuarantineConfig) {
    const { window, threshold, strikes, floor = 0, filteredShare = 0.5, dim } = config;
    const alignment = config.alignment ?? false;
    const z = config.z ?? 5;
    const alignmentWindows = config.alignmentWindows ?? 3;
    const consensusZ = config.consensusZ ?? 1;
    if (!(consensusZ >= 0) || !Number.isFinite(consensusZ)) {
      throw new RangeError(`Quarantine: consensusZ must be finite and ≥ 0, got ${consensusZ}`);
    }
    if (!Number.isInteger(alignmentWindows) || alignmentWindows < 1) {
      throw new RangeError(
        `Quarantine: alignmentWindows must be a positive integer, got ${alignmentWindows}`,
      );
    }
    const { lagSymmetry = false, lags = 6, lagZ = 3, lagMinIterations = 30 } = config;
    if (!Number.isInteger(lags) || lags < 1) {
      throw new RangeError(`Quarantine: lags must be a positive integer, got ${lags}`);
    }
    if (!(lagZ > 0) || !Number.isFinite(lagZ)) {
      throw new RangeError(`Quarantine: lagZ must be finite and > 0, got ${lagZ}`);
    }
    if (!Number.isInteger(lagMinIterations) || lagMinIterations < 2) {
      throw new RangeError(
        `Quarantine: lagMinIterations must be an integer ≥ 2, got ${lagMinIterations}`,
      );
    }
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
    const { segments } = config;
    if (segments !== undefined) {
      if (segments.length === 0 || segments.some((n) => !Number.isInteger(n) || n < 1)) {
        throw new RangeError('Quarantine: segments must be positive integer lengths');
      }
      const total = segments.reduce((a, b) => a + b, 0);
      if (dim === undefined || total !== dim) {
        throw new RangeError(`Quarantine: segments must sum to dim (${dim}), got ${total}`);
      }
    }
    this.segmentLengths = segments === undefined ? undefined : [...segments];
    this.config = {
      window,
      threshold,
      strikes,
      floor,
      filteredShare,
      alignment,
      z,
      alignmentWindows,
      consensusZ,
      lagSymmetry,
      lags,
      lagZ,
      lagMinIterations,
    };
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
   * each accepted update's alignment: the upper median of its cosines with the others' (file comment).
   * Returns the ids whose update was accumulated.
   */
  observeIteration(
    iteration: number,
    updates: readonly { id: string; update: Float32Array }[],
  ): string[] {
    const accepted = updates.filter(({ id, update }) => this.observe(id, iteration, update));
    const { alignment, lagSymmetry } = this.config;
    if ((!alignment && !lagSymmetry) || accepted.length < 3 || this.dim === undefined) {
      return accepted.map((a) => a.id);
    }
    // Updates sent by two workers bit for bit (a copy: honest workers hold different data) are not
    // independent evidence: a copy is left out of the reference of its twin, and no lag-symmetry
    // statistic is recorded for either — over-weighted in the aggregate, the copied update is
    // followed by the model's response to it, which the test read as a replay (the mimic attack
    // had its honest target quarantined).
    const copied = new Set<string>();
    for (let a = 0; a < accepted.length; a++) {
      for (let b = a + 1; b < accepted.length; b++) {
        if (sameVector(accepted[a]!.update, accepted[b]!.update)) {
          copied.add(accepted[a]!.id);
          copied.add(accepted[b]!.id);
        }
      }
    }
    if (alignment) {
      const pairwise = pairwiseCosines(accepted.map((a) => a.update));
      for (const [index, { id, update }] of accepted.entries()) {
        const twin = (a: { update: Float32Array }) =>
          copied.has(id) && sameVector(a.update, update);
        const cosines = accepted.flatMap((a, j) =>
          j === index || twin(a) ? [] : [pairwise[index]![j]!],
        );
        if (cosines.length > 0) {
          const state = this.state(id);
          state.cosines.push(upperMedian(cosines));
          const magnitude = upperMedian(cosines.map(Math.abs));
          state.correlations.push(this.dim * magnitude * magnitude);
        }
      }
    }
    if (lagSymmetry) this.observeLags(iteration, accepted, copied);
    return accepted.map((a) => a.id);
  }

  /**
   * The lag-symmetry statistics of one iteration's accepted updates (≥ 3, of length dim). A copy
   * gets none, so its reference (the median of its distinct others) is not computed; every
   * other worker's is the median of all the others, all of them from one pass over the updates.
   */
  private observeLags(
    iteration: number,
    accepted: readonly { id: string; update: Float32Array }[],
    copied: ReadonlySet<string>,
  ): void {
    this.segmentBounds ??= boundsOf(this.segmentLengths ?? [this.dim!]);
    const senders = new Map<string, number>();
    for (const { id } of accepted) senders.set(id, (senders.get(id) ?? 0) + 1);
    // An id sent twice in one iteration leaves both its updates out of its others, and its
    // entries share one state: its reference is computed apart, each entry's just before its
    // statistic, into the buffer its state holds then.
    const shared = accepted.map(({ id }) => !copied.has(id) && senders.get(id) === 1);
    if (shared.includes(true)) {
      leaveOneOutMediansInto(
        accepted.map((a) => a.update),
        accepted.map(({ id }, i) =>
          shared[i]
            ? this.slotOf(this.state(id)).reference
            : (this.scratch ??= new Float32Array(this.dim!)),
        ),
      );
    }
    const lagStatistics = new Map<string, number>();
    for (const [index, { id, update }] of accepted.entries()) {
      if (copied.has(id)) continue;
      const state = this.state(id);
      if (!shared[index]) {
        const others = accepted.filter((a) => a.id !== id).map((a) => a.update);
        coordinateMedianInto(others, this.slotOf(state).reference);
      }
      const statistic = this.recordPast(state, iteration, update);
      if (statistic !== undefined) lagStatistics.set(id, statistic);
    }
    if (lagStatistics.size >= 3) {
      const median = middle([...lagStatistics.values()]);
      for (const [id, statistic] of lagStatistics) {
        const state = this.state(id);
        state.lagEvidence.push(statistic - median);
      }
    }
  }

  /** The buffers a worker's next iteration is written into (kept until `recordPast` uses them). */
  private slotOf(state: WorkerState): PastIteration {
    state.spare ??= {
      iteration: -1,
      update: new Float32Array(this.dim!),
      reference: new Float32Array(this.dim!),
    };
    return state.spare;
  }

  /**
   * Lag-symmetry test: s_i^t against the worker's kept iterations t − 1 … t − lags (undefined
   * when it kept none), then keeps this iteration's unit update and unit reference. The
   * reference is in the worker's slot (`slotOf`) already; the unit vectors go over it.
   */
  private recordPast(
    state: WorkerState,
    iteration: number,
    update: Float32Array,
  ): number | undefined {
    const { lags } = this.config;
    const segments = this.segmentBounds!;
    const current = this.slotOf(state);
    state.spare = undefined;
    current.iteration = iteration;
    const u = current.update;
    const r = current.reference;
    for (const [from, to] of segments) {
      let updateSquares = 0;
      let referenceSquares = 0;
      for (let i = from; i < to; i++) {
        const x = update[i]!;
        const y = r[i]!;
        updateSquares += x * x;
        referenceSquares += y * y;
      }
      const updateNorm = Math.sqrt(updateSquares);
      const referenceNorm = Math.sqrt(referenceSquares);
      const toUnitUpdate = updateNorm > 0 ? 1 / updateNorm : 0;
      const toUnitReference = referenceNorm > 0 ? 1 / referenceNorm : 0;
      for (let i = from; i < to; i++) {
        u[i] = update[i]! * toUnitUpdate;
        r[i] = r[i]! * toUnitReference;
      }
    }
    const pasts = state.past.filter((p) => {
      const k = iteration - p.iteration;
      return k >= 1 && k <= lags;
    });
    let sum = 0;
    if (pasts.length > 0) {
      // [segment][past]: cos(u^t, r^{t−k}) and cos(u^{t−k}, r^t), summed below in the order
      // past by past, segment by segment
      const ahead = new Float64Array(segments.length * pasts.length);
      const behind = new Float64Array(segments.length * pasts.length);
      const pastReferences = pasts.map((p) => p.reference);
      const pastUpdates = pasts.map((p) => p.update);
      for (const [g, [from, to]] of segments.entries()) {
        dotsInto(current.update, pastReferences, from, to, ahead, g * pasts.length);
        dotsInto(current.reference, pastUpdates, from, to, behind, g * pasts.length);
      }
      for (let k = 0; k < pasts.length; k++) {
        for (let g = 0; g < segments.length; g++) {
          sum += ahead[g * pasts.length + k]! - behind[g * pasts.length + k]!;
        }
      }
    }
    const kept: PastIteration[] = [];
    for (const p of state.past) {
      if (p.iteration > iteration - lags && p.iteration < iteration) kept.push(p);
      else state.spare ??= p;
    }
    kept.push(current);
    state.past = kept;
    const count = pasts.length * segments.length;
    return count > 0 ? sum / count : undefined;
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
      s = {
        sum: null,
        count: 0,
        hardFailures: 0,
        filtered: 0,
        strikes: 0,
        cosines: [],
        correlations: [],
        alignmentZ: [],
        past: [],
        spare: undefined,
        lagEvidence: new SeriesMean(LAG_BANDWIDTH),
      };
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
      const typical = middle(judged.map((id) => this.workers.get(id)!.count));
      for (let i = 0; i < means.length; i++) {
        const c = this.workers.get(judged[i]!)!.count;
        distances.push(Math.sqrt((squaredDistance(means[i]!, this.reference) * c) / typical));
      }
      scale = Math.max(middle(distances), floor);
      for (let i = 0; i < distances.length; i++) {
        if (distances[i]! > threshold * scale) failed.add(judged[i]!);
      }
    }
    const directions = this.alignmentTest(index, failed);
    const lags = this.lagSymmetryTest(failed);
    const quarantined: string[] = [];
    for (const [id, s] of this.workers) {
      if (this.banned.has(id)) continue;
      if (failed.has(id)) {
        s.strikes++;
        if (s.strikes >= strikes) {
          this.banned.add(id);
          quarantined.push(id);
          s.sum = null;
          s.past = [];
          s.spare = undefined;
        }
      }
      s.sum?.fill(0);
      s.count = 0;
      s.hardFailures = 0;
      s.filtered = 0;
      s.cosines = [];
      s.correlations = [];
    }
    this.last = {
      index,
      judged,
      distances,
      scale,
      failed: [...failed],
      quarantined,
      directions,
      lags,
    };
    return this.last;
  }

  /** The window's alignment test (file comment); adds failures to `failed`. */
  private alignmentTest(index: number, failed: Set<string>): WindowReport['directions'] {
    const { alignment, z, threshold, alignmentWindows, consensusZ } = this.config;
    if (!alignment) return [];
    const stats: { id: string; state: WorkerState; mean: number; se: number; c: number }[] = [];
    for (const [id, state] of this.workers) {
      if (this.banned.has(id) || state.cosines.length < 3) continue;
      stats.push({ id, state, ...meanAndError(state.cosines), c: mean(state.correlations) });
    }
    if (stats.length < 3) return [];
    const medianA = middle(stats.map((t) => t.mean));
    const medianC = middle(stats.map((t) => t.c));
    // No consensus direction this window (file comment): the window is no evidence either way.
    const consensus = medianA > consensusZ * middle(stats.map((t) => t.se));
    return stats.map(({ id, state, mean: a, se, c }) => {
      const windowZ = consensus ? alignmentGapZ(-medianA / threshold - a, se) : 0;
      const kept = state.alignmentZ.filter((w) => w.index > index - alignmentWindows);
      kept.push({ index, z: windowZ });
      state.alignmentZ = kept;
      const evidence = kept.reduce((sum, w) => sum + w.z, 0) / Math.sqrt(alignmentWindows);
      const uncorrelated = c < UNCORRELATED && medianC >= 4 * UNCORRELATED;
      const fails = evidence > z || uncorrelated;
      if (fails) failed.add(id);
      return {
        id,
        alignment: a,
        z: windowZ,
        evidence,
        correlation: c,
        uncorrelated,
        failed: fails,
      };
    });
  }

  /** The lag-symmetry test over each worker's evidence so far (file comment). */
  private lagSymmetryTest(failed: Set<string>): WindowReport['lags'] {
    const { lagSymmetry, lagZ, lagMinIterations } = this.config;
    if (!lagSymmetry) return [];
    const results: WindowReport['lags'] = [];
    const evidence: { id: string; n: number; mean: number; se: number }[] = [];
    for (const [id, s] of this.workers) {
      const n = s.lagEvidence.count;
      if (this.banned.has(id) || n < lagMinIterations) continue;
      evidence.push({ id, n, ...s.lagEvidence.meanAndError() });
    }
    // Honest workers are exchangeable, so their accumulated means share one value; attackers
    // whose updates carry a time structure of their own (a drift built from the honest past)
    // shift every honest statistic up by a common offset. A majority cannot be replaying, so a
    // positive median of the accumulated means (≥ 3 workers) is such an offset, not evidence:
    // judge against it. A median ≤ 0 changes nothing (the test is then the per-iteration one).
    const center = evidence.length >= 3 ? Math.max(0, middle(evidence.map((e) => e.mean))) : 0;
    for (const { id, n, mean, se } of evidence) {
      const shift = mean - center;
      const z = se > 0 ? shift / se : shift > 0 ? Infinity : 0;
      const boundary = lagBoundary(lagZ, lagMinIterations, n);
      const fails = z > boundary;
      if (fails) failed.add(id);
      results.push({ id, shift, z, iterations: n, boundary, failed: fails });
    }
    return results;
  }
}
