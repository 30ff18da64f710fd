/**
 * Coordinate-wise trimmed mean (Yin et al. 2018, "Byzantine-robust distributed learning:
 * towards optimal statistical rates").
 *
 * Guarantee: per coordinate, drop the f largest and the f smallest values and average the other
 * n − 2f. If at most f admitted inputs are Byzantine, every value left after trimming lies in the
 * honest box at that coordinate, hence so does the output.
 *
 * Parameters: f. Needs n > 2f admitted inputs; otherwise it falls back to the coordinate-wise
 * median (same box guarantee when honest inputs are a majority). Every admitted input takes part
 * in the per-coordinate ranking, so all are reported as accepted.
 *
 * Paper: the coordinate-wise rules family around LICM-SGD in
 * ../shared/seeds/parle-and-byzantine-filters.md.
 */
import type { Aggregator } from './aggregator.ts';
import { defineAggregator, insertionSort } from './aggregator.ts';
import { coordinateMedianInto } from './coordinate-median.ts';

export function trimmedMeanInto(
  vectors: readonly Float32Array[],
  out: Float32Array,
  f: number,
): void {
  const n = vectors.length;
  if (n <= 2 * f) {
    coordinateMedianInto(vectors, out);
    return;
  }
  const s = new Float64Array(n);
  const inv = 1 / (n - 2 * f);
  for (let j = 0; j < out.length; j++) {
    for (let i = 0; i < n; i++) s[i] = vectors[i]![j]!;
    insertionSort(s, n);
    let sum = 0;
    for (let k = f; k < n - f; k++) sum += s[k]!;
    out[j] = sum * inv;
  }
}

export function createTrimmedMean(): Aggregator {
  return defineAggregator('trimmed-mean', (vectors, out, f) => {
    trimmedMeanInto(vectors, out, f);
    return null;
  });
}
