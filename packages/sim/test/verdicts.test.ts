import { describe, expect, it } from 'vitest';
import { majorityCondition, verdict } from '../src/experiments/common.ts';
import { compareAutoWithFixed } from '../src/experiments/staleness.ts';

describe("experiments' verdicts come from the numbers", () => {
  it('verdict prints what the condition says', () => {
    expect(verdict(true)).toBe('**reproduced**');
    expect(verdict(false)).toBe('**not reproduced**');
  });

  it("seed 000's majority condition: goes on with a majority live, stalls without", () => {
    // 10 clusters: a majority is 6 live, i.e. at most 4 crashed
    const runs = (stalledFrom: number) =>
      [0, 2, 4, 5, 6].map((crashed) => ({ crashed, stalled: crashed >= stalledFrom }));
    expect(majorityCondition(runs(5), 10)).toEqual({ goesOn: true, stallsWithout: true });
    // a run that stalled with a majority live breaks the first half
    expect(majorityCondition(runs(4), 10)).toEqual({ goesOn: false, stallsWithout: true });
    // one that went on without a majority breaks the second
    expect(majorityCondition(runs(6), 10)).toEqual({ goesOn: true, stallsWithout: false });
    // no run without a majority: the second half was not tried, so it is not reproduced
    expect(majorityCondition(runs(5).slice(0, 3), 10).stallsWithout).toBe(false);
  });
});

describe("the auto-staleness table's verdicts come from the numbers", () => {
  const run = (S: number | 'auto', time: number, diverged = false) => ({ S, time, diverged });

  it('compares auto with the fastest fixed S it could have chosen (S ≤ AUTO_MAX_STALENESS = 8)', () => {
    const c = compareAutoWithFixed([
      run(2, 100),
      run(8, 50),
      run(32, 20),
      run(Infinity, Infinity, true),
      run('auto', 60),
    ]);
    expect(c.bestInRange?.S).toBe(8);
    expect(c.bestOverall?.S).toBe(32);
    expect(c.ratio).toBeCloseTo(1.2);
    expect(c.within).toBe(true); // 60 ≤ 1.25 × 50
    expect(c.divergedFixed).toEqual([Infinity]);
    expect(compareAutoWithFixed([run(8, 50), run('auto', 63)]).within).toBe(false);
  });

  it('auto missing the target is never "within"; auto alone reaching it is', () => {
    expect(compareAutoWithFixed([run(4, 50), run('auto', Infinity)]).within).toBe(false);
    const alone = compareAutoWithFixed([run(4, Infinity), run('auto', 80)]);
    expect(alone.within).toBe(true);
    expect(alone.bestInRange).toBeUndefined();
    expect(() => compareAutoWithFixed([run(4, 50)])).toThrow(RangeError);
  });
});
