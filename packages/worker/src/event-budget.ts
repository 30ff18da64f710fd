/**
 * Paces what a tab sends the coordinator so that an honest tab is never refused as
 * `rate-limited`.
 *
 * Guarantee: at most `max` sends in any interval of `windowMs` (a sliding window), in the order
 * they were asked for; a send that would exceed it waits until the oldest send in the window
 * leaves it. The coordinator counts a connection's events in fixed windows (rate-limiter-flexible,
 * `limits.eventBurst` per `eventBurst / eventsPerSecond` seconds, keyed by socket); a sliding
 * window of the same length never exceeds any fixed one, and `max` below the burst leaves room
 * for events delivered closer together than they were sent.
 *
 * Why: a tab seated alone after a coordinator restart closes iterations as fast as it computes
 * (hundreds per second with a small model); its proposals, reports and the WebRTC signals for
 * its returning peers went over the budget, the signals were refused, and the links to those
 * peers did not form (a unit test sat over 60 s without the pair reconnecting).
 *
 * Parameters: the clock, `max` sends per `windowMs`. `reset()` starts a fresh window (a new
 * connection has a fresh budget at the coordinator) and runs what was waiting at once, uncounted:
 * each send checks that its connection is still the current one, so it sends nothing then.
 */
import type { Clock } from './runtime.ts';

export class EventBudget {
  /** When each send in the current window went out, oldest first. */
  private readonly sent: number[] = [];
  private readonly waiting: (() => void)[] = [];
  private timer: unknown;
  /** Sends that had to wait for the window (for status and tests). */
  delayed = 0;

  constructor(
    private readonly clock: Clock,
    private readonly max: number,
    private readonly windowMs: number,
  ) {
    if (!Number.isInteger(max) || max < 1) throw new RangeError(`EventBudget: max ${max}`);
    if (!(windowMs > 0)) throw new RangeError(`EventBudget: windowMs ${windowMs}`);
  }

  /** Runs `send` now if the window has room and nothing waits before it, else in turn. */
  run(send: () => void): void {
    if (this.waiting.length === 0 && this.hasRoom()) {
      this.sent.push(this.clock.now());
      send();
      return;
    }
    this.delayed++;
    this.waiting.push(send);
    this.arm();
  }

  /** A promise that resolves when `run` would send (for sends that await an answer). */
  turn(): Promise<void> {
    return new Promise<void>((resolve) => this.run(resolve));
  }

  /** A new connection: a fresh window; what waited runs now. */
  reset(): void {
    this.sent.length = 0;
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    // not counted: each was asked for on the old connection and sends nothing on the new one
    for (const send of this.waiting.splice(0)) send();
  }

  /** Sends waiting for room now. */
  get pending(): number {
    return this.waiting.length;
  }

  private hasRoom(): boolean {
    const now = this.clock.now();
    while (this.sent.length > 0 && now - this.sent[0]! >= this.windowMs) this.sent.shift();
    return this.sent.length < this.max;
  }

  private arm(): void {
    if (this.timer !== undefined) return;
    const oldest = this.sent[0];
    const wait = oldest === undefined ? 0 : Math.max(0, oldest + this.windowMs - this.clock.now());
    this.timer = this.clock.setTimeout(() => {
      this.timer = undefined;
      this.drain();
    }, wait);
  }

  private drain(): void {
    while (this.waiting.length > 0 && this.hasRoom()) {
      this.sent.push(this.clock.now());
      this.waiting.shift()!();
    }
    if (this.waiting.length > 0) this.arm();
  }
}
