import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { analyzeStaleness, recommend } from '../src/sdde.ts';
import { AUTO_MAX_STALENESS } from '@swarmgrad/protocol';
import {
  decideAutoStaleness,
  stalenessCandidates,
  stalenessStepScale,
} from '../src/staleness-policy.ts';

const positive = fc.double({ min: 1e-4, max: 10, noNaN: true });

describe('stalenessStepScale', () => {
  it('is in (0, 1], 1 for fresh updates, and caps η·w·h·d at the critical damping 1/e', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 1000 }), positive, positive, (d, eta, h) => {
        const w = stalenessStepScale(d, eta, h);
        expect(w).toBeGreaterThan(0);
        expect(w).toBeLessThanOrEqual(1);
        if (d === 0) expect(w).toBe(1);
        expect(eta * w * h * d).toBeLessThanOrEqual(1 / Math.E + 1e-12);
        // no shrinking below the critical point: the step is cut only as far as needed
        if (eta * h * d <= 1 / Math.E) expect(w).toBe(1);
        else expect(eta * w * h * d).toBeCloseTo(1 / Math.E, 12);
      }),
    );
  });

  it('never grows with the delay, the learning rate or the curvature', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 100 }), positive, positive, (d, eta, h) => {
        const w = stalenessStepScale(d, eta, h);
        expect(stalenessStepScale(d + 1, eta, h)).toBeLessThanOrEqual(w);
        expect(stalenessStepScale(d, eta * 2, h)).toBeLessThanOrEqual(w);
        expect(stalenessStepScale(d, eta, h * 2)).toBeLessThanOrEqual(w);
      }),
    );
  });

  it('leaves the step alone when the curvature or rate is unknown', () => {
    expect(stalenessStepScale(5, 0.1, 0)).toBe(1);
    expect(stalenessStepScale(5, Number.NaN, 1)).toBe(1);
    expect(stalenessStepScale(Number.POSITIVE_INFINITY, 0.1, 1)).toBe(1);
  });
});

describe('stalenessCandidates', () => {
  it('covers n0 and S, and every threshold up to the auto maximum in auto mode', () => {
    const fixed = stalenessCandidates(11, 5);
    expect(fixed.workerCounts).toContain(11);
    expect(fixed.thresholds).toEqual([0, 1, 2, 3, 4, 5, 6]);
    const auto = stalenessCandidates(4, 2, true);
    expect(auto.thresholds).toEqual(Array.from({ length: AUTO_MAX_STALENESS + 1 }, (_, i) => i));
    expect(auto.workerCounts).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
  });
});

describe('decideAutoStaleness', () => {
  /** The grid an auto job analyses for n0 tabs at threshold `current` (h = 1, E[T] = 1 s). */
  function grid(delays: number[], n0: number, current: number, learningRate: number) {
    const { workerCounts, thresholds } = stalenessCandidates(n0, current, true);
    return analyzeStaleness({
      learningRate,
      curvature: 1,
      meanTaskTime: 1,
      delays,
      sampleWorkers: n0,
      workerCounts,
      thresholds,
    });
  }

  /** The auto decision on a measured delay sample of 8 tabs, as the coordinator runs it. */
  const decide = (delays: number[], current: number, learningRate = 0.05) =>
    decideAutoStaleness(grid(delays, 8, current, learningRate), 8, current);

  it('raises S when every update is older than it (S would drop them all)', () => {
    const decision = decide([3, 3, 4, 4, 4, 5], 2);
    expect(decision.threshold).toBeGreaterThanOrEqual(4);
    expect(decision.threshold).toBeLessThanOrEqual(AUTO_MAX_STALENESS);
    expect(decision.changed).toBe(true);
    expect(decision.reason).toMatch(/^S 2 → \d/);
  });

  it('never chooses below minThreshold (a pipelined job: S ≥ 1), whatever the delays say', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 3 }), { minLength: 1, maxLength: 40 }),
        fc.integer({ min: 1, max: AUTO_MAX_STALENESS }),
        fc.double({ min: 0.001, max: 2, noNaN: true }),
        (delays, current, learningRate) => {
          const points = grid(delays, 8, current, learningRate);
          const d = decideAutoStaleness(points, 8, current, { minThreshold: 1 });
          expect(d.threshold).toBeGreaterThanOrEqual(1);
          const mine = recommend(points.filter((p) => p.workers === 8 && p.threshold >= 1));
          expect(d.threshold).toBe(mine.stable ? mine.threshold : current);
        },
      ),
      { numRuns: 60 },
    );
    // fresh updates only, as a pipelined swarm under S = 0 measures: without the floor S stays 0
    const fresh = grid([0, 0, 0, 0, 0, 0], 8, 0, 0.05);
    expect(decideAutoStaleness(fresh, 8, 0).threshold).toBe(0);
    expect(decideAutoStaleness(fresh, 8, 0, { minThreshold: 1 }).threshold).toBeGreaterThanOrEqual(
      1,
    );
  });

  it('keeps S when no candidate converges, and says why', () => {
    // a step so large that every (n, S) diverges
    const decision = decide([1, 2, 3], 2, 50);
    expect(decision).toMatchObject({ threshold: 2, changed: false });
    expect(decision.reason).toMatch(/^kept S=2: no \(n, S\) candidate converges/);
  });

  it('chooses for the tabs active now, within [0, AUTO_MAX_STALENESS], and reports the fastest tab count', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 12 }), { minLength: 1, maxLength: 40 }),
        fc.integer({ min: 1, max: 16 }),
        fc.integer({ min: 0, max: AUTO_MAX_STALENESS }),
        fc.double({ min: 0.001, max: 2, noNaN: true }),
        (delays, n0, current, learningRate) => {
          const points = grid(delays, n0, current, learningRate);
          const d = decideAutoStaleness(points, n0, current);
          expect(d.threshold).toBeGreaterThanOrEqual(0);
          expect(d.threshold).toBeLessThanOrEqual(AUTO_MAX_STALENESS);
          expect(d.changed).toBe(d.threshold !== current);
          expect(d.workers).toBe(recommend(points).workers);
          const mine = recommend(points.filter((p) => p.workers === n0));
          expect(d.threshold).toBe(mine.stable ? mine.threshold : current);
        },
      ),
      { numRuns: 60 },
    );
  });
});
