import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  buildModel,
  computeGradient,
  computeGradientAsync,
  evaluate,
  getFlatParameters,
  initialParameters,
  layerParameterCounts,
  modelTopologyJSON,
  parameterCount,
  setFlatParameters,
  weightSpecs,
} from '../src/model.ts';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

/** Small seeded generator so the test data does not depend on other packages. */
function lcg(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 4294967296;
  };
}

function syntheticBatch(n: number, seed: number): { xs: Float32Array; labels: Uint8Array } {
  const next = lcg(seed);
  const labels = new Uint8Array(n);
  const xs = new Float32Array(n * 784);
  for (let i = 0; i < n; i++) {
    const label = Math.floor(next() * 10);
    labels[i] = label;
    // sparse, MNIST-like: mostly zeros, a class-dependent band of bright pixels
    for (let j = 0; j < 784; j++) {
      const inBand = Math.floor(j / 78.4) === label;
      xs[i * 784 + j] = inBand ? 0.5 + 0.5 * next() : next() < 0.1 ? next() : 0;
    }
  }
  return { xs, labels };
}

/** Mean cross-entropy of a softmax regression, in float64, from the flat [kernel, bias]. */
function softmaxLoss64(flat: Float32Array, xs: Float32Array, labels: Uint8Array, n: number) {
  let total = 0;
  for (let i = 0; i < n; i++) {
    const logits = new Float64Array(10);
    for (let k = 0; k < 10; k++) logits[k] = flat[7840 + k]!;
    for (let j = 0; j < 784; j++) {
      const x = xs[i * 784 + j]!;
      if (x === 0) continue;
      for (let k = 0; k < 10; k++) logits[k]! += x * flat[j * 10 + k]!;
    }
    const max = Math.max(...logits);
    let sum = 0;
    for (let k = 0; k < 10; k++) sum += Math.exp(logits[k]! - max);
    total += -(logits[labels[i]!]! - max - Math.log(sum));
  }
  return total / n;
}

describe('initial parameters', () => {
  it('are identical for the same seed and differ for another seed', () => {
    const spec = { preset: 'mlp-784-128-10' } as const;
    const a = initialParameters(spec, 42);
    const b = initialParameters(spec, 42);
    const c = initialParameters(spec, 43);
    expect(a.length).toBe(784 * 128 + 128 + 128 * 10 + 10);
    expect(Buffer.from(a.buffer).equals(Buffer.from(b.buffer))).toBe(true);
    expect(Buffer.from(a.buffer).equals(Buffer.from(c.buffer))).toBe(false);

    const model = buildModel(spec, 42);
    expect(Array.from(getFlatParameters(model))).toEqual(Array.from(a));
    model.dispose();
  });

  it('are Glorot-uniform kernels with zero biases, different per layer', () => {
    const flat = initialParameters({ preset: 'mlp-784-32-10' }, 7);
    const kernel1 = flat.subarray(0, 784 * 32);
    const bias1 = flat.subarray(784 * 32, 784 * 32 + 32);
    const kernel2 = flat.subarray(784 * 32 + 32, 784 * 32 + 32 + 320);
    const bias2 = flat.subarray(784 * 32 + 32 + 320);
    expect(bias2.length).toBe(10);
    const limit1 = Math.sqrt(6 / (784 + 32));
    const limit2 = Math.sqrt(6 / (32 + 10));
    expect(Math.max(...kernel1.map(Math.abs))).toBeLessThanOrEqual(limit1);
    expect(Math.max(...kernel1.map(Math.abs))).toBeGreaterThan(0.9 * limit1);
    expect(Math.max(...kernel2.map(Math.abs))).toBeLessThanOrEqual(limit2);
    expect(Math.max(...kernel2.map(Math.abs))).toBeGreaterThan(0.8 * limit2);
    expect(bias1.every((v) => v === 0)).toBe(true);
    expect(bias2.every((v) => v === 0)).toBe(true);
    // the two kernels are not drawn from the same stream
    expect(kernel2[0]! / limit2).not.toBeCloseTo(kernel1[0]! / limit1, 5);
  });

  it('a user topology (a preset serialised) builds the same model and initial weights', () => {
    const preset = buildModel({ preset: 'mlp-784-32-10' }, 3);
    const topology = modelTopologyJSON(preset) as Record<string, unknown>;
    const fromJson = buildModel({ topology, inputShape: [784], classes: 10 }, 3);
    expect(parameterCount(fromJson)).toBe(parameterCount(preset));
    expect(weightSpecs(fromJson)).toEqual(weightSpecs(preset));
    expect(Array.from(getFlatParameters(fromJson))).toEqual(Array.from(getFlatParameters(preset)));
    const { xs } = syntheticBatch(4, 1);
    const input = tf.tensor2d(xs, [4, 784]);
    const p1 = preset.predict(input) as tf.Tensor;
    const p2 = fromJson.predict(input) as tf.Tensor;
    expect(Array.from(p2.dataSync())).toEqual(Array.from(p1.dataSync()));
    tf.dispose([input, p1, p2]);
    expect(() => buildModel({ topology, inputShape: [28, 28, 1], classes: 10 })).toThrow(
      /job says/,
    );
    expect(() =>
      buildModel({ topology: { class_name: 'Nope', config: {} }, inputShape: [784], classes: 10 }),
    ).toThrow(/unknown model class/);
    preset.dispose();
    fromJson.dispose();
  });
});

describe('flat parameters', () => {
  it('round-trip through setFlatParameters/getFlatParameters and match weightSpecs', () => {
    const model = buildModel({ preset: 'mlp-784-32-10' }, 1);
    const n = parameterCount(model);
    const specs = weightSpecs(model);
    expect(specs.map((s) => s.shape)).toEqual([[784, 32], [32], [32, 10], [10]]);
    expect(specs.every((s) => s.dtype === 'float32' && s.name.length > 0)).toBe(true);
    expect(specs.reduce((sum, s) => sum + s.shape.reduce((a, b) => a * b, 1), 0)).toBe(n);

    const next = lcg(9);
    const flat = Float32Array.from({ length: n }, () => next() - 0.5);
    setFlatParameters(model, flat);
    const copy = flat.slice();
    flat.fill(0); // the model must not share the caller's buffer
    const back = getFlatParameters(model);
    expect(Array.from(back)).toEqual(Array.from(copy));
    // the last weight (output bias) lands at the end of the vector
    expect(Array.from(model.getWeights()[3]!.dataSync())).toEqual(
      Array.from(copy.subarray(n - 10)),
    );

    expect(() => setFlatParameters(model, new Float32Array(n - 1))).toThrow(RangeError);
    model.dispose();
  });

  it('group per layer (kernel and bias together) in flat-vector order', () => {
    const counts = { 'mlp-784-128-10': [100_480, 1290], 'softmax-784-10': [7850] } as const;
    for (const [preset, expected] of Object.entries(counts)) {
      const model = buildModel({ preset: preset as keyof typeof counts }, 1);
      expect(layerParameterCounts(model)).toEqual(expected);
      expect(expected.reduce((a, b) => a + b, 0)).toBe(parameterCount(model));
      model.dispose();
    }
  });
});

describe('computeGradient', () => {
  it('matches central finite differences on softmax-784-10', () => {
    const model = buildModel({ preset: 'softmax-784-10' }, 5);
    const n = parameterCount(model);
    const next = lcg(11);
    const params = Float32Array.from({ length: n }, () => (next() - 0.5) * 0.1);
    setFlatParameters(model, params);
    const { xs, labels } = syntheticBatch(16, 2);

    const { loss, gradient } = computeGradient(model, xs, labels, 16);
    expect(gradient.length).toBe(n);
    expect(loss).toBeCloseTo(softmaxLoss64(params, xs, labels, 16), 4);

    // largest-magnitude kernel coordinates, two biases and a zero-input coordinate
    const order = Array.from(gradient.subarray(0, 7840).keys()).sort(
      (a, b) => Math.abs(gradient[b]!) - Math.abs(gradient[a]!),
    );
    const coords = [...order.slice(0, 4), order[3000]!, 7840 + labels[0]!, 7845];
    const h = 1e-2;
    for (const i of coords) {
      const plus = params.slice();
      plus[i]! += h;
      const minus = params.slice();
      minus[i]! -= h;
      setFlatParameters(model, plus);
      const lPlus = computeGradient(model, xs, labels, 16).loss;
      setFlatParameters(model, minus);
      const lMinus = computeGradient(model, xs, labels, 16).loss;
      const fd = (lPlus - lMinus) / (2 * h);
      // float32 loss (~1e-7 relative) over 2h gives ~1e-5 noise; curvature adds O(h^2)
      expect(Math.abs(fd - gradient[i]!)).toBeLessThan(1e-3 + 0.02 * Math.abs(gradient[i]!));
      // and against float64 differences of an independent implementation
      const fd64 =
        (softmaxLoss64(plus, xs, labels, 16) - softmaxLoss64(minus, xs, labels, 16)) / (2 * h);
      expect(Math.abs(fd64 - gradient[i]!)).toBeLessThan(1e-4 + 0.01 * Math.abs(gradient[i]!));
    }
    expect(Math.abs(gradient[order[0]!]!)).toBeGreaterThan(0.01);
    model.dispose();
  });

  it('a few SGD steps on a batch reduce the loss', () => {
    const model = buildModel({ preset: 'mlp-784-32-10' }, 8);
    const { xs, labels } = syntheticBatch(32, 3);
    let params = getFlatParameters(model);
    const first = computeGradient(model, xs, labels, 32).loss;
    let loss = first;
    for (let step = 0; step < 10; step++) {
      const result = computeGradient(model, xs, labels, 32);
      loss = result.loss;
      params = params.map((p, i) => p - 0.5 * result.gradient[i]!);
      setFlatParameters(model, params);
    }
    const last = computeGradient(model, xs, labels, 32).loss;
    expect(first).toBeGreaterThan(1.5);
    expect(last).toBeLessThan(loss);
    expect(last).toBeLessThan(0.5 * first);
    model.dispose();
  });

  it('computeGradientAsync gives the same loss and gradient, without leaking tensors', async () => {
    const model = buildModel({ preset: 'mlp-784-32-10' }, 9);
    const { xs, labels } = syntheticBatch(16, 6);
    const sync = computeGradient(model, xs, labels, 16);
    const before = tf.memory().numTensors;
    const result = await computeGradientAsync(model, xs, labels, 16);
    expect(tf.memory().numTensors).toBe(before);
    expect(result.loss).toBe(sync.loss);
    expect(Array.from(result.gradient)).toEqual(Array.from(sync.gradient));
    model.dispose();
  });

  it('does not leak tensors', () => {
    const model = buildModel({ preset: 'softmax-784-10' }, 1);
    const { xs, labels } = syntheticBatch(8, 4);
    computeGradient(model, xs, labels, 8);
    evaluate(model, xs, labels, 8, 3);
    const before = tf.memory().numTensors;
    computeGradient(model, xs, labels, 8);
    evaluate(model, xs, labels, 8, 3);
    setFlatParameters(model, getFlatParameters(model));
    expect(tf.memory().numTensors).toBe(before);
    model.dispose();
  });
});

describe('evaluate', () => {
  it('agrees with the training loss across uneven batches and counts correct argmaxes', () => {
    const model = buildModel({ preset: 'softmax-784-10' }, 2);
    const { xs, labels } = syntheticBatch(50, 5);
    const full = computeGradient(model, xs, labels, 50).loss;
    const result = evaluate(model, xs, labels, 50, 16);
    expect(result.loss).toBeCloseTo(full, 5);

    const predicted = tf.tidy(() =>
      tf.argMax(model.predict(tf.tensor2d(xs, [50, 784])) as tf.Tensor2D, -1).dataSync(),
    );
    let correct = 0;
    for (let i = 0; i < 50; i++) if (predicted[i] === labels[i]) correct++;
    expect(result.accuracy).toBe(correct / 50);
    expect(() => evaluate(model, xs, labels, 51)).toThrow(RangeError);
    model.dispose();
  });
});
