/**
 * The client's event budget (src/event-budget.ts): never more than `max` sends in any window,
 * in order, every send eventually made; and a burst paced by it is never refused by the
 * coordinator's own limiter (rate-limiter-flexible, as configured in coordinator.ts).
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { RateLimiterMemory } from 'rate-limiter-flexible';
import { limits } from '@swarmgrad/protocol';
import { FakeClock } from '@swarmgrad/test-support/host';
import { EventBudget } from '../src/event-budget.ts';

/** The most sends found in any interval of `windowMs` (sliding). */
function densest(times: readonly number[], windowMs: number): number {
  let most = 0;
  let from = 0;
  for (let to = 0; to < times.length; to++) {
    while (times[to]! - times[from]! >= windowMs) from++;
    most = Math.max(most, to - from + 1);
  }
  return most;
}

describe('EventBudget', () => {
  it('sends in order, all of them, never more than max in any window', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 20 }),
        fc.integer({ min: 1, max: 500 }),
        // bursts: (gap before it in ms, sends in it)
        fc.array(fc.tuple(fc.integer({ min: 0, max: 800 }), fc.integer({ min: 1, max: 60 })), {
          minLength: 1,
          maxLength: 20,
        }),
        (max, windowMs, bursts) => {
          const clock = new FakeClock();
          const budget = new EventBudget(clock, max, windowMs);
          const sentAt: number[] = [];
          const order: number[] = [];
          let asked = 0;
          for (const [gap, count] of bursts) {
            clock.advance(gap);
            for (let i = 0; i < count; i++) {
              const n = asked++;
              budget.run(() => {
                sentAt.push(clock.now());
                order.push(n);
              });
            }
          }
          clock.advance(windowMs * (asked / max + 2));
          expect(order).toEqual(Array.from({ length: asked }, (_, i) => i));
          expect(budget.pending).toBe(0);
          expect(densest(sentAt, windowMs)).toBeLessThanOrEqual(max);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('sends at once while there is room, and waits exactly until the oldest send leaves', () => {
    const clock = new FakeClock();
    const budget = new EventBudget(clock, 3, 1000);
    const sent: number[] = [];
    for (let i = 0; i < 3; i++) budget.run(() => sent.push(clock.now()));
    expect(sent).toEqual([0, 0, 0]);
    clock.advance(400);
    budget.run(() => sent.push(clock.now()));
    expect(sent).toHaveLength(3);
    expect(budget.delayed).toBe(1);
    clock.advance(599);
    expect(sent).toHaveLength(3);
    clock.advance(1);
    expect(sent).toEqual([0, 0, 0, 1000]);
    // turn() resolves when its send would go out
    let turned = false;
    for (let i = 0; i < 2; i++) budget.run(() => sent.push(clock.now()));
    void budget.turn().then(() => (turned = true));
    return Promise.resolve()
      .then(() => expect(turned).toBe(false))
      .then(() => clock.advance(1000))
      .then(() => expect(turned).toBe(true));
  });

  it('reset() starts a fresh window and runs what waited at once (uncounted)', () => {
    const clock = new FakeClock();
    const budget = new EventBudget(clock, 2, 1000);
    const ran: string[] = [];
    budget.run(() => ran.push('a'));
    budget.run(() => ran.push('b'));
    budget.run(() => ran.push('c'));
    expect(ran).toEqual(['a', 'b']);
    budget.reset();
    expect(ran).toEqual(['a', 'b', 'c']);
    expect(budget.pending).toBe(0);
    budget.run(() => ran.push('d'));
    budget.run(() => ran.push('e'));
    expect(ran).toEqual(['a', 'b', 'c', 'd', 'e']);
    expect(clock.pending).toBe(0);
  });

  it("paces a burst the coordinator's limiter would refuse so that it refuses none", async () => {
    // the coordinator's per-connection limiter (coordinator.ts) on real time, against the
    // client's budget as client.ts builds it, compressed 20× in time so the test takes ~1 s
    const scale = 20;
    const windowMs = (1000 * limits.eventBurst) / limits.eventsPerSecond / scale;
    const server = new RateLimiterMemory({
      points: limits.eventBurst,
      duration: windowMs / 1000,
    });
    const clock = {
      now: () => performance.now(),
      setTimeout: (f: () => void, ms: number) => setTimeout(f, ms),
      clearTimeout: (h: unknown) => clearTimeout(h as NodeJS.Timeout),
    };
    const send = async (): Promise<boolean> =>
      server.consume('socket').then(
        () => true,
        () => false,
      );
    // unpaced: 3 bursts' worth at once is refused beyond the burst
    const unpaced = await Promise.all(Array.from({ length: 3 * limits.eventBurst }, () => send()));
    expect(unpaced.filter((ok) => !ok).length).toBeGreaterThan(0);
    await server.delete('socket');
    // paced: the same demand, every send accepted
    const budget = new EventBudget(clock, Math.floor(0.9 * limits.eventBurst), windowMs);
    const results = await Promise.all(
      Array.from(
        { length: 3 * limits.eventBurst },
        () => new Promise<boolean>((resolve) => budget.run(() => void send().then(resolve))),
      ),
    );
    expect(results.filter((ok) => !ok)).toEqual([]);
  });
});
