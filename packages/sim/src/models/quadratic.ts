/**
 * A quadratic with a chosen Hessian spectrum, for the staleness analysis (seed 001):
 * f(x) = ½ Σ_i h_i x_i², minimum 0 at x = 0, stochastic gradient h ⊙ x + (σ/√B)·ξ with
 * ξ ~ N(0, I) and B the batch length. Along eigen-direction i, asynchronous SGD with step η and
 * staleness τ is exactly the linear delay recursion the SDDE of core/sdde.ts linearises
 * (x' = −η·h_i·λ·p·x(t − D)), so its measured stability can be set against the predicted one.
 *
 * Parameters: eigenvalues h_i ≥ 0 (the Hessian is taken diagonal: SGD is rotation-invariant with
 * isotropic noise, so any orthogonal basis gives the same dynamics), noise σ ≥ 0, initial point
 * x_i = initScale (default 1) in every coordinate. `logSpectrum(d, lo, hi)` builds d eigenvalues
 * log-spaced in [lo, hi].
 */
import { gaussian } from '@swarmgrad/core';
import type { Evaluation, GradientOptions, Model } from './model.ts';

export interface QuadraticOptions {
  eigenvalues: readonly number[];
  noise: number;
  initScale?: number;
}

export function logSpectrum(dimension: number, lo: number, hi: number): number[] {
  if (dimension === 1) return [hi];
  return Array.from(
    { length: dimension },
    (_, i) => lo * (hi / lo) ** (i / (dimension - 1)),
  ).reverse();
}

export function createQuadratic(options: QuadraticOptions): Model {
  const h = Float64Array.from(options.eigenvalues);
  const d = h.length;
  const sigma = options.noise;
  const initScale = options.initScale ?? 1;
  if (d === 0) throw new RangeError('quadratic: needs at least one eigenvalue');
  for (const v of h) if (!(v >= 0) || !Number.isFinite(v)) throw new RangeError(`eigenvalue ${v}`);
  if (!(sigma >= 0)) throw new RangeError(`quadratic: noise must be ≥ 0, got ${sigma}`);

  const objective = (x: Float32Array): number => {
    let f = 0;
    for (let i = 0; i < d; i++) f += 0.5 * h[i]! * x[i]! * x[i]!;
    return f;
  };

  return {
    name: `quadratic-${d} (h ∈ [${Math.min(...h)}, ${Math.max(...h)}], σ=${sigma})`,
    dimension: d,
    trainSize: 0,
    init(): Float32Array {
      return new Float32Array(d).fill(initScale);
    },
    gradient(params, batch, out, gradientOptions: GradientOptions = {}): number {
      const rng = gradientOptions.rng;
      const k = gradientOptions.scale ?? 1;
      const noise = sigma / Math.sqrt(Math.max(1, batch.length));
      if (noise > 0 && rng === undefined) throw new RangeError('quadratic: noise needs an rng');
      for (let i = 0; i < d; i++) {
        out[i] = k * (h[i]! * params[i]! + (noise > 0 ? noise * gaussian(rng!) : 0));
      }
      return objective(params);
    },
    evaluate(params): Evaluation {
      return { loss: objective(params), accuracy: NaN };
    },
  };
}
