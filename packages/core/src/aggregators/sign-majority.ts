/**
 * Sign majority vote (signSGD-MV: Bernstein, Zhao, Azizzadenesheli, Anandkumar 2019, "signSGD
 * with majority vote is communication efficient and fault tolerant").
 *
 * out_j = s · sign(Σ_i sign(x_ij))  (0 on a tied vote), with the magnitude
 * s = median over the admitted inputs of mean_j |x_ij|, so the output has the typical per-
 * coordinate size of an update instead of ±1 (the paper steps with η·sign; here s plays η's part
 * and the caller's learning rate still applies).
 *
 * Guarantee: with honest inputs a strict majority of the admitted ones, s lies in
 * [min, max] of the honest inputs' mean |x|, every |out_j| ≤ that max, and wherever all honest
 * inputs agree on a strict sign at a coordinate the output has that sign. It does not stay in the
 * honest box: the output is ±s or 0 whatever the honest magnitudes at that coordinate.
 *
 * Parameters: none (`f` is ignored; the vote tolerates any Byzantine minority). All admitted
 * inputs vote, so all are accepted.
 *
 * Paper: signSGD-MV (compared in ../shared/ANCHORS.md); 1-bit coding in
 * ../shared/seeds/one-bit-gradient-coding.md.
 */
import type { Aggregator } from './aggregator.ts';
import { defineAggregator, insertionSort } from './aggregator.ts';

/** The magnitude s: median over inputs of mean |x|. */
export function signMajorityScale(vectors: readonly Float32Array[]): number {
  const n = vectors.length;
  if (n === 0) return 0;
  const m = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const v = vectors[i]!;
    let s = 0;
    for (let j = 0; j < v.length; j++) s += Math.abs(v[j]!);
    m[i] = v.length === 0 ? 0 : s / v.length;
  }
  insertionSort(m, n);
  return (m[(n - 1) >> 1]! + m[n >> 1]!) / 2;
}

export function signMajorityInto(vectors: readonly Float32Array[], out: Float32Array): void {
  const scale = signMajorityScale(vectors);
  const n = vectors.length;
  for (let j = 0; j < out.length; j++) {
    let votes = 0;
    for (let i = 0; i < n; i++) {
      const x = vectors[i]![j]!;
      if (x > 0) votes++;
      else if (x < 0) votes--;
    }
    out[j] = votes > 0 ? scale : votes < 0 ? -scale : 0;
  }
}

export function createSignMajority(): Aggregator {
  return defineAggregator('sign-majority', (vectors, out) => {
    signMajorityInto(vectors, out);
    return null;
  });
}
