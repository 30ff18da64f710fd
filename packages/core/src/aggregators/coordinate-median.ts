/**
 * Coordinate-wise median (LICM-SGD style; also Yin et al. 2018).
 *
 * Guarantee: if the honest inputs outnumber the Byzantine ones among the admitted inputs, every
 * output coordinate lies in [min, max] of the honest inputs' values at that coordinate (the
 * honest box). Needs no knowledge of f. For an even count the two middle values are averaged.
 *
 * Parameters: none (`f` is ignored). Cost O(n² d) worst case with an insertion sort of one
 * n-entry scratch array per coordinate — no per-coordinate allocation; 2, 3 and 4 inputs (a
 * cluster's peers: the quarantine's lag-symmetry reference, every iteration in every tab) take
 * min/max comparisons without a scratch array (the same values; a zero may differ in sign).
 *
 * Paper: LICM-SGD (Lipschitz-inspired coordinate-wise median), in
 * ../shared/seeds/parle-and-byzantine-filters.md.
 */
import type { Aggregator } from './aggregator.ts';
import { defineAggregator, insertionSort } from './aggregator.ts';

/** out_j = median_i vectors[i][j]; vectors non-empty, all of length out.length. */
export function coordinateMedianInto(vectors: readonly Float32Array[], out: Float32Array): void {
  const n = vectors.length;
  if (n === 0) {
    out.fill(0);
    return;
  }
  if (n === 1) {
    out.set(vectors[0]!);
    return;
  }
  if (n <= 4) {
    smallMedianInto(vectors, out);
    return;
  }
  const s = new Float64Array(n);
  const lo = (n - 1) >> 1;
  const hi = n >> 1;
  for (let j = 0; j < out.length; j++) {
    for (let i = 0; i < n; i++) s[i] = vectors[i]![j]!;
    insertionSort(s, n);
    out[j] = (s[lo]! + s[hi]!) / 2;
  }
}

/** The median of 2, 3 or 4 values per coordinate: (s[lo] + s[hi]) / 2 of the sorted values. */
function smallMedianInto(vectors: readonly Float32Array[], out: Float32Array): void {
  const a = vectors[0]!;
  const b = vectors[1]!;
  const d = out.length;
  if (vectors.length === 2) {
    for (let j = 0; j < d; j++) out[j] = (a[j]! + b[j]!) / 2;
    return;
  }
  const c = vectors[2]!;
  if (vectors.length === 3) {
    for (let j = 0; j < d; j++) {
      const x = a[j]!;
      const y = b[j]!;
      const z = c[j]!;
      out[j] = Math.max(Math.min(x, y), Math.min(Math.max(x, y), z));
    }
    return;
  }
  const e = vectors[3]!;
  for (let j = 0; j < d; j++) {
    const w = a[j]!;
    const x = b[j]!;
    const y = c[j]!;
    const z = e[j]!;
    // the two middle values of four: the larger of the pair minima, the smaller of the maxima
    const lowPair = Math.max(Math.min(w, x), Math.min(y, z));
    const highPair = Math.min(Math.max(w, x), Math.max(y, z));
    out[j] = (Math.min(lowPair, highPair) + Math.max(lowPair, highPair)) / 2;
  }
}

export function createCoordinateMedian(): Aggregator {
  return defineAggregator('median', (vectors, out) => {
    coordinateMedianInto(vectors, out);
    return null;
  });
}
