/**
 * fp16 codec: IEEE 754 half precision, 16 bits per parameter.
 *
 * Guarantee: each coordinate is rounded to the nearest half (ties to even), so the decoded value
 * is within a relative 2^-11 of the input for |x| ≥ 2^-14 and within 2^-25 absolutely below
 * (half subnormals). Finite values beyond the half range saturate to ±65504 (never ±∞). With
 * error feedback (off by default) the encoder keeps e ← (u + e) − decoded. The encoder throws
 * RangeError on a non-finite coordinate; the decoder rejects a half NaN or ±∞ ('non-finite')
 * before touching `out`.
 * Parameters: error feedback on/off (block size 0).
 * Conversion: float32 bits → half with integer arithmetic on a Uint32Array view (normal range)
 * and the 2^52 round-to-even trick (subnormal range); half → float32 through a 64K-entry table.
 * Paper: half-precision baseline of the 1-bit comparisons (shared/seeds/one-bit-gradient-coding.md).
 */
import { codecIds, fail, ok } from '@swarmgrad/protocol';
import {
  EncoderShell,
  unblockedCodec,
  type Codec,
  type CodecEncoderOptions,
  type DecodeKernel,
} from './codec.ts';

/** 2^52: adding and subtracting it rounds a non-negative float64 below 2^52 to an integer, ties to even. */
const ROUND_MAGIC = 4503599627370496;
const HALF_MAX_BITS = 0x7bff;

let halfTable: Float32Array | undefined;

/** float32 value of every half bit pattern (NaN and ±∞ included). */
function halfToFloatTable(): Float32Array {
  if (halfTable !== undefined) return halfTable;
  const table = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1;
    const exponent = (h >>> 10) & 0x1f;
    const mantissa = h & 0x3ff;
    if (exponent === 0) table[h] = sign * mantissa * 2 ** -24;
    else if (exponent === 31) table[h] = mantissa === 0 ? sign * Infinity : NaN;
    else table[h] = sign * (1024 + mantissa) * 2 ** (exponent - 25);
  }
  halfTable = table;
  return table;
}

/**
 * Half bits of a finite float32 given as its bits `x` and value `f` (|f| needed only below 2^-14).
 * Caller has excluded NaN and ±∞.
 */
function halfBits(x: number, f: number): number {
  const a = x & 0x7fffffff;
  let h: number;
  if (a >= 0x38800000) {
    // normal half: rebias the exponent (−112 << 23), round the 13 dropped bits to nearest even
    h = (a - 0x38000000 + 0xfff + ((a >>> 13) & 1)) >>> 13;
    if (h > HALF_MAX_BITS) h = HALF_MAX_BITS;
  } else {
    // subnormal half (or zero): |f| · 2^24 < 1024, rounded to an integer, ties to even
    h = Math.abs(f) * 16777216 + ROUND_MAGIC - ROUND_MAGIC;
  }
  return ((x >>> 16) & 0x8000) | h;
}

const scratch = new Float32Array(1);
const scratchBits = new Uint32Array(scratch.buffer);

/**
 * IEEE half bits of x, rounded to nearest even after rounding x to float32. Finite values beyond
 * the half range saturate to ±65504 (as the encoder does); NaN → 0x7e00, ±∞ → 0x7c00 | sign.
 */
export function toFloat16Bits(x: number): number {
  scratch[0] = x;
  const bits = scratchBits[0]!;
  const f = scratch[0]!;
  if (f !== f) return 0x7e00;
  if (f === Infinity || f === -Infinity) return ((bits >>> 16) & 0x8000) | 0x7c00;
  return halfBits(bits, f);
}

/** The value of IEEE half bits h (0 ≤ h < 65536). */
export function fromFloat16Bits(h: number): number {
  return halfToFloatTable()[h & 0xffff]!;
}

/** Plain encode: halves of u. Returns −1 or the index of a non-finite coordinate. */
function encodePlain(u: Float32Array, ub: Uint32Array, out: Uint16Array): number {
  for (let i = 0; i < u.length; i++) {
    const x = ub[i]!;
    if ((x & 0x7f800000) === 0x7f800000) return i;
    out[i] = halfBits(x, u[i]!);
  }
  return -1;
}

/** Error-feedback encode: v = u + r, halves of v, r ← v − half(v). Returns −1 or a bad index. */
function encodeWithFeedback(
  u: Float32Array,
  r: Float32Array,
  rb: Uint32Array,
  out: Uint16Array,
  table: Float32Array,
): number {
  for (let i = 0; i < u.length; i++) {
    const v = Math.fround(u[i]! + r[i]!);
    r[i] = v;
    const x = rb[i]!;
    if ((x & 0x7f800000) === 0x7f800000) return i;
    const h = halfBits(x, v);
    out[i] = h;
    r[i] = v - table[h]!;
  }
  return -1;
}

class Fp16Encoder extends EncoderShell {
  constructor(codec: Codec, dimension: number, options: CodecEncoderOptions) {
    super(codec, dimension, 0, options.errorFeedback ?? codec.errorFeedback, 2);
  }

  protected encodeAligned(
    update: Float32Array,
    target: Uint8Array,
    r: Float32Array | undefined,
  ): string | undefined {
    const halves = new Uint16Array(target.buffer, target.byteOffset, this.dimension);
    let bad: number;
    if (r !== undefined) {
      bad = encodeWithFeedback(update, r, this.residualBits!, halves, halfToFloatTable());
    } else {
      const ub = new Uint32Array(update.buffer, update.byteOffset, update.length);
      bad = encodePlain(update, ub, halves);
    }
    return bad >= 0 ? `at coordinate ${bad}` : undefined;
  }
}

const decodeFp16: DecodeKernel = (bytes, dimension, _blockSize, out, weight) => {
  const halves = new Uint16Array(bytes.buffer, bytes.byteOffset, dimension);
  for (let i = 0; i < dimension; i++) {
    if ((halves[i]! & 0x7c00) === 0x7c00) {
      return fail(
        'non-finite',
        `value ${i} is a half NaN or infinity (0x${halves[i]!.toString(16)})`,
      );
    }
  }
  const table = halfToFloatTable();
  for (let i = 0; i < dimension; i++) out[i] = out[i]! + weight * table[halves[i]!]!;
  return ok(undefined);
};

export const fp16Codec: Codec = unblockedCodec(
  { name: 'fp16', id: codecIds.fp16, errorFeedback: false, unbiased: false },
  2,
  (codec, dimension, options) => new Fp16Encoder(codec, dimension, options),
  decodeFp16,
);
