import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { createGradientCode, decodeInto, encodeInto } from '../src/gradient-coding.ts';
import type { DecodeResult, GradientCode, GradientCodeScheme } from '../src/gradient-coding.ts';
import { createRng, gaussian } from '../src/random.ts';
import { subsets } from './support/subsets.ts';

const D = 20;

function randomGradients(m: number, seed: number): Float32Array[] {
  const rng = createRng(seed);
  return Array.from({ length: m }, () => Float32Array.from({ length: D }, () => gaussian(rng)));
}

/** Σ_j factor_j · g_j in Float64 (factor defaults to 1 for every partition). */
function combination(g: readonly Float32Array[], factor?: (j: number) => number): Float64Array {
  const out = new Float64Array(D);
  g.forEach((gj, j) => {
    const f = factor === undefined ? 1 : factor(j);
    for (let k = 0; k < D; k++) out[k]! += f * gj[k]!;
  });
  return out;
}

function encodeAll(code: GradientCode, g: readonly Float32Array[]): Float32Array[] {
  return Array.from({ length: code.slots }, (_, i) => {
    const out = new Float32Array(D);
    encodeInto(code, i, g, out);
    return out;
  });
}

function decoded(result: DecodeResult, messages: readonly Float32Array[]): Float32Array {
  const out = new Float32Array(D).fill(Number.NaN);
  decodeInto(result, messages, out);
  return out;
}

function relativeError(actual: Float32Array, expected: Float64Array): number {
  let err = 0;
  let norm = 0;
  for (let k = 0; k < D; k++) {
    err += (actual[k]! - expected[k]!) ** 2;
    norm += expected[k]! ** 2;
  }
  return Math.sqrt(err / norm);
}

/** c = Σ_i weights_i · b_i: how many times each partition's gradient enters the decode. */
function partitionMultiplicity(code: GradientCode, weights: Float64Array): Float64Array {
  const c = new Float64Array(code.slots);
  weights.forEach((w, i) => {
    const b = code.coefficients(i);
    for (let j = 0; j < code.slots; j++) c[j]! += w * b[j]!;
  });
  return c;
}

function coveredBy(code: GradientCode, live: readonly number[]): Set<number> {
  return new Set(live.flatMap((i) => code.partitionsOf(i)));
}

function expectExactDecode(code: GradientCode, live: readonly number[], seed: number): void {
  const g = randomGradients(code.slots, seed);
  const messages = encodeAll(code, g);
  const result = code.decode(live);
  expect(result.exact, `live ${live.join(',')}`).toBe(true);
  result.weights.forEach((w, i) => {
    if (!live.includes(i)) expect(w).toBe(0);
  });
  for (const cj of partitionMultiplicity(code, result.weights)) {
    expect(Math.abs(cj - 1)).toBeLessThanOrEqual(1e-9);
  }
  expect(relativeError(decoded(result, messages), combination(g))).toBeLessThan(1e-4);
}

const cyclicConfigs: [number, number][] = [
  [1, 0],
  [2, 1],
  [3, 1],
  [4, 1],
  [4, 2],
  [5, 2],
  [5, 3],
  [6, 2],
  [6, 3],
  [7, 3],
  [7, 4],
  [8, 2],
  [8, 4],
  [8, 5],
  [9, 3],
  [9, 4],
  [10, 4],
  [10, 5],
  [10, 6],
  [10, 9],
];
const fractionalConfigs: [number, number][] = [
  [1, 0],
  [2, 1],
  [4, 1],
  [6, 1],
  [6, 2],
  [8, 3],
  [9, 2],
  [10, 4],
  [10, 1],
];
const allConfigs: [GradientCodeScheme, number, number][] = [
  ...cyclicConfigs.map(([m, s]): [GradientCodeScheme, number, number] => ['cyclic', m, s]),
  ...fractionalConfigs.map(([m, s]): [GradientCodeScheme, number, number] => [
    'fractional-repetition',
    m,
    s,
  ]),
];

describe('gradient code placement', () => {
  it.each(allConfigs)(
    '%s m=%i s=%i: s+1 partitions per slot, s+1 slots per partition',
    (scheme, m, s) => {
      const code = createGradientCode({ slots: m, redundancy: s, scheme });
      expect([code.slots, code.redundancy, code.scheme]).toEqual([m, s, scheme]);
      const holders = new Array<number>(m).fill(0);
      for (let i = 0; i < m; i++) {
        const held = code.partitionsOf(i);
        expect(held).toHaveLength(s + 1);
        expect(new Set(held).size).toBe(s + 1);
        for (const j of held) {
          expect(j).toBeGreaterThanOrEqual(0);
          expect(j).toBeLessThan(m);
          holders[j]! += 1;
        }
        const b = code.coefficients(i);
        expect(b).toHaveLength(m);
        b.forEach((v, j) => {
          if (!held.includes(j)) expect(v).toBe(0);
        });
        expect(b.some((v) => v !== 0)).toBe(true);
      }
      expect(holders).toEqual(new Array<number>(m).fill(s + 1));
    },
  );

  it('cyclic slot i holds i, i+1, …, i+s (mod m) and has coefficient 1 on partition i', () => {
    const code = createGradientCode({ slots: 7, redundancy: 3, scheme: 'cyclic' });
    expect(code.partitionsOf(5)).toEqual([5, 6, 0, 1]);
    for (let i = 0; i < 7; i++) expect(code.coefficients(i)[i]).toBe(1);
  });

  it('fractional repetition groups s+1 slots on the same partitions with coefficient 1', () => {
    const code = createGradientCode({ slots: 6, redundancy: 2, scheme: 'fractional-repetition' });
    for (const slot of [0, 1, 2]) expect(code.partitionsOf(slot).sort()).toEqual([0, 1, 2]);
    for (const slot of [3, 4, 5]) expect(code.partitionsOf(slot).sort()).toEqual([3, 4, 5]);
    expect([...code.coefficients(4)]).toEqual([0, 0, 0, 1, 1, 1]);
  });

  it('returns copies, so callers cannot corrupt the code', () => {
    const code = createGradientCode({ slots: 5, redundancy: 2, scheme: 'cyclic' });
    code.coefficients(0).fill(99);
    code.partitionsOf(0).push(42);
    expect(code.coefficients(0)[0]).toBe(1);
    expect(code.partitionsOf(0)).toEqual([0, 1, 2]);
  });

  it('is deterministic for a seed, so every member of a cluster builds the same B', () => {
    for (const [m, s] of [
      [8, 4],
      [9, 3],
    ]) {
      const a = createGradientCode({ slots: m!, redundancy: s!, scheme: 'cyclic', seed: 17 });
      const b = createGradientCode({ slots: m!, redundancy: s!, scheme: 'cyclic', seed: 17 });
      for (let i = 0; i < m!; i++) expect(a.coefficients(i)).toEqual(b.coefficients(i));
    }
  });
});

describe('exact decode from any m − s slots', () => {
  it.each(allConfigs)(
    '%s m=%i s=%i: every subset of size m − s decodes the full sum',
    (scheme, m, s) => {
      const code = createGradientCode({ slots: m, redundancy: s, scheme });
      for (const live of subsets(m, m - s)) expectExactDecode(code, live, 1000 + m * 31 + s);
    },
  );

  it.each(allConfigs)('%s m=%i s=%i: larger subsets also decode exactly', (scheme, m, s) => {
    const code = createGradientCode({ slots: m, redundancy: s, scheme });
    for (let k = m - s + 1; k <= m; k++) {
      for (const live of subsets(m, k).slice(0, 20)) expectExactDecode(code, live, 7 * k + m);
    }
  });

  it('ignores duplicates and order in the available list', () => {
    const code = createGradientCode({ slots: 6, redundancy: 2, scheme: 'cyclic' });
    const plain = code.decode([1, 3, 4, 5]);
    const messy = code.decode([5, 3, 3, 1, 4, 1]);
    expect(messy.exact).toBe(true);
    for (let i = 0; i < 6; i++) expect(messy.weights[i]).toBeCloseTo(plain.weights[i]!, 9);
  });

  it('keeps cyclic decoding weights small (no noise blow-up) for m ≤ 10', () => {
    // A plain Gaussian Algorithm-2 matrix needs weights of 10³–10⁵ on some patterns here.
    for (const [m, s] of cyclicConfigs) {
      for (const seed of [1, 2, 3]) {
        const code = createGradientCode({ slots: m, redundancy: s, scheme: 'cyclic', seed });
        let worst = 0;
        for (const live of subsets(m, m - s)) {
          for (const w of code.decode(live).weights) worst = Math.max(worst, Math.abs(w));
        }
        expect(worst, `m=${m} s=${s} seed=${seed}`).toBeLessThan(100);
      }
    }
  });

  it('property: any (m, s, seed, scheme) decodes every (m − s)-subset exactly', () => {
    const config = fc.integer({ min: 1, max: 10 }).chain((m) =>
      fc.record({
        m: fc.constant(m),
        seed: fc.integer(),
        shape: fc.oneof(
          fc.record({
            scheme: fc.constant<GradientCodeScheme>('cyclic'),
            s: fc.integer({ min: 0, max: m - 1 }),
          }),
          fc.record({
            scheme: fc.constant<GradientCodeScheme>('fractional-repetition'),
            s: fc.constantFrom(...divisors(m).map((q) => q - 1)),
          }),
        ),
      }),
    );
    fc.assert(
      fc.property(config, ({ m, seed, shape: { scheme, s } }) => {
        const code = createGradientCode({ slots: m, redundancy: s, scheme, seed });
        for (const live of subsets(m, m - s)) expectExactDecode(code, live, seed);
      }),
      { numRuns: 60 },
    );
  });
});

function divisors(m: number): number[] {
  return Array.from({ length: m }, (_, i) => i + 1).filter((q) => m % q === 0);
}

describe('approximate decode with too few slots', () => {
  it.each(fractionalConfigs.filter(([m, s]) => m - s > 1))(
    'fractional repetition m=%i s=%i: (m / covered) × sum of covered partitions',
    (m, s) => {
      const code = createGradientCode({ slots: m, redundancy: s, scheme: 'fractional-repetition' });
      const g = randomGradients(m, 99 + m);
      const messages = encodeAll(code, g);
      let approximate = 0;
      for (let k = 1; k < m - s; k++) {
        for (const live of subsets(m, k)) {
          const covered = coveredBy(code, live);
          const result = code.decode(live);
          if (covered.size === m) {
            // every group has a live slot: fractional repetition is exact even with < m − s
            expect(result.exact).toBe(true);
            expect(relativeError(decoded(result, messages), combination(g))).toBeLessThan(1e-5);
            continue;
          }
          approximate++;
          if (result.exact) throw new Error(`exact decode claimed without covering, ${live}`);
          expect(result.coveredPartitions).toBe(covered.size);
          expect(result.scale).toBeCloseTo(m / covered.size, 12);
          result.weights.forEach((w, i) => {
            if (!live.includes(i)) expect(w).toBe(0);
          });
          const expected = combination(g, (j) => (covered.has(j) ? m / covered.size : 0));
          expect(relativeError(decoded(result, messages), expected)).toBeLessThan(1e-5);
        }
      }
      expect(approximate).toBeGreaterThan(0);
    },
  );

  it.each(cyclicConfigs.filter(([m, s]) => m - s > 1))(
    'cyclic m=%i s=%i: least-squares weights on covered partitions, scaled by m / covered',
    (m, s) => {
      const code = createGradientCode({ slots: m, redundancy: s, scheme: 'cyclic' });
      const g = randomGradients(m, 5 + m);
      const messages = encodeAll(code, g);
      let approximate = 0;
      for (let k = 1; k < m - s; k++) {
        for (const live of subsets(m, k)) {
          const covered = coveredBy(code, live);
          const result = code.decode(live);
          if (result.exact) {
            expect(covered.size).toBe(m);
            expect(relativeError(decoded(result, messages), combination(g))).toBeLessThan(1e-4);
            continue;
          }
          approximate++;
          expect(result.coveredPartitions).toBe(covered.size);
          expect(result.scale).toBeCloseTo(m / covered.size, 12);
          result.weights.forEach((w, i) => {
            if (!live.includes(i)) expect(w).toBe(0);
          });
          // c / scale is the least-squares fit of 1 by the live rows: zero off the covered
          // partitions, and its residual orthogonal to every live row.
          const c = partitionMultiplicity(code, result.weights).map((v) => v / result.scale);
          c.forEach((v, j) => {
            if (!covered.has(j)) expect(Math.abs(v)).toBe(0);
          });
          for (const i of live) {
            const b = code.coefficients(i);
            const dotResidual = b.reduce((sum, bj, j) => sum + bj * (c[j]! - 1), 0);
            expect(Math.abs(dotResidual)).toBeLessThan(1e-8);
          }
          const expected = combination(g, (j) => c[j]! * result.scale);
          expect(relativeError(decoded(result, messages), expected)).toBeLessThan(1e-4);
        }
      }
      expect(approximate).toBeGreaterThan(0);
    },
  );

  it('a single cyclic slot recovers its partitions once when its row is all ones', () => {
    // s = m − 1: every slot holds everything with coefficient 1, one slot is enough.
    const code = createGradientCode({ slots: 5, redundancy: 4, scheme: 'cyclic' });
    for (const v of code.coefficients(3)) expect(v).toBeCloseTo(1, 12);
    expect(code.decode([3]).exact).toBe(true);
  });

  it.each<GradientCodeScheme>(['cyclic', 'fractional-repetition'])(
    '%s: no available slot gives zero weights, covered 0, scale 0',
    (scheme) => {
      const code = createGradientCode({ slots: 6, redundancy: 1, scheme });
      const result = code.decode([]);
      expect(result).toEqual({
        exact: false,
        weights: new Float64Array(6),
        coveredPartitions: 0,
        scale: 0,
      });
      const out = new Float32Array(D).fill(3);
      decodeInto(result, [], out);
      expect([...out]).toEqual(new Array<number>(D).fill(0));
    },
  );

  it('fractional repetition picks the first listed live slot of each group', () => {
    const code = createGradientCode({ slots: 6, redundancy: 2, scheme: 'fractional-repetition' });
    const result = code.decode([2, 1, 4]);
    expect(result.exact).toBe(true);
    expect([...result.weights]).toEqual([0, 0, 1, 0, 1, 0]);
    const partial = code.decode([1, 0]);
    expect(partial).toMatchObject({ exact: false, coveredPartitions: 3, scale: 2 });
    expect([...partial.weights]).toEqual([0, 2, 0, 0, 0, 0]);
  });
});

describe('redundancy 0', () => {
  it.each<GradientCodeScheme>(['cyclic', 'fractional-repetition'])(
    '%s: one partition per slot, and every slot is needed',
    (scheme) => {
      const m = 5;
      const code = createGradientCode({ slots: m, redundancy: 0, scheme });
      for (let i = 0; i < m; i++) {
        expect(code.partitionsOf(i)).toEqual([i]);
        const e = new Float64Array(m);
        e[i] = 1;
        expect(code.coefficients(i)).toEqual(e);
      }
      const all = code.decode([0, 1, 2, 3, 4]);
      expect(all.exact).toBe(true);
      expect([...all.weights]).toEqual([1, 1, 1, 1, 1]);
      for (const live of subsets(m, m - 1)) {
        const result = code.decode(live);
        if (result.exact) throw new Error(`exact decode claimed without slot ${live}`);
        expect(result.coveredPartitions).toBe(m - 1);
        expect(result.scale).toBeCloseTo(m / (m - 1), 12);
      }
    },
  );
});

describe('invalid input', () => {
  it.each([
    [{ slots: 0, redundancy: 0 }],
    [{ slots: -3, redundancy: 0 }],
    [{ slots: 2.5, redundancy: 0 }],
    [{ slots: Number.NaN, redundancy: 0 }],
    [{ slots: 4, redundancy: -1 }],
    [{ slots: 4, redundancy: 4 }],
    [{ slots: 4, redundancy: 1.5 }],
    [{ slots: 4, redundancy: 1, seed: 0.5 }],
  ])('rejects %o', (partial) => {
    for (const scheme of ['cyclic', 'fractional-repetition'] as const) {
      expect(() => createGradientCode({ ...partial, scheme })).toThrow(RangeError);
    }
  });

  it('fractional repetition needs s + 1 to divide m', () => {
    expect(() =>
      createGradientCode({ slots: 5, redundancy: 1, scheme: 'fractional-repetition' }),
    ).toThrow(/divide/);
    expect(() =>
      createGradientCode({ slots: 6, redundancy: 3, scheme: 'fractional-repetition' }),
    ).toThrow(RangeError);
    expect(() => createGradientCode({ slots: 5, redundancy: 1, scheme: 'cyclic' })).not.toThrow();
  });

  it('rejects an unknown scheme', () => {
    const scheme = 'random' as unknown as GradientCodeScheme;
    expect(() => createGradientCode({ slots: 4, redundancy: 1, scheme })).toThrow(RangeError);
  });

  it('rejects bad slots in queries, and missing or mis-sized vectors', () => {
    const code = createGradientCode({ slots: 4, redundancy: 1, scheme: 'cyclic' });
    expect(() => code.partitionsOf(4)).toThrow(RangeError);
    expect(() => code.coefficients(-1)).toThrow(RangeError);
    expect(() => code.decode([0, 1, 7])).toThrow(RangeError);
    const g = randomGradients(4, 3);
    expect(() => encodeInto(code, 0, g, new Float32Array(D + 1))).toThrow(RangeError);
    expect(() => encodeInto(code, 3, [g[0]!, g[1]!], new Float32Array(D))).toThrow(RangeError);
    const result = code.decode([0, 1, 2]);
    const messages = encodeAll(code, g);
    expect(() => decodeInto(result, [messages[0]!, messages[1]!], new Float32Array(D))).toThrow(
      RangeError,
    );
  });
});

describe('encodeInto / decodeInto', () => {
  it('encodes one combination of the held partitions only', () => {
    const code = createGradientCode({ slots: 5, redundancy: 2, scheme: 'cyclic' });
    const g = randomGradients(5, 11);
    const sparse: Float32Array[] = [];
    for (const j of code.partitionsOf(4)) sparse[j] = g[j]!;
    const out = new Float32Array(D);
    encodeInto(code, 4, sparse, out);
    const b = code.coefficients(4);
    const expected = combination(g, (j) => b[j]!);
    expect(relativeError(out, expected)).toBeLessThan(1e-6);
  });

  it('accepts messages as a Map or an array, overwrites out, and may decode in place', () => {
    const code = createGradientCode({ slots: 6, redundancy: 2, scheme: 'cyclic' });
    const g = randomGradients(6, 21);
    const messages = encodeAll(code, g);
    const live = [0, 2, 3, 5];
    const result = code.decode(live);
    const fromArray = decoded(result, messages);
    const fromMap = new Float32Array(D).fill(7);
    decodeInto(result, new Map(live.map((i) => [i, messages[i]!])), fromMap);
    expect(fromMap).toEqual(fromArray);
    expect(relativeError(fromArray, combination(g))).toBeLessThan(1e-5);
    const inPlace = messages[0]!;
    decodeInto(result, messages, inPlace);
    expect(inPlace).toEqual(fromArray);
  });
});
