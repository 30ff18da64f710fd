/**
 * Gradient coding inside a cluster (Tandon, Lei, Dimakis & Karampatziakis, "Gradient Coding",
 * ICML 2017; used by 1-bit GC-DL, seed ../shared/seeds/one-bit-gradient-coding.md).
 *
 * Guarantee: a cluster of m slots splits its data into m partitions; each slot holds s + 1 of
 * them and sends ONE vector, a linear combination of its partitions' gradients with the
 * coefficients of its row of an m × m encoding matrix B. From the messages of ANY m − s slots
 * (up to s slots lost), `decode` returns weights a with a · B_S = 1, so Σ a_i · message_i is
 * exactly the sum of all m partition gradients (up to floating-point rounding).
 *
 * Parameters: `slots` m ≥ 1, `redundancy` s with 0 ≤ s < m, `scheme`:
 * - 'fractional-repetition': slots form m / (s + 1) groups of s + 1 (requires (s + 1) | m); all
 *   slots of a group hold the same s + 1 partitions with coefficient 1. Decoding takes one live
 *   slot per group, the first one listed in `available`, so callers may order by preference.
 *   Decoding is exact whenever every group has a live slot, which can happen with fewer than
 *   m − s slots.
 * - 'cyclic': slot i holds partitions i, i+1, …, i+s (mod m). B follows Tandon et al.'s
 *   Algorithm 2: pick an s × m matrix H with H · 1 = 0 and give each slot the unique b_i
 *   supported on its partitions with b_i[i] = 1 and H · b_i = 0. All b_i lie in null(H), which
 *   has dimension m − s and contains 1, and any m − s of them span it. A plain random Gaussian
 *   H makes some decodes need weights of 10³–10⁵ (float32 messages lose 3+ digits), so H is a
 *   real Fourier matrix when m − s is odd (a cyclic MDS code, as in Raviv et al. 2018), and
 *   otherwise the best of a few Fourier variants and `seed`-ed Gaussian draws, judged by the
 *   largest decoding weights over the straggler patterns (see cyclicRows). Every member of a
 *   cluster must use the same seed to agree on B. For m ≤ 10 the worst decoding weight is
 *   below ~30; conditioning degrades as m grows (m = 12, s = 6: ~10³), so keep clusters small.
 *   Decoding solves a · B_S = 1 by least squares with a column-pivoted Gram–Schmidt QR in
 *   Float64 (the pivoting picks a well-conditioned subset of at most m − s rows when more are
 *   available) and reports exact only when the residual ‖a · B_S − 1‖∞ ≤ 1e-9.
 *
 * Approximate decode (too few slots, or no exact solution found): the result is
 * `scale · Σ_j c_j g_j` with c = (unscaled weights) · B_S supported on the covered partitions
 * (those held by some available slot) and scale = m / coveredPartitions, so that, for
 * exchangeable partition gradients, the expected result matches the full sum.
 * - fractional repetition: c is exactly 1 on each covered partition (one slot per live group,
 *   no double counting);
 * - cyclic: the rows of B are not 0/1, so no choice of slots counts each covered partition once
 *   in general; we use the least-squares ("optimal decoding") weights, which make c the closest
 *   point to 1 in the span of the available rows. This can be a poor approximation when few
 *   slots remain (c may be far from 1 on some partitions), the price of the cyclic code's
 *   flexibility (any s, no divisibility). Callers that need a predictable approximation should
 *   prefer fractional repetition.
 * Returned weights already include `scale`. With no available slot: all-zero weights,
 * coveredPartitions 0, scale 0.
 */
import { createRng, gaussian } from './random.ts';
import type { Rng } from './random.ts';

export type GradientCodeScheme = 'cyclic' | 'fractional-repetition';

export interface GradientCodeConfig {
  /** Cluster size m (also the number of data partitions). */
  slots: number;
  /** Straggler tolerance s: any m − s slots suffice for an exact decode. */
  redundancy: number;
  scheme: GradientCodeScheme;
  /** Seed for the cyclic code's random matrix; every member of a cluster must use the same. */
  seed?: number;
}

export type DecodeResult =
  | {
      exact: true;
      /** Length m, zero for slots not used. */
      weights: Float64Array;
    }
  | {
      exact: false;
      /** Length m, zero for slots not used, already multiplied by `scale`. */
      weights: Float64Array;
      /** Distinct partitions held by the available slots. */
      coveredPartitions: number;
      /** m / coveredPartitions (0 when nothing is covered). */
      scale: number;
    };

export interface GradientCode {
  readonly slots: number;
  readonly redundancy: number;
  readonly scheme: GradientCodeScheme;
  /** Partition indices held by `slot`, length s + 1. */
  partitionsOf(slot: number): number[];
  /** Row `slot` of B: length m, nonzero only on partitionsOf(slot). A fresh copy. */
  coefficients(slot: number): Float64Array;
  /** Decoding weights from the slots whose messages arrived. */
  decode(available: readonly number[]): DecodeResult;
}

/** Default seed for the cyclic code's matrix, so clusters agree without configuration. */
const DEFAULT_SEED = 0x6c0de;
/** Residual bound (‖a · B_S − 1‖∞) for reporting an exact decode. */
const EXACT_TOLERANCE = 1e-9;
/** Relative pivot bound below which a small linear system counts as singular. */
const PIVOT_TOLERANCE = 1e-9;
/** Cyclic construction with m − s even: candidate matrices compared. */
const FOURIER_PHASES = 8;
const GAUSSIAN_DRAWS = 8;
/** Work bound (≈ flops) for scoring candidates, and the fewest patterns scored when sampling. */
const SEARCH_BUDGET = 1e7;
const MIN_PATTERNS = 64;

export function createGradientCode(config: GradientCodeConfig): GradientCode {
  const { slots: m, redundancy: s, scheme } = config;
  if (!Number.isInteger(m) || m < 1) {
    throw new RangeError(`gradient code: slots must be an integer ≥ 1, got ${m}`);
  }
  if (!Number.isInteger(s) || s < 0 || s >= m) {
    throw new RangeError(
      `gradient code: redundancy must be an integer with 0 ≤ s < slots (${m}), got ${s}`,
    );
  }
  if (scheme !== 'cyclic' && scheme !== 'fractional-repetition') {
    throw new RangeError(`gradient code: unknown scheme '${String(scheme)}'`);
  }
  if (scheme === 'fractional-repetition' && m % (s + 1) !== 0) {
    throw new RangeError(
      `gradient code: fractional repetition needs redundancy + 1 (${s + 1}) to divide slots (${m})`,
    );
  }
  const seed = config.seed ?? DEFAULT_SEED;
  if (!Number.isInteger(seed)) {
    throw new RangeError(`gradient code: seed must be an integer, got ${seed}`);
  }

  const partitions: number[][] = [];
  for (let i = 0; i < m; i++) partitions.push(holdings(scheme, m, s, i));
  const rows =
    scheme === 'cyclic'
      ? cyclicRows(m, s, partitions, createRng(seed))
      : partitions.map((held) => indicator(m, held));

  const checkSlot = (slot: number): void => {
    if (!Number.isInteger(slot) || slot < 0 || slot >= m) {
      throw new RangeError(`gradient code: slot must be an integer in [0, ${m}), got ${slot}`);
    }
  };

  return {
    slots: m,
    redundancy: s,
    scheme,
    partitionsOf(slot: number): number[] {
      checkSlot(slot);
      return [...partitions[slot]!];
    },
    coefficients(slot: number): Float64Array {
      checkSlot(slot);
      return Float64Array.from(rows[slot]!);
    },
    decode(available: readonly number[]): DecodeResult {
      const live: number[] = [];
      for (const slot of available) {
        checkSlot(slot);
        if (!live.includes(slot)) live.push(slot);
      }
      return scheme === 'cyclic'
        ? decodeByLeastSquares(m, rows, partitions, live)
        : decodeFractionalRepetition(m, s, partitions, live);
    },
  };
}

/** out = Σ_j coefficients(slot)[j] · partitionGradients[j] over the slot's partitions. */
export function encodeInto(
  code: GradientCode,
  slot: number,
  partitionGradients: readonly Float32Array[],
  out: Float32Array,
): void {
  const held = code.partitionsOf(slot);
  const b = code.coefficients(slot);
  const terms: { coefficient: number; gradient: Float32Array }[] = [];
  for (const j of held) {
    const gradient = partitionGradients[j];
    if (gradient === undefined) {
      throw new RangeError(`encodeInto: slot ${slot} needs the gradient of partition ${j}`);
    }
    if (gradient.length !== out.length) {
      throw new RangeError(
        `encodeInto: partition ${j} gradient has length ${gradient.length}, expected ${out.length}`,
      );
    }
    terms.push({ coefficient: b[j]!, gradient });
  }
  combineInto(terms, out);
}

/**
 * out = Σ_i weights[i] · messages[i] (overwrites out; may alias a message). Messages of slots
 * with weight 0 may be absent; a missing message with nonzero weight throws.
 */
export function decodeInto(
  result: DecodeResult,
  messages: ReadonlyMap<number, Float32Array> | readonly (Float32Array | undefined)[],
  out: Float32Array,
): void {
  const messageOf = isMap(messages) ? (i: number) => messages.get(i) : (i: number) => messages[i];
  const terms: { coefficient: number; gradient: Float32Array }[] = [];
  for (let i = 0; i < result.weights.length; i++) {
    const w = result.weights[i]!;
    if (w === 0) continue;
    const message = messageOf(i);
    if (message === undefined) {
      throw new RangeError(`decodeInto: slot ${i} has weight ${w} but no message`);
    }
    if (message.length !== out.length) {
      throw new RangeError(
        `decodeInto: slot ${i} message has length ${message.length}, expected ${out.length}`,
      );
    }
    terms.push({ coefficient: w, gradient: message });
  }
  combineInto(terms, out);
}

// ---------------------------------------------------------------------------------------------

function isMap<K, V>(x: ReadonlyMap<K, V> | readonly unknown[]): x is ReadonlyMap<K, V> {
  return x instanceof Map;
}

/**
 * out = Σ coefficient · gradient, accumulated in Float64 per coordinate; each coordinate is read
 * before it is written, so out may alias one of the gradients.
 */
function combineInto(
  terms: readonly { coefficient: number; gradient: Float32Array }[],
  out: Float32Array,
): void {
  const coefficients = terms.map((t) => t.coefficient);
  const gradients = terms.map((t) => t.gradient);
  const n = terms.length;
  for (let k = 0; k < out.length; k++) {
    let sum = 0;
    for (let t = 0; t < n; t++) sum += coefficients[t]! * gradients[t]![k]!;
    out[k] = sum;
  }
}

function holdings(scheme: GradientCodeScheme, m: number, s: number, slot: number): number[] {
  const first = scheme === 'cyclic' ? slot : slot - (slot % (s + 1));
  const held: number[] = [];
  for (let t = 0; t <= s; t++) held.push((first + t) % m);
  return held;
}

function indicator(m: number, held: readonly number[]): Float64Array {
  const row = new Float64Array(m);
  for (const j of held) row[j] = 1;
  return row;
}

/**
 * Rows of B for the cyclic scheme, following Tandon et al.'s Algorithm 2: for an s × m matrix
 * H with H · 1 = 0, row i is the unique b_i supported on slot i's partitions with b_i[i] = 1
 * and H · b_i = 0. Which H matters a great deal numerically: a plain Gaussian draw can need
 * decoding weights of 10³–10⁵ for some straggler patterns already at m ≈ 10, which float32
 * messages, let alone 1-bit ones, do not survive.
 * - m − s odd: H = the real Fourier vectors of the s highest frequencies ((−1)^j when m is even,
 *   then cos/sin pairs). null(H) is then a real cyclic MDS (BCH-like) code containing 1, B is
 *   circulant and any m − s rows span null(H) (Raviv, Tamo, Tandon & Dimakis, "Gradient coding
 *   from cyclic MDS codes and expander graphs", 2018). Deterministic; the seed is not used.
 * - m − s even: no real cyclic code of that dimension fits, so candidates are compared: the
 *   Fourier matrix whose last frequency is used by a single cosine, at FOURIER_PHASES phases,
 *   and GAUSSIAN_DRAWS seeded Gaussian draws with centred rows (Algorithm 2 proper). The one
 *   whose worst straggler pattern needs the smallest decoding weights is kept. Patterns are all
 *   (m − s)-subsets of slots when the work fits in SEARCH_BUDGET (then every such decode is
 *   verified exact here), otherwise a seeded sample of them.
 */
function cyclicRows(m: number, s: number, partitions: number[][], rng: Rng): Float64Array[] {
  if ((m - s) % 2 === 1) {
    const rows = nullSpaceRows(realFourier(m, s, 0), m, partitions);
    if (rows === undefined) throw new Error(`gradient code: singular Fourier code m=${m}, s=${s}`);
    return rows;
  }
  const candidates: Float64Array[][] = [];
  for (let t = 0; t < FOURIER_PHASES; t++) {
    candidates.push(realFourier(m, s, (Math.PI * (t + 0.5)) / FOURIER_PHASES));
  }
  for (let t = 0; t < GAUSSIAN_DRAWS; t++) candidates.push(centredGaussian(s, m, rng));
  const costPerPattern = candidates.length * m * (m - s) ** 2;
  const maxPatterns = Math.max(MIN_PATTERNS, Math.floor(SEARCH_BUDGET / costPerPattern));
  const patterns = stragglerPatterns(m, m - s, maxPatterns, rng);

  let best: Float64Array[] | undefined;
  let bestScore = Infinity;
  for (const h of candidates) {
    const rows = nullSpaceRows(h, m, partitions);
    if (rows === undefined) continue;
    const score = worstAmplification(rows, patterns);
    if (score < bestScore) {
      best = rows;
      bestScore = score;
    }
  }
  if (best === undefined) {
    throw new Error(`gradient code: no usable cyclic matrix for m=${m}, s=${s}`);
  }
  return best;
}

/** b_i: solve H[:, others] x = −H[:, i] over the other s partitions slot i holds. */
function nullSpaceRows(
  h: readonly Float64Array[],
  m: number,
  partitions: readonly number[][],
): Float64Array[] | undefined {
  const rows: Float64Array[] = [];
  for (let i = 0; i < m; i++) {
    const others = partitions[i]!.slice(1);
    const system = h.map((hr) => Float64Array.from(others, (j) => hr[j]!));
    const x = solveSquare(
      system,
      Float64Array.from(h, (hr) => -hr[i]!),
    );
    if (x === undefined) return undefined;
    const row = new Float64Array(m);
    row[i] = 1;
    others.forEach((j, t) => (row[j] = x[t]!));
    rows.push(row);
  }
  return rows;
}

/**
 * s rows of real Fourier vectors, highest frequencies first: (−1)^j when m is even, then
 * cos and sin of 2πkj/m for k = ⌊(m−1)/2⌋, ⌊(m−1)/2⌋ − 1, …; a frequency of which only one row
 * fits is used as cos(2πkj/m + phase). Every row sums to zero, so H · 1 = 0.
 */
function realFourier(m: number, s: number, phase: number): Float64Array[] {
  const wave = (k: number, shift: number): Float64Array =>
    Float64Array.from({ length: m }, (_, j) => Math.cos((2 * Math.PI * k * j) / m + shift));
  const h: Float64Array[] = [];
  if (m % 2 === 0 && s > 0) h.push(wave(m / 2, 0));
  for (let k = Math.floor((m - 1) / 2); h.length < s; k--) {
    if (h.length + 1 === s) h.push(wave(k, phase));
    else h.push(wave(k, 0), wave(k, Math.PI / 2));
  }
  return h;
}

function centredGaussian(rowsCount: number, cols: number, rng: Rng): Float64Array[] {
  const h: Float64Array[] = [];
  for (let r = 0; r < rowsCount; r++) {
    const row = Float64Array.from({ length: cols }, () => gaussian(rng));
    const mean = row.reduce((sum, v) => sum + v, 0) / cols;
    for (let c = 0; c < cols; c++) row[c]! -= mean;
    h.push(row);
  }
  return h;
}

/** All k-subsets of the m slots if there are at most `limit`, else `limit` seeded random ones. */
function stragglerPatterns(m: number, k: number, limit: number, rng: Rng): number[][] {
  let count = 1;
  for (let t = 0; t < k; t++) count = (count * (m - t)) / (t + 1);
  const patterns: number[][] = [];
  if (count <= limit) {
    const pick = (start: number, chosen: number[]): void => {
      if (chosen.length === k) {
        patterns.push([...chosen]);
        return;
      }
      for (let i = start; i <= m - (k - chosen.length); i++) pick(i + 1, [...chosen, i]);
    };
    pick(0, []);
    return patterns;
  }
  for (let p = 0; p < limit; p++) {
    const slots = Array.from({ length: m }, (_, i) => i);
    for (let t = 0; t < k; t++) {
      const u = t + Math.floor(rng.next() * (m - t));
      [slots[t], slots[u]] = [slots[u]!, slots[t]!];
    }
    patterns.push(slots.slice(0, k));
  }
  return patterns;
}

/**
 * Largest error amplification Σ_i |a_i| · ‖b_i‖₁ / m over the patterns (Infinity if one does not
 * decode exactly): how much the decode can magnify rounding or quantisation noise in messages.
 */
function worstAmplification(rows: readonly Float64Array[], patterns: readonly number[][]): number {
  let worst = 0;
  for (const live of patterns) {
    const { weights, residual } = solveForOnes(rows, live);
    if (!(residual <= EXACT_TOLERANCE)) return Infinity;
    let amplification = 0;
    for (const slot of live) {
      const norm1 = rows[slot]!.reduce((sum, v) => sum + Math.abs(v), 0);
      amplification += Math.abs(weights[slot]!) * norm1;
    }
    worst = Math.max(worst, amplification / rows.length);
  }
  return worst;
}

/**
 * Solve A x = rhs (n × n, rows given) by Gaussian elimination with partial pivoting.
 * Returns undefined when a pivot is tiny relative to the matrix's largest entry.
 */
function solveSquare(a: readonly Float64Array[], rhs: Float64Array): Float64Array | undefined {
  const n = rhs.length;
  const work = a.map((row) => Float64Array.from(row));
  const b = Float64Array.from(rhs);
  let norm = 0;
  for (const row of work) for (const v of row) norm = Math.max(norm, Math.abs(v));
  for (let col = 0; col < n; col++) {
    let pivot = col;
    for (let r = col + 1; r < n; r++) {
      if (Math.abs(work[r]![col]!) > Math.abs(work[pivot]![col]!)) pivot = r;
    }
    if (!(Math.abs(work[pivot]![col]!) > PIVOT_TOLERANCE * norm)) return undefined;
    [work[col], work[pivot]] = [work[pivot]!, work[col]!];
    [b[col], b[pivot]] = [b[pivot]!, b[col]!];
    const top = work[col]!;
    for (let r = col + 1; r < n; r++) {
      const row = work[r]!;
      const f = row[col]! / top[col]!;
      if (f === 0) continue;
      for (let c = col; c < n; c++) row[c]! -= f * top[c]!;
      b[r]! -= f * b[col]!;
    }
  }
  const x = new Float64Array(n);
  for (let r = n - 1; r >= 0; r--) {
    const row = work[r]!;
    let sum = b[r]!;
    for (let c = r + 1; c < n; c++) sum -= row[c]! * x[c]!;
    x[r] = sum / row[r]!;
  }
  return x;
}

function decodeFractionalRepetition(
  m: number,
  s: number,
  partitions: readonly number[][],
  live: readonly number[],
): DecodeResult {
  const groups = m / (s + 1);
  const chosen = new Map<number, number>();
  for (const slot of live) {
    const group = Math.floor(slot / (s + 1));
    if (!chosen.has(group)) chosen.set(group, slot);
  }
  const weights = new Float64Array(m);
  if (chosen.size === groups) {
    for (const slot of chosen.values()) weights[slot] = 1;
    return { exact: true, weights };
  }
  const covered = coveredCount(m, partitions, live);
  const scale = covered === 0 ? 0 : m / covered;
  for (const slot of chosen.values()) weights[slot] = scale;
  return { exact: false, weights, coveredPartitions: covered, scale };
}

function coveredCount(m: number, partitions: readonly number[][], live: readonly number[]): number {
  const covered = new Uint8Array(m);
  for (const slot of live) for (const j of partitions[slot]!) covered[j] = 1;
  return covered.reduce((n, c) => n + c, 0);
}

/**
 * Least-squares a with a · B_live ≈ 1 (exact when 1 is in the span of the live rows), then the
 * exact / approximate verdict from the residual. See the file comment for the approximation.
 */
function decodeByLeastSquares(
  m: number,
  rows: readonly Float64Array[],
  partitions: readonly number[][],
  live: readonly number[],
): DecodeResult {
  if (live.length === 0) {
    return { exact: false, weights: new Float64Array(m), coveredPartitions: 0, scale: 0 };
  }
  const { weights, residual } = solveForOnes(rows, live);
  if (residual <= EXACT_TOLERANCE) return { exact: true, weights };
  const covered = coveredCount(m, partitions, live);
  const scale = m / covered;
  for (let i = 0; i < m; i++) weights[i]! *= scale;
  return { exact: false, weights, coveredPartitions: covered, scale };
}

/** Least-squares weights (length m, zero off `live`) for a · B_live ≈ 1, and ‖a · B_live − 1‖∞. */
function solveForOnes(
  rows: readonly Float64Array[],
  live: readonly number[],
): { weights: Float64Array; residual: number } {
  const m = rows.length;
  const liveRows = live.map((slot) => rows[slot]!);
  const a = leastSquaresCombination(liveRows, new Float64Array(m).fill(1));
  const weights = new Float64Array(m);
  const combined = new Float64Array(m);
  live.forEach((slot, t) => {
    weights[slot] = a[t]!;
    for (let j = 0; j < m; j++) combined[j]! += a[t]! * liveRows[t]![j]!;
  });
  let residual = 0;
  for (let j = 0; j < m; j++) residual = Math.max(residual, Math.abs(combined[j]! - 1));
  return { weights, residual };
}

/**
 * Coefficients y (one per given row) minimising ‖Σ_t y_t · rows[t] − target‖₂, by a
 * column-pivoted Gram–Schmidt QR of the matrix whose columns are the rows: at each step take
 * the row with the largest component orthogonal to those already taken (stopping when none is
 * left above a relative rank tolerance), orthogonalise twice for stability, then solve
 * R y = Qᵀ target. Rows not taken get coefficient 0.
 */
function leastSquaresCombination(
  rows: readonly Float64Array[],
  target: Float64Array,
): Float64Array {
  const n = rows.length;
  const dim = target.length;
  let largestNorm = 0;
  for (const row of rows) largestNorm = Math.max(largestNorm, Math.sqrt(dot64(row, row)));
  const rankTolerance = 1e-10 * largestNorm;

  const q: Float64Array[] = [];
  const pivots: number[] = [];
  const remaining = rows.map((row) => Float64Array.from(row));
  const taken = new Array<boolean>(n).fill(false);
  while (pivots.length < Math.min(n, dim)) {
    let best = -1;
    let bestNorm = rankTolerance;
    for (let t = 0; t < n; t++) {
      if (taken[t]) continue;
      const norm = Math.sqrt(dot64(remaining[t]!, remaining[t]!));
      if (norm > bestNorm) {
        best = t;
        bestNorm = norm;
      }
    }
    if (best < 0) break;
    taken[best] = true;
    pivots.push(best);
    const v = Float64Array.from(rows[best]!);
    for (let pass = 0; pass < 2; pass++) {
      for (const qj of q) subtractProjection(v, qj);
    }
    const norm = Math.sqrt(dot64(v, v));
    for (let j = 0; j < dim; j++) v[j]! /= norm;
    q.push(v);
    for (let t = 0; t < n; t++) if (!taken[t]) subtractProjection(remaining[t]!, v);
  }

  // rows[pivots[c]] = Σ_{r ≤ c} R[r][c] q_r; solve R y = Qᵀ target by back-substitution.
  const r = pivots.length;
  const y = new Float64Array(r);
  for (let i = r - 1; i >= 0; i--) {
    let sum = dot64(q[i]!, target);
    for (let c = i + 1; c < r; c++) sum -= dot64(q[i]!, rows[pivots[c]!]!) * y[c]!;
    y[i] = sum / dot64(q[i]!, rows[pivots[i]!]!);
  }
  const coefficients = new Float64Array(n);
  pivots.forEach((p, i) => (coefficients[p] = y[i]!));
  return coefficients;
}

function dot64(a: Float64Array, b: Float64Array): number {
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += a[i]! * b[i]!;
  return sum;
}

/** v ← v − (q·v) q for a unit vector q. */
function subtractProjection(v: Float64Array, q: Float64Array): void {
  const c = dot64(q, v);
  for (let i = 0; i < v.length; i++) v[i]! -= c * q[i]!;
}
