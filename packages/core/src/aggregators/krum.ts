/**
 * Krum and Multi-Krum (Blanchard, El Mhamdi, Guerraoui, Stainer 2017, "Machine learning with
 * adversaries: Byzantine tolerant gradient descent").
 *
 * Score(x_i) = Σ of the squared distances from x_i to its n − f − 2 nearest other inputs. Krum
 * outputs the input of minimal score; Multi-Krum averages the m best-scored (default m = n − f).
 *
 * Guarantee: with n > 2f + 2 admitted inputs of which at most f are Byzantine, every honest score
 * is ≤ (n − f − 2)·D_H² (D_H = honest diameter), and every selected input has score ≤ the largest
 * honest score (Multi-Krum with m ≤ n − f) and at least n − 2f − 2 honest inputs among its scored
 * neighbours; so each selected input is within D_H·√((n − f − 2)/(n − 2f − 2)) of some honest
 * input. The output therefore lies in the honest box widened by that radius per coordinate — not
 * inside the box itself: a Byzantine input just outside it can win.
 *
 * Parameters: f; Multi-Krum also m (clamped to [1, n]). Fallback when n ≤ 2f + 2: the
 * coordinate-wise median of all admitted inputs (then all are reported accepted). Otherwise the
 * inputs not selected are reported as 'filtered'. Score ties are broken by lexicographic order,
 * so the selection depends only on the multiset of inputs. Cost O(n² d).
 *
 * Paper: Krum/Multi-Krum, compared against CGE in ../shared/seeds/parle-and-byzantine-filters.md.
 */
import type { Aggregator, MultiKrumParams } from './aggregator.ts';
import { compareVectors, defineAggregator, insertionSort } from './aggregator.ts';
import { coordinateMedianInto } from './coordinate-median.ts';
import { averageInto } from './mean.ts';
import { squaredDistance } from '../vector.ts';

/** Krum scores (requires n > 2f + 2). */
export function krumScores(vectors: readonly Float32Array[], f: number): Float64Array {
  const n = vectors.length;
  const dist = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      const d = squaredDistance(vectors[i]!, vectors[j]!);
      dist[i * n + j] = d;
      dist[j * n + i] = d;
    }
  }
  const k = n - f - 2;
  const scores = new Float64Array(n);
  const row = new Float64Array(n - 1);
  for (let i = 0; i < n; i++) {
    let c = 0;
    for (let j = 0; j < n; j++) if (j !== i) row[c++] = dist[i * n + j]!;
    insertionSort(row, c);
    let s = 0;
    for (let t = 0; t < k; t++) s += row[t]!;
    scores[i] = s;
  }
  return scores;
}

/**
 * Positions of the m best-scored vectors (ascending) with their mean written to out, or null after
 * falling back to the coordinate-wise median when n ≤ 2f + 2.
 */
export function multiKrumInto(
  vectors: readonly Float32Array[],
  out: Float32Array,
  f: number,
  m: number | undefined,
): number[] | null {
  const n = vectors.length;
  if (n <= 2 * f + 2) {
    coordinateMedianInto(vectors, out);
    return null;
  }
  const scores = krumScores(vectors, f);
  const order = vectors.map((_, i) => i);
  order.sort(
    (a, b) => scores[a]! - scores[b]! || compareVectors(vectors[a]!, vectors[b]!) || a - b,
  );
  const count = Math.min(n, Math.max(1, m ?? n - f));
  const chosen = order.slice(0, count).sort((a, b) => a - b);
  averageInto(vectors, out, chosen);
  return chosen;
}

export function createKrum(): Aggregator {
  return defineAggregator('krum', (vectors, out, f) => multiKrumInto(vectors, out, f, 1));
}

export function createMultiKrum(params?: MultiKrumParams): Aggregator {
  const m = params?.m;
  if (m !== undefined && (!Number.isInteger(m) || m < 1)) {
    throw new RangeError(`multi-krum: m must be a positive integer, got ${m}`);
  }
  return defineAggregator('multi-krum', (vectors, out, f) => multiKrumInto(vectors, out, f, m));
}
