import { describe, expect, it } from 'vitest';
import { createRng } from '@swarmgrad/core';
import { attackerFor, type AttackName } from '../src/attacks.ts';
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

describe("attacks (a shell over core's library)", () => {
  const honest = Float32Array.of(1, -2, 3, 0.5);
  const input = (h: Float32Array) => ({ honest: h, peers: [], iteration: 0, rng: createRng(1) });
  it("maps the scenario's magnitude to the attack's strength (undefined: its default)", () => {
    const flip = (magnitude: number | undefined) =>
      Array.from(attackerFor({ attack: 'sign-flip', magnitude, lag: 3 }).craft(input(honest)));
    expect(flip(undefined)).toEqual([-4, 8, -12, -2]);
    expect(flip(2)).toEqual([-2, 4, -6, -1]);
  });
  it('passes the lag to the stale attack', () => {
    const attacker = attackerFor({ attack: 'stale', magnitude: undefined, lag: 2 });
    const sent = [0, 1, 2, 3, 4].map((r) => attacker.craft(input(Float32Array.of(r)))[0]);
    expect(sent).toEqual([0, 0, 0, 1, 2]);
  });
  it('refuses an unknown attack name in a scenario', () => {
    expect(() => defineScenario({ byzantine: { count: 1, attack: 'nope' as AttackName } })).toThrow(
      /unknown attack/,
    );
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
