/**
 * CGE — comparative gradient elimination (Gupta & Vaidya).
 *
 * Guarantee: sort the admitted inputs by L2 norm, drop the f largest, average the remaining
 * n − f. If at most f admitted inputs are Byzantine, at least one of the f + 1 largest norms is
 * honest, so every kept input — hence the output — has norm ≤ max honest norm M_H, and
 * ‖out − honest mean‖ ≤ D_H + (b / (n − f))·(M_H + ‖honest mean‖) with D_H the honest diameter
 * and b the kept Byzantine inputs. It bounds norms, not coordinates: a kept Byzantine input may sit
 * outside the honest box as long as its norm is small.
 *
 * Parameters: f. When n ≤ f, the single smallest-norm input is kept (still ≤ M_H when any honest
 * input is admitted). Norm ties are broken by lexicographic order, so the choice does not depend on
 * input order. Dropped inputs are reported as 'filtered'.
 *
 * Paper: CGE gradient filter, in ../shared/seeds/parle-and-byzantine-filters.md.
 */
import type { Aggregator } from './aggregator.ts';
import { compareVectors, defineAggregator } from './aggregator.ts';
import { averageInto } from './mean.ts';
import { l2Norm } from '../vector.ts';

/** Positions of the max(1, n − f) smallest-norm vectors, ascending; writes their mean to out. */
export function cgeInto(vectors: readonly Float32Array[], out: Float32Array, f: number): number[] {
  const n = vectors.length;
  const norms = vectors.map((v) => l2Norm(v));
  const order = vectors.map((_, i) => i);
  order.sort((a, b) => norms[a]! - norms[b]! || compareVectors(vectors[a]!, vectors[b]!) || a - b);
  const kept = order.slice(0, Math.max(1, n - f)).sort((a, b) => a - b);
  averageInto(vectors, out, kept);
  return kept;
}

export function createCge(): Aggregator {
  return defineAggregator('cge', (vectors, out, f) => cgeInto(vectors, out, f));
}
