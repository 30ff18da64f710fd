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
import {
  alignedBytes,
  assertDimension,
  assertEncodeArgs,
  unblockedCodec,
  type Codec,
  type CodecEncoder,
  type DecodeKernel,
} from './codec.ts';

function firstNonFinite(v: Float32Array): number {
  for (let i = 0; i < v.length; i++) {
    const x = v[i]!;
    // x - x is NaN exactly when x is NaN or ±∞
    if (x - x !== 0) return i;
  }
  return -1;
}

class Fp32Encoder implements CodecEncoder {
  readonly codec: Codec;
  readonly dimension: number;
  readonly blockSize = 0;
  readonly errorFeedback = false;

  constructor(codec: Codec, dimension: number) {
    assertDimension(dimension);
    this.codec = codec;
    this.dimension = dimension;
  }

  payloadBytes(): number {
    return 4 * this.dimension;
  }

  encodeInto(update: Float32Array, payload: Uint8Array): void {
    assertEncodeArgs(this, update, payload);
    const bad = firstNonFinite(update);
    if (bad >= 0) throw new RangeError(`update[${bad}] = ${update[bad]} is not finite`);
    const target = alignedBytes(payload, 4);
    new Float32Array(target.buffer, target.byteOffset, this.dimension).set(update);
    if (target !== payload) payload.set(target);
  }

  residual(): Float32Array | undefined {
    return undefined;
  }

  reset(): void {}
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
