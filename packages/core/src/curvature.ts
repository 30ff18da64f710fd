/**
 * A job-level curvature estimate for the staleness analysis (sdde.ts needs the Hessian's top
 * eigenvalue h): the top Hessian eigenvalue of softmax regression at uniform predictions,
 * (1/K)·λ_max(E[x̃x̃ᵀ]) with x̃ = [x, 1] over the inputs and K classes.
 *
 * Guarantee: for softmax regression at its initial point this is the exact top eigenvalue (the
 * Hessian is (1/K)(I − 11ᵀ/K) ⊗ E[x̃x̃ᵀ]) up to the power iteration's convergence; for other
 * models it is the same data-scale stand-in, since their curvature is not measured online.
 * Parameters: the inputs (row-major, `count` rows), K, power-iteration steps (default 40).
 * Paper: seed 001 (../shared/seeds/async-sgd-sdde-staleness.md) uses h as the eigenvalue of the
 * direction it analyses.
 */

/**
 * (1/K)·λ_max(E[x̃x̃ᵀ]) over `count` samples of `features` values (x̃ = [x, 1]), by power
 * iteration on XᵀX without forming it (rows kept sparse). Returns 1 when there is no data.
 */
export function estimateCurvature(
  xs: Float32Array,
  count: number,
  classes: number,
  iterations = 40,
): number {
  if (count === 0 || xs.length === 0) return 1;
  const features = Math.floor(xs.length / count);
  const dim = features + 1;
  // images are mostly zeros: keep each row's non-zero pixels once
  const rowStart = new Int32Array(count + 1);
  const index: number[] = [];
  const value: number[] = [];
  for (let r = 0; r < count; r++) {
    for (let i = 0; i < features; i++) {
      const x = xs[r * features + i]!;
      if (x !== 0) {
        index.push(i);
        value.push(x);
      }
    }
    rowStart[r + 1] = index.length;
  }
  let v = new Float64Array(dim).fill(1 / Math.sqrt(dim));
  let eigenvalue = 0;
  for (let it = 0; it < iterations; it++) {
    const next = new Float64Array(dim);
    for (let r = 0; r < count; r++) {
      const from = rowStart[r]!;
      const to = rowStart[r + 1]!;
      let dot = v[features]!; // the bias input 1
      for (let k = from; k < to; k++) dot += value[k]! * v[index[k]!]!;
      for (let k = from; k < to; k++) next[index[k]!]! += value[k]! * dot;
      next[features]! += dot;
    }
    let norm = 0;
    for (let i = 0; i < dim; i++) norm += next[i]! * next[i]!;
    norm = Math.sqrt(norm);
    if (norm === 0) return 1;
    eigenvalue = norm / count; // ‖Mv‖ with ‖v‖ = 1 converges to λ_max(M)
    for (let i = 0; i < dim; i++) next[i]! /= norm;
    v = next;
  }
  return eigenvalue / Math.max(2, classes);
}
