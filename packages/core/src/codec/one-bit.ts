/**
 * 1-bit codec with error feedback (DESIGN.md step 3).
 *
 * Guarantee: each coordinate of v = u + e travels as its sign, each block of B coordinates as
 * one float32 scale = mean |v| over the block; decoded value = scale · sign. With error feedback
 * (on by default) the encoder keeps e ← v − decoded, so nothing is lost over time:
 * Σ decoded_t + e_T = Σ u_t up to float32 rounding. The encoder never emits a non-finite scale:
 * a non-finite coordinate of u (or an overflow of u + e) is a RangeError.
 * Zero counts as positive: v = +0 decodes as +scale. (A −0 follows its sign bit and decodes as
 * −scale; with error feedback v is never −0, since the residual starts at +0.)
 *
 * Parameters: block size B, a positive multiple of 32 (default 1024); error feedback on/off.
 * Wire cost: 1 + 32/B bits per parameter (1.03 at B = 1024; fp32 is 32).
 *
 * Payload layout (little-endian), for d coordinates and n = ⌈d/B⌉ blocks:
 *   float32 × n           scales, block k covers coordinates [kB, min(kB + B, d))
 *   uint32  × ⌈d/32⌉      sign bits: bit j of word k is coordinate 32k + j, 1 = +scale,
 *                         0 = −scale; padding bits after coordinate d − 1 are written as 0 and
 *                         ignored by the decoder. Since B is a multiple of 32, no word straddles
 *                         two blocks.
 * The decoder rejects a scale that is NaN, ±∞ or negative ('non-finite').
 *
 * Performance (bench/codec.ts, docs/benchmarks.md): encode with error feedback is two passes per
 * block (pass 2 of a block fused with pass 1 of the next), 8 coordinates per step, signs read
 * from the float bits through a Uint32Array view (no branches); decode expands each sign word
 * with out[i] += 2s·bit − s.
 *
 * Papers: Seide et al. 2014, 1-bit SGD (error feedback); 1-bit gradient coding
 * (shared/seeds/one-bit-gradient-coding.md).
 */
import { codecIds, fail, ok } from '@swarmgrad/protocol';
import {
  assertDimension,
  defineCodec,
  EncoderShell,
  type Codec,
  type CodecEncoderOptions,
  type DecodeKernel,
  type EncoderFactory,
} from './codec.ts';

export const ONE_BIT_DEFAULT_BLOCK_SIZE = 1024;
const MAX_FLOAT32 = 3.4028234663852886e38;

/** A block size of the sign codecs: a positive multiple of 32 that fits a u32 header field. */
export function isValidSignBlockSize(blockSize: number): boolean {
  return (
    Number.isInteger(blockSize) && blockSize >= 32 && blockSize % 32 === 0 && blockSize <= 2 ** 31
  );
}

/** Bytes of a sign payload: one float32 scale per block, then ⌈d/32⌉ u32 words of sign bits. */
export function signPayloadBytes(dimension: number, blockSize: number): number {
  assertDimension(dimension);
  checkedBlockSize(blockSize);
  return 4 * (Math.ceil(dimension / blockSize) + Math.ceil(dimension / 32));
}

/** Typed views of a sign payload that is 4-byte aligned and exactly signPayloadBytes long. */
export function signViews(
  payload: Uint8Array,
  dimension: number,
  blockSize: number,
): { scales: Float32Array; words: Uint32Array } {
  const blocks = Math.ceil(dimension / blockSize);
  return {
    scales: new Float32Array(payload.buffer, payload.byteOffset, blocks),
    words: new Uint32Array(
      payload.buffer,
      payload.byteOffset + 4 * blocks,
      Math.ceil(dimension / 32),
    ),
  };
}

/** Throws RangeError unless blockSize is valid; returns it. */
export function checkedBlockSize(blockSize: number): number {
  if (!isValidSignBlockSize(blockSize)) {
    throw new RangeError(`block size must be a positive multiple of 32, got ${blockSize}`);
  }
  return blockSize;
}

/**
 * out += weight · scale_k · sign_i over a sign payload (one-bit and stochastic one-bit share
 * it). Validates the scales before touching `out`.
 */
const decodeSigns: DecodeKernel = (bytes, dimension, blockSize, out, weight) => {
  const { scales, words } = signViews(bytes, dimension, blockSize);
  for (let k = 0; k < scales.length; k++) {
    const s = scales[k]!;
    // false for NaN too
    if (!(s >= 0 && s <= MAX_FLOAT32)) return fail('non-finite', `block ${k} has scale ${s}`);
  }
  accumulateSigns(scales, words, dimension, blockSize, out, weight);
  return ok(undefined);
};

/**
 * The decode kernel: for each word, out[i] += 2sw·bit − sw (= ±s·weight, exact for weight 1),
 * no branch; 8 coordinates per step, which V8 ran ~1.5× faster than a plain 32-step loop here.
 */
function accumulateSigns(
  scales: Float32Array,
  words: Uint32Array,
  d: number,
  B: number,
  out: Float32Array,
  weight: number,
): void {
  for (let start = 0, k = 0; start < d; start += B, k++) {
    const end = Math.min(start + B, d);
    const sw = scales[k]! * weight;
    const s2w = 2 * sw;
    let base = start;
    for (; base + 32 <= end; base += 32) {
      const w = words[base >>> 5]!;
      for (let j = 0; j < 32; j += 8) {
        const p = base + j;
        const x = w >>> j;
        out[p] = out[p]! + (s2w * (x & 1) - sw);
        out[p + 1] = out[p + 1]! + (s2w * ((x >>> 1) & 1) - sw);
        out[p + 2] = out[p + 2]! + (s2w * ((x >>> 2) & 1) - sw);
        out[p + 3] = out[p + 3]! + (s2w * ((x >>> 3) & 1) - sw);
        out[p + 4] = out[p + 4]! + (s2w * ((x >>> 4) & 1) - sw);
        out[p + 5] = out[p + 5]! + (s2w * ((x >>> 5) & 1) - sw);
        out[p + 6] = out[p + 6]! + (s2w * ((x >>> 6) & 1) - sw);
        out[p + 7] = out[p + 7]! + (s2w * ((x >>> 7) & 1) - sw);
      }
    }
    if (base < end) {
      // tail word of the last block; padding bits are ignored
      const w = words[base >>> 5]!;
      for (let i = base, j = 0; i < end; i++, j++) out[i] = out[i]! + (s2w * ((w >>> j) & 1) - sw);
    }
  }
}

/** Pass 1 over [start, end): r ← v = u + r; returns Σ|v| (4 independent sums, no latency chain). */
function addResidualAndSum(u: Float32Array, r: Float32Array, start: number, end: number): number {
  let s0 = 0;
  let s1 = 0;
  let s2 = 0;
  let s3 = 0;
  let i = start;
  for (; i + 4 <= end; i += 4) {
    const a = Math.fround(u[i]! + r[i]!);
    const b = Math.fround(u[i + 1]! + r[i + 1]!);
    const c = Math.fround(u[i + 2]! + r[i + 2]!);
    const e = Math.fround(u[i + 3]! + r[i + 3]!);
    r[i] = a;
    r[i + 1] = b;
    r[i + 2] = c;
    r[i + 3] = e;
    s0 += Math.abs(a);
    s1 += Math.abs(b);
    s2 += Math.abs(c);
    s3 += Math.abs(e);
  }
  for (; i < end; i++) {
    const a = Math.fround(u[i]! + r[i]!);
    r[i] = a;
    s0 += Math.abs(a);
  }
  return s0 + s1 + s2 + s3;
}

/**
 * Pass 2 over [start, end) (start a multiple of 32): sign bits into `words` and r ← v − s·sign.
 * The sign is bit 31 of `rb`, a Uint32Array view of r: no branch, no Math.sign.
 */
function signsAndResidual(
  r: Float32Array,
  rb: Uint32Array,
  words: Uint32Array,
  start: number,
  end: number,
  s: number,
): void {
  const twoS = 2 * s;
  let base = start;
  for (; base + 32 <= end; base += 32) {
    let w = 0;
    for (let j = 0; j < 32; j++) {
      const bit = (rb[base + j]! >>> 31) ^ 1;
      w |= bit << j;
      r[base + j] = r[base + j]! - (twoS * bit - s);
    }
    words[base >>> 5] = w;
  }
  if (base < end) {
    // tail word (d not a multiple of 32); padding bits stay 0
    let w = 0;
    for (let j = 0; base + j < end; j++) {
      const bit = (rb[base + j]! >>> 31) ^ 1;
      w |= bit << j;
      r[base + j] = r[base + j]! - (twoS * bit - s);
    }
    words[base >>> 5] = w;
  }
}

/**
 * Pass 2 of the full block [start, start + B) fused with pass 1 of the full block after it, 8
 * coordinates of each per step: the streaming loads of the next block overlap the in-cache work
 * on this one. Returns Σ|v| of the next block.
 */
function signsAndResidualThenNext(
  u: Float32Array,
  r: Float32Array,
  rb: Uint32Array,
  words: Uint32Array,
  start: number,
  B: number,
  s: number,
): number {
  const twoS = 2 * s;
  let s0 = 0;
  let s1 = 0;
  let s2 = 0;
  let s3 = 0;
  const end = start + B;
  for (let base = start; base < end; base += 32) {
    let w = 0;
    for (let j = 0; j < 32; j += 8) {
      // pass 1, next block
      const q = base + j + B;
      const a0 = Math.fround(u[q]! + r[q]!);
      const a1 = Math.fround(u[q + 1]! + r[q + 1]!);
      const a2 = Math.fround(u[q + 2]! + r[q + 2]!);
      const a3 = Math.fround(u[q + 3]! + r[q + 3]!);
      const a4 = Math.fround(u[q + 4]! + r[q + 4]!);
      const a5 = Math.fround(u[q + 5]! + r[q + 5]!);
      const a6 = Math.fround(u[q + 6]! + r[q + 6]!);
      const a7 = Math.fround(u[q + 7]! + r[q + 7]!);
      r[q] = a0;
      r[q + 1] = a1;
      r[q + 2] = a2;
      r[q + 3] = a3;
      r[q + 4] = a4;
      r[q + 5] = a5;
      r[q + 6] = a6;
      r[q + 7] = a7;
      s0 += Math.abs(a0) + Math.abs(a4);
      s1 += Math.abs(a1) + Math.abs(a5);
      s2 += Math.abs(a2) + Math.abs(a6);
      s3 += Math.abs(a3) + Math.abs(a7);
      // pass 2, this block
      const p = base + j;
      const b0 = (rb[p]! >>> 31) ^ 1;
      const b1 = (rb[p + 1]! >>> 31) ^ 1;
      const b2 = (rb[p + 2]! >>> 31) ^ 1;
      const b3 = (rb[p + 3]! >>> 31) ^ 1;
      const b4 = (rb[p + 4]! >>> 31) ^ 1;
      const b5 = (rb[p + 5]! >>> 31) ^ 1;
      const b6 = (rb[p + 6]! >>> 31) ^ 1;
      const b7 = (rb[p + 7]! >>> 31) ^ 1;
      w |=
        (b0 | (b1 << 1) | (b2 << 2) | (b3 << 3) | (b4 << 4) | (b5 << 5) | (b6 << 6) | (b7 << 7)) <<
        j;
      r[p] = r[p]! - (twoS * b0 - s);
      r[p + 1] = r[p + 1]! - (twoS * b1 - s);
      r[p + 2] = r[p + 2]! - (twoS * b2 - s);
      r[p + 3] = r[p + 3]! - (twoS * b3 - s);
      r[p + 4] = r[p + 4]! - (twoS * b4 - s);
      r[p + 5] = r[p + 5]! - (twoS * b5 - s);
      r[p + 6] = r[p + 6]! - (twoS * b6 - s);
      r[p + 7] = r[p + 7]! - (twoS * b7 - s);
    }
    words[base >>> 5] = w;
  }
  return s0 + s1 + s2 + s3;
}

/**
 * Error-feedback encode, block by block: pass 1 (r ← v = u + r, Σ|v|), scale = mean |v|, pass 2
 * (sign bits, r ← v − scale·sign). Pass 2 of a block runs fused with pass 1 of the next one.
 * Returns −1, or the index of a block with a non-finite value (the sum is then NaN or +∞).
 */
function encodeWithFeedback(
  u: Float32Array,
  r: Float32Array,
  rb: Uint32Array,
  scales: Float32Array,
  words: Uint32Array,
  d: number,
  B: number,
): number {
  let sum = addResidualAndSum(u, r, 0, Math.min(B, d));
  for (let start = 0, k = 0; start < d; start += B, k++) {
    if (!(sum <= Number.MAX_VALUE)) return k;
    const end = Math.min(start + B, d);
    const s = Math.fround(sum / (end - start));
    scales[k] = s;
    if (end + B <= d) {
      sum = signsAndResidualThenNext(u, r, rb, words, start, B, s);
    } else {
      signsAndResidual(r, rb, words, start, end, s);
      if (end < d) sum = addResidualAndSum(u, r, end, d);
    }
  }
  return -1;
}

/** Encode without error feedback: v = u, read twice. Returns −1 or a non-finite block index. */
function encodePlain(
  u: Float32Array,
  ub: Uint32Array,
  scales: Float32Array,
  words: Uint32Array,
  d: number,
  B: number,
): number {
  for (let start = 0, k = 0; start < d; start += B, k++) {
    const end = Math.min(start + B, d);
    let sum = 0;
    for (let i = start; i < end; i++) sum += Math.abs(u[i]!);
    if (!(sum <= Number.MAX_VALUE)) return k;
    scales[k] = Math.fround(sum / (end - start));
    for (let base = start; base < end; base += 32) {
      const lim = Math.min(base + 32, end);
      let w = 0;
      for (let i = base, j = 0; i < lim; i++, j++) w |= ((ub[i]! >>> 31) ^ 1) << j;
      words[base >>> 5] = w;
    }
  }
  return -1;
}

/**
 * Writes the scales and sign words of u (+ r, then updated, with error feedback; rb is r's
 * Uint32Array view) for d coordinates in blocks of B. Returns −1 or the index of a block with a
 * non-finite value.
 */
export type SignKernel = (
  u: Float32Array,
  r: Float32Array | undefined,
  rb: Uint32Array | undefined,
  scales: Float32Array,
  words: Uint32Array,
  d: number,
  B: number,
) => number;

/**
 * The encoder of the sign codecs: block size (default 1024), error feedback (default: the
 * codec's), views of the scales and sign words on the payload, filled by the codec's kernel.
 */
export class SignEncoder extends EncoderShell {
  readonly #kernel: SignKernel;

  constructor(codec: Codec, dimension: number, options: CodecEncoderOptions, kernel: SignKernel) {
    super(
      codec,
      dimension,
      options.blockSize ?? ONE_BIT_DEFAULT_BLOCK_SIZE,
      options.errorFeedback ?? codec.errorFeedback,
      4,
    );
    this.#kernel = kernel;
  }

  protected encodeAligned(
    update: Float32Array,
    target: Uint8Array,
    r: Float32Array | undefined,
  ): string | undefined {
    const d = this.dimension;
    const B = this.blockSize;
    const { scales, words } = signViews(target, d, B);
    const bad = this.#kernel(update, r, this.residualBits, scales, words, d, B);
    return bad >= 0 ? `in block ${bad}` : undefined;
  }
}

/** The one-bit kernel: deterministic signs, scale = mean |v| per block. */
const encodeOneBit: SignKernel = (u, r, rb, scales, words, d, B) => {
  if (r !== undefined) return encodeWithFeedback(u, r, rb!, scales, words, d, B);
  const ub = new Uint32Array(u.buffer, u.byteOffset, u.length);
  return encodePlain(u, ub, scales, words, d, B);
};

/**
 * A codec on the sign payload (scales per block, then sign bits): one-bit and stochastic
 * one-bit differ only in their encoder and in what their decoded value estimates.
 */
export function signCodec(
  spec: Pick<Codec, 'name' | 'id' | 'errorFeedback' | 'unbiased'>,
  createEncoder: EncoderFactory,
): Codec {
  return defineCodec(
    {
      ...spec,
      defaultBlockSize: ONE_BIT_DEFAULT_BLOCK_SIZE,
      isValidBlockSize: isValidSignBlockSize,
      payloadBytes: signPayloadBytes,
    },
    4,
    createEncoder,
    decodeSigns,
  );
}

export const oneBitCodec: Codec = signCodec(
  { name: 'one-bit', id: codecIds['one-bit'], errorFeedback: true, unbiased: false },
  (codec, dimension, options) => new SignEncoder(codec, dimension, options, encodeOneBit),
);
