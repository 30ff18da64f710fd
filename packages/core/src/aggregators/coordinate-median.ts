/**
 * Coordinate-wise median (LICM-SGD style; also Yin et al. 2018).
 *
 * Guarantee: if the honest inputs outnumber the Byzantine ones among the admitted inputs, every
 * output coordinate lies in [min, max] of the honest inputs' values at that coordinate (the
 * honest box). Needs no knowledge of f. For an even count the two middle values are averaged.
 *
 * Parameters: none (`f` is ignored). Cost O(n² d) worst case with an insertion sort of one
 * n-entry scratch array per coordinate — no per-coordinate allocation.
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
  const s = new Float64Array(n);
  const lo = (n - 1) >> 1;
  const hi = n >> 1;
  for (let j = 0; j < out.length; j++) {
    for (let i = 0; i < n; i++) s[i] = vectors[i]![j]!;
    insertionSort(s, n);
    out[j] = (s[lo]! + s[hi]!) / 2;
  }
}

export function createCoordinateMedian(): Aggregator {
  return defineAggregator('median', (vectors, out) => {
    coordinateMedianInto(vectors, out);
    return null;
  });
}
