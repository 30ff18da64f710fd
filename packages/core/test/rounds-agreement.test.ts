import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  RoundEngine,
  agreementRounds,
  averageProposals,
  createRng,
  gaussian,
  maxSpread,
  midpointInto,
  robustAgreement,
  trimCount,
} from '../src/index.ts';

function majorityEngine(base: Float32Array, voting: number, epsilon = 1e-6): RoundEngine {
  const engine = new RoundEngine({
    dimension: base.length,
    jobId: 3,
    codec: 'fp32',
    blockSize: 0,
    mode: 'majority',
    epsilon,
    staleness: 2,
    graceMs: 0,
    initial: Float32Array.from(base),
    iteration: 0,
  });
  engine.setClusters(Array.from({ length: voting }, (_, i) => i));
  return engine;
}

describe('RoundEngine.close agreement (majority mode, Byzantine-tolerant)', () => {
  const value = fc.float({ min: -4, max: 4, noNaN: true, noDefaultInfinity: true });
  const row = fc.array(value, { minLength: 5, maxLength: 5 });
  const huge = fc.float({
    min: Math.fround(-1e30),
    max: Math.fround(1e30),
    noNaN: true,
    noDefaultInfinity: true,
  });

  it('trims at least one proposal per side from three on, never half of them', () => {
    expect([1, 2, 3, 4, 5, 9, 10, 20, 100, 1250].map((n) => trimCount(n, 0.1))).toEqual([
      0, 0, 1, 1, 1, 1, 1, 2, 10, 125,
    ]);
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 5000 }),
        fc.float({ min: 0, max: Math.fround(0.49), noNaN: true }),
        (n, t) => {
          const k = trimCount(n, t);
          return k >= 0 && 2 * k < n && (n < 3 || k >= 1);
        },
      ),
    );
  });

  it('with at most t Byzantine proposals, every coordinate stays between the correct proposals (validity)', () => {
    fc.assert(
      fc.property(
        row,
        fc.array(row, { minLength: 1, maxLength: 12 }),
        fc.array(fc.array(huge, { minLength: 5, maxLength: 5 }), { maxLength: 6 }),
        (baseRow, correctRows, byzantineRows) => {
          const n = correctRows.length + byzantineRows.length;
          const t = trimCount(n, 0.1);
          fc.pre(byzantineRows.length <= t);
          const base = Float32Array.from(baseRow);
          const updates = [...correctRows, ...byzantineRows].map((r) => Float32Array.from(r));
          const { agreed } = robustAgreement(base, updates, { trim: 0.1, clip: 3 });
          for (let i = 0; i < base.length; i++) {
            // clipping only shortens an update: a correct proposal lies between base and base + u
            let lo = base[i]!;
            let hi = base[i]!;
            for (const r of correctRows) {
              lo = Math.min(lo, Math.fround(base[i]! + r[i]!));
              hi = Math.max(hi, Math.fround(base[i]! + r[i]!));
            }
            expect(agreed[i]!).toBeGreaterThanOrEqual(Math.fround(lo) - 1e-6 * Math.abs(lo));
            expect(agreed[i]!).toBeLessThanOrEqual(Math.fround(hi) + 1e-6 * Math.abs(hi));
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it('one extreme proposal among three or more cannot move the base beyond the others', () => {
    const base = new Float32Array(4);
    const honest = [0.1, 0.12, 0.09].map((x) => new Float32Array(4).fill(x));
    for (const attack of [1e6, -1e6, 50]) {
      const engine = majorityEngine(base, 4);
      honest.forEach((u, id) => engine.offer(id, 0, u, 0));
      engine.offer(3, 0, new Float32Array(4).fill(attack), 0);
      engine.close();
      for (const x of engine.base) {
        expect(x).toBeGreaterThanOrEqual(0.09 - 1e-7);
        expect(x).toBeLessThanOrEqual(0.12 + 1e-7);
      }
    }
  });

  it('moves the base by the agreed value (an fp32 delta is exact) and reports rounds of the trimmed spread', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 9 }),
        row,
        fc.array(row, { minLength: 1, maxLength: 9 }),
        fc.constantFrom(1e-6, 1e-2, 10),
        (extra, baseRow, rows, epsilon) => {
          const voting = Math.max(rows.length, 2 * rows.length - extra); // rows hold a majority
          const engine = majorityEngine(Float32Array.from(baseRow), voting, epsilon);
          const updates = rows.map((r) => Float32Array.from(r));
          updates.forEach((u, id) => engine.offer(id, 0, u, 0));
          const closed = engine.close();
          const base = Float32Array.from(baseRow);
          const expectedAgreement = robustAgreement(base, updates, { trim: 0.1, clip: 3 });
          expect(closed.rounds).toBe(agreementRounds(expectedAgreement.spread, epsilon));
          const expected = base.map((b, i) => b + Math.fround(expectedAgreement.agreed[i]! - b));
          expect([...engine.base]).toEqual([...expected]);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('refuses to close without a majority of the voting clusters', () => {
    const engine = majorityEngine(new Float32Array(3), 5);
    engine.offer(0, 0, new Float32Array(3).fill(1), 0);
    engine.offer(1, 0, new Float32Array(3).fill(1), 0);
    expect(() => engine.close()).toThrow(/majority/);
  });

  it('at many clusters, stays close to the mean of honest proposals (the midpoint does not)', () => {
    const rng = createRng(5);
    const n = 625;
    const d = 200;
    const base = new Float32Array(d);
    const updates = Array.from({ length: n }, () => {
      const u = new Float32Array(d);
      for (let i = 0; i < d; i++) u[i] = 0.01 + 0.05 * gaussian(rng);
      return u;
    });
    const mean = averageProposals(updates);
    const { agreed } = robustAgreement(base, updates, { trim: 0.1, clip: 3 });
    let robustError = 0;
    let midpointError = 0;
    for (let i = 0; i < d; i++) {
      let lo = Infinity;
      let hi = -Infinity;
      for (const u of updates) {
        lo = Math.min(lo, u[i]!);
        hi = Math.max(hi, u[i]!);
      }
      robustError += (agreed[i]! - mean[i]!) ** 2;
      midpointError += ((lo + hi) / 2 - mean[i]!) ** 2;
    }
    // the trimmed mean's error is a fraction of the noise of one proposal; the midpoint's is not
    expect(Math.sqrt(robustError / d)).toBeLessThan(0.005);
    expect(Math.sqrt(midpointError / d)).toBeGreaterThan(2 * Math.sqrt(robustError / d));
  });
});

describe('robustAgreement estimators', () => {
  /** The rule written out with a full sort per coordinate. */
  function reference(
    base: Float32Array,
    updates: readonly Float32Array[],
    trim: number,
    clip: number,
    estimator: 'trimmed-mean' | 'midpoint',
  ) {
    const n = updates.length;
    const norms = updates.map((u) => Math.sqrt(u.reduce((s, x) => s + x * x, 0)));
    const bound = clip * [...norms].sort((a, b) => a - b)[Math.floor((n - 1) / 2)]!;
    const scales = norms.map((norm) => (norm > bound && norm > 0 ? bound / norm : 1));
    const t = trimCount(n, trim);
    const agreed: number[] = [];
    let spread = 0;
    for (let i = 0; i < base.length; i++) {
      const col = updates
        .map((u, c) => Math.fround(base[i]! + scales[c]! * u[i]!))
        .sort((a, b) => a - b)
        .slice(t, n - t);
      const lo = col[0]!;
      const hi = col[col.length - 1]!;
      agreed.push(
        estimator === 'midpoint'
          ? Math.fround((lo + hi) / 2)
          : Math.fround(col.reduce((s, y) => s + y, 0) / col.length),
      );
      spread = Math.max(spread, hi - lo);
    }
    return { agreed, spread };
  }

  /** robustAgreement against the sort-based reference: the same spread, the same agreed point. */
  function expectSortedRule(
    base: Float32Array,
    updates: Float32Array[],
    trim: number,
    clip: number,
    estimator: 'trimmed-mean' | 'midpoint',
  ): void {
    const got = robustAgreement(base, updates, { trim, clip, estimator });
    const want = reference(base, updates, trim, clip, estimator);
    expect(got.spread).toBe(want.spread);
    for (let i = 0; i < base.length; i++) {
      // the mean sums the kept values in another order: equal up to float32 rounding
      if (estimator === 'midpoint') expect(got.agreed[i]).toBe(want.agreed[i]);
      else
        expect(Math.abs(got.agreed[i]! - want.agreed[i]!)).toBeLessThanOrEqual(
          2 ** -20 * Math.max(1, Math.abs(want.agreed[i]!)),
        );
    }
  }

  it('selection in place gives the sorted rule (ties, trims, clips, both estimators)', () => {
    // few distinct values, so ties are common; up to 700 proposals, more than one block of 64,
    // and from 256 on the sampled path (rounds.ts KeptMiddle) and its fallback
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 700 }),
        fc.integer({ min: 1, max: 70 }),
        fc.float({ min: 0, max: Math.fround(0.49), noNaN: true }),
        fc.constantFrom(1, 3, Infinity),
        fc.constantFrom<'trimmed-mean' | 'midpoint'>('trimmed-mean', 'midpoint'),
        fc.integer(),
        (n, d, trim, clip, estimator, seed) => {
          const rng = createRng(seed);
          const pick = [-0.75, -0.5, 0, 0.25, 0.5, 1, 100];
          const base = Float32Array.from({ length: d }, () => pick[Math.floor(rng.next() * 3)]!);
          const updates = Array.from({ length: n }, () =>
            Float32Array.from({ length: d }, () =>
              rng.next() < 0.5 ? pick[Math.floor(rng.next() * pick.length)]! : gaussian(rng),
            ),
          );
          expectSortedRule(base, updates, trim, clip, estimator);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('the sampled selection (from 256 proposals) keeps the sorted rule on continuous values', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 256, max: 1300 }),
        fc.float({ min: Math.fround(0.01), max: Math.fround(0.3), noNaN: true }),
        fc.constantFrom<'trimmed-mean' | 'midpoint'>('trimmed-mean', 'midpoint'),
        fc.integer(),
        (n, trim, estimator, seed) => {
          const rng = createRng(seed);
          const d = 9;
          const base = Float32Array.from({ length: d }, () => gaussian(rng));
          // a skewed coordinate and an outlying tail: the sample's brackets sit unevenly
          const updates = Array.from({ length: n }, (_, c) =>
            Float32Array.from({ length: d }, (_, i) =>
              i === 0
                ? Math.exp(3 * gaussian(rng))
                : c % 50 === 0
                  ? 1e3 * gaussian(rng)
                  : gaussian(rng),
            ),
          );
          expectSortedRule(base, updates, trim, Infinity, estimator);
        },
      ),
      { numRuns: 60 },
    );
  });

  it("'midpoint' with trim 0 and no clip is seed 000's midpoint of every held proposal", () => {
    const value = fc.float({ min: -4, max: 4, noNaN: true, noDefaultInfinity: true });
    const row = fc.array(value, { minLength: 4, maxLength: 4 });
    fc.assert(
      fc.property(row, fc.array(row, { minLength: 1, maxLength: 12 }), (baseRow, rows) => {
        const engine = new RoundEngine({
          dimension: 4,
          jobId: 3,
          codec: 'fp32',
          blockSize: 0,
          mode: 'majority',
          epsilon: 1e-6,
          staleness: 2,
          graceMs: 0,
          initial: Float32Array.from(baseRow),
          iteration: 0,
          estimator: 'midpoint',
          trim: 0,
          trimFloor: 0,
          clip: Infinity,
        });
        engine.setClusters(rows.map((_, i) => i));
        rows.forEach((r, id) => engine.offer(id, 0, Float32Array.from(r), 0));
        engine.close();
        const base = Float32Array.from(baseRow);
        const proposals = rows.map((r) => Float32Array.from(r, (x, i) => base[i]! + x));
        const mid = midpointInto(new Float32Array(4), proposals);
        const expected = base.map((b, i) => b + Math.fround(mid[i]! - b));
        expect([...engine.base]).toEqual([...expected]);
      }),
      { numRuns: 200 },
    );
  });

  it('rejects an unknown estimator', () => {
    expect(
      () =>
        new RoundEngine({
          dimension: 1,
          jobId: 1,
          codec: 'fp32',
          blockSize: 0,
          mode: 'majority',
          epsilon: 1e-6,
          staleness: 2,
          graceMs: 0,
          initial: new Float32Array(1),
          iteration: 0,
          estimator: 'median' as 'midpoint',
        }),
    ).toThrow(/estimator/);
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
