/**
 * fp32 codec: the uncompressed baseline (32 bits per parameter).
 *
 * Guarantee: decode(encode(u)) = u exactly (a raw little-endian float32 copy), so no residual is
 * ever needed: the errorFeedback option is accepted and ignored (residual() is undefined).
 * The encoder throws RangeError on a non-finite coordinate; the decoder rejects a payload with a
 * NaN or ±∞ ('non-finite') before touching `out`.
 * Parameters: none (block size 0).
 * Paper: the fp32 baseline of the 1-bit comparisons (shared/seeds/one-bit-gradient-coding.md).
 */
import { codecIds, fail, ok } from '@swarmgrad/protocol';
import { EncoderShell, unblockedCodec, type Codec, type DecodeKernel } from './codec.ts';

function firstNonFinite(v: Float32Array): number {
  for (let i = 0; i < v.length; i++) {
    const x = v[i]!;
    // x - x is NaN exactly when x is NaN or ±∞
    if (x - x !== 0) return i;
  }
  return -1;
}

class Fp32Encoder extends EncoderShell {
  constructor(codec: Codec, dimension: number) {
    super(codec, dimension, 0, false, 4);
  }

  protected encodeAligned(update: Float32Array, target: Uint8Array): string | undefined {
    const bad = firstNonFinite(update);
    if (bad >= 0) return `at coordinate ${bad} (${update[bad]})`;
    new Float32Array(target.buffer, target.byteOffset, this.dimension).set(update);
    return undefined;
  }
}

const decodeFp32: DecodeKernel = (bytes, dimension, _blockSize, out, weight) => {
  const values = new Float32Array(bytes.buffer, bytes.byteOffset, dimension);
  const at = firstNonFinite(values);
  if (at >= 0) return fail('non-finite', `value ${at} is ${values[at]}`);
  for (let i = 0; i < dimension; i++) out[i] = out[i]! + weight * values[i]!;
  return ok(undefined);
};

export const fp32Codec: Codec = unblockedCodec(
  { name: 'fp32', id: codecIds.fp32, errorFeedback: false, unbiased: true },
  4,
  (codec, dimension) => new Fp32Encoder(codec, dimension),
  decodeFp32,
);
