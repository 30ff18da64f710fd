import { describe, expect, it } from 'vitest';
import { majorityCondition, verdict } from '../src/experiments/common.ts';

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
