import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  AgreementCoordinator,
  RoundEngine,
  agreementRounds,
  averageProposals,
  maxSpread,
} from '../src/index.ts';

/** The agreement run the long way: every cluster's rounds through AgreementCoordinator. */
function reference(values: Float32Array[], clusterCount: number, rounds: number): Float32Array {
  const agreement = new AgreementCoordinator({
    clusterCount: Math.max(clusterCount, values.length),
    rounds,
    dimension: values[0]!.length,
  });
  values.forEach((value, index) => agreement.submit(index, 0, value));
  for (let r = 0; r < rounds; r++) {
    values.forEach((_v, index) => {
      const next = agreement.next(index);
      if (next !== undefined && next.round < rounds)
        agreement.submit(index, next.round, next.value);
    });
  }
  return agreement.outputOf(0)!;
}

describe('RoundEngine.close agreement', () => {
  it('moves the base bit for bit where the cluster-by-cluster agreement does', () => {
    const value = fc.float({ min: -4, max: 4, noNaN: true, noDefaultInfinity: true });
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 9 }),
        fc.array(value, { minLength: 5, maxLength: 5 }),
        fc.array(fc.array(value, { minLength: 5, maxLength: 5 }), { minLength: 1, maxLength: 9 }),
        fc.constantFrom(1e-6, 1e-2, 10),
        (extra, baseRow, rows, epsilon) => {
          const d = 5;
          const clusterIds = rows.map((_, i) => i);
          const voting = Math.max(rows.length, 2 * rows.length - extra); // rows hold a majority
          const engine = new RoundEngine({
            dimension: d,
            jobId: 3,
            codec: 'fp32',
            blockSize: 0,
            mode: 'majority',
            epsilon,
            staleness: 2,
            graceMs: 0,
            initial: Float32Array.from(baseRow),
            iteration: 0,
          });
          engine.setClusters(Array.from({ length: voting }, (_, i) => i));
          const updates = rows.map((row) => Float32Array.from(row));
          clusterIds.forEach((id) => engine.offer(id, 0, updates[id]!, 0));
          const closed = engine.close();
          const base = Float32Array.from(baseRow);
          const proposals = updates.map((u) => u.map((x, i) => base[i]! + x));
          const rounds = agreementRounds(maxSpread(proposals), epsilon);
          expect(closed.rounds).toBe(rounds);
          const agreed = reference(proposals, voting, rounds);
          // an fp32 delta frame carries agreed − base exactly as float32; the base adds it
          const expected = base.map((b, i) => b + Math.fround(agreed[i]! - b));
          expect([...engine.base]).toEqual([...expected]);
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe("RoundEngine.close in 'average' mode", () => {
  it('moves the base to averageProposals of the proposals, and reports their maxSpread', () => {
    const value = fc.float({ min: -4, max: 4, noNaN: true, noDefaultInfinity: true });
    fc.assert(
      fc.property(
        fc.array(value, { minLength: 5, maxLength: 5 }),
        fc.array(fc.array(value, { minLength: 5, maxLength: 5 }), { minLength: 1, maxLength: 9 }),
        (baseRow, rows) => {
          const engine = new RoundEngine({
            dimension: 5,
            jobId: 3,
            codec: 'fp32',
            blockSize: 0,
            mode: 'average',
            epsilon: 1e-6,
            staleness: 2,
            graceMs: 0,
            initial: Float32Array.from(baseRow),
            iteration: 0,
            quorum: 1,
          });
          engine.setClusters(rows.map((_, i) => i));
          const updates = rows.map((row) => Float32Array.from(row));
          updates.forEach((u, id) => engine.offer(id, 0, u, 0));
          const closed = engine.close();
          const base = Float32Array.from(baseRow);
          const proposals = updates.map((u) => u.map((x, i) => base[i]! + x));
          expect(closed.spread).toBe(maxSpread(proposals));
          const mean = averageProposals(proposals);
          const expected = base.map((b, i) => b + Math.fround(mean[i]! - b));
          expect([...engine.base]).toEqual([...expected]);
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('RoundEngine.decide', () => {
  /** The rule written out in full: every cluster looked at. */
  function reference(
    clusters: number[],
    held: Set<number>,
    live: Set<number>,
    quorum: number,
    since: number,
    graceMs: number,
    now: number,
  ) {
    if (clusters.length === 0) return { action: 'wait' };
    const voting = clusters.filter((id) => live.has(id) || held.has(id)).length;
    const waiting = clusters.filter((id) => live.has(id) && !held.has(id)).length;
    if (held.size >= quorum) {
      if (waiting === 0) return { action: 'close' };
      return now >= since + graceMs
        ? { action: 'close' }
        : { action: 'wait', until: since + graceMs };
    }
    return voting < quorum ? { action: 'quorum-lost' } : { action: 'wait' };
  }

  it('decides as the full scan of every cluster does', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 12 }),
        fc.array(fc.boolean(), { minLength: 12, maxLength: 12 }),
        fc.array(fc.boolean(), { minLength: 12, maxLength: 12 }),
        fc.option(fc.integer({ min: 1, max: 6 }), { nil: undefined }),
        fc.integer({ min: 0, max: 30 }),
        (k, heldFlags, liveFlags, quorum, now) => {
          const engine = new RoundEngine({
            dimension: 2,
            jobId: 1,
            codec: 'fp32',
            blockSize: 0,
            mode: quorum === undefined ? 'majority' : 'average',
            epsilon: 1e-6,
            staleness: 2,
            graceMs: 10,
            initial: new Float32Array(2),
            iteration: 0,
            quorum,
          });
          const clusters = Array.from({ length: k }, (_, i) => i);
          engine.setClusters(clusters);
          const held = new Set<number>();
          clusters.forEach((id) => {
            if (heldFlags[id]) {
              engine.offer(id, 0, new Float32Array(2), 5);
              held.add(id);
            }
          });
          const live = new Set(clusters.filter((id) => liveFlags[id]));
          const q = quorum ?? Math.floor(k / 2) + 1;
          expect(engine.decide(live, now)).toEqual(reference(clusters, held, live, q, 5, 10, now));
        },
      ),
      { numRuns: 500 },
    );
  });
});
