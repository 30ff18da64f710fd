import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  FRAME_HEADER_BYTES,
  codecIds,
  codecNames,
  jobIdOf,
  maxUpdateFrameBytes,
  parseFrame,
  sealFrame,
  type CodecName,
} from '@swarmgrad/protocol';
import {
  bitsPerParameter,
  decodeFrameInto,
  encodeToFrame,
  findCodec,
  fp16Codec,
  fromFloat16Bits,
  getCodec,
  oneBitCodec,
  registerCodec,
  registeredCodecs,
  stochasticOneBitCodec,
  toFloat16Bits,
  type Codec,
  type CodecEncoder,
} from '../src/codec/index.ts';
import { createRng, gaussian } from '../src/random.ts';

const JOB = jobIdOf('codec-test');
const HEADER = { jobId: JOB, iteration: 7, round: 0, senderSlot: 2 };

const isBlockCodec = (codec: Codec): boolean => codec.defaultBlockSize > 0;
/** Block sizes every contract test runs with: small ones so that tails and many blocks occur. */
const blockSizesOf = (codec: Codec): number[] => (isBlockCodec(codec) ? [32, 64, 1024] : [0]);
/** Dimensions: multiples and non-multiples of 32 and of the block sizes. */
const DIMENSIONS = [1, 7, 31, 32, 33, 64, 100, 1000, 1024, 1025, 2111];

function randomUpdate(d: number, seed: number, scale = 1): Float32Array {
  const rng = createRng(seed);
  const u = new Float32Array(d);
  for (let i = 0; i < d; i++) u[i] = scale * gaussian(rng);
  return u;
}

function encoderFor(codec: Codec, d: number, blockSize: number, errorFeedback?: boolean) {
  return codec.createEncoder(d, {
    ...(isBlockCodec(codec) ? { blockSize } : {}),
    ...(errorFeedback === undefined ? {} : { errorFeedback }),
    seed: 11,
  });
}

/** Decodes a frame into a fresh zero vector; fails the test on a decode error. */
function decodeFresh(frame: Uint8Array, d: number): Float32Array {
  const out = new Float32Array(d);
  const result = decodeFrameInto(frame, out, { jobId: JOB, dimension: d });
  if (!result.ok) throw new Error(`decode failed: ${result.error.code} ${result.error.message}`);
  return out;
}

function payloadOf(frame: Uint8Array): Uint8Array {
  return frame.subarray(FRAME_HEADER_BYTES);
}

/** Reads a sign payload straight from its bytes (LE float32 scales, then bits LSB-first). */
function referenceSignDecode(payload: Uint8Array, d: number, B: number): Float64Array {
  const view = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
  const bitsAt = 4 * Math.ceil(d / B);
  const out = new Float64Array(d);
  for (let i = 0; i < d; i++) {
    const s = view.getFloat32(4 * Math.floor(i / B), true);
    const bit = (payload[bitsAt + (i >> 3)]! >> (i & 7)) & 1;
    out[i] = bit === 1 ? s : -s;
  }
  return out;
}

/** Makes a valid payload of this codec carry a non-finite value (as a sender could). */
const corruptions: Record<CodecName, (payload: Uint8Array) => void> = {
  fp32: (p) => new DataView(p.buffer, p.byteOffset).setFloat32(4, NaN, true),
  fp16: (p) => new DataView(p.buffer, p.byteOffset).setUint16(2, 0x7c00, true),
  'one-bit': (p) => new DataView(p.buffer, p.byteOffset).setFloat32(0, Infinity, true),
  'stochastic-one-bit': (p) => new DataView(p.buffer, p.byteOffset).setFloat32(0, NaN, true),
};

describe('codec registry', () => {
  it('has one registered codec for every codec id of the frame format, by name and id', () => {
    expect(registeredCodecs.map((c) => c.name).sort()).toEqual([...codecNames].sort());
    for (const name of codecNames) {
      expect(getCodec(name).name).toBe(name);
      expect(getCodec(name).id).toBe(codecIds[name]);
      expect(findCodec(name)).toBe(getCodec(name));
    }
    expect(findCodec('gzip')).toBeUndefined();
  });

  it('refuses a second, different codec under a taken name and accepts re-registration', () => {
    expect(() => registerCodec(oneBitCodec)).not.toThrow();
    expect(() => registerCodec({ ...oneBitCodec })).toThrow(/already registered/);
    expect(registeredCodecs.filter((c) => c.name === 'one-bit')).toHaveLength(1);
  });
});

describe.each(registeredCodecs.map((codec) => [codec.name, codec] as const))(
  'codec contract: %s',
  (_name, codec) => {
    it('writes exactly payloadBytes(d, B) into a sealed frame with the right header', () => {
      for (const B of blockSizesOf(codec)) {
        for (const d of DIMENSIONS) {
          const encoder = encoderFor(codec, d, B);
          expect(encoder.payloadBytes()).toBe(codec.payloadBytes(d, B));
          expect(encoder.blockSize).toBe(B);
          const frame = encodeToFrame(encoder, randomUpdate(d, d), HEADER);
          expect(frame.byteLength).toBe(FRAME_HEADER_BYTES + codec.payloadBytes(d, B));
          const parsed = parseFrame(frame);
          expect(parsed.ok).toBe(true);
          if (!parsed.ok) continue;
          expect(parsed.value.header).toMatchObject({
            codec: codec.name,
            dimension: d,
            blockSize: B,
            jobId: JOB,
            iteration: 7,
            senderSlot: 2,
          });
        }
      }
    });

    it("fits the doors' one bound: header + payloadBytes(d, B) ≤ maxUpdateFrameBytes(d)", () => {
      const blockSizes = isBlockCodec(codec)
        ? fc.integer({ min: 1, max: 128 }).map((k) => 32 * k)
        : fc.constant(0);
      fc.assert(
        fc.property(fc.integer({ min: 1, max: 100_000 }), blockSizes, (d, B) => {
          expect(FRAME_HEADER_BYTES + codec.payloadBytes(d, B)).toBeLessThanOrEqual(
            maxUpdateFrameBytes(d),
          );
        }),
      );
      for (const d of DIMENSIONS) {
        const frame = encodeToFrame(
          encoderFor(codec, d, blockSizesOf(codec)[0]!),
          randomUpdate(d, 3),
          HEADER,
        );
        expect(frame.byteLength).toBeLessThanOrEqual(maxUpdateFrameBytes(d));
      }
    });

    it('round-trips a frame: decodeFrameInto reproduces the update within the codec precision', () => {
      for (const B of blockSizesOf(codec)) {
        for (const d of DIMENSIONS) {
          const u = randomUpdate(d, 100 + d);
          const frame = encodeToFrame(encoderFor(codec, d, B), u, HEADER);
          const out = decodeFresh(frame, d);
          // the frame helper and the codec's own decoder agree exactly
          const direct = new Float32Array(d);
          expect(codec.decodeAccumulate(payloadOf(frame), d, B, direct).ok).toBe(true);
          expect(Array.from(out)).toEqual(Array.from(direct));
          expectFaithfulDecode(codec, u, out, payloadOf(frame), B);
        }
      }
    });

    it('conserves the update with error feedback: Σ decoded + residual = Σ u', () => {
      const B = blockSizesOf(codec)[0]!;
      const updates = fc.integer({ min: 1, max: 150 }).chain((d) =>
        fc.array(
          fc.float32Array({
            minLength: d,
            maxLength: d,
            noNaN: true,
            noDefaultInfinity: true,
            min: Math.fround(-1e3),
            max: Math.fround(1e3),
          }),
          { minLength: 1, maxLength: 6 },
        ),
      );
      fc.assert(
        fc.property(updates, (us) => {
          const d = us[0]!.length;
          const encoder = encoderFor(codec, d, B, true);
          const sumU = new Float64Array(d);
          const sumDecoded = new Float64Array(d);
          let magnitude = 0;
          for (const u of us) {
            const decoded = decodeFresh(encodeToFrame(encoder, u, HEADER), d);
            const e = encoder.residual();
            for (let i = 0; i < d; i++) {
              sumU[i]! += u[i]!;
              sumDecoded[i]! += decoded[i]!;
              magnitude = Math.max(magnitude, Math.abs(u[i]!), Math.abs(decoded[i]!));
              if (e !== undefined) magnitude = Math.max(magnitude, Math.abs(e[i]!));
            }
          }
          const e = encoder.residual();
          const tol = us.length * 2 ** -20 * magnitude + 1e-30;
          for (let i = 0; i < d; i++) {
            const gap = sumDecoded[i]! + (e === undefined ? 0 : e[i]!) - sumU[i]!;
            if (!(Math.abs(gap) <= tol)) {
              throw new Error(`coordinate ${i}: Σ decoded + e − Σ u = ${gap}, tolerance ${tol}`);
            }
          }
        }),
        { numRuns: 60 },
      );
    });

    it('with error feedback the residual is exactly what the payload missed', () => {
      const d = 1000;
      const B = blockSizesOf(codec)[1] ?? 0;
      const encoder = encoderFor(codec, d, B, true);
      const u1 = randomUpdate(d, 1);
      const u2 = randomUpdate(d, 2);
      const d1 = decodeFresh(encodeToFrame(encoder, u1, HEADER), d);
      const e1 = Float32Array.from(encoder.residual() ?? new Float32Array(d));
      const d2 = decodeFresh(encodeToFrame(encoder, u2, HEADER), d);
      const e2 = encoder.residual() ?? new Float32Array(d);
      for (let i = 0; i < d; i++) {
        expect(e1[i]!).toBeCloseTo(u1[i]! - d1[i]!, 5);
        expect(e2[i]!).toBeCloseTo(u2[i]! + e1[i]! - d2[i]!, 5);
      }
      encoder.reset();
      expect((encoder.residual() ?? new Float32Array(1)).every((x) => x === 0)).toBe(true);
    });

    it('accumulates with a weight into a non-zero vector: out += w · decoded', () => {
      for (const B of blockSizesOf(codec)) {
        const d = 1025;
        const frame = encodeToFrame(encoderFor(codec, d, B), randomUpdate(d, 5), HEADER);
        const decoded = decodeFresh(frame, d);
        const start = randomUpdate(d, 6, 3);
        for (const weight of [1, 0.25, -2]) {
          const out = Float32Array.from(start);
          const result = decodeFrameInto(frame, out, { dimension: d }, weight);
          expect(result.ok).toBe(true);
          for (let i = 0; i < d; i++) {
            const want = start[i]! + weight * decoded[i]!;
            expect(Math.abs(out[i]! - want)).toBeLessThanOrEqual(2 ** -22 * (Math.abs(want) + 1));
          }
        }
      }
    });

    it('rejects malformed payloads with typed errors, never throws, leaves out untouched', () => {
      const d = 100;
      const B = blockSizesOf(codec)[0]!;
      const frame = encodeToFrame(encoderFor(codec, d, B), randomUpdate(d, 9), HEADER);
      const payload = payloadOf(frame);
      const start = randomUpdate(d, 10);
      const check = (
        p: Uint8Array,
        code: string,
        opts: { dimension?: number; blockSize?: number; out?: Float32Array; weight?: number } = {},
      ) => {
        const out = opts.out ?? Float32Array.from(start);
        const before = Float32Array.from(out);
        const result = codec.decodeAccumulate(
          p,
          opts.dimension ?? d,
          opts.blockSize ?? B,
          out,
          opts.weight ?? 1,
        );
        expect(result.ok ? 'ok' : result.error.code).toBe(code);
        expect(Array.from(out)).toEqual(Array.from(before));
      };
      check(payload.subarray(0, payload.byteLength - 1), 'truncated');
      check(new Uint8Array(0), 'truncated');
      const longer = new Uint8Array(payload.byteLength + 4);
      longer.set(payload);
      check(longer, 'oversized');
      check(payload, 'dimension-mismatch', { out: new Float32Array(d + 1) });
      check(payload, 'bad-header', { dimension: 0, out: new Float32Array(0) });
      check(payload, 'bad-header', { blockSize: isBlockCodec(codec) ? 33 : 1024 });
      if (isBlockCodec(codec)) check(payload, 'bad-header', { blockSize: 0 });
      check(payload, 'non-finite', { weight: NaN });
      const corrupted = payload.slice();
      corruptions[codec.name](corrupted);
      check(corrupted, 'non-finite');
    });

    it('rejects bad frames: tampered byte, wrong dimension, wrong job, wrong iteration', () => {
      const d = 300;
      const B = blockSizesOf(codec)[0]!;
      const frame = encodeToFrame(encoderFor(codec, d, B), randomUpdate(d, 12), HEADER);
      const start = randomUpdate(d, 13);
      const code = (
        bytes: Uint8Array,
        expect_: { dimension: number; jobId?: number; iteration?: number },
        out = Float32Array.from(start),
      ) => {
        const before = Float32Array.from(out);
        const result = decodeFrameInto(bytes, out, expect_);
        if (!result.ok) expect(Array.from(out)).toEqual(Array.from(before));
        return result.ok ? 'ok' : result.error.code;
      };
      expect(code(frame, { dimension: d, jobId: JOB, iteration: 7 })).toBe('ok');
      const tampered = frame.slice();
      tampered[FRAME_HEADER_BYTES + 5]! ^= 0x10;
      expect(code(tampered, { dimension: d })).toBe('checksum-mismatch');
      expect(code(frame, { dimension: d + 1 }, new Float32Array(d + 1))).toBe('dimension-mismatch');
      expect(code(frame, { dimension: d }, new Float32Array(d - 1))).toBe('dimension-mismatch');
      expect(code(frame, { dimension: d, jobId: JOB + 1 })).toBe('wrong-job');
      expect(code(frame, { dimension: d, iteration: 8 })).toBe('wrong-iteration');
      expect(code(frame.subarray(0, frame.byteLength - 1), { dimension: d })).toBe('truncated');
      // a resealed payload with a non-finite value passes the checksum, not the codec
      const poisoned = frame.slice();
      corruptions[codec.name](payloadOf(poisoned));
      expect(code(sealFrame(poisoned), { dimension: d })).toBe('non-finite');
    });

    it('never throws and never writes a non-finite value, whatever the bytes (fuzz)', () => {
      const d = 70;
      const B = blockSizesOf(codec)[0]!;
      const frame = encodeToFrame(encoderFor(codec, d, B), randomUpdate(d, 14), HEADER);
      const mutation = fc.record({
        edits: fc.array(fc.tuple(fc.nat(), fc.nat({ max: 255 })), { maxLength: 6 }),
        cut: fc.nat(),
        truncate: fc.boolean(),
        reseal: fc.boolean(),
      });
      fc.assert(
        fc.property(mutation, ({ edits, cut, truncate, reseal }) => {
          let bytes = frame.slice();
          for (const [at, value] of edits) bytes[at % bytes.byteLength] = value;
          if (truncate) bytes = bytes.slice(0, cut % (bytes.byteLength + 1));
          if (reseal && bytes.byteLength >= FRAME_HEADER_BYTES) sealFrame(bytes);
          const out = new Float32Array(d).fill(1);
          const result = decodeFrameInto(bytes, out, { dimension: d });
          expect(typeof result.ok).toBe('boolean');
          expect(out.every((x) => Number.isFinite(x))).toBe(true);
          if (!result.ok) expect(out.every((x) => x === 1)).toBe(true);
        }),
        { numRuns: 300 },
      );
      // random payload bytes straight into the codec
      fc.assert(
        fc.property(fc.uint8Array({ minLength: 0, maxLength: 400 }), (bytes) => {
          const out = new Float32Array(d);
          codec.decodeAccumulate(bytes, d, B, out);
          expect(out.every((x) => Number.isFinite(x))).toBe(true);
        }),
        { numRuns: 200 },
      );
    });

    it('decodes and encodes payloads at an unaligned offset (copy path)', () => {
      const d = 77;
      const B = blockSizesOf(codec)[0]!;
      const u = randomUpdate(d, 15);
      const reference = encodeToFrame(encoderFor(codec, d, B), u, HEADER);
      const bytes = codec.payloadBytes(d, B);
      const backing = new Uint8Array(bytes + 1);
      const unaligned = backing.subarray(1);
      encoderFor(codec, d, B).encodeInto(u, unaligned);
      expect(Array.from(unaligned)).toEqual(Array.from(payloadOf(reference)));
      const out = new Float32Array(d);
      expect(codec.decodeAccumulate(unaligned, d, B, out).ok).toBe(true);
      expect(Array.from(out)).toEqual(Array.from(decodeFresh(reference, d)));
    });

    it('rejects non-finite updates and wrong lengths with RangeError, and keeps working', () => {
      const d = 1000;
      const B = blockSizesOf(codec)[1] ?? 0;
      for (const errorFeedback of [false, true]) {
        const encoder: CodecEncoder = encoderFor(codec, d, B, errorFeedback);
        const payload = new Uint8Array(encoder.payloadBytes());
        for (const bad of [NaN, Infinity, -Infinity]) {
          for (const at of [0, 517, d - 1]) {
            const u = randomUpdate(d, at);
            u[at] = bad;
            expect(() => encoder.encodeInto(u, payload)).toThrow(RangeError);
            expect((encoder.residual() ?? new Float32Array(1)).every((x) => x === 0)).toBe(true);
          }
        }
        expect(() => encoder.encodeInto(new Float32Array(d - 1), payload)).toThrow(RangeError);
        expect(() => encoder.encodeInto(randomUpdate(d, 1), payload.subarray(1))).toThrow(
          RangeError,
        );
        // still a working encoder
        const u = randomUpdate(d, 16);
        const out = decodeFresh(encodeToFrame(encoder, u, HEADER), d);
        expectFaithfulDecode(codec, u, out, undefined, B);
      }
      expect(() => codec.createEncoder(0)).toThrow(RangeError);
      expect(() => codec.createEncoder(1.5)).toThrow(RangeError);
    });
  },
);

/**
 * What decoding the first frame of a fresh encoder (residual 0, so v = u) must give, per codec.
 * `payload`, when given, is also read byte by byte to check the wire layout.
 */
function expectFaithfulDecode(
  codec: Codec,
  u: Float32Array,
  out: Float32Array,
  payload: Uint8Array | undefined,
  B: number,
): void {
  const d = u.length;
  switch (codec.name) {
    case 'fp32':
      expect(Array.from(out)).toEqual(Array.from(u));
      if (payload) {
        const view = new DataView(payload.buffer, payload.byteOffset);
        for (let i = 0; i < d; i++) expect(view.getFloat32(4 * i, true)).toBe(u[i]);
      }
      return;
    case 'fp16':
      for (let i = 0; i < d; i++) {
        expect(out[i]).toBe(referenceHalf(u[i]!));
        expect(Math.abs(out[i]! - u[i]!)).toBeLessThanOrEqual(
          Math.max(2 ** -11 * Math.abs(u[i]!), 2 ** -25),
        );
      }
      if (payload) {
        const view = new DataView(payload.buffer, payload.byteOffset);
        for (let i = 0; i < d; i++) expect(view.getUint16(2 * i, true)).toBe(toFloat16Bits(u[i]!));
      }
      return;
    case 'one-bit':
    case 'stochastic-one-bit': {
      const stochastic = codec.name === 'stochastic-one-bit';
      for (let start = 0; start < d; start += B) {
        const end = Math.min(start + B, d);
        let mean = 0;
        let max = 0;
        for (let i = start; i < end; i++) {
          mean += Math.abs(u[i]!) / (end - start);
          max = Math.max(max, Math.abs(u[i]!));
        }
        const scale = stochastic ? max : mean;
        for (let i = start; i < end; i++) {
          expect(Math.abs(Math.abs(out[i]!) - scale)).toBeLessThanOrEqual(1e-6 * scale);
          // deterministic signs: always for one-bit (0 counts as +), at ±G for stochastic
          if (!stochastic || Math.abs(u[i]!) === max) {
            expect(out[i]! >= 0).toBe(u[i]! >= 0);
          }
        }
      }
      if (payload) {
        const wire = referenceSignDecode(payload, d, B);
        for (let i = 0; i < d; i++) expect(out[i]).toBe(wire[i]);
      }
      return;
    }
  }
}

/** Every finite half value, ascending, with its bits (for a reference round-to-nearest-even). */
const HALVES: { value: number; bits: number }[] = (() => {
  const list: { value: number; bits: number }[] = [];
  for (let h = 0; h < 0x7c00; h++) list.push({ value: fromFloat16Bits(h), bits: h });
  return list;
})();

/** Reference float → half (value), ties to even, saturating at ±65504, by search over HALVES. */
function referenceHalfBits(x: number): number {
  const a = Math.abs(Math.fround(x));
  const sign = x < 0 || Object.is(x, -0) ? 0x8000 : 0;
  if (a >= 65504) return sign | 0x7bff;
  let lo = 0;
  let hi = HALVES.length - 1;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (HALVES[mid]!.value <= a) lo = mid;
    else hi = mid;
  }
  const below = HALVES[lo]!;
  const above = HALVES[hi]!;
  if (a === below.value) return sign | below.bits;
  const dBelow = a - below.value;
  const dAbove = above.value - a;
  if (dBelow < dAbove) return sign | below.bits;
  if (dAbove < dBelow) return sign | above.bits;
  return sign | ((below.bits & 1) === 0 ? below.bits : above.bits);
}

function referenceHalf(x: number): number {
  return fromFloat16Bits(referenceHalfBits(x));
}

describe('one-bit codec', () => {
  it('costs 1 + 32/B bits per parameter: ≤ 1.05 at B = 1024 for d = 1e6', () => {
    expect(bitsPerParameter(oneBitCodec, 1_000_000, 1024)).toBeLessThanOrEqual(1.05);
    expect(bitsPerParameter(oneBitCodec, 1_000_000, 1024)).toBeCloseTo(1 + 32 / 1024, 3);
    expect(oneBitCodec.payloadBytes(1_000_000, 1024)).toBe(4 * 977 + 4 * 31_250);
    expect(oneBitCodec.payloadBytes(33, 32)).toBe(4 * 2 + 4 * 2);
    expect(oneBitCodec.defaultBlockSize).toBe(1024);
    expect(oneBitCodec.createEncoder(5000).blockSize).toBe(1024);
  });

  it('decodes scale·sign with scale = mean |u + e| of the block (second step included)', () => {
    const d = 1000;
    const B = 64;
    const encoder = oneBitCodec.createEncoder(d, { blockSize: B });
    expect(encoder.errorFeedback).toBe(true);
    encodeToFrame(encoder, randomUpdate(d, 20), HEADER);
    const v = Float32Array.from(encoder.residual()!);
    const u2 = randomUpdate(d, 21);
    for (let i = 0; i < d; i++) v[i] = Math.fround(v[i]! + u2[i]!);
    const frame = encodeToFrame(encoder, u2, HEADER);
    expectFaithfulDecode(oneBitCodec, v, decodeFresh(frame, d), payloadOf(frame), B);
  });

  it('treats 0 as +1, writes zero padding bits, and decodes an all-zero block to zeros', () => {
    const d = 40;
    const u = new Float32Array(d);
    u[3] = -2;
    u[35] = -1;
    const frame = encodeToFrame(oneBitCodec.createEncoder(d, { blockSize: 32 }), u, HEADER);
    const payload = payloadOf(frame);
    const view = new DataView(payload.buffer, payload.byteOffset);
    expect(view.getFloat32(0, true)).toBeCloseTo(2 / 32, 7);
    expect(view.getFloat32(4, true)).toBeCloseTo(1 / 8, 7);
    expect(view.getUint32(8, true)).toBe((0xffffffff ^ (1 << 3)) >>> 0);
    // coordinates 32..39: all + except 35; bits 8..31 of the tail word are padding (0)
    expect(view.getUint32(12, true)).toBe(0xff ^ (1 << 3));
    const out = decodeFresh(frame, d);
    expect(out[0]).toBeCloseTo(2 / 32, 7);
    expect(out[3]).toBeCloseTo(-2 / 32, 7);
    const zeros = decodeFresh(
      encodeToFrame(oneBitCodec.createEncoder(64, { blockSize: 32 }), new Float32Array(64), HEADER),
      64,
    );
    expect(zeros.every((x) => x === 0)).toBe(true);
  });

  it('without error feedback quantizes each update alone and keeps no residual', () => {
    const d = 500;
    const encoder = oneBitCodec.createEncoder(d, { blockSize: 64, errorFeedback: false });
    expect(encoder.residual()).toBeUndefined();
    const u = randomUpdate(d, 22);
    const first = decodeFresh(encodeToFrame(encoder, u, HEADER), d);
    const second = decodeFresh(encodeToFrame(encoder, u, HEADER), d);
    expect(Array.from(second)).toEqual(Array.from(first));
    expectFaithfulDecode(oneBitCodec, u, first, undefined, 64);
  });

  it('rejects an overflow of u + e (never emits a non-finite scale) and resets', () => {
    const encoder = oneBitCodec.createEncoder(64, { blockSize: 32 });
    const u = new Float32Array(64);
    u[0] = 3e38;
    encodeToFrame(encoder, u, HEADER);
    // scale = 3e38/32, so the residual keeps ~2.9e38 at coordinate 0: adding u again overflows
    expect(encoder.residual()![0]).toBeGreaterThan(2.8e38);
    expect(() => encodeToFrame(encoder, u, HEADER)).toThrow(RangeError);
    expect(encoder.residual()!.every((x) => x === 0)).toBe(true);
  });

  it('rejects negative scales and block sizes that are not positive multiples of 32', () => {
    const d = 64;
    const frame = encodeToFrame(
      oneBitCodec.createEncoder(d, { blockSize: 32 }),
      randomUpdate(d, 3),
      HEADER,
    );
    const payload = payloadOf(frame).slice();
    new DataView(payload.buffer).setFloat32(4, -1, true);
    const result = oneBitCodec.decodeAccumulate(payload, d, 32, new Float32Array(d));
    expect(result.ok ? 'ok' : result.error.code).toBe('non-finite');
    for (const blockSize of [0, 16, 48, 1000, -32]) {
      expect(() => oneBitCodec.createEncoder(d, { blockSize })).toThrow(RangeError);
      expect(oneBitCodec.isValidBlockSize(blockSize)).toBe(false);
    }
  });
});

describe('stochastic one-bit codec', () => {
  it('is unbiased: the mean of many seeded encodings approaches v', () => {
    const d = 96;
    const B = 32;
    const v = randomUpdate(d, 30);
    v[5] = 0;
    const N = 4000;
    const mean = new Float64Array(d);
    const encoder = stochasticOneBitCodec.createEncoder(d, { blockSize: B, seed: 1234 });
    const payload = new Uint8Array(encoder.payloadBytes());
    const out = new Float32Array(d);
    for (let n = 0; n < N; n++) {
      encoder.encodeInto(v, payload);
      out.fill(0);
      expect(stochasticOneBitCodec.decodeAccumulate(payload, d, B, out).ok).toBe(true);
      for (let i = 0; i < d; i++) mean[i]! += out[i]! / N;
    }
    let worst = 0;
    for (let start = 0; start < d; start += B) {
      let g = 0;
      for (let i = start; i < start + B; i++) g = Math.max(g, Math.abs(v[i]!));
      for (let i = start; i < start + B; i++) {
        // standard error of the mean is sqrt(G² − v²)/√N ≤ G/√N; allow 5 of them
        const z = Math.abs(mean[i]! - v[i]!) / (g / Math.sqrt(N));
        worst = Math.max(worst, z);
      }
    }
    expect(worst).toBeLessThan(5);
    // the deterministic one-bit codec is biased on the same vector: the test can tell them apart
    const biased = decodeFresh(
      encodeToFrame(
        oneBitCodec.createEncoder(d, { blockSize: B, errorFeedback: false }),
        v,
        HEADER,
      ),
      d,
    );
    let maxGap = 0;
    for (let i = 0; i < d; i++) maxGap = Math.max(maxGap, Math.abs(biased[i]! - v[i]!));
    expect(maxGap).toBeGreaterThan(0.3);
  });

  it('is reproducible from its seed and differs across seeds', () => {
    const d = 256;
    const u = randomUpdate(d, 31);
    const frame = (seed: number) =>
      encodeToFrame(stochasticOneBitCodec.createEncoder(d, { blockSize: 64, seed }), u, HEADER);
    expect(Array.from(frame(1))).toEqual(Array.from(frame(1)));
    expect(Array.from(frame(1))).not.toEqual(Array.from(frame(2)));
    expect(stochasticOneBitCodec.unbiased).toBe(true);
    expect(stochasticOneBitCodec.errorFeedback).toBe(false);
  });
});

describe('fp16 conversion', () => {
  it('round-trips every finite half exactly', () => {
    for (const { value, bits } of HALVES) {
      expect(toFloat16Bits(value)).toBe(bits);
      if (bits !== 0) expect(toFloat16Bits(-value)).toBe(bits | 0x8000);
    }
  });

  it('rounds to nearest, ties to even, like the reference (ties, subnormals, random floats)', () => {
    for (let h = 0; h < 0x7bff; h++) {
      const mid = (fromFloat16Bits(h) + fromFloat16Bits(h + 1)) / 2;
      expect(Math.fround(mid)).toBe(mid);
      expect(toFloat16Bits(mid)).toBe(referenceHalfBits(mid));
      expect(toFloat16Bits(mid) & 1).toBe(0);
    }
    expect(toFloat16Bits(2 ** -25)).toBe(0);
    expect(toFloat16Bits(3 * 2 ** -25)).toBe(2);
    fc.assert(
      fc.property(fc.float({ noNaN: true, noDefaultInfinity: true }), (x) => {
        expect(toFloat16Bits(x)).toBe(referenceHalfBits(x));
      }),
      { numRuns: 2000 },
    );
  });

  it('saturates finite values beyond the half range and maps NaN and ±∞ to IEEE codes', () => {
    expect(toFloat16Bits(65504)).toBe(0x7bff);
    expect(toFloat16Bits(65519)).toBe(0x7bff);
    expect(toFloat16Bits(65520)).toBe(0x7bff);
    expect(toFloat16Bits(-1e30)).toBe(0xfbff);
    expect(toFloat16Bits(Infinity)).toBe(0x7c00);
    expect(toFloat16Bits(-Infinity)).toBe(0xfc00);
    expect(toFloat16Bits(NaN)).toBe(0x7e00);
    const d = 4;
    const u = Float32Array.of(1e6, -1e6, 65504, 1);
    const out = decodeFresh(encodeToFrame(fp16Codec.createEncoder(d), u, HEADER), d);
    expect(Array.from(out)).toEqual([65504, -65504, 65504, 1]);
  });
});
