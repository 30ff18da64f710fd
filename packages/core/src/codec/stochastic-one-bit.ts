/**
 * Stochastic (unbiased) 1-bit codec, for the gradient-coding decoder (DESIGN.md step 3/4).
 *
 * Guarantee: per block of B coordinates, G = max |v| over the block; coordinate v is sent as +1
 * with probability (1 + v/G)/2, else −1, and decodes as G · sign, so E[decoded] = v exactly
 * (unbiased; variance G² − v² per coordinate). v = u by default; with the errorFeedback option
 * v = u + e and e ← v − decoded (then conservation holds, unbiasedness is per step).
 * A block of zeros has G = 0 and decodes to zeros. The encoder never emits a non-finite scale:
 * a non-finite coordinate is a RangeError.
 *
 * Parameters: block size B (positive multiple of 32, default 1024), seed of the generator
 * (createRng; give every sender its own seed, or their noise is correlated), error feedback.
 * Same payload layout and decoder as one-bit.ts: float32 scales, then sign bits, 1 + 32/B bits
 * per parameter.
 *
 * Paper: 1-bit gradient coding (shared/seeds/one-bit-gradient-coding.md).
 */
import { codecIds } from '@swarmgrad/protocol';
import { createRng, type Rng } from '../random.ts';
import type { Codec } from './codec.ts';
import { SignEncoder, signCodec } from './one-bit.ts';

const MAX_FLOAT32 = 3.4028234663852886e38;
/** Seed used when none is given. Senders should pass their own. */
const DEFAULT_SEED = 0x5eed;

/**
 * Encodes v (= u, or u + r written into r when r is given). Returns −1 or the index of a block
 * with a non-finite value.
 */
function encodeStochastic(
  u: Float32Array,
  r: Float32Array | undefined,
  scales: Float32Array,
  words: Uint32Array,
  d: number,
  B: number,
  rng: Rng,
): number {
  const v = r ?? u;
  for (let start = 0, k = 0; start < d; start += B, k++) {
    const end = Math.min(start + B, d);
    let g = 0;
    if (r !== undefined) {
      for (let i = start; i < end; i++) {
        const x = Math.fround(u[i]! + r[i]!);
        r[i] = x;
        g = Math.max(g, Math.abs(x));
      }
    } else {
      for (let i = start; i < end; i++) g = Math.max(g, Math.abs(u[i]!));
    }
    // NaN propagates through Math.max; ±∞ exceeds the float32 range
    if (!(g <= MAX_FLOAT32)) return k;
    scales[k] = g;
    const half = g > 0 ? 0.5 / g : 0;
    for (let base = start; base < end; base += 32) {
      const lim = Math.min(base + 32, end);
      let w = 0;
      for (let i = base, j = 0; i < lim; i++, j++) {
        const x = v[i]!;
        const bit = rng.next() < 0.5 + half * x ? 1 : 0;
        w |= bit << j;
        if (r !== undefined) r[i] = x - (bit === 1 ? g : -g);
      }
      words[base >>> 5] = w;
    }
  }
  return -1;
}

export const stochasticOneBitCodec: Codec = signCodec(
  {
    name: 'stochastic-one-bit',
    id: codecIds['stochastic-one-bit'],
    errorFeedback: false,
    unbiased: true,
  },
  (codec, dimension, options) => {
    // one generator per encoder; reset() zeroes the residual only (no sequence is ever replayed)
    const rng = createRng(options.seed ?? DEFAULT_SEED);
    return new SignEncoder(codec, dimension, options, (u, r, _rb, scales, words, d, B) =>
      encodeStochastic(u, r, scales, words, d, B, rng),
    );
  },
);
