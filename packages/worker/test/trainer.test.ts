import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { beforeAll, describe, expect, it } from 'vitest';
import { createAttack, createRng, runLocalSteps } from '@swarmgrad/core';
import {
  buildModel,
  computeGradient,
  getFlatParameters,
  setFlatParameters,
} from '@swarmgrad/model';
import { FaultInjector, SCALE_FACTOR, STALE_LAG } from '../src/faults.ts';
import { codedMessage, robustMessage } from '@swarmgrad/core';
import { Trainer, type LocalPartition } from '../src/trainer.ts';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

function partition(count: number, seed: number, local = 0, coefficient = 1): LocalPartition {
  const rng = createRng(seed);
  const xs = Float32Array.from({ length: count * 784 }, () => (rng.next() < 0.2 ? rng.next() : 0));
  const labels = Uint8Array.from({ length: count }, () => Math.floor(rng.next() * 10));
  return { local, coefficient, global: [seed], xs, labels, count };
}

const noPacing = { cancelled: () => false, pace: async () => undefined };

describe('Trainer', () => {
  it('equals core/parle runLocalSteps (elastic SGD with momentum) step for step', async () => {
    const spec = { preset: 'softmax-784-10' } as const;
    const model = buildModel(spec, 1);
    const anchor = getFlatParameters(model);
    // batch = the whole partition, so every step sees the same samples in both runs
    const data = partition(16, 5);
    const settings = { steps: 3, batchSize: 16, learningRate: 0.3, elastic: 0.2, momentum: 0.9 };
    const trainer = new Trainer(model, { inputSize: 784, seed: 9 });
    const paced: number[] = [];
    const result = await trainer.run(anchor, [data], settings, {
      cancelled: () => false,
      pace: async (_ms, examples) => void paced.push(examples),
    });
    expect(result).toBeDefined();
    expect(paced).toEqual([16, 16, 16]);
    expect(result!.steps).toBe(3);
    expect(result!.examples).toBe(48);

    const reference = buildModel(spec, 1);
    const x = Float32Array.from(anchor);
    const expected = runLocalSteps({
      params: x,
      anchor,
      steps: 3,
      gradient: (at) => {
        setFlatParameters(reference, at);
        return computeGradient(reference, data.xs, data.labels, 16).gradient;
      },
      learningRate: 0.3,
      elastic: 0.2,
      momentum: 0.9,
      mode: 'elastic-sgd',
    });
    const u = result!.updates[0]!;
    let worst = 0;
    let norm = 0;
    for (let i = 0; i < u.length; i++) {
      worst = Math.max(worst, Math.abs(u[i]! - expected[i]!));
      norm = Math.max(norm, Math.abs(expected[i]!));
    }
    expect(norm).toBeGreaterThan(1e-3);
    expect(worst / norm).toBeLessThan(1e-4); // only the order of summing the batch differs
    model.dispose();
    reference.dispose();
  });

  it('runs every local partition from the same anchor and can be cancelled', async () => {
    const model = buildModel({ preset: 'softmax-784-10' }, 2);
    const anchor = getFlatParameters(model);
    const trainer = new Trainer(model, { inputSize: 784, seed: 3 });
    const parts = [partition(40, 1, 0, 1), partition(40, 2, 1, -0.5)];
    const settings = { steps: 2, batchSize: 8, learningRate: 0.1, elastic: 0, momentum: 0 };
    const result = await trainer.run(anchor, parts, settings, noPacing);
    expect(result!.updates).toHaveLength(2);
    expect(result!.updates[0]).not.toEqual(result!.updates[1]);
    const coded = codedMessage(parts, result!.updates);
    expect(coded[0]).toBeCloseTo(result!.updates[0]![0]! - 0.5 * result!.updates[1]![0]!, 6);
    const robust = robustMessage(result!.updates);
    expect(robust[5]).toBeCloseTo((result!.updates[0]![5]! + result!.updates[1]![5]!) / 2, 6);

    // no tensor leaks from one iteration to the next
    const tensors = tf.memory().numTensors;
    await trainer.run(anchor, parts, settings, noPacing);
    await trainer.run(anchor, parts, settings, noPacing);
    expect(tf.memory().numTensors).toBe(tensors);

    let calls = 0;
    const cancelled = await trainer.run(anchor, parts, settings, {
      cancelled: () => calls >= 1,
      pace: async () => void calls++,
    });
    expect(cancelled).toBeUndefined();
    expect(calls).toBe(1);
    model.dispose();
  });
});

describe('FaultInjector', () => {
  const u = Float32Array.from({ length: 64 }, (_, i) => Math.sin(i + 1));

  it('sign-flip, scale and random keep the shape; random keeps the norm', () => {
    expect(Array.from(new FaultInjector('sign-flip').corruptUpdate(u))).toEqual(
      Array.from(u, (v) => -v),
    );
    expect(new FaultInjector('scale').corruptUpdate(u)[3]).toBeCloseTo(SCALE_FACTOR * u[3]!, 4);
    const r = new FaultInjector('random', 4).corruptUpdate(u);
    const norm = (v: Float32Array) => Math.hypot(...v);
    expect(norm(r)).toBeCloseTo(norm(u), 3);
    expect(r[0]).not.toBeCloseTo(u[0]!, 3);
  });

  it('runs the attacks of the literature through core, over the peer registers it is given', () => {
    const peers = [1, 2, 3].map((k) => ({
      id: `tab-${k}`,
      update: Float32Array.from(u, (v, i) => v + 0.1 * Math.cos(k * (i + 1))),
    }));
    for (const mode of [
      'alie',
      'ipm',
      'min-max',
      'min-sum',
      'mimic',
      'sign-optimal',
      'drift',
    ] as const) {
      const sent = new FaultInjector(mode).corruptUpdate(u, peers, 3);
      const expected = createAttack(mode).craft({
        honest: u,
        peers,
        iteration: 3,
        rng: createRng(1),
      });
      expect(Array.from(sent)).toEqual(Array.from(expected));
      expect(Array.from(sent)).not.toEqual(Array.from(u));
    }
    // ipm points against the mean of what it saw
    const ipm = new FaultInjector('ipm').corruptUpdate(u, peers);
    const pool = [u, ...peers.map((p) => p.update)];
    const mu = Float32Array.from(u, (_, i) => pool.reduce((s, v) => s + v[i]!, 0) / pool.length);
    expect(ipm.reduce((s, x, i) => s + x * mu[i]!, 0)).toBeLessThan(0);
  });

  it('stale replays the update of STALE_LAG iterations ago', () => {
    const fault = new FaultInjector('stale');
    const sent: number[] = [];
    for (let it = 0; it < STALE_LAG + 3; it++) {
      sent.push(fault.corruptUpdate(new Float32Array(4).fill(it))[0]!);
    }
    expect(sent.slice(STALE_LAG)).toEqual([0, 1, 2]);
  });
});
