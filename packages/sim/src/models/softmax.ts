/**
 * Softmax (multinomial logistic) regression on MNIST: logits = W·x + b, cross-entropy loss,
 * optional L2 weight decay λ/2·‖W‖² (λ > 0 makes the objective strongly convex, the case where
 * seed 000's no-agreement averaging mode tolerates any number of failures).
 *
 * Parameters: 784 × 10 weights (feature-major: the 10 class weights of pixel j are contiguous)
 * then 10 biases: d = 7,850. The forward and backward passes loop over the non-zero pixels only
 * (CSR rows of data.ts), touching 10 contiguous weights each, so one example costs
 * ~2 · 10 · 150 multiply-adds instead of 2 · 7,850 — what lets 10,000 virtual workers each take a
 * gradient step per iteration.
 */
import { MNIST_CLASSES, MNIST_FEATURES, type MnistSplit, type Samples } from '../data.ts';
import { softmaxInto, type Evaluation, type GradientOptions, type Model } from './model.ts';

export interface SoftmaxOptions {
  /** L2 weight decay λ ≥ 0 on the weights (default 0). */
  l2?: number;
}

const C = MNIST_CLASSES;
const F = MNIST_FEATURES;
const BIAS = C * F;

export function createSoftmaxRegression(data: MnistSplit, options: SoftmaxOptions = {}): Model {
  const l2 = options.l2 ?? 0;
  if (!(l2 >= 0)) throw new RangeError(`softmax: l2 must be ≥ 0, got ${l2}`);
  const z = new Float64Array(C);
  const p = new Float64Array(C);
  const delta = new Float64Array(C);

  function logits(params: Float32Array, s: Samples, row: number): void {
    const from = s.rowStart[row]!;
    const to = s.rowStart[row + 1]!;
    const index = s.index;
    const value = s.value;
    for (let c = 0; c < C; c++) z[c] = params[BIAS + c]!;
    for (let k = from; k < to; k++) {
      const base = index[k]! * C;
      const v = value[k]!;
      for (let c = 0; c < C; c++) z[c] = z[c]! + params[base + c]! * v;
    }
  }

  return {
    name: l2 > 0 ? `softmax-784-10 (l2=${l2})` : 'softmax-784-10',
    dimension: C * F + C,
    trainSize: data.train.count,
    init(): Float32Array {
      return new Float32Array(C * F + C);
    },
    gradient(params, batch, out, gradientOptions: GradientOptions = {}): number {
      out.fill(0);
      const s = data.train;
      const n = batch.length;
      if (n === 0) return 0;
      const scale = gradientOptions.scale ?? 1;
      const inv = scale / n;
      const flip = gradientOptions.flipLabels === true;
      let loss = 0;
      for (let b = 0; b < n; b++) {
        const row = batch[b]!;
        logits(params, s, row);
        const y = flip ? C - 1 - s.labels[row]! : s.labels[row]!;
        loss += softmaxInto(z, p, C) - z[y]!;
        for (let c = 0; c < C; c++) {
          const d = (p[c]! - (c === y ? 1 : 0)) * inv;
          delta[c] = d;
          out[BIAS + c] = out[BIAS + c]! + d;
        }
        const from = s.rowStart[row]!;
        const to = s.rowStart[row + 1]!;
        for (let k = from; k < to; k++) {
          const base = s.index[k]! * C;
          const v = s.value[k]!;
          for (let c = 0; c < C; c++) out[base + c] = out[base + c]! + delta[c]! * v;
        }
      }
      loss /= n;
      if (l2 > 0) {
        let sq = 0;
        const k = l2 * scale;
        for (let i = 0; i < BIAS; i++) {
          const w = params[i]!;
          out[i] = out[i]! + k * w;
          sq += w * w;
        }
        loss += 0.5 * l2 * sq;
      }
      return loss;
    },
    evaluate(params, limit): Evaluation {
      const s = data.test;
      const n = Math.min(s.count, limit ?? s.count);
      let loss = 0;
      let correct = 0;
      for (let row = 0; row < n; row++) {
        logits(params, s, row);
        const y = s.labels[row]!;
        loss += softmaxInto(z, p, C) - z[y]!;
        let best = 0;
        for (let c = 1; c < C; c++) if (z[c]! > z[best]!) best = c;
        if (best === y) correct++;
      }
      return { loss: loss / n, accuracy: correct / n };
    },
  };
}
