import { describe, expect, it } from 'vitest';
import { StallDetector, judge, type SwarmTarget } from '../src/watch.ts';

/** Feeds `detector` one sample every `stepMs` from `t0`; returns the time after the last one. */
function feed(
  detector: StallDetector,
  t0: number,
  stepMs: number,
  samples: [iteration: number, phase: string][],
): number {
  let t = t0;
  for (const [iteration, phase] of samples) {
    detector.sample(t, iteration, phase);
    t += stepMs;
  }
  return t;
}

describe('StallDetector', () => {
  it('counts no stall while iterations advance at their usual pace', () => {
    const d = new StallDetector({ stallFactor: 10, minStallMs: 1000 });
    feed(
      d,
      0,
      100,
      Array.from({ length: 200 }, (_, i) => [Math.floor(i / 2), 'training']),
    );
    expect(d.roundsStalled).toBe(0);
    expect(d.medianIterationMs).toBe(200);
    expect(d.thresholdMs()).toBe(2000);
  });

  it('counts one stall when the iteration stands still in training past the threshold', () => {
    const d = new StallDetector({ stallFactor: 10, minStallMs: 1000 });
    let t = feed(
      d,
      0,
      100,
      Array.from({ length: 50 }, (_, i) => [i, 'training']),
    );
    // 100 ms per iteration → threshold max(10 × 100, 1000) = 1000 ms; stand still for 3 s
    t = feed(
      d,
      t,
      100,
      Array.from({ length: 30 }, () => [50, 'training']),
    );
    expect(d.roundsStalled).toBe(1);
    expect(d.stalls[0]!.iteration).toBe(50);
    // it moves again, then stands still a second time
    t = feed(
      d,
      t,
      100,
      Array.from({ length: 10 }, (_, i) => [51 + i, 'training']),
    );
    feed(
      d,
      t,
      100,
      Array.from({ length: 30 }, () => [60, 'training']),
    );
    expect(d.roundsStalled).toBe(2);
    expect(d.longestWaitMs).toBeGreaterThan(2000);
  });

  it('does not count time in quorum-lost, paused or unreachable, nor before the first advance', () => {
    const d = new StallDetector({ stallFactor: 10, minStallMs: 1000 });
    // tabs loading: iteration 0 in training for 5 s
    let t = feed(
      d,
      0,
      100,
      Array.from({ length: 50 }, () => [0, 'training']),
    );
    t = feed(
      d,
      t,
      100,
      Array.from({ length: 20 }, (_, i) => [1 + i, 'training']),
    );
    t = feed(
      d,
      t,
      100,
      Array.from({ length: 100 }, () => [20, 'quorum-lost']),
    );
    t = feed(
      d,
      t,
      100,
      Array.from({ length: 100 }, () => [20, 'unreachable']),
    );
    t = feed(
      d,
      t,
      100,
      Array.from({ length: 100 }, () => [20, 'paused']),
    );
    // back in training, advancing within the threshold of the return
    feed(d, t, 100, [
      [20, 'training'],
      [20, 'training'],
      [21, 'training'],
    ]);
    expect(d.roundsStalled).toBe(0);
  });

  it('does not judge a restarted coordinator before its first advance', () => {
    const d = new StallDetector({ stallFactor: 10, minStallMs: 1000 });
    let t = feed(
      d,
      0,
      100,
      Array.from({ length: 30 }, (_, i) => [i, 'training']),
    );
    t = feed(
      d,
      t,
      100,
      Array.from({ length: 20 }, () => [29, 'unreachable']),
    );
    // back at the same iteration, tabs reconnecting for 4 s: not a stall
    t = feed(
      d,
      t,
      100,
      Array.from({ length: 40 }, () => [29, 'training']),
    );
    expect(d.roundsStalled).toBe(0);
    // once it advanced, standing still is judged again
    feed(
      d,
      t,
      100,
      Array.from({ length: 40 }, () => [30, 'training']),
    );
    expect(d.roundsStalled).toBe(1);
  });

  it('does not judge a coordinator restarted between two polls, seen only as waiting for tabs', () => {
    const d = new StallDetector({ stallFactor: 10, minStallMs: 1000 });
    let t = feed(
      d,
      0,
      100,
      Array.from({ length: 30 }, (_, i) => [i, 'training']),
    );
    t = feed(d, t, 100, [[29, 'waiting']]);
    // tabs reconnecting and reloading for 4 s at the same iteration: not a stall
    t = feed(
      d,
      t,
      100,
      Array.from({ length: 40 }, () => [29, 'training']),
    );
    expect(d.roundsStalled).toBe(0);
    feed(
      d,
      t,
      100,
      Array.from({ length: 40 }, () => [30, 'training']),
    );
    expect(d.roundsStalled).toBe(1);
  });

  it('starts over when a restarted coordinator reports an earlier iteration', () => {
    const d = new StallDetector({ stallFactor: 10, minStallMs: 1000 });
    let t = feed(
      d,
      0,
      100,
      Array.from({ length: 30 }, (_, i) => [i, 'training']),
    );
    // resumed at 25 and loading: not judged until it advances
    t = feed(
      d,
      t,
      100,
      Array.from({ length: 40 }, () => [25, 'training']),
    );
    expect(d.roundsStalled).toBe(0);
    feed(
      d,
      t,
      100,
      Array.from({ length: 40 }, () => [26, 'training']),
    );
    expect(d.roundsStalled).toBe(1);
  });

  it('refuses nonsense parameters', () => {
    expect(() => new StallDetector({ stallFactor: 0 })).toThrow(RangeError);
    expect(() => new StallDetector({ minStallMs: -1 })).toThrow(RangeError);
  });
});

describe('judge', () => {
  const target: SwarmTarget = { accuracy: 0.9, maxIterations: null, timeoutSeconds: 60 };
  const at = (accuracy: number | null, evaluatedAt: number | null, iteration = 50) => ({
    iteration,
    accuracy,
    evaluatedAt,
    phase: 'training',
  });

  it('meets the target when the accuracy reaches it, and not before', () => {
    expect(judge(target, at(0.89, 45), 10)).toBeUndefined();
    expect(judge(target, at(0.91, 50), 10)).toMatchObject({ ok: true });
  });

  it('misses the target at the timeout', () => {
    expect(judge(target, at(0.5, 45), 60)).toMatchObject({ ok: false });
    expect(judge(target, at(null, null), 61)!.reason).toMatch(/timed out/);
  });

  it('with max iterations, judges the evaluation at the last iteration', () => {
    const t = { ...target, maxIterations: 40 };
    // a high accuracy before the last iteration does not end the run
    expect(judge(t, at(0.95, 35, 38), 10)).toBeUndefined();
    expect(judge(t, at(0.95, 40, 41), 10)).toMatchObject({ ok: true });
    expect(judge(t, at(0.85, 40, 41), 10)).toMatchObject({ ok: false });
  });
});
