import { describe, expect, it } from 'vitest';
import { createRng } from '@swarmgrad/core';
import { loadMnist, MNIST_FEATURES } from '../src/data.ts';
import { createMlp } from '../src/models/mlp.ts';
import type { Model } from '../src/models/model.ts';
import { createQuadratic, logSpectrum } from '../src/models/quadratic.ts';
import { createSoftmaxRegression } from '../src/models/softmax.ts';

const data = loadMnist({ train: 8000, test: 2000, seed: 1 });

/** Central finite differences of the batch loss on a few coordinates, in float64 via a copy. */
function checkGradient(
  model: Model,
  params: Float32Array,
  batch: number[],
  coords: number[],
): void {
  const g = new Float32Array(model.dimension);
  model.gradient(params, batch, g);
  const scratch = new Float32Array(model.dimension);
  for (const i of coords) {
    const h = 1e-2;
    scratch.set(params);
    scratch[i] = params[i]! + h;
    const up = model.gradient(scratch, batch, new Float32Array(model.dimension));
    scratch[i] = params[i]! - h;
    const down = model.gradient(scratch, batch, new Float32Array(model.dimension));
    const numeric = (up - down) / (2 * h);
    expect(Math.abs(numeric - g[i]!)).toBeLessThan(2e-3 + 2e-2 * Math.abs(numeric));
  }
}

describe('MNIST loader', () => {
  it('splits the 10,000 digits deterministically, without overlap, with a consistent CSR copy', () => {
    const again = loadMnist({ train: 8000, test: 2000, seed: 1 });
    expect(again).toBe(data);
    expect(data.train.count).toBe(8000);
    expect(data.test.count).toBe(2000);
    expect(data.train.features.length).toBe(8000 * MNIST_FEATURES);
    const other = loadMnist({ train: 100, test: 100, seed: 2 });
    expect(Array.from(other.train.labels.slice(0, 20))).not.toEqual(
      Array.from(data.train.labels.slice(0, 20)),
    );
    // every class is present in both sets
    for (let c = 0; c < 10; c++) {
      expect(data.train.labels.includes(c)).toBe(true);
      expect(data.test.labels.includes(c)).toBe(true);
    }
    // CSR rows hold exactly the non-zero pixels of the dense rows
    for (const row of [0, 17, 7999]) {
      const dense = data.train.features.subarray(row * 784, (row + 1) * 784);
      const from = data.train.rowStart[row]!;
      const to = data.train.rowStart[row + 1]!;
      const rebuilt = new Float32Array(784);
      for (let k = from; k < to; k++) rebuilt[data.train.index[k]!] = data.train.value[k]!;
      expect(rebuilt).toEqual(dense);
    }
    // no test digit is a training digit (compare dense rows by hash)
    const key = (f: Float32Array, r: number) => f.subarray(r * 784, r * 784 + 784).join(',');
    const train = new Set(Array.from({ length: 500 }, (_, r) => key(data.train.features, r)));
    let shared = 0;
    for (let r = 0; r < 500; r++) if (train.has(key(data.test.features, r))) shared++;
    expect(shared).toBeLessThan(3); // MNIST has a few exact duplicates at most
  });
});

describe('models', () => {
  const rng = createRng(5);
  it('softmax regression: analytic gradient matches finite differences', () => {
    const model = createSoftmaxRegression(data, { l2: 1e-3 });
    const params = Float32Array.from({ length: model.dimension }, () => (rng.next() - 0.5) * 0.1);
    // coordinates of pixels that are non-zero in the batch, and biases
    checkGradient(
      model,
      params,
      [0, 1, 2, 3],
      [784 * 0 + 5, 300 * 10 + 3, 406 * 10 + 7, 7843, 7849],
    );
  });

  it('MLP: analytic gradient matches finite differences', () => {
    const model = createMlp(data, { hidden: 8 });
    const params = model.init(3);
    const h = 8;
    checkGradient(
      model,
      params,
      [5, 6],
      [300 * h + 1, 406 * h + 4, 784 * h + 2, 784 * h + h + 3, model.dimension - 1],
    );
  });

  it('gradient scale option multiplies the gradient', () => {
    const model = createSoftmaxRegression(data);
    const params = model.init(1);
    const a = new Float32Array(model.dimension);
    const b = new Float32Array(model.dimension);
    model.gradient(params, [1, 2, 3], a);
    model.gradient(params, [1, 2, 3], b, { scale: -0.5 });
    for (let i = 0; i < a.length; i += 97) expect(b[i]).toBeCloseTo(-0.5 * a[i]!, 6);
  });

  it('label flip trains on 9 − y', () => {
    const model = createSoftmaxRegression(data);
    const params = model.init(1);
    const g = new Float32Array(model.dimension);
    model.gradient(params, [0], g, { flipLabels: true });
    const y = data.train.labels[0]!;
    // at zero weights p = 1/10: the bias gradient is −0.9 at the flipped label, +0.1 elsewhere
    expect(g[7840 + (9 - y)]).toBeCloseTo(-0.9, 5);
    expect(g[7840 + y]).toBeCloseTo(0.1, 5);
  });

  it('quadratic: gradient h ⊙ x without noise, loss ½Σhx²', () => {
    const eig = logSpectrum(4, 0.1, 1);
    expect(eig[0]).toBeCloseTo(1);
    expect(eig[3]).toBeCloseTo(0.1);
    const model = createQuadratic({ eigenvalues: eig, noise: 0 });
    const x = model.init(0);
    const g = new Float32Array(4);
    const loss = model.gradient(x, [0], g);
    expect(loss).toBeCloseTo(0.5 * eig.reduce((a, b) => a + b, 0), 6);
    for (let i = 0; i < 4; i++) expect(g[i]).toBeCloseTo(eig[i]!, 6);
    expect(Number.isNaN(model.evaluate(x).accuracy)).toBe(true);
    const noisy = createQuadratic({ eigenvalues: eig, noise: 1 });
    expect(() => noisy.gradient(x, [0], g)).toThrow(RangeError);
  });
});
