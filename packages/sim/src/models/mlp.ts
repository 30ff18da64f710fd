/**
 * A small multilayer perceptron on MNIST: 784 → H (ReLU) → 10, cross-entropy loss, Glorot-
 * uniform initialisation from a seed. Non-convex: the case of seeds 000 (majority agreement is
 * needed) and 002 (Parle, SafeguardSGD).
 *
 * Parameters: H hidden units (default 32, the worker's `mlp-784-32-10` preset; 128 gives
 * `mlp-784-128-10`). Layout: W1 (784 × H, feature-major: the H weights of pixel j are
 * contiguous), b1 (H), W2 (10 × H), b2 (10);
 * d = 785·H + 10·H + 10 (25,450 for H = 32). The first layer's forward and backward passes
 * loop over the non-zero pixels only.
 */
import { createRng } from '@swarmgrad/core';
import { MNIST_CLASSES, MNIST_FEATURES, type MnistSplit, type Samples } from '../data.ts';
import { softmaxInto, type Evaluation, type GradientOptions, type Model } from './model.ts';

export interface MlpOptions {
  hidden?: number;
}

const C = MNIST_CLASSES;
const F = MNIST_FEATURES;

export function createMlp(data: MnistSplit, options: MlpOptions = {}): Model {
  const H = options.hidden ?? 32;
  if (!Number.isInteger(H) || H < 1) throw new RangeError(`mlp: hidden must be ≥ 1, got ${H}`);
  const oB1 = H * F;
  const oW2 = oB1 + H;
  const oB2 = oW2 + C * H;
  const dimension = oB2 + C;
  const h = new Float64Array(H);
  const dh = new Float64Array(H);
  const z = new Float64Array(C);
  const p = new Float64Array(C);

  function forward(params: Float32Array, s: Samples, row: number): void {
    const from = s.rowStart[row]!;
    const to = s.rowStart[row + 1]!;
    const index = s.index;
    const value = s.value;
    for (let u = 0; u < H; u++) h[u] = params[oB1 + u]!;
    for (let k = from; k < to; k++) {
      const base = index[k]! * H;
      const v = value[k]!;
      for (let u = 0; u < H; u++) h[u] = h[u]! + params[base + u]! * v;
    }
    for (let u = 0; u < H; u++) if (h[u]! < 0) h[u] = 0;
    for (let c = 0; c < C; c++) {
      let acc = params[oB2 + c]!;
      const base = oW2 + c * H;
      for (let u = 0; u < H; u++) acc += params[base + u]! * h[u]!;
      z[c] = acc;
    }
  }

  return {
    name: `mlp-784-${H}-10`,
    dimension,
    trainSize: data.train.count,
    init(seed: number): Float32Array {
      const rng = createRng(seed);
      const x = new Float32Array(dimension);
      const a1 = Math.sqrt(6 / (F + H));
      for (let i = 0; i < oB1; i++) x[i] = (rng.next() * 2 - 1) * a1;
      const a2 = Math.sqrt(6 / (H + C));
      for (let i = oW2; i < oB2; i++) x[i] = (rng.next() * 2 - 1) * a2;
      return x;
    },
    gradient(params, batch, out, gradientOptions: GradientOptions = {}): number {
      out.fill(0);
      const s = data.train;
      const n = batch.length;
      if (n === 0) return 0;
      const inv = (gradientOptions.scale ?? 1) / n;
      const flip = gradientOptions.flipLabels === true;
      let loss = 0;
      for (let b = 0; b < n; b++) {
        const row = batch[b]!;
        forward(params, s, row);
        const y = flip ? C - 1 - s.labels[row]! : s.labels[row]!;
        loss += softmaxInto(z, p, C) - z[y]!;
        dh.fill(0);
        for (let c = 0; c < C; c++) {
          const d = (p[c]! - (c === y ? 1 : 0)) * inv;
          out[oB2 + c] = out[oB2 + c]! + d;
          const base = oW2 + c * H;
          for (let u = 0; u < H; u++) {
            out[base + u] = out[base + u]! + d * h[u]!;
            dh[u] = dh[u]! + d * params[base + u]!;
          }
        }
        const from = s.rowStart[row]!;
        const to = s.rowStart[row + 1]!;
        for (let u = 0; u < H; u++) {
          if (h[u]! <= 0) dh[u] = 0;
          out[oB1 + u] = out[oB1 + u]! + dh[u]!;
        }
        for (let k = from; k < to; k++) {
          const base = s.index[k]! * H;
          const v = s.value[k]!;
          for (let u = 0; u < H; u++) out[base + u] = out[base + u]! + dh[u]! * v;
        }
      }
      return loss / n;
    },
    evaluate(params, limit): Evaluation {
      const s = data.test;
      const n = Math.min(s.count, limit ?? s.count);
      let loss = 0;
      let correct = 0;
      for (let row = 0; row < n; row++) {
        forward(params, s, row);
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
