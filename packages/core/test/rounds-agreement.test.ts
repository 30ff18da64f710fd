import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { AgreementCoordinator, RoundEngine, agreementRounds, maxSpread } from '../src/index.ts';

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
