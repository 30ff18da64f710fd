/**
 * The coordinator's Byzantine-tolerant agreement (rounds.ts `robustAgreement`) computed on
 * proposals that arrive as sign frames (the one-bit and stochastic one-bit codecs), without
 * decoding them.
 *
 * Guarantee: the same rule as robustAgreement — norm clipping to clip × the lower median
 * update norm, then per coordinate the t = trimCount(n) lowest and t highest proposals dropped
 * and the rest averaged ('trimmed-mean') or reduced to their midpoint ('midpoint') — so the
 * same validity (with at most t Byzantine proposals every output coordinate lies between the
 * lowest and highest correct clipped proposal) and the same trimmed/clipped counts. Its output
 * equals robustAgreement's on the decoded updates up to float rounding: a proposal's value at a
 * coordinate is taken as base + u in float64, where robustAgreement rounds it to float32 first
 * (tests bound the difference by a few float32 ulps of the base).
 *
 * Why it is fast: in a sign frame, coordinate i of proposal c is ±v_c,k, one magnitude per
 * proposal and block k. Sorting the n magnitudes of a block once orders every coordinate's
 * column of that block: the lowest values are the negatives of largest magnitude, the highest
 * the positives of largest magnitude. Per coordinate, a walk down that order collects the t + 1
 * lowest and t + 1 highest (about 2t steps when the signs are balanced, at most n), and the sum
 * of all values is 2·(sum of the positive magnitudes) − (sum of all), taken per sign word by
 * visiting its set bits (from 256 proposals on, through one bucket per byte pattern of each of
 * the word's four bytes, spread over the pattern's bits once per word). No k·d copy into coordinate-major columns and no selection: at 1,250
 * proposals × 7,850 parameters the generic path spent ~200 ms per close on those
 * (docs/benchmarks.md, `npm run bench -- agreement`).
 *
 * Parameters: as robustAgreement (trim, trimFloor, clip, estimator). Every proposal must share
 * one block size; signAgreement returns undefined otherwise (the caller falls back).
 *
 * Paper: seed 000 (majority-cluster approximate agreement); the sign payload of
 * 1-bit gradient coding (shared/seeds/one-bit-gradient-coding.md).
 */
import { parseFrame } from '@swarmgrad/protocol';
import { DEFAULT_AGREEMENT_ESTIMATOR, trimCount, type AgreementEstimator } from './agreement.ts';
import { alignedBytes } from './codec/codec.ts';
import { isValidSignBlockSize, signPayloadBytes, signViews } from './codec/one-bit.ts';

/** A proposal held as a sign payload: decoded value of coordinate i = factor·(±scale_k). */
export interface SignUpdate {
  blockSize: number;
  /** One scale ≥ 0 per block of blockSize coordinates. */
  scales: Float32Array;
  /** ⌈d/32⌉ words; bit j of word w is coordinate 32w + j, 1 = +scale. */
  words: Uint32Array;
  /**
   * Multiplies every decoded value, rounded to float32 as a scaled Float32Array update would be
   * (a staleness step scale); 1 for none.
   */
  factor: number;
}

const MAX_FLOAT32 = 3.4028234663852886e38;

/**
 * From this many proposals the positive sums of a word's 32 coordinates are taken through byte
 * buckets (4 adds per proposal, then ~4,000 to spread the buckets) instead of one add per set
 * bit (~16 per proposal): above ~250 proposals the buckets cost less.
 */
const BYTE_BUCKETS_FROM = 256;

/**
 * The sign payload of an update frame of this job and dimension, or undefined when the frame
 * is not a valid sign frame (another codec, a bad checksum or header, a scale that is not a
 * finite number ≥ 0). The views alias the frame's bytes (copied only when misaligned).
 */
export function signUpdateOfFrame(
  frame: Uint8Array,
  expect: { dimension: number; jobId: number },
  factor = 1,
): SignUpdate | undefined {
  const parsed = parseFrame(frame);
  if (!parsed.ok) return undefined;
  const { header, payload } = parsed.value;
  if (header.codec !== 'one-bit' && header.codec !== 'stochastic-one-bit') return undefined;
  if (header.jobId !== expect.jobId >>> 0 || header.dimension !== expect.dimension)
    return undefined;
  if (!isValidSignBlockSize(header.blockSize) || !(factor > 0 && factor <= 1)) return undefined;
  if (payload.byteLength !== signPayloadBytes(header.dimension, header.blockSize)) return undefined;
  const { scales, words } = signViews(alignedBytes(payload, 4), header.dimension, header.blockSize);
  for (const s of scales) if (!(s >= 0 && s <= MAX_FLOAT32)) return undefined;
  return { blockSize: header.blockSize, scales, words, factor };
}

export interface SignAgreementOptions {
  trim: number;
  clip: number;
  estimator?: AgreementEstimator | undefined;
  trimFloor?: number | undefined;
}

/**
 * robustAgreement over sign updates relative to `base` (see the file comment), or undefined
 * when the updates do not share one block size.
 */
export function signAgreement(
  base: Float32Array,
  updates: readonly SignUpdate[],
  options: SignAgreementOptions,
): { agreed: Float32Array; spread: number; trimmed: number; clipped: number } | undefined {
  const n = updates.length;
  const d = base.length;
  if (n === 0) throw new RangeError('signAgreement: no proposals');
  const B = updates[0]!.blockSize;
  const blocks = Math.ceil(d / B);
  const wordCount = Math.ceil(d / 32);
  for (const u of updates) {
    if (u.blockSize !== B || u.scales.length !== blocks || u.words.length !== wordCount)
      return undefined;
  }
  // |decoded value| per proposal and block, as a decoded (and scaled) Float32Array holds it
  const magnitudes = new Float64Array(n * blocks);
  const norms = new Float64Array(n);
  for (let c = 0; c < n; c++) {
    const { scales, factor } = updates[c]!;
    let sq = 0;
    for (let k = 0; k < blocks; k++) {
      const m = factor === 1 ? scales[k]! : Math.fround(scales[k]! * factor);
      magnitudes[c * blocks + k] = m;
      sq += m * m * (Math.min(d, (k + 1) * B) - k * B);
    }
    norms[c] = Math.sqrt(sq);
  }
  const sorted = Float64Array.from(norms).sort();
  const bound = options.clip * sorted[Math.floor((n - 1) / 2)]!;
  let clipped = 0;
  for (let c = 0; c < n; c++) {
    const norm = norms[c]!;
    if (norm > bound && norm > 0) {
      clipped++;
      const scale = bound / norm;
      for (let k = 0; k < blocks; k++) magnitudes[c * blocks + k]! *= scale;
    }
  }
  const t = trimCount(n, options.trim, options.trimFloor ?? 1);
  const midpoint = (options.estimator ?? DEFAULT_AGREEMENT_ESTIMATOR) === 'midpoint';
  const kept = n - 2 * t;
  const agreed = new Float32Array(d);
  const order = new Int32Array(n);
  const values = new Float64Array(n); // magnitudes of the block, in `order`
  const column = new Uint32Array(n); // one sign word of every proposal, in `order`
  const positiveSum = new Float64Array(32);
  const wordsInOrder: Uint32Array[] = new Array<Uint32Array>(n);
  const byteBuckets = n >= BYTE_BUCKETS_FROM ? new Float64Array(4 * 256) : undefined;
  let spread = 0;
  for (let k = 0; k < blocks; k++) {
    for (let c = 0; c < n; c++) order[c] = c;
    // largest magnitude first; ties by proposal, so the order is a function of the inputs
    order.sort((a, b) => magnitudes[b * blocks + k]! - magnitudes[a * blocks + k]! || a - b);
    let total = 0;
    for (let r = 0; r < n; r++) {
      values[r] = magnitudes[order[r]! * blocks + k]!;
      total += values[r]!;
    }
    const firstWord = (k * B) >>> 5;
    const endWord = Math.min(wordCount, ((k + 1) * B) >>> 5);
    for (let r = 0; r < n; r++) wordsInOrder[r] = updates[order[r]!]!.words;
    for (let w = firstWord; w < endWord; w++) {
      positiveSum.fill(0);
      if (byteBuckets === undefined) {
        for (let r = 0; r < n; r++) {
          let word = wordsInOrder[r]![w]!;
          column[r] = word;
          const v = values[r]!;
          while (word !== 0) {
            const lowest = word & -word;
            positiveSum[31 - Math.clz32(lowest)]! += v;
            word ^= lowest;
          }
        }
      } else {
        // many proposals: add each value once per byte of its word, into the bucket of that
        // byte's pattern, then spread the 4 × 256 buckets over the bits they stand for
        byteBuckets.fill(0);
        for (let r = 0; r < n; r++) {
          const word = wordsInOrder[r]![w]!;
          column[r] = word;
          const v = values[r]!;
          byteBuckets[word & 255]! += v;
          byteBuckets[256 + ((word >>> 8) & 255)]! += v;
          byteBuckets[512 + ((word >>> 16) & 255)]! += v;
          byteBuckets[768 + (word >>> 24)]! += v;
        }
        for (let lane = 0; lane < 4; lane++) {
          for (let pattern = 1; pattern < 256; pattern++) {
            const bucket = byteBuckets[lane * 256 + pattern]!;
            if (bucket === 0) continue;
            let bits = pattern;
            while (bits !== 0) {
              const lowest = bits & -bits;
              positiveSum[lane * 8 + 31 - Math.clz32(lowest)]! += bucket;
              bits ^= lowest;
            }
          }
        }
      }
      const width = Math.min(32, d - 32 * w);
      for (let j = 0; j < width; j++) {
        const i = 32 * w + j;
        // ascending, the column is: negatives in `order` (−values[r]), then positives in
        // reverse `order`; the t lowest and the (t+1)-th lowest (lo) come first, the t highest
        // and hi first from the other end
        let zeros = 0;
        let ones = 0;
        let lowSum = 0;
        let highSum = 0;
        let lo = 0;
        let hi = 0;
        for (let r = 0; r < n && (zeros <= t || ones <= t); r++) {
          if ((column[r]! >>> j) & 1) {
            if (ones < t) highSum += values[r]!;
            else if (ones === t) hi = values[r]!;
            ones++;
          } else {
            if (zeros < t) lowSum -= values[r]!;
            else if (zeros === t) lo = -values[r]!;
            zeros++;
          }
        }
        // fewer than t + 1 negatives: the lowest go on with the positives of least magnitude;
        // fewer than t + 1 positives: the highest go on with the negatives of least magnitude
        for (let r = n - 1; zeros <= t && r >= 0; r--) {
          if ((column[r]! >>> j) & 1) {
            if (zeros < t) lowSum += values[r]!;
            else lo = values[r]!;
            zeros++;
          }
        }
        for (let r = n - 1; ones <= t && r >= 0; r--) {
          if (!((column[r]! >>> j) & 1)) {
            if (ones < t) highSum -= values[r]!;
            else hi = -values[r]!;
            ones++;
          }
        }
        const sum = 2 * positiveSum[j]! - total - lowSum - highSum;
        agreed[i] = base[i]! + (midpoint ? (lo + hi) / 2 : sum / kept);
        if (hi - lo > spread) spread = hi - lo;
      }
    }
  }
  return { agreed, spread, trimmed: t, clipped };
}
