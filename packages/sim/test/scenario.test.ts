import { describe, expect, it } from 'vitest';
import { createRng, decodeFrameInto, encodeToFrame, getCodec } from '@swarmgrad/core';
import { AttackerState, applyAttack, corruptFrame } from '../src/attacks.ts';
import {
  checkDistribution,
  meanTime,
  sampleTime,
  type TimeDistribution,
} from '../src/distributions.ts';
import { defaultScenario, defineScenario } from '../src/scenario.ts';

describe('time distributions', () => {
  const kinds: TimeDistribution[] = [
    { kind: 'constant', value: 0.3 },
    { kind: 'shifted-exponential', shift: 0.05, mean: 0.02 },
    { kind: 'log-normal', median: 0.1, sigma: 0.5 },
    { kind: 'pareto', scale: 0.1, alpha: 3 },
  ];
  it('sample non-negative values whose mean matches meanTime', () => {
    for (const dist of kinds) {
      const rng = createRng(11);
      let sum = 0;
      let min = Infinity;
      const n = 40_000;
      for (let i = 0; i < n; i++) {
        const t = sampleTime(dist, rng);
        min = Math.min(min, t);
        sum += t;
      }
      expect(min).toBeGreaterThanOrEqual(0);
      expect(Math.abs(sum / n - meanTime(dist)) / meanTime(dist)).toBeLessThan(0.03);
    }
    expect(meanTime({ kind: 'pareto', scale: 1, alpha: 1 })).toBe(Infinity);
  });
  it('the Pareto tail is heavy: far more extreme draws than the exponential of equal mean', () => {
    const rng = createRng(3);
    const pareto: TimeDistribution = { kind: 'pareto', scale: 0.1, alpha: 1.5 };
    const expo: TimeDistribution = {
      kind: 'shifted-exponential',
      shift: 0,
      mean: meanTime(pareto),
    };
    let p = 0;
    let e = 0;
    for (let i = 0; i < 100_000; i++) {
      if (sampleTime(pareto, rng) > 20 * meanTime(pareto)) p++;
      if (sampleTime(expo, rng) > 20 * meanTime(pareto)) e++;
    }
    expect(p).toBeGreaterThan(50);
    expect(e).toBe(0);
  });
  it('rejects invalid parameters', () => {
    expect(() => checkDistribution('x', { kind: 'pareto', scale: 1, alpha: 0 })).toThrow(
      RangeError,
    );
    expect(() => checkDistribution('x', { kind: 'constant', value: -1 })).toThrow(RangeError);
  });
});

describe('attacks', () => {
  const honest = Float32Array.of(1, -2, 3, 0.5);
  it('transform the honest message as documented', () => {
    const rng = createRng(1);
    const run = (attack: Parameters<typeof applyAttack>[0], magnitude: number) => {
      const m = Float32Array.from(honest);
      applyAttack(attack, m, magnitude, new AttackerState(3), rng);
      return Array.from(m);
    };
    expect(run('sign-flip', 4)).toEqual([-4, 8, -12, -2]);
    expect(run('scale', 100)).toEqual([100, -200, 300, 50]);
    expect(run('zero', 0)).toEqual([0, 0, 0, 0]);
    const random = Float32Array.from(run('random', 10));
    const norm = (v: ArrayLike<number>) => Math.hypot(...Array.from(v));
    expect(norm(random)).toBeCloseTo(10 * norm(honest), 3);
    expect(run('label-flip', 1)).toEqual(Array.from(honest)); // acts on the data, not here
  });
  it('stale replays the message from `lag` rounds before', () => {
    const state = new AttackerState(2);
    const sent: number[] = [];
    for (let r = 0; r < 5; r++) {
      const m = Float32Array.of(r);
      applyAttack('stale', m, 1, state, createRng(0));
      sent.push(m[0]!);
    }
    expect(sent).toEqual([0, 0, 0, 1, 2]);
  });
  it('nan: a valid frame whose payload carries a NaN is rejected at the door', () => {
    for (const name of ['one-bit', 'fp16', 'fp32'] as const) {
      const codec = getCodec(name);
      const encoder = codec.createEncoder(64, codec.defaultBlockSize > 0 ? { blockSize: 32 } : {});
      const frame = encodeToFrame(encoder, new Float32Array(64).fill(0.5), {
        jobId: 1,
        iteration: 0,
        round: 0,
        senderSlot: 0,
      });
      const out = new Float32Array(64);
      expect(decodeFrameInto(frame, out, { dimension: 64 }).ok).toBe(true);
      const bad = corruptFrame(frame);
      const result = decodeFrameInto(bad, out.fill(0), { dimension: 64 });
      expect(result.ok).toBe(false);
      if (!result.ok) expect(result.error.code).toBe('non-finite');
      expect(out.every((x) => x === 0)).toBe(true);
    }
  });
});

describe('defineScenario', () => {
  it('fills every default and keeps what it is given', () => {
    expect(defineScenario()).toEqual(defaultScenario);
    const s = defineScenario({ workers: 7, cluster: { size: 7 }, timing: { bandwidth: 5 } });
    expect(s.workers).toBe(7);
    expect(s.cluster.size).toBe(7);
    expect(s.cluster.redundancy).toBe(0);
    expect(s.timing.bandwidth).toBe(5);
    expect(s.timing.compute).toEqual(defaultScenario.timing.compute);
    expect(defineScenario({ codec: { name: 'stochastic-one-bit' } }).proposalCodec.name).toBe(
      'one-bit',
    );
  });
  it('names the bad field', () => {
    expect(() => defineScenario({ cluster: { size: 4, redundancy: 4 } })).toThrow(/redundancy/);
    expect(() => defineScenario({ workers: 0 })).toThrow(/workers/);
    expect(() =>
      defineScenario({ cluster: { size: 4, redundancy: 1 }, training: { localSteps: 5 } }),
    ).toThrow(/gradient coding/);
    expect(() => defineScenario({ byzantine: { count: 20 }, workers: 10 })).toThrow(/Byzantine/);
  });
});
