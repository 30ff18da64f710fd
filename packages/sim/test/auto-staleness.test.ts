/**
 * `staleness: 'auto'` in the simulator (issue 16 item 3; seed 001,
 * ../shared/seeds/async-sgd-sdde-staleness.md): the simulated coordinator starts at
 * AUTO_INITIAL_STALENESS, re-picks S from core's SDDE analysis every `autoStaleness.every`
 * simulated seconds on the delays of all proposals (dropped ones included), stays within
 * [0, AUTO_MAX_STALENESS], and is deterministic for a seed. Parameters: Table 3's quadratic
 * (8 eigenvalues in [0.1, 1], one-worker clusters, asynchronous SGD), short horizons.
 */
import { describe, expect, it } from 'vitest';
import { AUTO_INITIAL_STALENESS, AUTO_MAX_STALENESS, stalenessStepScale } from '@swarmgrad/core';
import { logSpectrum } from '../src/models/quadratic.ts';
import { defineScenario, type ScenarioInput } from '../src/scenario.ts';
import { simulate } from '../src/simulator.ts';

const asyncQuadratic = (
  workers: number,
  learningRate: number,
  maxTime: number,
  staleness: number | 'auto' = 'auto',
): ScenarioInput => ({
  seed: 3,
  model: { kind: 'quadratic', eigenvalues: logSpectrum(8, 0.1, 1), noise: 0.01 },
  workers,
  cluster: { size: 1, rebalance: false },
  codec: { name: 'fp32' },
  aggregator: { name: 'mean' },
  quarantine: { enabled: false },
  agreement: { mode: 'average', quorum: 1, grace: 0 },
  staleness,
  training: { learningRate, batchSize: 1 },
  timing: {
    compute: { kind: 'shifted-exponential', shift: 0.5, mean: 0.5 },
    latency: { kind: 'constant', value: 0.005 },
  },
  stop: { maxIterations: 40_000, maxTime, divergeFactor: 1e3 },
  evalEvery: 5,
});

describe("staleness: 'auto'", () => {
  it('starts at the initial S and raises it when the delays are large and the point is stable', () => {
    const r = simulate(asyncQuadratic(16, 0.05, 35));
    const [first] = r.stalenessDecisions;
    expect(first).toBeDefined();
    expect(first!.previous).toBe(AUTO_INITIAL_STALENESS);
    // the sample holds the dropped proposals too: accepted ones alone could not average above S
    expect(first!.meanDelay).toBeGreaterThan(AUTO_INITIAL_STALENESS);
    expect(first!.activeWorkers).toBe(16);
    expect(first!.stable).toBe(true);
    expect(first!.threshold).toBeGreaterThan(AUTO_INITIAL_STALENESS);
    expect(r.finalStaleness).toBe(r.stalenessDecisions.at(-1)!.threshold);
    expect(r.diverged).toBe(false);
  });

  it('re-picks once per period, on the simulated clock', () => {
    const r = simulate({ ...asyncQuadratic(8, 0.05, 60), autoStaleness: { every: 10 } });
    const times = r.stalenessDecisions.map((d) => d.time);
    expect(times.length).toBeGreaterThanOrEqual(4);
    expect(times[0]!).toBeGreaterThanOrEqual(10);
    times.forEach((t, i) => {
      // one decision per 10 s slot, at the first proposal of the slot
      expect(Math.floor(t / 10)).toBe(i + 1);
    });
    // each decision's "previous" is what the one before enforced
    for (let i = 1; i < r.stalenessDecisions.length; i++) {
      expect(r.stalenessDecisions[i]!.previous).toBe(r.stalenessDecisions[i - 1]!.threshold);
    }
  });

  it('never leaves [0, AUTO_MAX_STALENESS], and stays below it where larger S diverges', () => {
    for (const [n, eta] of [
      [64, 0.05],
      [32, 0.2],
      [64, 0.2],
    ] as const) {
      const r = simulate(asyncQuadratic(n, eta, 40));
      expect(r.stalenessDecisions.length).toBeGreaterThan(0);
      for (const d of r.stalenessDecisions) {
        expect(Number.isInteger(d.threshold)).toBe(true);
        expect(d.threshold).toBeGreaterThanOrEqual(0);
        expect(d.threshold).toBeLessThanOrEqual(AUTO_MAX_STALENESS);
      }
      expect(r.diverged).toBe(false);
      if (eta === 0.2) expect(r.finalStaleness).toBeLessThan(AUTO_MAX_STALENESS);
    }
  });

  it('is deterministic for a seed, and the seed matters', () => {
    const a = simulate(asyncQuadratic(24, 0.2, 40));
    const b = simulate(asyncQuadratic(24, 0.2, 40));
    expect(b.stalenessDecisions).toEqual(a.stalenessDecisions);
    expect(b.history).toEqual(a.history);
    expect(b.counters).toEqual(a.counters);
    const c = simulate({ ...asyncQuadratic(24, 0.2, 40), seed: 4 });
    expect(c.stalenessDecisions).not.toEqual(a.stalenessDecisions);
  });

  it('leaves fixed-S runs alone', () => {
    const r = simulate(asyncQuadratic(8, 0.05, 20, 4));
    expect(r.stalenessDecisions).toEqual([]);
    expect(r.finalStaleness).toBe(4);
  });

  it('is checked by defineScenario', () => {
    expect(
      defineScenario({ staleness: 'auto', model: asyncQuadratic(1, 1, 1).model! }).staleness,
    ).toBe('auto');
    // off the quadratic the simulator has no curvature of its own
    expect(() => defineScenario({ staleness: 'auto' })).toThrow(/autoStaleness.curvature/);
    expect(
      defineScenario({ staleness: 'auto', autoStaleness: { curvature: 0.5 } }).autoStaleness,
    ).toEqual({ every: 10, window: 512, curvature: 0.5 });
    expect(() =>
      defineScenario({ ...asyncQuadratic(1, 1, 1), autoStaleness: { every: 0 } }),
    ).toThrow(RangeError);
    expect(() =>
      defineScenario({ ...asyncQuadratic(1, 1, 1), autoStaleness: { window: 0 } }),
    ).toThrow(RangeError);
  });
});

describe("stalenessStep: 'sdde'", () => {
  it('counts each proposal at stalenessStepScale of its delay, as the proposal desk does; none counts all in full', () => {
    const eta = 0.2;
    const none = simulate(asyncQuadratic(32, eta, 15, Infinity));
    const sdde = simulate({ ...asyncQuadratic(32, eta, 15, Infinity), stalenessStep: 'sdde' });
    expect(none.stepScales.length).toBeGreaterThan(100);
    expect(none.stepScales.every((x) => x === 1)).toBe(true);
    // every factor is the core rule's for some measured delay (h = 1, the top eigenvalue), and
    // at η = 0.2 with 32 workers most delays are past the critical damping 1/e
    const allowed = new Set(sdde.staleness.map((d) => stalenessStepScale(d, eta, 1)));
    expect(sdde.stepScales.every((x) => allowed.has(x))).toBe(true);
    const shrunk = sdde.stepScales.filter((x) => x < 1).length;
    expect(shrunk / sdde.stepScales.length).toBeGreaterThan(0.5);
    expect(Math.min(...sdde.stepScales)).toBeLessThan(0.5);
  });

  it('is checked by defineScenario', () => {
    expect(() => defineScenario({ stalenessStep: 'sdde' })).toThrow(/autoStaleness.curvature/);
    expect(
      defineScenario({ stalenessStep: 'sdde', autoStaleness: { curvature: 2 } }).stalenessStep,
    ).toBe('sdde');
    expect(() =>
      defineScenario({
        stalenessStep: 'half' as unknown as 'sdde',
        model: asyncQuadratic(1, 1, 1).model!,
      }),
    ).toThrow(/stalenessStep/);
  });
});
