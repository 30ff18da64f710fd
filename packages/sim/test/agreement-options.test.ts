import { describe, expect, it } from 'vitest';
import { scaleScenario } from '../src/scale.ts';
import { defineScenario } from '../src/scenario.ts';
import { simulate } from '../src/simulator.ts';

describe("scenario agreement options (core RoundEngine's estimator, trim, trimFloor, clip)", () => {
  it('are validated', () => {
    expect(() => defineScenario({ agreement: { estimator: 'median' as 'midpoint' } })).toThrow(
      /estimator/,
    );
    expect(() => defineScenario({ agreement: { trim: 0.5 } })).toThrow(/trim/);
    expect(() => defineScenario({ agreement: { trimFloor: -1 } })).toThrow(/trimFloor/);
    expect(() => defineScenario({ agreement: { clip: 0.5 } })).toThrow(/clip/);
    const s = defineScenario({
      agreement: { estimator: 'midpoint', trim: 0, trimFloor: 0, clip: Infinity },
    });
    expect(s.agreement).toMatchObject({ estimator: 'midpoint', trimFloor: 0, clip: Infinity });
  });

  it('reach the round engine: the midpoint and the trimmed mean train differently', () => {
    const run = (estimator: 'midpoint' | 'trimmed-mean') =>
      simulate(
        scaleScenario(2, 80, 'majority', {
          l2: 1e-4,
          estimator,
          ...(estimator === 'midpoint' ? { trim: 0, trimFloor: 0, clip: Infinity } : {}),
        }),
      );
    const mid = run('midpoint');
    const trimmed = run('trimmed-mean');
    expect(mid.final.iteration).toBe(2);
    expect(trimmed.final.iteration).toBe(2);
    // same proposals in iteration 1, different agreed bases: the evaluations differ
    expect(mid.final.loss).not.toBe(trimmed.final.loss);
    // the default is the trimmed mean
    const byDefault = simulate(scaleScenario(2, 80, 'majority', { l2: 1e-4 }));
    expect(byDefault.final.loss).toBe(trimmed.final.loss);
  }, 60_000);
});
