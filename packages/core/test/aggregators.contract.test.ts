import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { AggregateReport, AggregatorName } from '../src/aggregators/index.ts';
import {
  CENTERED_CLIPPING_DEFAULT_ITERATIONS,
  aggregatorNames,
  getAggregator,
} from '../src/aggregators/index.ts';
import { allFinite, l2Norm } from '../src/vector.ts';

const BOX = 5; // honest coordinates are drawn in [-BOX, BOX]
const TOL = 1e-5; // float32 rounding of outputs of magnitude ≤ a few BOX

const f32 = (...xs: number[]): Float32Array => Float32Array.from(xs);

function vec(d: number, min: number, max: number): fc.Arbitrary<Float32Array> {
  return fc
    .array(fc.double({ min, max, noNaN: true }), { minLength: d, maxLength: d })
    .map((a) => Float32Array.from(a));
}

/** Any coordinate an adversary may send: non-finite, huge, large, or just outside the box. */
const adversarialCoordinate = fc.oneof(
  fc.constantFrom(NaN, Infinity, -Infinity, 1e30, -1e30, 3e38, -3e38),
  fc.double({ min: -1e6, max: 1e6, noNaN: true }),
  fc.double({ min: -2 * BOX, max: 2 * BOX, noNaN: true }),
);

function adversaryVec(d: number): fc.Arbitrary<Float32Array> {
  return fc
    .array(adversarialCoordinate, { minLength: d, maxLength: d })
    .map((a) => Float32Array.from(a));
}

/** k adversaries: independent, or colluding (all send the same vector). */
function adversaries(d: number, k: number): fc.Arbitrary<Float32Array[]> {
  return fc.oneof(
    fc.array(adversaryVec(d), { minLength: k, maxLength: k }),
    adversaryVec(d).map((v) => Array.from({ length: k }, () => v.slice())),
  );
}

/** A permutation of 0..n-1 drawn by fast-check (so failures shrink and replay). */
function permutation(n: number): fc.Arbitrary<number[]> {
  return fc
    .array(fc.integer(), { minLength: n, maxLength: n })
    .map((keys) => keys.map((_, i) => i).sort((a, b) => keys[a]! - keys[b]! || a - b));
}

function run(
  name: AggregatorName,
  inputs: readonly Float32Array[],
  d: number,
  f: number,
): { out: Float32Array; report: AggregateReport } {
  const out = new Float32Array(d).fill(7);
  const report = getAggregator(name).aggregate(inputs, out, { f });
  return { out, report };
}

/** accepted and rejected are ascending and partition 0..n-1. */
function expectPartition(report: AggregateReport, n: number): void {
  const acc = report.accepted;
  const rej = report.rejected.map((r) => r.index);
  expect(acc).toEqual([...acc].sort((a, b) => a - b));
  expect(rej).toEqual([...rej].sort((a, b) => a - b));
  expect([...acc, ...rej].sort((a, b) => a - b)).toEqual(Array.from({ length: n }, (_, i) => i));
}

function expectClose(a: Float32Array, b: Float32Array, tol = 1e-6): void {
  expect(a.length).toBe(b.length);
  for (let j = 0; j < a.length; j++) {
    expect(Math.abs(a[j]! - b[j]!)).toBeLessThanOrEqual(tol * Math.max(1, Math.abs(b[j]!)));
  }
}

interface Honest {
  lo: Float64Array;
  hi: Float64Array;
  mean: Float64Array;
  /** Box diagonal ‖hi − lo‖. */
  diag: number;
  /** Largest pairwise L2 distance. */
  diameter: number;
  maxNorm: number;
  /** Per-input mean |x|, min and max (sign-majority's magnitude). */
  minMeanAbs: number;
  maxMeanAbs: number;
}

function describeHonest(h: readonly Float32Array[], d: number): Honest {
  const lo = new Float64Array(d).fill(Infinity);
  const hi = new Float64Array(d).fill(-Infinity);
  const mean = new Float64Array(d);
  for (const v of h) {
    for (let j = 0; j < d; j++) {
      lo[j] = Math.min(lo[j]!, v[j]!);
      hi[j] = Math.max(hi[j]!, v[j]!);
      mean[j]! += v[j]! / h.length;
    }
  }
  let diag = 0;
  for (let j = 0; j < d; j++) diag += (hi[j]! - lo[j]!) ** 2;
  let diameter = 0;
  for (const a of h) {
    for (const b of h) {
      let s = 0;
      for (let j = 0; j < d; j++) s += (a[j]! - b[j]!) ** 2;
      diameter = Math.max(diameter, Math.sqrt(s));
    }
  }
  const meanAbs = h.map((v) => v.reduce((s, x) => s + Math.abs(x), 0) / d);
  return {
    lo,
    hi,
    mean,
    diag: Math.sqrt(diag),
    diameter,
    maxNorm: Math.max(...h.map((v) => l2Norm(v))),
    minMeanAbs: Math.min(...meanAbs),
    maxMeanAbs: Math.max(...meanAbs),
  };
}

function expectInWidenedBox(out: Float32Array, h: Honest, widen: number): void {
  for (let j = 0; j < out.length; j++) {
    expect(out[j]!).toBeGreaterThanOrEqual(h.lo[j]! - widen - TOL);
    expect(out[j]!).toBeLessThanOrEqual(h.hi[j]! + widen + TOL);
  }
}

function distanceToBox(out: Float32Array, h: Honest): number {
  let s = 0;
  for (let j = 0; j < out.length; j++) {
    const x = out[j]!;
    const e = Math.max(0, h.lo[j]! - x, x - h.hi[j]!);
    s += e * e;
  }
  return Math.sqrt(s);
}

interface BoundCase {
  out: Float32Array;
  honest: Honest;
  /** Admitted inputs (honest + finite adversaries). */
  nAdmitted: number;
  /** Admitted adversaries. */
  bAdmitted: number;
  f: number;
}

/**
 * What each rule guarantees when honest inputs are a strict majority and at most f inputs are
 * adversarial (the proofs are in each implementation's header comment).
 */
const bounds: Record<AggregatorName, { bound: string; check: (c: BoundCase) => void }> = {
  mean: {
    bound: 'none (finite only: the door rejects NaN/±∞)',
    check: () => {},
  },
  median: {
    bound: 'inside the honest box',
    check: ({ out, honest }) => expectInWidenedBox(out, honest, 0),
  },
  'trimmed-mean': {
    bound: 'inside the honest box',
    check: ({ out, honest }) => expectInWidenedBox(out, honest, 0),
  },
  krum: {
    bound: 'honest box widened by D·√((n−f−2)/(n−2f−2)) (box itself on median fallback)',
    check: ({ out, honest, nAdmitted: n, f }) =>
      expectInWidenedBox(
        out,
        honest,
        n > 2 * f + 2 ? honest.diameter * Math.sqrt((n - f - 2) / (n - 2 * f - 2)) : 0,
      ),
  },
  'multi-krum': {
    bound: 'honest box widened by D·√((n−f−2)/(n−2f−2)) (box itself on median fallback)',
    check: ({ out, honest, nAdmitted: n, f }) =>
      expectInWidenedBox(
        out,
        honest,
        n > 2 * f + 2 ? honest.diameter * Math.sqrt((n - f - 2) / (n - 2 * f - 2)) : 0,
      ),
  },
  cge: {
    bound: '‖out‖ ≤ max honest norm and ‖out − μ_H‖ ≤ D + (b/(n−f))(M_H + ‖μ_H‖)',
    check: ({ out, honest, nAdmitted, bAdmitted, f }) => {
      expect(l2Norm(out)).toBeLessThanOrEqual(honest.maxNorm * (1 + 1e-6) + TOL);
      const kept = Math.max(1, nAdmitted - f);
      const muNorm = l2Norm(Float32Array.from(honest.mean));
      const bound =
        honest.diameter + (Math.min(bAdmitted, kept) / kept) * (honest.maxNorm + muNorm);
      let s = 0;
      for (let j = 0; j < out.length; j++) s += (out[j]! - honest.mean[j]!) ** 2;
      expect(Math.sqrt(s)).toBeLessThanOrEqual(bound + TOL);
    },
  },
  'centered-clipping': {
    bound: 'L2 distance to the honest box ≤ iterations·(b/n)·τ, τ ≤ honest box diagonal',
    check: ({ out, honest, nAdmitted, bAdmitted }) => {
      const bound = CENTERED_CLIPPING_DEFAULT_ITERATIONS * (bAdmitted / nAdmitted) * honest.diag;
      expect(distanceToBox(out, honest)).toBeLessThanOrEqual(bound + TOL);
    },
  },
  bucketing: {
    bound:
      'with 2b < B = ⌈n/2⌉ buckets: L2 distance to the honest box ≤ iterations·(b/B)·diag (centered-clipping base)',
    check: ({ out, honest, nAdmitted, bAdmitted }) => {
      const buckets = Math.ceil(nAdmitted / 2);
      if (2 * bAdmitted >= buckets) return; // no bound beyond finiteness (checked by the caller)
      const bound = CENTERED_CLIPPING_DEFAULT_ITERATIONS * (bAdmitted / buckets) * honest.diag;
      expect(distanceToBox(out, honest)).toBeLessThanOrEqual(bound + TOL);
    },
  },
  'sign-majority': {
    bound:
      'out_j ∈ {−s, 0, s}, s within honest mean|x| range; honest-unanimous strict signs are kept',
    check: ({ out, honest }) => {
      const s = Math.max(...Array.from(out, Math.abs));
      // The smallest magnitude a vote may carry, after the float32 rounding of the output.
      const least = Math.fround(honest.minMeanAbs) * (1 - 1e-6);
      for (let j = 0; j < out.length; j++) {
        const x = out[j]!;
        expect(x === 0 || Math.abs(x) === s).toBe(true);
        if (honest.lo[j]! > 0) expect(x).toBeGreaterThanOrEqual(least);
        if (honest.hi[j]! < 0) expect(x).toBeLessThanOrEqual(-least);
      }
      expect(s).toBeLessThanOrEqual(honest.maxMeanAbs * (1 + 1e-6) + TOL);
      if (s > 0) expect(s).toBeGreaterThanOrEqual(least);
    },
  },
};

/** n honest inputs in the box, k ≤ ⌊(N−1)/2⌋ adversaries, f ∈ [k, ⌊(N−1)/2⌋], shuffled. */
const byzantineScenario = fc
  .record({ total: fc.integer({ min: 1, max: 12 }), d: fc.integer({ min: 1, max: 6 }) })
  .chain(({ total, d }) => {
    const maxF = (total - 1) >> 1;
    return fc.integer({ min: 0, max: maxF }).chain((k) =>
      fc.record({
        d: fc.constant(d),
        honest: fc.array(vec(d, -BOX, BOX), { minLength: total - k, maxLength: total - k }),
        bad: adversaries(d, k),
        f: fc.integer({ min: k, max: maxF }),
        perm: permutation(total),
      }),
    );
  });

/** Distinct finite inputs, f ≤ ⌊(n−1)/2⌋. */
const distinctScenario = fc
  .record({ n: fc.integer({ min: 1, max: 10 }), d: fc.integer({ min: 1, max: 5 }) })
  .chain(({ n, d }) =>
    fc.record({
      d: fc.constant(d),
      inputs: fc.uniqueArray(vec(d, -BOX, BOX), {
        minLength: n,
        maxLength: n,
        selector: (v) => Array.from(v).join(','),
      }),
      f: fc.integer({ min: 0, max: (n - 1) >> 1 }),
      perm: permutation(n),
    }),
  );

function nonFiniteVec(d: number): fc.Arbitrary<Float32Array> {
  return fc
    .record({
      base: fc.array(
        fc.oneof(fc.double({ min: -100, max: 100, noNaN: true }), fc.constantFrom(NaN, Infinity)),
        { minLength: d, maxLength: d },
      ),
      at: fc.integer({ min: 0, max: d - 1 }),
      bad: fc.constantFrom(NaN, Infinity, -Infinity),
    })
    .map(({ base, at, bad }) => {
      const v = Float32Array.from(base);
      v[at] = bad;
      return v;
    });
}

describe.each(aggregatorNames.map((name) => [name]))('aggregator contract: %s', (name) => {
  it('is registered under its name', () => {
    expect(getAggregator(name).name).toBe(name);
  });

  it('returns the common input when all inputs are identical', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 6 }).chain((d) => vec(d, -BOX, BOX)),
        fc.integer({ min: 1, max: 10 }),
        fc.nat(),
        (x, n, fSeed) => {
          const f = fSeed % (((n - 1) >> 1) + 1);
          const { out, report } = run(
            name,
            Array.from({ length: n }, () => x.slice()),
            x.length,
            f,
          );
          expectPartition(report, n);
          expect(report.accepted.length).toBeGreaterThan(0);
          let expected = x;
          if (name === 'sign-majority') {
            const scale = x.reduce((s, v) => s + Math.abs(v), 0) / x.length;
            expected = x.map((v) => Math.sign(v) * scale);
          }
          expectClose(out, expected);
        },
      ),
    );
  });

  it('is invariant to the order of the inputs', () => {
    fc.assert(
      fc.property(distinctScenario, ({ d, inputs, f, perm }) => {
        const a = run(name, inputs, d, f);
        const shuffled = perm.map((p) => inputs[p]!);
        const b = run(name, shuffled, d, f);
        expectClose(b.out, a.out);
        // The same original inputs contribute, whatever their positions.
        expect(b.report.accepted.map((i) => perm[i]!).sort((x, y) => x - y)).toEqual(
          a.report.accepted,
        );
      }),
    );
  });

  it(`stays bounded under up to f arbitrary inputs (${bounds[name].bound})`, () => {
    fc.assert(
      fc.property(byzantineScenario, ({ d, honest, bad, f, perm }) => {
        const pool = [...honest, ...bad];
        const inputs = perm.map((p) => pool[p]!);
        const { out, report } = run(name, inputs, d, f);
        expectPartition(report, inputs.length);
        expect(allFinite(out)).toBe(true);
        const nonFinite = perm.flatMap((p, i) => (allFinite(pool[p]!) ? [] : [i]));
        expect(
          report.rejected.filter((r) => r.reason === 'non-finite').map((r) => r.index),
        ).toEqual(nonFinite);
        const bAdmitted = bad.filter((v) => allFinite(v)).length;
        bounds[name].check({
          out,
          honest: describeHonest(honest, d),
          nAdmitted: honest.length + bAdmitted,
          bAdmitted,
          f,
        });
      }),
      { numRuns: 300 },
    );
  });

  it('rejects non-finite inputs at the door: same result as aggregating only the finite ones', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 5 }).chain((d) =>
          fc.record({
            d: fc.constant(d),
            finite: fc.array(vec(d, -100, 100), { maxLength: 9 }),
            broken: fc.array(nonFiniteVec(d), { minLength: 1, maxLength: 5 }),
            f: fc.integer({ min: 0, max: 3 }),
            keys: fc.array(fc.integer(), { minLength: 14, maxLength: 14 }),
          }),
        ),
        ({ d, finite, broken, f, keys }) => {
          const pool = [...finite, ...broken];
          const perm = pool.map((_, i) => i).sort((a, b) => keys[a]! - keys[b]! || a - b);
          const inputs = perm.map((p) => pool[p]!);
          const all = run(name, inputs, d, f);
          const finitePositions = inputs.flatMap((v, i) => (allFinite(v) ? [i] : []));
          const only = run(
            name,
            finitePositions.map((i) => inputs[i]!),
            d,
            f,
          );
          expect(Array.from(all.out)).toEqual(Array.from(only.out));
          expect(all.report.accepted).toEqual(only.report.accepted.map((i) => finitePositions[i]!));
          const brokenPositions = inputs.flatMap((v, i) => (allFinite(v) ? [] : [i]));
          expect(
            all.report.rejected.filter((r) => r.reason === 'non-finite').map((r) => r.index),
          ).toEqual(brokenPositions);
          expectPartition(all.report, inputs.length);
        },
      ),
    );
  });

  it('rejects wrong-length inputs at the door', () => {
    const inputs = [f32(1, 2), f32(1, 2, 3), f32(3, 4), f32(), f32(NaN)];
    const { out, report } = run(name, inputs, 2, 0);
    expect(report.rejected.filter((r) => r.reason === 'wrong-length').map((r) => r.index)).toEqual([
      1, 3, 4,
    ]);
    const clean = run(name, [f32(1, 2), f32(3, 4)], 2, 0);
    expect(Array.from(out)).toEqual(Array.from(clean.out));
  });

  it('writes zeros when nothing is admitted', () => {
    const none = run(name, [], 3, 0);
    expect(Array.from(none.out)).toEqual([0, 0, 0]);
    expect(none.report).toEqual({ accepted: [], rejected: [] });
    const broken = run(name, [f32(NaN, 1, 1), f32(1, 1)], 3, 1);
    expect(Array.from(broken.out)).toEqual([0, 0, 0]);
    expect(broken.report).toEqual({
      accepted: [],
      rejected: [
        { index: 0, reason: 'non-finite' },
        { index: 1, reason: 'wrong-length' },
      ],
    });
  });

  it('never throws when f is large for the number of inputs', () => {
    const inputs = [f32(1, 0), f32(0, 1), f32(2, 2)];
    for (const f of [1, 2, 3, 10]) {
      const { out, report } = run(name, inputs, 2, f);
      expect(allFinite(out)).toBe(true);
      expect(report.accepted.length).toBeGreaterThan(0);
    }
  });

  it('refuses an invalid f and an output buffer that aliases an input', () => {
    const agg = getAggregator(name);
    const x = f32(1, 2);
    expect(() => agg.aggregate([x], new Float32Array(2), { f: -1 })).toThrow(RangeError);
    expect(() => agg.aggregate([x], new Float32Array(2), { f: 0.5 })).toThrow(RangeError);
    expect(() => agg.aggregate([x, f32(3, 4)], x, { f: 0 })).toThrow(RangeError);
  });
});

describe('aggregator registry', () => {
  it('lists every rule once', () => {
    expect([...aggregatorNames].sort()).toEqual(
      [
        'bucketing',
        'centered-clipping',
        'cge',
        'krum',
        'mean',
        'median',
        'multi-krum',
        'sign-majority',
        'trimmed-mean',
      ].sort(),
    );
  });

  it('throws on an unknown name', () => {
    expect(() => getAggregator('nope' as AggregatorName)).toThrow(/no aggregator/);
  });

  it('checks construction parameters', () => {
    expect(() => getAggregator('multi-krum', { m: 0 })).toThrow(RangeError);
    expect(() => getAggregator('centered-clipping', { tau: -1 })).toThrow(RangeError);
    expect(() => getAggregator('centered-clipping', { iterations: 0 })).toThrow(RangeError);
    expect(() => getAggregator('bucketing', { bucketSize: 0 })).toThrow(RangeError);
    expect(() => getAggregator('bucketing', { base: 'bucketing' as 'mean' })).toThrow(RangeError);
  });
});

describe('mean', () => {
  it('averages', () => {
    const { out, report } = run('mean', [f32(1, -2), f32(3, 4), f32(5, 1)], 2, 1);
    expectClose(out, f32(3, 1));
    expect(report.accepted).toEqual([0, 1, 2]);
  });

  it('does not overflow on inputs near the float32 limit', () => {
    const { out } = run('mean', [f32(3e38), f32(3e38), f32(3e38)], 1, 0);
    expectClose(out, f32(3e38));
  });
});

describe('cge', () => {
  it('drops exactly the f largest-norm inputs and averages the rest', () => {
    const inputs = [
      f32(3, 0, 0),
      f32(0, 1, 0),
      f32(0, 0, 5),
      f32(2, 0, 0),
      f32(0, 4, 0),
      f32(1, 0, 0),
    ];
    const { out, report } = run('cge', inputs, 3, 2);
    expect(report.accepted).toEqual([0, 1, 3, 5]);
    expect(report.rejected).toEqual([
      { index: 2, reason: 'filtered' },
      { index: 4, reason: 'filtered' },
    ]);
    expectClose(out, f32(1.5, 0.25, 0));
  });

  it('keeps the smallest-norm input when f ≥ n', () => {
    const { out, report } = run('cge', [f32(3, 4), f32(0, 1), f32(-2, 0)], 2, 5);
    expect(report.accepted).toEqual([1]);
    expectClose(out, f32(0, 1));
  });
});

describe('median', () => {
  it('takes the per-coordinate median, averaging the middle pair for an even count', () => {
    const odd = run('median', [f32(1, 9), f32(100, 2), f32(3, -50)], 2, 0);
    expectClose(odd.out, f32(3, 2));
    const even = run('median', [f32(1), f32(100), f32(3), f32(-7)], 1, 0);
    expectClose(even.out, f32(2));
    expect(even.report.accepted).toEqual([0, 1, 2, 3]);
  });
});

describe('trimmed-mean', () => {
  it('drops the f smallest and f largest per coordinate (hand example)', () => {
    const inputs = [f32(1, 5, 0), f32(2, 5, 10), f32(3, 5, 20), f32(100, 5, 30), f32(-50, 5, 40)];
    const one = run('trimmed-mean', inputs, 3, 1);
    expectClose(one.out, f32(2, 5, 20)); // (1+2+3)/3, 5, (10+20+30)/3
    expect(one.report.accepted).toEqual([0, 1, 2, 3, 4]);
    const two = run('trimmed-mean', inputs, 3, 2);
    expectClose(two.out, f32(2, 5, 20));
    const zero = run('trimmed-mean', inputs, 3, 0);
    expectClose(zero.out, f32(11.2, 5, 20));
  });

  it('falls back to the median when n ≤ 2f', () => {
    const { out } = run('trimmed-mean', [f32(1), f32(2), f32(10), f32(1000)], 1, 2);
    expectClose(out, f32(6));
  });
});

describe('krum / multi-krum', () => {
  const cluster = [f32(1, 1), f32(1.1, 1), f32(0.9, 1), f32(1, 1.1), f32(1, 0.9)];
  const inputs = [
    cluster[3]!,
    f32(10, 10),
    cluster[0]!,
    cluster[1]!,
    f32(-10, 5),
    cluster[2]!,
    cluster[4]!,
  ];

  it('Krum picks the central point', () => {
    const { out, report } = run('krum', inputs, 2, 2);
    expect(Array.from(out)).toEqual(Array.from(f32(1, 1)));
    expect(report.accepted).toEqual([2]);
    expect(report.rejected.every((r) => r.reason === 'filtered')).toBe(true);
    expect(report.rejected).toHaveLength(6);
  });

  it('Multi-Krum averages the n − f best-scored, dropping the outliers', () => {
    const { out, report } = run('multi-krum', inputs, 2, 2);
    expect(report.accepted).toEqual([0, 2, 3, 5, 6]);
    expect(report.rejected).toEqual([
      { index: 1, reason: 'filtered' },
      { index: 4, reason: 'filtered' },
    ]);
    expectClose(out, f32(1, 1));
  });

  it('Multi-Krum with m = 1 is Krum', () => {
    const out = new Float32Array(2);
    const report = getAggregator('multi-krum', { m: 1 }).aggregate(inputs, out, { f: 2 });
    expect(report.accepted).toEqual([2]);
    expect(Array.from(out)).toEqual(Array.from(f32(1, 1)));
  });

  it('falls back to the coordinate-wise median when n ≤ 2f + 2', () => {
    const small = [f32(0, 0), f32(1, 4), f32(2, 2), f32(100, -100)];
    for (const name of ['krum', 'multi-krum'] as const) {
      const { out, report } = run(name, small, 2, 1);
      expectClose(out, f32(1.5, 1));
      expect(report.accepted).toEqual([0, 1, 2, 3]);
    }
  });

  it('can select a Byzantine input outside the honest box (why its bound is widened)', () => {
    // Honest inputs spread along x with y = 0; the adversary sits at their centre, off-axis.
    const honest = [f32(-1, 0), f32(-0.4, 0), f32(0.4, 0), f32(1, 0)];
    const byzantine = f32(0, 0.01);
    const { out, report } = run('krum', [...honest, byzantine], 2, 1);
    expect(report.accepted).toEqual([4]);
    expect(out[1]).toBeGreaterThan(0); // outside the honest box y ∈ [0, 0] ...
    // ... but within D·√((n−f−2)/(n−2f−2)) = 2·√2 of it.
    expect(out[1]).toBeLessThanOrEqual(2 * Math.SQRT2);
  });
});

describe('centered-clipping', () => {
  it('moves by at most (b/n)·τ per iteration towards an outlier; honest inputs pull back', () => {
    const inputs = [f32(0), f32(0), f32(0), f32(0), f32(100)];
    const out = new Float32Array(1);
    getAggregator('centered-clipping', { tau: 1, iterations: 1 }).aggregate(inputs, out, { f: 1 });
    expectClose(out, f32(0.2)); // (1/5)·clip(100, 1)
    getAggregator('centered-clipping', { tau: 1, iterations: 4 }).aggregate(inputs, out, { f: 1 });
    // v ← v + (1 − 4v)/5: 0.2, 0.24, 0.248, 0.2496 → fixed point 0.25, far below 4·(1/5)·τ
    expectClose(out, f32(0.2496));
  });

  it('converges to the mean when nothing is clipped', () => {
    const inputs = [f32(0, 1), f32(2, 3), f32(10, -1)]; // median (2, 1), mean (4, 1)
    const out = new Float32Array(2);
    getAggregator('centered-clipping', { tau: 100, iterations: 1 }).aggregate(inputs, out, {
      f: 0,
    });
    expectClose(out, f32(4, 1));
  });

  it('starts from a caller-provided center (e.g. the previous aggregate)', () => {
    const inputs = [f32(10), f32(10), f32(10)];
    let previous: Float32Array | undefined = f32(0);
    const agg = getAggregator('centered-clipping', {
      tau: 1,
      iterations: 2,
      center: () => previous,
    });
    const out = new Float32Array(1);
    agg.aggregate(inputs, out, { f: 0 });
    expectClose(out, f32(2)); // two clipped steps of length 1 from 0
    previous = f32(NaN); // unusable center → median start
    agg.aggregate(inputs, out, { f: 0 });
    expectClose(out, f32(10));
  });

  it('uses the lower median distance as default τ', () => {
    // Center = median 1; distances 1, 0, 2, 2, 49 → τ = 2;
    // one step: 1 + (1/5)(−1 + 0 − 2 + 2 + 2) = 1.2
    const inputs = [f32(0), f32(1), f32(-1), f32(3), f32(50)];
    const out = new Float32Array(1);
    getAggregator('centered-clipping', { iterations: 1 }).aggregate(inputs, out, { f: 1 });
    expectClose(out, f32(1.2));
  });
});

describe('sign-majority', () => {
  it('votes per coordinate and scales by the median mean |x|', () => {
    const inputs = [f32(1, -2, 0.5), f32(2, -1, -0.5), f32(-3, -1, 0.5)];
    const { out, report } = run('sign-majority', inputs, 3, 1);
    const s = 3.5 / 3; // mean |x| = 3.5/3, 3.5/3, 4.5/3 → median 3.5/3
    expectClose(out, f32(s, -s, s));
    expect(report.accepted).toEqual([0, 1, 2]);
  });

  it('outputs 0 on a tied vote', () => {
    const { out } = run('sign-majority', [f32(1, 2), f32(-1, 2)], 2, 0);
    expect(out[0]).toBe(0);
    expect(out[1]).toBeCloseTo(1.5, 6);
  });
});

describe('bucketing', () => {
  it('averages buckets of s before the base rule (s = 1 is the base rule itself)', () => {
    const inputs = [f32(0, 4), f32(2, 0), f32(10, 10), f32(-1, 1), f32(3, 3)];
    for (const base of ['median', 'cge', 'centered-clipping'] as const) {
      const one = run('bucketing', inputs, 2, 1);
      expect(allFinite(one.out)).toBe(true);
      const out = new Float32Array(2);
      getAggregator('bucketing', { bucketSize: 1, base }).aggregate(inputs, out, { f: 1 });
      expectClose(out, run(base, inputs, 2, 1).out);
    }
    // s ≥ n: one bucket, the mean of everything
    const all = new Float32Array(2);
    getAggregator('bucketing', { bucketSize: 5, base: 'median' }).aggregate(inputs, all, { f: 0 });
    expectClose(all, f32(2.8, 3.6));
  });

  it('reports the inputs of the buckets the base rule filtered', () => {
    // CGE over 2 buckets of 2 with f = 1 drops the larger-norm bucket: exactly 2 inputs filtered
    const inputs = [f32(1, 0), f32(0, 1), f32(100, 0), f32(0, 100)];
    const out = new Float32Array(2);
    const report = getAggregator('bucketing', { base: 'cge' }).aggregate(inputs, out, { f: 1 });
    expect(report.accepted).toHaveLength(2);
    expect(report.rejected.filter((r) => r.reason === 'filtered')).toHaveLength(2);
    // whatever the buckets, the kept one is the one of smaller norm
    expect(l2Norm(out)).toBeLessThanOrEqual(Math.hypot(50, 50) + 1e-3);
  });

  it('draws its buckets from the inputs: a fresh aggregator recomputes any call, other inputs draw others', () => {
    const agg = getAggregator('bucketing', { base: 'median' });
    const seen = new Set<string>();
    for (let t = 0; t < 20; t++) {
      // the same six values shifted a little: which of them share a bucket shows in the median
      const inputs = [0, 1, 2, 3, 4, 50].map((x) => f32(x + t / 1024));
      const out = new Float32Array(1);
      agg.aggregate(inputs, out, { f: 1 });
      // a member recomputing the proposer's update (cluster-round.ts) starts afresh
      const again = new Float32Array(1);
      getAggregator('bucketing', { base: 'median' }).aggregate([...inputs].reverse(), again, {
        f: 1,
      });
      expect(again[0]).toBe(out[0]);
      seen.add((out[0]! - t / 1024).toFixed(3));
    }
    expect(seen.size).toBeGreaterThan(1);
  });
});
