import { describe, expect, it } from 'vitest';
import { withRetries } from '../src/volunteer/retry.ts';

describe('withRetries (loading the training code again)', () => {
  it('tries again after a failure, with doubling pauses, and returns the first success', async () => {
    const pauses: number[] = [];
    const retried: number[] = [];
    let calls = 0;
    const value = await withRetries(
      async () => {
        calls++;
        if (calls < 3) throw new Error(`fetch ${calls} failed`);
        return 'loaded';
      },
      {
        delayMs: 100,
        sleep: async (ms) => void pauses.push(ms),
        onRetry: (_error, attempt) => retried.push(attempt),
      },
    );
    expect(value).toBe('loaded');
    expect(calls).toBe(3);
    expect(pauses).toEqual([100, 200]);
    expect(retried).toEqual([1, 2]);
  });

  it('gives up after the last try with that try’s error', async () => {
    let calls = 0;
    await expect(
      withRetries(
        async () => {
          calls++;
          throw new Error(`fetch ${calls} failed`);
        },
        { attempts: 3, sleep: async () => undefined },
      ),
    ).rejects.toThrow('fetch 3 failed');
    expect(calls).toBe(3);
  });
});
