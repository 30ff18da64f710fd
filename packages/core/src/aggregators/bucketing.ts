/**
 * Bucketing (s-bucketing): shuffle the inputs, average them in buckets of s, and run a base robust
 * rule over the ⌈n/s⌉ bucket means with the same f.
 *
 * Guarantee: each Byzantine input spoils at most one bucket, and the mean of an all-honest bucket
 * lies in the honest box, so with b Byzantine inputs and 2b < ⌈n/s⌉ the honest buckets are a
 * strict majority and the base rule's guarantee holds over the bucket means with their honest box
 * (inside the inputs' honest box). Averaging s honest inputs divides their spread by √s, which is
 * what makes the base rule's filtering bite when honest inputs are noisy or heterogeneous; the
 * price is that f spoiled buckets may hide up to f·(s − 1) honest inputs. For the default base
 * (centered clipping) the output's L2 distance to the honest box is then ≤ iterations·(b/B)·τ,
 * B = ⌈n/s⌉. With 2b ≥ B there is no bound beyond finiteness.
 *
 * Parameters: bucketSize s ≥ 1 (default 2), base (default 'centered-clipping'; any rule but
 * bucketing), seed (default 1) of the shuffle — mixed with a hash of the inputs, so buckets
 * differ from round to round while the result stays a function of the inputs alone: a cluster
 * member that recomputes its proposer's update (core's cluster round) draws the same buckets,
 * however many times either aggregated before; inputs are sorted lexicographically before the
 * shuffle, so the result does not depend on their order — and center (for a centered-clipping
 * base: its start, e.g. the previous aggregate). Inputs of buckets the base rule filtered are
 * reported 'filtered'.
 *
 * Paper: Karimireddy, He, Jaggi, "Byzantine-robust learning on heterogeneous datasets via
 * bucketing", ICLR 2022 (with centered clipping: "Learning from history for Byzantine robust
 * optimization", ICML 2021).
 */
import type { Aggregator, BucketingParams } from './aggregator.ts';
import { compareVectors, defineAggregator, getAggregator } from './aggregator.ts';
import { averageInto } from './mean.ts';
import { createRng } from '../random.ts';

export const BUCKETING_DEFAULT_SIZE = 2;

export function createBucketing(params: BucketingParams = {}): Aggregator {
  const s = params.bucketSize ?? BUCKETING_DEFAULT_SIZE;
  if (!Number.isInteger(s) || s < 1) {
    throw new RangeError(`bucketing: bucketSize must be a positive integer, got ${s}`);
  }
  const baseName = params.base ?? 'centered-clipping';
  if ((baseName as string) === 'bucketing')
    throw new RangeError('bucketing: base cannot be bucketing');
  const base =
    baseName === 'centered-clipping'
      ? getAggregator(
          'centered-clipping',
          params.center === undefined ? {} : { center: params.center },
        )
      : getAggregator(baseName);
  const seed = params.seed ?? 1;
  return defineAggregator('bucketing', (vectors, out, f) => {
    const n = vectors.length;
    const order = vectors.map((_, i) => i);
    order.sort((a, b) => compareVectors(vectors[a]!, vectors[b]!) || a - b);
    const rng = createRng(inputsHash(seed, vectors, order));
    for (let i = n - 1; i > 0; i--) {
      const j = Math.floor(rng.next() * (i + 1));
      const t = order[i]!;
      order[i] = order[j]!;
      order[j] = t;
    }
    const members: number[][] = [];
    const means: Float32Array[] = [];
    for (let start = 0; start < n; start += s) {
      const bucket = order.slice(start, start + s);
      const mean = new Float32Array(out.length);
      averageInto(vectors, mean, bucket);
      members.push(bucket);
      means.push(mean);
    }
    const report = base.aggregate(means, out, { f });
    if (report.rejected.length === 0) return null;
    return report.accepted.flatMap((b) => members[b]!).sort((a, b) => a - b);
  });
}

/** FNV-1a over the inputs' float32 bit patterns, in the sorted order, starting from `seed`. */
function inputsHash(
  seed: number,
  vectors: readonly Float32Array[],
  order: readonly number[],
): number {
  let h = (0x811c9dc5 ^ seed) >>> 0;
  for (const index of order) {
    const v = vectors[index]!;
    const bits = new Uint32Array(v.buffer, v.byteOffset, v.length);
    for (let k = 0; k < bits.length; k++) h = Math.imul(h ^ bits[k]!, 0x01000193);
  }
  return h >>> 0;
}
