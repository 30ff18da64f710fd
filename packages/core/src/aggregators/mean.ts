/**
 * Mean — the non-robust baseline (plain data-parallel SGD averaging).
 *
 * Guarantee: out = (1/n) Σ x_i over the admitted inputs. None against Byzantine inputs: a single
 * finite input can move the output arbitrarily far. The shared admit step still keeps NaN/±∞ and
 * wrong-length inputs out, so the output is always finite.
 *
 * Parameters: none (`f` is ignored).
 *
 * Paper: the baseline every rule in ../shared/seeds/parle-and-byzantine-filters.md compares to.
 */
import type { Aggregator } from './aggregator.ts';
import { defineAggregator } from './aggregator.ts';

/**
 * out = mean of vectors[positions] (all vectors when positions is omitted). Sums per coordinate in
 * float64, so inputs near the float32 limit cannot overflow to ±∞.
 */
export function averageInto(
  vectors: readonly Float32Array[],
  out: Float32Array,
  positions?: readonly number[],
): void {
  const chosen = positions === undefined ? vectors : positions.map((p) => vectors[p]!);
  const k = chosen.length;
  if (k === 0) {
    out.fill(0);
    return;
  }
  const inv = 1 / k;
  for (let j = 0; j < out.length; j++) {
    let s = 0;
    for (let i = 0; i < k; i++) s += chosen[i]![j]!;
    out[j] = s * inv;
  }
}

export function createMean(): Aggregator {
  return defineAggregator('mean', (vectors, out) => {
    averageInto(vectors, out);
    return null;
  });
}
