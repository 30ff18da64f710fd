import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  BackupWorkerPolicy,
  chooseWaitCount,
  correlatedGain,
  linearGain,
  orderStatisticMeans,
} from '../src/backup-workers.ts';
import type { Gain } from '../src/backup-workers.ts';
import { createRng } from '../src/random.ts';
import type { Rng } from '../src/random.ts';

/** Independent brute force: rate of waiting for k, straight from the definition. */
function bruteRate(samples: readonly (readonly number[])[], k: number, gain: Gain, c = 0): number {
  let sum = 0;
  for (const s of samples) {
    const sorted = s.filter((t) => t !== Infinity).sort((a, b) => a - b);
    sum += sorted[k - 1] ?? Infinity;
  }
  const time = c + sum / samples.length;
  if (time === Infinity) return 0;
  return time === 0 ? (gain(k) > 0 ? Infinity : 0) : gain(k) / time;
}

function pareto(rng: Rng, xm: number, alpha: number): number {
  return xm / (1 - rng.next()) ** (1 / alpha);
}

function shuffled(rng: Rng, xs: number[]): number[] {
  for (let i = xs.length - 1; i > 0; i--) {
    const j = Math.floor(rng.next() * (i + 1));
    [xs[i], xs[j]] = [xs[j]!, xs[i]!];
  }
  return xs;
}

/** One iteration: n − 1 peers at ~1 s (±10%), one peer (the same one) 10× slower. */
function oneSlowIteration(rng: Rng, n: number): number[] {
  const times = Array.from({ length: n - 1 }, () => 1 + 0.1 * rng.next());
  times.push(10 * (1 + 0.1 * rng.next()));
  return shuffled(rng, times);
}

describe('chooseWaitCount', () => {
  it('identical deterministic arrivals: waits for all n', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 32 }),
        fc.double({ min: 0, max: 100, noNaN: true }),
        fc.integer({ min: 1, max: 20 }),
        (n, t, iterations) => {
          const samples = Array.from({ length: iterations }, () => new Array<number>(n).fill(t));
          expect(chooseWaitCount(samples, n)).toBe(n);
          expect(chooseWaitCount(samples, n, correlatedGain(0.5))).toBe(n);
        },
      ),
    );
  });

  it('one peer always 10× slower: waits for n − 1', () => {
    fc.assert(
      fc.property(fc.integer({ min: 2, max: 32 }), fc.integer(), (n, seed) => {
        const rng = createRng(seed);
        const samples = Array.from({ length: 20 }, () => oneSlowIteration(rng, n));
        expect(chooseWaitCount(samples, n)).toBe(n - 1);
      }),
    );
  });

  it('a long compute time makes waiting for the straggler worth it', () => {
    const rng = createRng(7);
    const samples = Array.from({ length: 20 }, () => oneSlowIteration(rng, 8));
    expect(chooseWaitCount(samples, 8, linearGain, { computeTime: 0 })).toBe(7);
    expect(chooseWaitCount(samples, 8, linearGain, { computeTime: 1000 })).toBe(8);
  });

  it('heavy-tailed (Pareto) stragglers: waits for fewer than n, and k is the brute-force argmax', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 3, max: 12 }),
        fc.double({ min: 1.05, max: 1.5, noNaN: true }),
        fc.integer(),
        (n, alpha, seed) => {
          const rng = createRng(seed);
          const samples = Array.from({ length: 100 }, () =>
            Array.from({ length: n }, () => 0.5 + pareto(rng, 1, alpha)),
          );
          const k = chooseWaitCount(samples, n);
          expect(k).toBeLessThan(n);
          const chosen = bruteRate(samples, k, linearGain);
          for (let j = 1; j <= n; j++) {
            expect(chosen).toBeGreaterThanOrEqual(bruteRate(samples, j, linearGain));
          }
        },
      ),
      { numRuns: 100 },
    );
  });

  it('is the argmax of g(k)/E[T_(k)] for arbitrary samples, gains, missing peers', () => {
    const gains: Gain[] = [linearGain, correlatedGain(0.2), (k) => 1 - 1 / (k + 1), () => 1];
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 8 }).chain((n) =>
          fc.record({
            n: fc.constant(n),
            samples: fc.array(
              fc.array(
                fc.oneof(
                  { weight: 9, arbitrary: fc.double({ min: 0, max: 50, noNaN: true }) },
                  { weight: 1, arbitrary: fc.constant(Infinity) },
                ),
                { maxLength: n },
              ),
              { minLength: 1, maxLength: 15 },
            ),
            gain: fc.constantFrom(...gains),
            c: fc.constantFrom(0, 0.5, 3),
            minWait: fc.integer({ min: 1, max: n }),
          }),
        ),
        ({ n, samples, gain, c, minWait }) => {
          const k = chooseWaitCount(samples, n, gain, { computeTime: c, minWait });
          expect(k).toBeGreaterThanOrEqual(minWait);
          expect(k).toBeLessThanOrEqual(n);
          const rates = Array.from({ length: n + 1 }, (_, j) =>
            j < minWait ? -Infinity : bruteRate(samples, j, gain, c),
          );
          const best = Math.max(...rates);
          if (best > 0) {
            expect(rates[k]).toBe(best);
            // Ties go to the larger k.
            expect(rates.lastIndexOf(best)).toBe(k);
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it('missing arrivals count as +∞ for that order statistic', () => {
    const samples = [
      [1, 1, 1, 1],
      [1, 1, 1],
      [1, 1, 1, 1],
    ];
    const means = orderStatisticMeans(samples, 4);
    expect([...means]).toEqual([1, 1, 1, Infinity]);
    expect(chooseWaitCount(samples, 4)).toBe(3);
    // Nothing ever arrived: no k has a finite time; fall back to minWait.
    expect(chooseWaitCount([[]], 4, linearGain, { minWait: 2 })).toBe(2);
  });

  it('edge cases and validation', () => {
    expect(chooseWaitCount([], 5)).toBe(5);
    expect(chooseWaitCount([[]], 0)).toBe(0);
    expect(() => chooseWaitCount([[1, 2, 3]], 2)).toThrow(RangeError);
    expect(() => chooseWaitCount([[NaN]], 2)).toThrow(RangeError);
    expect(() => chooseWaitCount([[-1]], 2)).toThrow(RangeError);
    expect(() => chooseWaitCount([[1]], 2, linearGain, { computeTime: -1 })).toThrow(RangeError);
    expect(() => chooseWaitCount([[1]], 1.5)).toThrow(RangeError);
    expect(() => correlatedGain(2)).toThrow(RangeError);
    expect(correlatedGain(0)(5)).toBe(5);
    expect(correlatedGain(1)(5)).toBe(1);
  });
});

describe('BackupWorkerPolicy', () => {
  it('waits for all n until warmup samples are in', () => {
    const policy = new BackupWorkerPolicy({ peers: 4, window: 10, warmup: 3 });
    const slow = [1, 1, 1, 10];
    expect(policy.waitFor()).toBe(4);
    policy.recordIteration(slow);
    policy.recordIteration(slow);
    expect(policy.waitFor()).toBe(4);
    expect(policy.expectedTime(4)).toBe(10);
    policy.recordIteration(slow);
    expect(policy.waitFor()).toBe(3);
    expect(policy.backups()).toBe(1);
  });

  it('window slides: old samples are forgotten', () => {
    const n = 6;
    const window = 8;
    const rng = createRng(3);
    const policy = new BackupWorkerPolicy({ peers: n, window, computeTime: 0.25 });
    for (let i = 0; i < 30; i++) policy.recordIteration(oneSlowIteration(rng, n));
    expect(policy.sampleCount).toBe(window);
    expect(policy.waitFor()).toBe(n - 1);
    expect(policy.expectedTime(n)).toBeGreaterThan(10);
    // The straggler recovers. After window − 1 good iterations one slow iteration is still in
    // the window and still weighs on E[T_(n)]; one more and it is forgotten.
    for (let i = 0; i < window - 1; i++) policy.recordIteration(new Array<number>(n).fill(1));
    expect(policy.expectedTime(n)).toBeGreaterThan(2);
    policy.recordIteration(new Array<number>(n).fill(1));
    expect(policy.expectedTime(n)).toBe(1.25);
    expect(policy.waitFor()).toBe(n);
    // A peer missing in one iteration excludes k = n until that iteration slides out.
    policy.recordIteration([1, 1, 1, 1, 1]);
    expect(policy.expectedTime(n)).toBe(Infinity);
    expect(policy.waitFor()).toBe(n - 1);
    for (let i = 0; i < window; i++) policy.recordIteration(new Array<number>(n).fill(1));
    expect(policy.waitFor()).toBe(n);
  });

  it('agrees with chooseWaitCount on the last `window` iterations', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 10 }),
        fc.integer({ min: 1, max: 12 }),
        fc.integer({ min: 0, max: 40 }),
        fc.integer(),
        (n, window, iterations, seed) => {
          const rng = createRng(seed);
          const policy = new BackupWorkerPolicy({ peers: n, window, warmup: 1 });
          const all: number[][] = [];
          for (let i = 0; i < iterations; i++) {
            const it = Array.from({ length: n }, () => pareto(rng, 1, 1.3));
            const arrived = it.filter(() => rng.next() > 0.05);
            all.push(arrived);
            policy.recordIteration(arrived);
          }
          const recent = all.slice(-window);
          expect(policy.waitFor()).toBe(chooseWaitCount(recent, n));
          if (recent.length > 0) {
            for (let k = 1; k <= n; k++) {
              const expected = orderStatisticMeans(recent, n)[k - 1]!;
              expect(policy.expectedTime(k)).toBeCloseTo(expected, 9);
            }
          }
        },
      ),
    );
  });

  it('validates its inputs', () => {
    expect(() => new BackupWorkerPolicy({ peers: 3, window: 0 })).toThrow(RangeError);
    expect(() => new BackupWorkerPolicy({ peers: -1, window: 3 })).toThrow(RangeError);
    const p = new BackupWorkerPolicy({ peers: 2, window: 3 });
    expect(() => p.recordIteration([1, 2, 3])).toThrow(RangeError);
    expect(() => p.expectedTime(3)).toThrow(RangeError);
    expect(new BackupWorkerPolicy({ peers: 0, window: 3 }).waitFor()).toBe(0);
  });
});
