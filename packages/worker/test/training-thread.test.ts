/**
 * A pipelined tab's training thread (training-thread.ts) and the page's side of it
 * (thread-pipeline.ts), connected in one process by a pair of message ports that clone what
 * they carry (as a Web Worker's postMessage does) and deliver it in a later task. The thread
 * trains a real model on TF.js's cpu backend; the browser runs the same code in a Web Worker
 * (e2e/pipeline.spec.ts checks that its tabs train there).
 */
import '@tensorflow/tfjs-backend-cpu';
import { afterEach, describe, expect, it } from 'vitest';
import { createRng } from '@swarmgrad/core';
import type { PipelineRegister } from '../src/pipeline-loop.ts';
import { TrainingThread, type ThreadNow } from '../src/thread-pipeline.ts';
import type { LocalPartition } from '../src/trainer.ts';
import { threadPair } from './support/thread-pair.ts';

const MODEL = { preset: 'softmax-784-10' } as const;
const D = 7850;

function partition(count: number, seed: number, local: number): LocalPartition {
  const rng = createRng(seed);
  const xs = Float32Array.from({ length: count * 784 }, () => (rng.next() < 0.2 ? rng.next() : 0));
  const labels = Uint8Array.from({ length: count }, () => Math.floor(rng.next() * 10));
  return { local, coefficient: 1, global: [seed], xs, labels, count };
}

interface Seen {
  registers: PipelineRegister[];
  steps: number;
  stepEvents: number;
  ms: number;
  dropped: number;
  errors: string[];
}

function start(backend: 'cpu' | 'webgpu' = 'cpu'): {
  thread: TrainingThread;
  seen: Seen;
  pair: ReturnType<typeof threadPair>;
} {
  const seen: Seen = { registers: [], steps: 0, stepEvents: 0, ms: 0, dropped: 0, errors: [] };
  const pair = threadPair();
  const thread = new TrainingThread(
    pair.create,
    { model: MODEL, seed: 7, backend, wasmPath: '/tfjs-wasm/' },
    false,
    {
      step: (ms, _examples, steps = 1) => {
        seen.steps += steps;
        seen.stepEvents++;
        seen.ms += ms;
      },
      register: (register) => void seen.registers.push(register),
      staleDropped: () => void seen.dropped++,
      error: (message) => void seen.errors.push(message),
    },
  );
  return { thread, seen, pair };
}

const partitions = [partition(32, 1, 0), partition(32, 2, 1)];

function now(iteration: number, overrides: Partial<ThreadNow> = {}): ThreadNow {
  return {
    key: 'seat-a',
    partitions,
    base: new Float32Array(D).fill(iteration * 0.001),
    iteration,
    settings: { steps: 2, batchSize: 16, learningRate: 0.1, elastic: 0, momentum: 0 },
    stalenessLimit: 2,
    active: true,
    throttle: 1,
    ...overrides,
  };
}

async function until(what: string, condition: () => boolean, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

const running: TrainingThread[] = [];
afterEach(() => {
  for (const thread of running.splice(0)) thread.terminate();
  delete (globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated;
});

describe('training thread', () => {
  it('steps on the bases the page sends and hands back one register per iteration, its steps counted by the page', async () => {
    const { thread, seen } = start();
    running.push(thread);
    expect(await thread.ready).toBe(true);
    thread.update(now(1));
    await until('the register of iteration 1', () => seen.registers.length >= 1);
    const first = seen.registers[0]!;
    expect(first.iteration).toBe(1);
    expect(first.steps).toBeGreaterThanOrEqual(2);
    expect(first.updates).toHaveLength(2);
    for (const update of first.updates) {
      expect(update).toHaveLength(D);
      expect(update.every(Number.isFinite)).toBe(true);
      expect(update.some((v) => v !== 0)).toBe(true);
    }
    expect(Number.isFinite(first.loss)).toBe(true);
    // without a newer iteration the loop stops at its budget, and sends nothing more
    await until('the step budget spent', () => thread.busy === false && seen.steps >= 2 * 16);
    const stepsAtBudget = seen.steps;
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(seen.steps).toBe(stepsAtBudget);
    expect(seen.registers).toHaveLength(1);
    // each step reported in its own message (no shared memory: not cross-origin isolated)
    expect(seen.stepEvents).toBe(seen.steps);
    expect(seen.ms).toBeGreaterThan(0);

    thread.update(now(2));
    await until('the register of iteration 2', () => seen.registers.length >= 2);
    expect(seen.registers[1]!.iteration).toBe(2);
    // the steps taken while iteration 1 ran are in it, tagged one iteration stale
    expect(seen.registers[1]!.staleness).toBe(1);
    expect(seen.registers[1]!.steps).toBeGreaterThanOrEqual(16);
    expect(seen.errors).toEqual([]);
  });

  it('stops stepping when paused, and a new seat starts a new loop whose registers are the only ones that count', async () => {
    const { thread, seen } = start();
    running.push(thread);
    expect(await thread.ready).toBe(true);
    thread.update(now(1, { settings: { ...now(1).settings, steps: 50 } }));
    await until('some steps', () => seen.steps >= 3);
    thread.update(now(1, { active: false, settings: { ...now(1).settings, steps: 50 } }));
    await new Promise((resolve) => setTimeout(resolve, 50));
    const paused = seen.steps;
    await new Promise((resolve) => setTimeout(resolve, 150));
    expect(seen.steps).toBe(paused);
    expect(seen.registers).toHaveLength(0);

    // a new seat: the first loop's progress (which would have made a register of iteration 1
    // with 50 steps) is gone; the new loop starts from nothing on the base it is given
    thread.update(now(5, { key: 'seat-b' }));
    await until("the new seat's register", () => seen.registers.length >= 1);
    expect(seen.registers.map((r) => [r.iteration, r.staleness])).toEqual([[5, 0]]);
    expect(seen.registers[0]!.steps).toBeLessThan(50);
  });

  it('counts its steps in shared memory when the page is cross-origin isolated', async () => {
    (globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated = true;
    const { thread, seen } = start();
    running.push(thread);
    expect(await thread.ready).toBe(true);
    thread.update(now(1));
    await until('the register of iteration 1', () => seen.registers.length >= 1);
    await until('steps counted', () => {
      thread.collectSteps();
      return seen.steps >= 2;
    });
    await until('the step budget spent', () => {
      thread.collectSteps();
      return seen.steps >= 2 * 16 + 4;
    });
    // one collection covers every step since the last: far fewer events than steps
    expect(seen.stepEvents).toBeLessThan(seen.steps);
    expect(seen.ms).toBeGreaterThan(0);
  });

  it('says why when it cannot start its backend', async () => {
    const { thread } = start('webgpu');
    running.push(thread);
    expect(await thread.ready).toBe(false);
    expect(thread.failure()).toMatch(/webgpu|backend/i);
  });
});
