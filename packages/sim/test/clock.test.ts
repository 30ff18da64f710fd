import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { EventQueue } from '../src/clock.ts';

describe('EventQueue', () => {
  it('pops in time order, FIFO among equal times', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 20 }), { maxLength: 200 }), (times) => {
        const q = new EventQueue<number>();
        times.forEach((t, i) => q.schedule(t, i));
        const out: { time: number; event: number }[] = [];
        for (let e = q.pop(); e !== undefined; e = q.pop()) out.push(e);
        expect(out.map((e) => e.event)).toEqual(
          times
            .map((t, i) => ({ t, i }))
            .sort((a, b) => a.t - b.t || a.i - b.i)
            .map((x) => x.i),
        );
        for (let i = 1; i < out.length; i++)
          expect(out[i]!.time).toBeGreaterThanOrEqual(out[i - 1]!.time);
      }),
    );
  });

  it('keeps simulated time apart from wall time and refuses the past', () => {
    const q = new EventQueue<string>();
    q.schedule(3600, 'an hour later');
    expect(q.now).toBe(0);
    expect(q.pop()).toEqual({ time: 3600, event: 'an hour later' });
    expect(q.now).toBe(3600);
    expect(() => q.schedule(10, 'past')).toThrow(RangeError);
    expect(() => q.schedule(NaN, 'nan')).toThrow(RangeError);
    expect(q.peekTime()).toBe(Infinity);
  });
});
