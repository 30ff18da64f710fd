/**
 * The model interface the simulator's virtual workers train: parameters are one flat
 * Float32Array (what the codecs, aggregators and agreement of packages/core operate on),
 * gradients are hand-written (no tfjs) and write into a caller-owned buffer.
 */
import type { Rng } from '@swarmgrad/core';

export interface Evaluation {
  /** Mean loss over the evaluated samples (the objective itself for synthetic models). */
  loss: number;
  /** Fraction classified correctly; NaN for models without classes (the quadratic). */
  accuracy: number;
}

export interface GradientOptions {
  /** Label-flip attack: train on label 9 − y instead of y. */
  flipLabels?: boolean;
  /** Noise source of synthetic models (required by the quadratic when its noise is > 0). */
  rng?: Rng;
  /** Multiply the gradient by this factor (default 1): −η gives an SGD update in one pass. */
  scale?: number;
}

export interface Model {
  readonly name: string;
  readonly dimension: number;
  /** Training examples batches index into (0 for synthetic models, which ignore indices). */
  readonly trainSize: number;
  /** Initial parameters, deterministic for the seed. */
  init(seed: number): Float32Array;
  /**
   * out ← scale · mean gradient of the loss over the batch at `params` (overwrites `out`, of
   * length `dimension`). Returns the batch's mean loss. Does not modify `params`.
   */
  gradient(
    params: Float32Array,
    batch: ArrayLike<number>,
    out: Float32Array,
    options?: GradientOptions,
  ): number;
  /** Held-out loss and accuracy (the first `limit` test samples when given). */
  evaluate(params: Float32Array, limit?: number): Evaluation;
}

/** log Σ exp(z_c) − z_y and the softmax probabilities (written into p), numerically stable. */
export function softmaxInto(z: Float64Array, p: Float64Array, classes: number): number {
  let max = -Infinity;
  for (let c = 0; c < classes; c++) if (z[c]! > max) max = z[c]!;
  let sum = 0;
  for (let c = 0; c < classes; c++) {
    const e = Math.exp(z[c]! - max);
    p[c] = e;
    sum += e;
  }
  const inv = 1 / sum;
  for (let c = 0; c < classes; c++) p[c] = p[c]! * inv;
  return max + Math.log(sum);
}
