import { describe, expect, it } from 'vitest';
import { DEFAULT_AGGREGATOR, defaultJob, jobSpecSchema } from '../src/index.ts';

describe('the job schema', () => {
  it('gives a job that names no rule a robust one (issue 13): f = 1 where the cluster allows it', () => {
    expect(DEFAULT_AGGREGATOR).not.toBe('mean');
    expect(defaultJob.cluster.size).toBe(4);
    expect(defaultJob.aggregator).toEqual({ name: DEFAULT_AGGREGATOR, f: 1 });
    const pairs = jobSpecSchema.parse({ name: 'pairs', cluster: { size: 2, redundancy: 0 } });
    expect(pairs.aggregator).toEqual({ name: DEFAULT_AGGREGATOR, f: 0 });
    const three = jobSpecSchema.parse({ name: 'three', cluster: { size: 3 } });
    expect(three.aggregator).toEqual({ name: DEFAULT_AGGREGATOR, f: 1 });
  });

  it("keeps the operator's rule, and refuses an f of half the cluster or more", () => {
    const mean = jobSpecSchema.parse({ name: 'm', aggregator: { name: 'mean' } });
    expect(mean.aggregator).toEqual({ name: 'mean', f: 0 });
    const onlyF = jobSpecSchema.parse({ name: 'f', aggregator: { f: 1 } });
    expect(onlyF.aggregator).toEqual({ name: DEFAULT_AGGREGATOR, f: 1 });
    const bad = jobSpecSchema.safeParse({
      name: 'bad',
      cluster: { size: 4 },
      aggregator: { name: 'median', f: 2 },
    });
    expect(bad.success).toBe(false);
    expect(bad.error?.issues[0]?.path).toEqual(['aggregator', 'f']);
  });
});
