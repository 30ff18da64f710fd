import { describe, expect, it } from 'vitest';
import { scaleScenario } from '../src/scale.ts';
import { simulate } from '../src/simulator.ts';

describe('10,000 virtual workers', () => {
  it('run the product pipeline correctly (3 iterations; the timing is in bench/sim.ts)', () => {
    const r = simulate(scaleScenario(3));
    expect(r.ended).toBe('max-iterations');
    expect(r.final.iteration).toBe(3);
    // 1,250 clusters of 8: every iteration needs proposals from a majority (626) of them
    const clusters = 10_000 / 8;
    expect(r.counters.proposals).toBeGreaterThanOrEqual(3 * 626);
    expect(r.counters.clusterRounds).toBeLessThanOrEqual(4 * clusters);
    expect(r.counters.agreementRounds).toBeGreaterThan(0);
    // every member of every round sends one one-bit frame to its 7 peers
    const frame = 40 + 4 * Math.ceil(7850 / 1024) + 4 * Math.ceil(7850 / 32);
    expect(r.bytes.peer).toBe(r.counters.clusterRounds * 8 * 7 * frame);
    expect(r.bytes.proposal).toBe(r.counters.clusterRounds * frame);
    expect(r.counters.doorRejected).toBe(0);
    expect(r.waitCounts.every((k) => k === 8)).toBe(true);
    // it learns: held-out accuracy leaves chance level within 3 iterations
    expect(r.history[0]!.accuracy).toBeLessThan(0.12);
    expect(r.final.accuracy).toBeGreaterThan(0.2);
  }, 120_000);

  it('give the same result with the content in two worker threads', () => {
    const scenario = scaleScenario(2, 800);
    const inline = simulate(scenario);
    const threaded = simulate(scenario, { threads: 2 });
    expect(threaded.history).toEqual(inline.history);
    expect(threaded.bytes).toEqual(inline.bytes);
    expect(threaded.counters).toEqual(inline.counters);
    expect(() => simulate({ ...scenario, quarantine: { enabled: true } }, { threads: 2 })).toThrow(
      /threads/,
    );
  }, 120_000);
});
