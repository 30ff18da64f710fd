import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { WaitRule, waitFloor, type ClusterShape } from '../src/swarm/wait-rule.ts';

const coded: ClusterShape = { mode: 'coded', clusterSize: 4, redundancy: 1, f: 0 };
const robust: ClusterShape = { mode: 'robust', clusterSize: 8, redundancy: 0, f: 2 };
const state = (live: number, written: number, decodable = true) => ({
  live,
  written,
  allLiveWritten: written >= live,
  decodable: () => decodable,
});

describe('WaitRule', () => {
  it('floors k at m − s (coded) and 2f + 1 (robust), never above the live slots', () => {
    expect(waitFloor(coded)).toBe(3);
    expect(waitFloor(robust)).toBe(5);
    const rule = new WaitRule(robust, { backups: { kind: 'static', backups: 7 } });
    expect(rule.waitFor(8)).toBe(5);
    expect(rule.waitFor(3)).toBe(3);
    expect(rule.waitFor(0)).toBe(0);
    const override = new WaitRule(robust, { backups: { kind: 'static', backups: 7, minWait: 2 } });
    expect(override.waitFor(8)).toBe(2);
  });

  it('static b waits for the fastest n − b', () => {
    const rule = new WaitRule(
      { ...robust, f: 0 },
      {
        backups: { kind: 'static', backups: 2 },
      },
    );
    expect(rule.waitFor(8)).toBe(6);
    expect(rule.ready(state(8, 5))).toBe(false);
    expect(rule.ready(state(8, 6))).toBe(true);
  });

  it('the dynamic policy waits for all n in warm-up, then drops a persistent straggler', () => {
    const rule = new WaitRule(
      { ...robust, f: 0 },
      {
        backups: { kind: 'dynamic', window: 10, warmup: 3 },
      },
    );
    expect(rule.waitFor(4)).toBe(4);
    for (let i = 0; i < 3; i++) rule.record(4, [1, 1, 1, 100]);
    expect(rule.waitFor(4)).toBe(3);
    // another peer count: a fresh policy (its samples were for n = 4), in warm-up again
    expect(rule.waitFor(5)).toBe(5);
    // a sample for n = 4 while 5 are live is dropped, not filed under n = 5
    rule.record(4, [1, 1, 1, 100], 5);
    expect(rule.waitFor(5)).toBe(5);
  });

  it('is ready when every live slot wrote, or k wrote and (coded) they decode exactly', () => {
    const rule = new WaitRule(coded, { backups: { kind: 'static', backups: 1 } });
    expect(rule.ready(state(4, 0))).toBe(false);
    expect(rule.ready(state(4, 2))).toBe(false);
    expect(rule.ready(state(4, 3, false))).toBe(false);
    expect(rule.ready(state(4, 3, true))).toBe(true);
    expect(rule.ready(state(2, 2, false))).toBe(true);
    const robustRule = new WaitRule(robust, { backups: { kind: 'static', backups: 3 } });
    expect(robustRule.ready(state(8, 5, false))).toBe(true);
  });

  it('deadline = first + max(minPatience, factor · (first − start))', () => {
    const rule = new WaitRule(coded);
    expect(rule.deadline(100, 0)).toBe(100 + 2000);
    expect(rule.deadline(1000, 0)).toBe(1000 + 3000);
    const sim = new WaitRule(coded, { minPatience: 2, patienceFactor: 4 });
    expect(sim.deadline(1, 0.5)).toBe(3);
    expect(sim.deadline(3, 1)).toBe(11);
  });

  it('k stays within [floor, n] whatever the arrivals (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 12 }),
        fc.integer({ min: 0, max: 4 }),
        fc.array(fc.array(fc.double({ min: 0, max: 1000, noNaN: true }), { maxLength: 12 }), {
          maxLength: 30,
        }),
        (n, f, samples) => {
          const shape: ClusterShape = { mode: 'robust', clusterSize: 12, redundancy: 0, f };
          const rule = new WaitRule(shape, { backups: { kind: 'dynamic', window: 5 } });
          for (const times of samples) rule.record(n, times.slice(0, n));
          const k = rule.waitFor(n);
          expect(k).toBeGreaterThanOrEqual(Math.min(n, 2 * f + 1));
          expect(k).toBeLessThanOrEqual(n);
        },
      ),
    );
  });
});
