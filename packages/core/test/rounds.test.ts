import { describe, expect, it } from 'vitest';
import { decodeFrameInto } from '../src/index.ts';
import { fp32Engine } from './support/engine.ts';

const engine = fp32Engine;

const update = (value: number) => new Float32Array(64).fill(value);

describe('RoundEngine', () => {
  it('closes on a majority once every live cluster proposed, else after the grace period', () => {
    const e = engine();
    e.setClusters([0, 1, 2]);
    expect(e.offer(0, 0, update(1), 0)).toEqual({ ok: true, counted: true, stale: false });
    expect(e.decide(new Set([0, 1, 2]), 1)).toEqual({ action: 'wait' });
    e.offer(1, 0, update(3), 10);
    // majority held, cluster 2 live and still computing: wait for the grace period
    expect(e.decide(new Set([0, 1, 2]), 20)).toEqual({ action: 'wait', until: 110 });
    expect(e.decide(new Set([0, 1, 2]), 110)).toEqual({ action: 'close' });
    // cluster 2 gone: close at once
    expect(e.decide(new Set([0, 1]), 20)).toEqual({ action: 'close' });
  });

  it('reports quorum-lost when fewer than a majority of clusters are live or proposed', () => {
    const e = engine();
    e.setClusters([0, 1, 2, 3, 4]);
    e.offer(0, 0, update(1), 0);
    expect(e.decide(new Set([0, 1]), 0)).toEqual({ action: 'quorum-lost' });
    expect(e.decide(new Set([0, 1, 2]), 0)).toEqual({ action: 'wait' });
  });

  it('moves the base to a point inside the box of the proposals, through a decodable delta', () => {
    const e = engine();
    e.setClusters([0, 1, 2]);
    e.offer(0, 0, update(1), 0);
    e.offer(1, 0, update(3), 0);
    e.offer(2, 0, update(2), 0);
    const closed = e.close();
    expect(closed.iteration).toBe(1);
    expect(closed.contributors).toEqual([0, 1, 2]);
    for (const x of e.base) expect(x).toBe(2); // midpoint of [1, 3]
    const replica = new Float32Array(64);
    expect(decodeFrameInto(closed.frame, replica, { dimension: 64, jobId: 7 }).ok).toBe(true);
    expect(replica).toEqual(e.base);
  });

  it('accepts proposals up to the staleness threshold, drops older and future ones', () => {
    const e = engine({ staleness: 1 });
    e.setClusters([0]);
    e.offer(0, 0, update(1), 0);
    e.close();
    e.offer(0, 0, update(1), 0);
    e.close();
    expect(e.iteration).toBe(2);
    expect(e.offer(0, 0, update(1), 0)).toMatchObject({ ok: false, code: 'stale' });
    expect(e.staleDropped).toBe(1);
    expect(e.offer(0, 1, update(1), 0)).toEqual({ ok: true, counted: true, stale: true });
    expect(e.offer(0, 3, update(1), 0)).toMatchObject({ ok: false, code: 'wrong-iteration' });
    // a fresh proposal replaces a stale one from the same cluster
    expect(e.offer(0, 2, update(1), 0)).toEqual({ ok: true, counted: true, stale: false });
    expect(e.offer(5, 2, update(1), 0)).toMatchObject({ ok: false, code: 'not-in-cluster' });
  });

  it('a lower staleness threshold applies from the next iteration, a higher one at once', () => {
    const e = engine({ staleness: 2 });
    e.setClusters([0, 1]);
    e.offer(0, 0, update(1), 0);
    e.offer(1, 0, update(1), 0);
    e.close();
    // iteration 1 opened with S = 2; S drops to 0 mid-iteration: registers one iteration
    // stale (staleness as the tabs knew it) are still judged by 2 until the next close
    e.setStaleness(0);
    expect(e.staleness).toBe(0);
    expect(e.offer(0, 1, update(1), 0, 1)).toEqual({ ok: true, counted: true, stale: false });
    expect(e.offer(1, 0, update(1), 0)).toEqual({ ok: true, counted: true, stale: true });
    e.close();
    // iteration 2 opened with S = 0
    expect(e.offer(0, 2, update(1), 0, 1)).toMatchObject({ ok: false, code: 'stale' });
    expect(e.offer(0, 1, update(1), 0)).toMatchObject({
      ok: false,
      code: 'stale',
      message: expect.stringContaining('threshold is 0'),
    });
    expect(e.staleDropped).toBe(2);
    // a replica of a coordinator that lowered S this iteration judges as the original does
    const lowered = engine({ staleness: 2 });
    lowered.setClusters([0]);
    lowered.offer(0, 0, update(1), 0);
    lowered.close();
    lowered.setStaleness(0);
    const replica = engine({ staleness: 0 });
    replica.importState(lowered.exportState());
    replica.setStaleness(lowered.staleness);
    expect(replica.enforcedStaleness).toBe(2);
    expect(replica.offer(0, 1, update(1), 0, 1)).toEqual({ ok: true, counted: true, stale: false });
    // raising S takes effect for the very next offer
    e.setStaleness(1);
    expect(e.offer(0, 1, update(1), 0)).toEqual({ ok: true, counted: true, stale: true });
    expect(() => e.setStaleness(-1)).toThrow(RangeError);
  });

  it('replays journaled deltas to the same base (restart)', () => {
    const a = engine({ codec: 'one-bit', blockSize: 32 });
    const frames: Uint8Array[] = [];
    a.setClusters([0, 1]);
    for (let t = 0; t < 5; t++) {
      a.offer(0, t, update(0.1 * (t + 1)), 0);
      a.offer(1, t, update(-0.05 * t), 0);
      frames.push(a.close().frame);
    }
    const b = engine({ codec: 'one-bit', blockSize: 32 });
    frames.forEach((frame, i) => b.replay(frame, i + 1));
    expect(b.iteration).toBe(5);
    expect(b.base).toEqual(a.base);
  });

  it('a close prepared on one replica and adopted by others: bit-identical bases, the error feedback continued by the preparer only', () => {
    const options = { codec: 'one-bit' as const, blockSize: 32 };
    const single = engine(options);
    const leader = engine(options);
    const follower = engine(options);
    for (const e of [single, leader, follower]) e.setClusters([0, 1, 2]);
    for (let t = 0; t < 6; t++) {
      for (const e of [single, leader, follower]) {
        e.offer(0, t, update(0.1 * (t + 1)), 0);
        e.offer(1, t, update(-0.05 * t), 0);
      }
      const reference = single.close();
      const prepared = leader.prepareClose();
      // preparing changes nothing: the base and the held proposals stay
      expect(leader.iteration).toBe(t);
      expect(leader.proposers()).toEqual([0, 1]);
      expect(prepared.frame).toEqual(reference.frame);
      // a close that does not move the iteration on by one changes nothing
      expect(follower.adopt({ ...prepared, iteration: t + 2 })).toBeUndefined();
      expect(leader.adopt(prepared, prepared.residual)).toBe(reference.deltaNorm);
      expect(follower.adopt(prepared)).toBe(reference.deltaNorm);
      expect(follower.adopt(prepared)).toBeUndefined(); // adopted once only
    }
    expect(leader.base).toEqual(single.base);
    expect(follower.base).toEqual(single.base);
    expect(follower.iteration).toBe(6);
  });

  it('a proposal held after a close was prepared stays for the next iteration, one iteration older', () => {
    const e = engine();
    e.setClusters([0, 1, 2]);
    e.offer(0, 0, update(1), 0);
    e.offer(1, 0, update(3), 0);
    const prepared = e.prepareClose();
    e.offer(2, 0, update(2), 0); // arrived while the close travelled
    e.adopt(prepared, prepared.residual);
    expect(e.iteration).toBe(1);
    expect(e.proposers()).toEqual([2]);
    e.offer(0, 1, update(1), 0);
    expect(e.close()).toMatchObject({ contributors: [0, 2], staleAccepted: 1 });
  });

  it("closes on an explicit quorum in 'average' mode, which 'majority' mode refuses", () => {
    const e = engine({ mode: 'average', quorum: 1 });
    e.setClusters([0, 1, 2, 3, 4]);
    expect(e.majority).toBe(3);
    expect(e.quorum).toBe(1);
    const all = new Set([0, 1, 2, 3, 4]);
    expect(e.decide(all, 0)).toEqual({ action: 'wait' });
    e.offer(3, 0, update(2), 5);
    // one proposal is the quorum: the grace window runs from its arrival, in the caller's unit
    expect(e.decide(all, 6)).toEqual({ action: 'wait', until: 105 });
    expect(e.decide(all, 105)).toEqual({ action: 'close' });
    // four of five clusters gone: far below a majority, still no quorum-lost
    expect(e.decide(new Set([3]), 6)).toEqual({ action: 'close' });
    expect(e.decide(new Set(), 6)).toEqual({ action: 'close' });
    e.close();
    for (const x of e.base) expect(x).toBe(2);
    // quorum 2: one live cluster and none held is quorum lost
    const two = engine({ mode: 'average', quorum: 2 });
    two.setClusters([0, 1, 2]);
    expect(two.decide(new Set([0]), 0)).toEqual({ action: 'quorum-lost' });
    expect(two.decide(new Set([0, 1]), 0)).toEqual({ action: 'wait' });
    // without the option, 'average' waits for a majority as before
    const plain = engine({ mode: 'average' });
    plain.setClusters([0, 1, 2, 3, 4]);
    plain.offer(0, 0, update(1), 0);
    expect(plain.quorum).toBe(3);
    expect(plain.decide(new Set([0]), 0)).toEqual({ action: 'quorum-lost' });
    expect(() => engine({ quorum: 1 })).toThrow(RangeError);
    expect(() => engine({ mode: 'average', quorum: 0 })).toThrow(RangeError);
  });

  it('averages in average mode', () => {
    const e = engine({ mode: 'average' });
    e.setClusters([0, 1, 2]);
    e.offer(0, 0, update(1), 0);
    e.offer(1, 0, update(2), 0);
    e.offer(2, 0, update(6), 0);
    e.close();
    for (const x of e.base) expect(x).toBeCloseTo(3, 6);
  });
});
