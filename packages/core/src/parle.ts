/**
 * Local work of one tab between agreements (DESIGN step 2): Parle / Elastic-SGD / Entropy-SGD
 * (seed ../shared/seeds/parle-and-byzantine-filters.md; Chaudhari et al., "Parle: parallelizing
 * stochastic gradient descent", and Entropy-SGD, Chaudhari et al. 2017).
 *
 * Starting from the last agreed parameters x̃ (the anchor) a tab takes L local steps and sends
 * the update u = x − x̃.
 * - 'sgd':         x ← x − η·g(x). L = 1 is exactly one data-parallel SGD step, u = −η·g(x̃).
 * - 'elastic-sgd': x ← x − η·(g(x) + γ·(x − x̃)). The elastic pull γ keeps the local iterate
 *                  near the anchor (on a convex quadratic with η·(h + γ) ≤ 1, ‖x − x̃‖ never
 *                  exceeds its γ = 0 value); γ = 0 is 'sgd'.
 * - 'entropy-sgd': each outer step runs L' Langevin (SGLD) inner steps
 *                  y ← y − η'·(g(y) + γ'·(y − x)) + √η'·ε·N(0, 1), keeps a running mean
 *                  μ ← (1 − α)·μ + α·y, then moves x ← x − η·(γ'·(x − μ) + γ·(x − x̃)):
 *                  a step along the gradient γ'(x − μ) of the local entropy (flat minima), with
 *                  Parle's elastic pull γ towards the anchor.
 * Every step is an in-place loop on Float32Array (arithmetic in double, stored as float32), no
 * allocation per step apart from what the gradient callback returns. Optional heavy-ball or
 * Nesterov momentum on the outer step. Finite inputs and gradients give finite outputs as long
 * as nothing overflows float32; a non-finite or wrong-length gradient is rejected (RangeError).
 * Parameters: learningRate η > 0, elastic γ ≥ 0, momentum ∈ [0, 1), scoping γ' > 0,
 * inner learning rate η' > 0, inner steps L' ≥ 1, averaging α ∈ (0, 1], noise ε ≥ 0.
 * Limitation: scoping γ' is constant within a call (the papers grow it over training: the caller
 * can pass a larger γ' each round).
 */
import { allFinite } from './vector.ts';
import { gaussian, type Rng } from './random.ts';

export interface ElasticStepOptions {
  /** η > 0 */
  learningRate: number;
  /** γ ≥ 0: pull towards the anchor x̃ */
  elastic: number;
  /** μ ∈ [0, 1); needs `velocity` when > 0 */
  momentum?: number;
  /** momentum buffer, same length as x, updated in place */
  velocity?: Float32Array;
  /** Nesterov momentum instead of heavy ball (PyTorch convention) */
  nesterov?: boolean;
}

function checkLengths(name: string, n: number, ...arrays: Float32Array[]): void {
  for (const v of arrays) {
    if (v.length !== n) throw new RangeError(`${name}: length ${v.length} ≠ ${n}`);
  }
}

function checkPositive(name: string, v: number): void {
  if (!(v > 0) || !Number.isFinite(v)) throw new RangeError(`${name} must be > 0, got ${v}`);
}

function checkNonNegative(name: string, v: number): void {
  if (!(v >= 0) || !Number.isFinite(v)) throw new RangeError(`${name} must be ≥ 0, got ${v}`);
}

/**
 * x ← x − η·(g + γ·(x − x̃)) in place, g the gradient at x. With momentum μ and buffer v:
 * d = g + γ·(x − x̃), v ← μ·v + d, then x ← x − η·v (heavy ball) or x ← x − η·(d + μ·v)
 * (Nesterov). Returns x.
 */
export function elasticStep(
  x: Float32Array,
  g: Float32Array,
  anchor: Float32Array,
  options: ElasticStepOptions,
): Float32Array {
  const { learningRate: eta, elastic: gamma } = options;
  const mu = options.momentum ?? 0;
  checkPositive('learningRate', eta);
  checkNonNegative('elastic', gamma);
  if (!(mu >= 0 && mu < 1)) throw new RangeError(`momentum must be in [0, 1), got ${mu}`);
  checkLengths('elasticStep', x.length, g, anchor);
  if (mu === 0) {
    for (let i = 0; i < x.length; i++) {
      const xi = x[i]!;
      x[i] = xi - eta * (g[i]! + gamma * (xi - anchor[i]!));
    }
    return x;
  }
  const v = options.velocity;
  if (v === undefined) throw new RangeError('elasticStep: momentum needs a velocity buffer');
  checkLengths('elasticStep velocity', x.length, v);
  const nesterov = options.nesterov === true;
  for (let i = 0; i < x.length; i++) {
    const xi = x[i]!;
    const d = g[i]! + gamma * (xi - anchor[i]!);
    const vi = mu * v[i]! + d;
    v[i] = vi;
    x[i] = xi - eta * (nesterov ? d + mu * vi : vi);
  }
  return x;
}

export interface EntropyInnerOptions {
  /** η' > 0: inner (Langevin) step size */
  learningRate: number;
  /** γ' > 0: scoping, how tightly y is held near x */
  scoping: number;
  /** ε ≥ 0: thermal noise; adds √η'·ε·N(0, 1) per coordinate. Needs `rng` when > 0. */
  noise?: number;
  rng?: Rng;
}

/** One SGLD step of the inner variable: y ← y − η'·(g + γ'·(y − x)) + √η'·ε·ξ. Returns y. */
export function entropyInnerStep(
  y: Float32Array,
  g: Float32Array,
  x: Float32Array,
  options: EntropyInnerOptions,
): Float32Array {
  const { learningRate: eta, scoping } = options;
  const noise = options.noise ?? 0;
  checkPositive('entropy learningRate', eta);
  checkPositive('scoping', scoping);
  checkNonNegative('noise', noise);
  checkLengths('entropyInnerStep', y.length, g, x);
  const rng = options.rng;
  if (noise > 0 && rng === undefined) throw new RangeError('entropyInnerStep: noise needs rng');
  const sigma = Math.sqrt(eta) * noise;
  for (let i = 0; i < y.length; i++) {
    const yi = y[i]!;
    let next = yi - eta * (g[i]! + scoping * (yi - x[i]!));
    if (sigma > 0) next += sigma * gaussian(rng!);
    y[i] = next;
  }
  return y;
}

/** μ ← (1 − α)·μ + α·y in place (the running average of the inner iterates). Returns μ. */
export function updateRunningMean(mu: Float32Array, y: Float32Array, alpha: number): Float32Array {
  if (!(alpha > 0 && alpha <= 1)) throw new RangeError(`alpha must be in (0, 1], got ${alpha}`);
  checkLengths('updateRunningMean', mu.length, y);
  for (let i = 0; i < mu.length; i++) mu[i] = (1 - alpha) * mu[i]! + alpha * y[i]!;
  return mu;
}

export interface EntropyOuterOptions {
  /** η > 0 */
  learningRate: number;
  /** γ' > 0, the same scoping as the inner loop */
  scoping: number;
  /** γ ≥ 0 with `anchor`: Parle's elastic pull towards x̃ (default 0) */
  elastic?: number;
  anchor?: Float32Array;
  momentum?: number;
  velocity?: Float32Array;
  nesterov?: boolean;
}

/**
 * x ← x − η·(γ'·(x − μ) + γ·(x − x̃)) in place: a step along the local-entropy gradient
 * γ'·(x − μ) (μ the running mean of the inner iterates) plus the elastic pull. Returns x.
 */
export function entropyOuterStep(
  x: Float32Array,
  mu: Float32Array,
  options: EntropyOuterOptions,
): Float32Array {
  const { learningRate, scoping } = options;
  checkPositive('scoping', scoping);
  checkLengths('entropyOuterStep', x.length, mu);
  const gamma = options.elastic ?? 0;
  checkNonNegative('elastic', gamma);
  if (gamma > 0 && options.anchor === undefined) {
    throw new RangeError('entropyOuterStep: elastic > 0 needs an anchor');
  }
  const anchor = options.anchor;
  const eta = learningRate;
  checkPositive('learningRate', eta);
  const m = options.momentum ?? 0;
  if (!(m >= 0 && m < 1)) throw new RangeError(`momentum must be in [0, 1), got ${m}`);
  if (anchor !== undefined) checkLengths('entropyOuterStep anchor', x.length, anchor);
  const v = options.velocity;
  if (m > 0 && v === undefined) throw new RangeError('entropyOuterStep: momentum needs velocity');
  if (v !== undefined) checkLengths('entropyOuterStep velocity', x.length, v);
  const nesterov = options.nesterov === true;
  for (let i = 0; i < x.length; i++) {
    const xi = x[i]!;
    let d = scoping * (xi - mu[i]!);
    if (anchor !== undefined) d += gamma * (xi - anchor[i]!);
    if (m === 0) {
      x[i] = xi - eta * d;
    } else {
      const vi = m * v![i]! + d;
      v![i] = vi;
      x[i] = xi - eta * (nesterov ? d + m * vi : vi);
    }
  }
  return x;
}

export type LocalMode = 'sgd' | 'elastic-sgd' | 'entropy-sgd';

export interface EntropyOptions {
  /** L' ≥ 1 inner Langevin steps per outer step (default 5) */
  innerSteps?: number;
  /** η' (default: the outer learning rate) */
  learningRate?: number;
  /** γ' > 0 */
  scoping: number;
  /** α ∈ (0, 1] for the running mean of y (default 0.75, as in Entropy-SGD) */
  averaging?: number;
  /** ε ≥ 0 (default 0: deterministic inner loop) */
  noise?: number;
  rng?: Rng;
}

export interface LocalStepsOptions {
  /** Local iterate x, starting at x̃; advanced in place to the final x. */
  params: Float32Array;
  /** x̃: the last agreed parameters (not modified). */
  anchor: Float32Array;
  /** L ≥ 1 outer steps */
  steps: number;
  /**
   * Gradient of the loss at `x` (must not modify `x`; the returned array is only read before the
   * next call, so it may be a reused buffer). `step` counts every gradient evaluation of this
   * call from 0 (inner steps included), to pick minibatches.
   */
  gradient: (x: Float32Array, step: number) => Float32Array;
  /** η > 0 */
  learningRate: number;
  /** γ ≥ 0 (must be 0 or absent in 'sgd' mode) */
  elastic?: number;
  mode: LocalMode;
  /** heavy-ball momentum on the outer step; the buffer lives for this call only */
  momentum?: number;
  nesterov?: boolean;
  /** required in 'entropy-sgd' mode */
  entropy?: EntropyOptions;
}

/**
 * Runs L local steps from x̃ and returns the update u = x − x̃ (a new Float32Array); `params`
 * ends at x. L = 1 with γ = 0 is plain SGD: u = −η·g(x̃) (up to float32 rounding of x̃ − η·g).
 */
export function runLocalSteps(options: LocalStepsOptions): Float32Array {
  const { params: x, anchor, steps, gradient, learningRate, mode } = options;
  const gamma = options.elastic ?? 0;
  const d = x.length;
  checkLengths('runLocalSteps anchor', d, anchor);
  if (!Number.isInteger(steps) || steps < 1) throw new RangeError(`steps must be ≥ 1: ${steps}`);
  checkPositive('learningRate', learningRate);
  checkNonNegative('elastic', gamma);
  if (mode === 'sgd' && gamma !== 0) {
    throw new RangeError("mode 'sgd' has no elastic pull; use 'elastic-sgd' for elastic > 0");
  }
  const momentum = options.momentum ?? 0;
  const velocity = momentum > 0 ? new Float32Array(d) : undefined;
  let evaluations = 0;
  const grad = (at: Float32Array): Float32Array => {
    const g = gradient(at, evaluations++);
    if (g.length !== d) throw new RangeError(`gradient has length ${g.length}, expected ${d}`);
    if (!allFinite(g)) throw new RangeError(`gradient ${evaluations - 1} is not finite`);
    return g;
  };

  if (mode === 'sgd' || mode === 'elastic-sgd') {
    for (let k = 0; k < steps; k++) {
      elasticStep(x, grad(x), anchor, {
        learningRate,
        elastic: gamma,
        momentum,
        velocity,
        nesterov: options.nesterov,
      });
    }
  } else if (mode === 'entropy-sgd') {
    const e = options.entropy;
    if (e === undefined) throw new RangeError("mode 'entropy-sgd' needs entropy options");
    const inner = e.innerSteps ?? 5;
    if (!Number.isInteger(inner) || inner < 1) throw new RangeError(`innerSteps ≥ 1: ${inner}`);
    const innerOptions: EntropyInnerOptions = {
      learningRate: e.learningRate ?? learningRate,
      scoping: e.scoping,
      noise: e.noise,
      rng: e.rng,
    };
    const alpha = e.averaging ?? 0.75;
    const y = new Float32Array(d);
    const mu = new Float32Array(d);
    for (let k = 0; k < steps; k++) {
      y.set(x);
      mu.set(x);
      for (let j = 0; j < inner; j++) {
        entropyInnerStep(y, grad(y), x, innerOptions);
        updateRunningMean(mu, y, alpha);
      }
      entropyOuterStep(x, mu, {
        learningRate,
        scoping: e.scoping,
        elastic: gamma,
        anchor,
        momentum,
        velocity,
        nesterov: options.nesterov,
      });
    }
  } else {
    throw new RangeError(`unknown local mode ${String(mode)}`);
  }

  const u = new Float32Array(d);
  for (let i = 0; i < d; i++) u[i] = x[i]! - anchor[i]!;
  return u;
}
