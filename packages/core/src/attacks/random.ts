/**
 * Random: a Gaussian vector of norm k·‖u‖ (uniform direction), drawn from the caller's rng.
 *
 * Guarantee: ‖out‖ = k·‖honest‖ up to float32 rounding (1e-3 in place of a zero honest norm, so
 * the attacker never sends zeros), deterministic for a seed. Needs no peers.
 *
 * Parameters: strength k > 0 (default 10; the browser's fault mode uses 1).
 *
 * Paper: the Gaussian attack of Blanchard et al. 2017 and CGE's experiments,
 * ../shared/seeds/parle-and-byzantine-filters.md.
 */
import { gaussian } from '../random.ts';
import { l2Norm } from '../vector.ts';
import { messageAttack, param, type Attack, type AttackParams } from './attack.ts';

export const RANDOM_DEFAULT = 10;

export function createRandom(params: AttackParams = {}): Attack {
  const k = param('random', 'strength', params.strength, RANDOM_DEFAULT, (v) => v > 0);
  return messageAttack('random', ({ honest, rng }) => {
    const norm = l2Norm(honest) || 1e-3;
    const out = new Float32Array(honest.length);
    let sq = 0;
    for (let i = 0; i < out.length; i++) {
      const g = gaussian(rng);
      out[i] = g;
      sq += g * g;
    }
    const s = sq > 0 ? (k * norm) / Math.sqrt(sq) : 0;
    for (let i = 0; i < out.length; i++) out[i] = out[i]! * s;
    return out;
  });
}
