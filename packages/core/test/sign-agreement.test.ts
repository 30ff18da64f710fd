import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  RoundEngine,
  createRng,
  decodeFrameInto,
  encodeToFrame,
  gaussian,
  getCodec,
  robustAgreement,
  signAgreement,
  signUpdateOfFrame,
  type SignUpdate,
} from '../src/index.ts';

const JOB = 11;

interface Case {
  base: Float32Array;
  frames: Uint8Array[];
  factors: number[];
}

/**
 * n sign frames of d coordinates: per proposal its own magnitude, a shared bias (so signs lean
 * one way when `lean` is large: the walks past the end of one sign), and duplicates (ties).
 */
function makeCase(
  seed: number,
  n: number,
  d: number,
  blockSize: number,
  lean: number,
  codec: 'one-bit' | 'stochastic-one-bit' = 'one-bit',
): Case {
  const rng = createRng(seed);
  const base = Float32Array.from({ length: d }, () => gaussian(rng));
  const bias = Float32Array.from({ length: d }, () => lean * gaussian(rng));
  const frames: Uint8Array[] = [];
  const factors: number[] = [];
  for (let c = 0; c < n; c++) {
    if (c > 0 && rng.next() < 0.15) {
      frames.push(frames[Math.floor(rng.next() * c)]!);
    } else {
      const magnitude = Math.exp(3 * (rng.next() - 0.5)) * (rng.next() < 0.05 ? 50 : 1);
      const u = Float32Array.from({ length: d }, (_, i) => magnitude * (bias[i]! + gaussian(rng)));
      const encoder = getCodec(codec).createEncoder(d, {
        blockSize,
        errorFeedback: false,
        seed: seed * 1000 + c,
      });
      frames.push(encodeToFrame(encoder, u, { jobId: JOB, iteration: 3, round: 0, senderSlot: 0 }));
    }
    factors.push(rng.next() < 0.2 ? Math.fround(0.25 + 0.5 * rng.next()) : 1);
  }
  return { base, frames, factors };
}

/** The frames decoded (and scaled) as the proposal desk hands them to the engine. */
function decoded({ base, frames, factors }: Case): Float32Array[] {
  return frames.map((frame, c) => {
    const u = new Float32Array(base.length);
    expect(decodeFrameInto(frame, u, { dimension: base.length, jobId: JOB }).ok).toBe(true);
    const factor = factors[c]!;
    return factor === 1 ? u : u.map((x) => x * factor);
  });
}

function signsOf({ base, frames, factors }: Case): SignUpdate[] {
  return frames.map((frame, c) => {
    const signs = signUpdateOfFrame(frame, { dimension: base.length, jobId: JOB }, factors[c]);
    expect(signs).toBeDefined();
    return signs!;
  });
}

/** |a − b| within a few float32 ulps of the values involved (the generic path rounds each). */
function expectClose(a: number, b: number, scale: number): void {
  expect(Math.abs(a - b)).toBeLessThanOrEqual(4e-7 * scale + 1e-30);
}

/** signAgreement on the case's sign frames is robustAgreement on them decoded (counts, point). */
function expectAgreesWithRobust(c: Case, rule: Parameters<typeof signAgreement>[2]): void {
  const fast = signAgreement(c.base, signsOf(c), rule)!;
  const slow = robustAgreement(c.base, decoded(c), rule);
  expect(fast.trimmed).toBe(slow.trimmed);
  expect(fast.clipped).toBe(slow.clipped);
  let largest = 0;
  for (const u of decoded(c)) for (const x of u) largest = Math.max(largest, Math.abs(x));
  for (let i = 0; i < c.base.length; i++)
    expectClose(fast.agreed[i]!, slow.agreed[i]!, Math.abs(c.base[i]!) + largest);
  expectClose(fast.spread, slow.spread, 8 + largest);
}

describe('signAgreement: robustAgreement on sign frames without decoding them', () => {
  it('agrees with robustAgreement on the decoded updates (agreed point, spread, counts)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 2 ** 31 - 1 }),
        fc.integer({ min: 1, max: 40 }),
        fc.integer({ min: 1, max: 150 }),
        fc.constantFrom(32, 64, 1024),
        fc.constantFrom(0, 0.5, 3),
        fc.constantFrom(0, 0.1, 0.3, 0.45),
        fc.constantFrom(0, 1, 2),
        fc.constantFrom(1.5, 3, Infinity),
        fc.constantFrom('trimmed-mean' as const, 'midpoint' as const),
        fc.constantFrom('one-bit' as const, 'stochastic-one-bit' as const),
        (seed, n, d, blockSize, lean, trim, trimFloor, clip, estimator, codec) => {
          const c = makeCase(seed, n, d, blockSize, lean, codec);
          expectAgreesWithRobust(c, { trim, trimFloor, clip, estimator });
        },
      ),
      { numRuns: 400 },
    );
  });

  it('agrees from 256 proposals on, where the positive sums go through byte buckets', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 2 ** 31 - 1 }),
        fc.integer({ min: 256, max: 300 }),
        fc.integer({ min: 1, max: 100 }),
        fc.constantFrom(32, 64, 1024),
        fc.constantFrom(0, 0.5, 3),
        fc.constantFrom(0, 0.1, 0.45),
        fc.constantFrom(1.5, Infinity),
        fc.constantFrom('trimmed-mean' as const, 'midpoint' as const),
        (seed, n, d, blockSize, lean, trim, clip, estimator) => {
          expectAgreesWithRobust(makeCase(seed, n, d, blockSize, lean), { trim, clip, estimator });
        },
      ),
      { numRuns: 40 },
    );
  });

  it('agrees at hundreds of proposals (where robustAgreement selects through a sample)', () => {
    for (const [seed, lean] of [
      [1, 0],
      [2, 3],
    ] as const) {
      const c = makeCase(seed, 300, 300, 64, lean);
      const rule = { trim: 0.1, clip: 3 };
      const fast = signAgreement(c.base, signsOf(c), rule)!;
      const slow = robustAgreement(c.base, decoded(c), rule);
      expect(fast.trimmed).toBe(30);
      for (let i = 0; i < 300; i++) expectClose(fast.agreed[i]!, slow.agreed[i]!, 200);
      expectClose(fast.spread, slow.spread, 200);
    }
  });

  it('keeps validity: t extreme sign proposals cannot move a coordinate beyond the correct ones', () => {
    const correct = makeCase(4, 9, 64, 32, 1);
    const t = 1;
    const attacker = getCodec('one-bit').createEncoder(64, { blockSize: 32, errorFeedback: false });
    const huge = encodeToFrame(attacker, new Float32Array(64).fill(1e6), {
      jobId: JOB,
      iteration: 3,
      round: 0,
      senderSlot: 0,
    });
    const all: Case = {
      base: correct.base,
      frames: [...correct.frames, huge],
      factors: [...correct.factors, 1],
    };
    const { agreed, trimmed } = signAgreement(all.base, signsOf(all), { trim: 0.1, clip: 3 })!;
    expect(trimmed).toBe(t);
    const honest = decoded(correct);
    for (let i = 0; i < 64; i++) {
      const values = honest.map((u) => correct.base[i]! + u[i]!);
      expect(agreed[i]!).toBeGreaterThanOrEqual(Math.min(...values) - 1e-5);
      expect(agreed[i]!).toBeLessThanOrEqual(Math.max(...values) + 1e-5);
    }
  });

  it('takes only sign frames of the expected job and dimension; undefined for mixed block sizes', () => {
    const c = makeCase(5, 2, 64, 32, 0);
    expect(signUpdateOfFrame(c.frames[0]!, { dimension: 64, jobId: JOB + 1 })).toBeUndefined();
    expect(signUpdateOfFrame(c.frames[0]!, { dimension: 65, jobId: JOB })).toBeUndefined();
    const fp32 = encodeToFrame(getCodec('fp32').createEncoder(64, {}), new Float32Array(64), {
      jobId: JOB,
      iteration: 3,
      round: 0,
      senderSlot: 0,
    });
    expect(signUpdateOfFrame(fp32, { dimension: 64, jobId: JOB })).toBeUndefined();
    const corrupted = c.frames[0]!.slice();
    corrupted[corrupted.length - 1]! ^= 1;
    expect(signUpdateOfFrame(corrupted, { dimension: 64, jobId: JOB })).toBeUndefined();
    const other = makeCase(6, 1, 64, 64, 0);
    const mixed = [...signsOf(c), ...signsOf(other)];
    expect(signAgreement(c.base, mixed, { trim: 0.1, clip: 3 })).toBeUndefined();
  });
});

describe('RoundEngine closes on sign payloads', () => {
  function engine(base: Float32Array, blockSize: number): RoundEngine {
    const e = new RoundEngine({
      dimension: base.length,
      jobId: JOB,
      codec: 'one-bit',
      blockSize,
      mode: 'majority',
      epsilon: 1e-6,
      staleness: 2,
      graceMs: 0,
      initial: Float32Array.from(base),
      iteration: 0,
    });
    e.setClusters(Array.from({ length: 12 }, (_, i) => i));
    return e;
  }

  it('moves the base as a close of the decoded updates does (up to float rounding)', () => {
    const c = makeCase(7, 12, 100, 32, 0.5);
    const updates = decoded(c);
    const withSigns = engine(c.base, 32);
    const without = engine(c.base, 32);
    c.frames.forEach((frame, id) => {
      const signs = withSigns.signsOf(frame, c.factors[id]);
      expect(signs).toBeDefined();
      withSigns.offer(id, 0, updates[id]!, 0, 0, signs);
      without.offer(id, 0, updates[id]!, 0);
    });
    const a = withSigns.close();
    const b = without.close();
    expect(a.contributors).toEqual(b.contributors);
    // both deltas are re-encoded one-bit: compare the bases they moved to
    for (let i = 0; i < 100; i++)
      expectClose(withSigns.base[i]!, without.base[i]!, 50 + Math.abs(c.base[i]!));
  });

  it('signsOf refuses a frame of another block size (the close then decodes it)', () => {
    const c = makeCase(8, 1, 64, 64, 0);
    expect(engine(c.base, 32).signsOf(c.frames[0]!)).toBeUndefined();
    expect(engine(c.base, 64).signsOf(c.frames[0]!)).toBeDefined();
  });
});
