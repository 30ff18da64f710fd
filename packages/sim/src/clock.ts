/**
 * Discrete-event clock: a priority queue of events keyed by simulated time (seconds).
 *
 * Guarantee: `pop` returns events in non-decreasing time order, and events scheduled for the
 * same time in the order they were scheduled (FIFO tie-break by a sequence number), so a
 * simulation driven by it is deterministic for a seed. Simulated time only moves when an event
 * is popped; it is unrelated to wall time (a simulated hour may take a millisecond of CPU).
 * Scheduling in the past (before `now`) is a programming error and throws.
 *
 * Parameters: none. A binary heap on parallel arrays: O(log n) per schedule/pop.
 */
export class EventQueue<E> {
  private readonly times: number[] = [];
  private readonly seqs: number[] = [];
  private readonly items: E[] = [];
  private seq = 0;
  private current = 0;

  /** Simulated time of the last popped event (0 before the first). */
  get now(): number {
    return this.current;
  }

  get size(): number {
    return this.items.length;
  }

  /** Time of the next event, or Infinity when empty. */
  peekTime(): number {
    return this.times.length === 0 ? Infinity : this.times[0]!;
  }

  schedule(at: number, event: E): void {
    if (!(at >= this.current) || Number.isNaN(at)) {
      throw new RangeError(`EventQueue: cannot schedule at ${at}, now is ${this.current}`);
    }
    const times = this.times;
    const seqs = this.seqs;
    const items = this.items;
    let i = items.length;
    times.push(at);
    seqs.push(this.seq++);
    items.push(event);
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.less(i, p)) break;
      this.swap(i, p);
      i = p;
    }
  }

  /** Removes and returns the earliest event, advancing `now` to its time. */
  pop(): { time: number; event: E } | undefined {
    const n = this.items.length;
    if (n === 0) return undefined;
    const time = this.times[0]!;
    const event = this.items[0]!;
    const lastT = this.times.pop()!;
    const lastS = this.seqs.pop()!;
    const lastE = this.items.pop()!;
    if (n > 1) {
      this.times[0] = lastT;
      this.seqs[0] = lastS;
      this.items[0] = lastE;
      let i = 0;
      const m = n - 1;
      while (true) {
        const l = 2 * i + 1;
        if (l >= m) break;
        const r = l + 1;
        const c = r < m && this.less(r, l) ? r : l;
        if (!this.less(c, i)) break;
        this.swap(c, i);
        i = c;
      }
    }
    this.current = time;
    return { time, event };
  }

  private less(a: number, b: number): boolean {
    const ta = this.times[a]!;
    const tb = this.times[b]!;
    return ta < tb || (ta === tb && this.seqs[a]! < this.seqs[b]!);
  }

  private swap(a: number, b: number): void {
    const t = this.times[a]!;
    this.times[a] = this.times[b]!;
    this.times[b] = t;
    const s = this.seqs[a]!;
    this.seqs[a] = this.seqs[b]!;
    this.seqs[b] = s;
    const e = this.items[a]!;
    this.items[a] = this.items[b]!;
    this.items[b] = e;
  }
}
