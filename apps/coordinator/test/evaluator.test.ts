import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
import { jobSpecSchema } from '@swarmgrad/protocol';
import {
  buildModel,
  computeGradient,
  getFlatParameters,
  initialParameters,
  setFlatParameters,
} from '@swarmgrad/model';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildDataset } from '../src/dataset.ts';
import { Evaluator } from '../src/evaluator.ts';

const job = jobSpecSchema.parse({ name: 'eval-test', model: { preset: 'mlp-784-128-10' } });
const data = buildDataset(job);

/** Plain minibatch SGD in this process, on the training set (never the held-out set). */
function trainSgd(steps: number, batch: number, learningRate: number): Float32Array {
  const model = buildModel(job.model, 1);
  let params = getFlatParameters(model);
  const { xs, labels, count } = data.train;
  for (let step = 0; step < steps; step++) {
    const start = ((step * batch) % (count - batch + 1)) | 0;
    const { gradient } = computeGradient(
      model,
      xs.subarray(start * 784, (start + batch) * 784),
      labels.subarray(start, start + batch),
      batch,
    );
    params = params.map((p, i) => p - learningRate * gradient[i]!);
    setFlatParameters(model, params);
  }
  model.dispose();
  return params;
}

describe('Evaluator', () => {
  let evaluator: Evaluator;

  beforeAll(async () => {
    // the in-test training runs on wasm when it initialises (~15x faster than cpu)
    if (!(await tf.setBackend('wasm').catch(() => false))) await tf.setBackend('cpu');
    evaluator = await Evaluator.start(job, data.heldOut);
  });
  afterAll(async () => {
    await evaluator?.close();
  });

  it('runs in a thread on wasm or cpu and knows the parameter count', () => {
    expect(['wasm', 'cpu']).toContain(evaluator.backend);
    expect(evaluator.parameters).toBe(784 * 128 + 128 + 1290);
  });

  it('initial parameters score chance: ~10% accuracy, loss near ln 10', async () => {
    const result = await evaluator.evaluate(initialParameters(job.model, 1), 0);
    expect(result.iteration).toBe(0);
    expect(result.accuracy).toBeGreaterThan(0.02);
    expect(result.accuracy).toBeLessThan(0.25);
    expect(Math.abs(result.loss - Math.log(10))).toBeLessThan(0.3);
    expect(result.ms).toBeGreaterThan(0);
  });

  it('200 SGD steps on the training set reach > 80% held-out accuracy', async () => {
    const trained = trainSgd(200, 64, 0.1);
    const result = await evaluator.evaluate(trained, 200);
    expect(result.iteration).toBe(200);
    expect(result.accuracy).toBeGreaterThan(0.8);
    expect(result.loss).toBeLessThan(0.8);
  });

  it('answers concurrent requests in order and rejects a wrong-length vector alone', async () => {
    const zero = new Float32Array(evaluator.parameters);
    const init = initialParameters(job.model, 2);
    const results = await Promise.all([
      evaluator.evaluate(zero, 1),
      evaluator.evaluate(init, 2),
      evaluator.evaluate(zero, 3),
    ]);
    expect(results.map((r) => r.iteration)).toEqual([1, 2, 3]);
    // all-zero weights: uniform softmax, loss exactly ln 10
    expect(results[0]!.loss).toBeCloseTo(Math.log(10), 4);
    expect(results[2]!.loss).toBe(results[0]!.loss);
    await expect(evaluator.evaluate(new Float32Array(10), 4)).rejects.toThrow(RangeError);
    expect((await evaluator.evaluate(zero, 5)).iteration).toBe(5);
  });

  it('keeps the main event loop free while a (slow, cpu) evaluation runs', async () => {
    const cpu = await Evaluator.start(job, data.heldOut, { backend: 'cpu' });
    try {
      expect(cpu.backend).toBe('cpu');
      const params = initialParameters(job.model, 1);
      let done = false;
      const pending = cpu.evaluate(params, 7).then((r) => {
        done = true;
        return r;
      });
      const lags: number[] = [];
      while (!done) {
        const t0 = performance.now();
        await new Promise((resolve) => setTimeout(resolve, 5));
        lags.push(performance.now() - t0);
      }
      const result = await pending;
      // timers kept firing on the main thread while the evaluation was pending: it runs in
      // its own thread (no wall-clock bound here: speed belongs to benchmarks)
      expect(lags.length).toBeGreaterThan(3);
      // same numbers as the default-backend evaluator
      const reference = await evaluator.evaluate(params, 7);
      expect(result.loss).toBeCloseTo(reference.loss, 4);
      expect(Math.abs(result.accuracy - reference.accuracy)).toBeLessThanOrEqual(0.001);
    } finally {
      await cpu.close();
    }
    await expect(cpu.evaluate(new Float32Array(cpu.parameters), 1)).rejects.toThrow(/closed/);
  });

  it('start rejects when the thread cannot build the model', async () => {
    const bad = {
      ...job,
      model: { topology: { class_name: 'Nope', config: {} }, inputShape: [784], classes: 10 },
    };
    await expect(Evaluator.start(bad, data.heldOut, { backend: 'cpu' })).rejects.toThrow(
      /unknown model class/,
    );
  });
});
