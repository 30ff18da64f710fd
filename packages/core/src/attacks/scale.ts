/**
 * Scale: send k·u, the honest direction with k times its norm (a large-norm update that the mean
 * follows and norm-based filters such as CGE drop first).
 *
 * Guarantee: out = k·honest. Needs no peers.
 *
 * Parameters: strength k > 0 (default 100).
 *
 * Paper: the scaling attack of the gradient-filter literature (CGE, Gupta & Vaidya),
 * ../shared/seeds/parle-and-byzantine-filters.md.
 */
import { messageAttack, param, type Attack, type AttackParams } from './attack.ts';

export const SCALE_DEFAULT = 100;

export function createScale(params: AttackParams = {}): Attack {
  const k = param('scale', 'strength', params.strength, SCALE_DEFAULT, (v) => v > 0);
  return messageAttack('scale', ({ honest }) => honest.map((x) => k * x));
}
