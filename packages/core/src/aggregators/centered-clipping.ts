/**
 * Centered clipping (Karimireddy, He, Jaggi 2021, "Learning from history for Byzantine robust
 * optimization").
 *
 * From a start center v₀ iterate  v ← v + (1/n) Σ_i clip(x_i − v, τ),  clip(z, τ) = z·min(1, τ/‖z‖),
 * for `iterations` rounds. Each clipped term is λ_i(x_i − v) with λ_i ∈ [0, 1], so every step is
 * a convex combination of v and the inputs: the output stays in the box of v₀ and the inputs.
 *
 * Guarantee (default center = coordinate-wise median): with honest inputs a majority of the n
 * admitted ones, v₀ lies in the honest box and the default τ (lower median of the distances
 * ‖x_i − v₀‖) is ≤ the largest honest distance to v₀ ≤ the honest box diagonal. Each step moves
 * the honest part by a convex combination (never away from the honest box) and the b Byzantine
 * terms by at most (b/n)·τ in total, so the output's L2 distance to the honest box is
 * ≤ iterations·(b/n)·τ; with no Byzantine input it stays in the honest box. A caller-provided
 * center adds its own distance to the box to that bound.
 *
 * Parameters: τ (`tau`, default above), `iterations` (default 3), `center` (e.g. the previous
 * aggregate, as the paper's momentum variant does; falls back to the median when missing, of the
 * wrong length or non-finite). Every admitted input takes part (clipped), so all are accepted.
 *
 * Paper: centered clipping, the rule DISCO uses (../shared/ANCHORS.md); related filters in
 * ../shared/seeds/parle-and-byzantine-filters.md.
 */
import type { Aggregator, CenteredClippingParams } from './aggregator.ts';
import { defineAggregator, insertionSort } from './aggregator.ts';
import { coordinateMedianInto } from './coordinate-median.ts';
import { allFinite, squaredDistance } from '../vector.ts';

export const CENTERED_CLIPPING_DEFAULT_ITERATIONS = 3;

export function centeredClippingInto(
  vectors: readonly Float32Array[],
  out: Float32Array,
  params: CenteredClippingParams = {},
): void {
  const n = vectors.length;
  const center = typeof params.center === 'function' ? params.center() : params.center;
  if (center !== undefined && center.length === out.length && allFinite(center)) {
    out.set(center);
  } else {
    coordinateMedianInto(vectors, out);
  }
  const dist = new Float64Array(n);
  for (let i = 0; i < n; i++) dist[i] = Math.sqrt(squaredDistance(vectors[i]!, out));
  let tau = params.tau;
  if (tau === undefined) {
    const sorted = dist.slice();
    insertionSort(sorted, n);
    tau = sorted[(n - 1) >> 1]!;
  }
  const iterations = params.iterations ?? CENTERED_CLIPPING_DEFAULT_ITERATIONS;
  const weight = new Float64Array(n);
  const inv = 1 / n;
  for (let t = 0; t < iterations; t++) {
    if (t > 0) for (let i = 0; i < n; i++) dist[i] = Math.sqrt(squaredDistance(vectors[i]!, out));
    let moving = false;
    for (let i = 0; i < n; i++) {
      const d = dist[i]!;
      weight[i] = d <= tau ? 1 : tau / d;
      if (d > 0 && weight[i]! > 0) moving = true;
    }
    if (!moving) break;
    // Coordinate j of the step only reads the old out[j], so updating in place is exact.
    for (let j = 0; j < out.length; j++) {
      const v = out[j]!;
      let s = 0;
      for (let i = 0; i < n; i++) s += weight[i]! * (vectors[i]![j]! - v);
      out[j] = v + s * inv;
    }
  }
}

export function createCenteredClipping(params: CenteredClippingParams = {}): Aggregator {
  const { tau, iterations } = params;
  if (tau !== undefined && !(tau >= 0 && Number.isFinite(tau))) {
    throw new RangeError(`centered-clipping: tau must be finite and ≥ 0, got ${tau}`);
  }
  if (iterations !== undefined && (!Number.isInteger(iterations) || iterations < 1)) {
    throw new RangeError(
      `centered-clipping: iterations must be a positive integer, got ${iterations}`,
    );
  }
  return defineAggregator('centered-clipping', (vectors, out) => {
    centeredClippingInto(vectors, out, params);
    return null;
  });
}
