/**
 * ALIE — "a little is enough": every colluder sends μ − z·σ, the honest mean shifted by z
 * standard deviations per coordinate. Each coordinate stays within the honest spread, so
 * coordinate-wise rules (median, trimmed mean) and distance rules (Krum) keep or even prefer it,
 * while the shift, always the same way, biases every aggregate.
 *
 * Guarantee: with μ, σ the per-coordinate mean and population std of the honest pool
 * ({honest} ∪ peers), out_j = μ_j − z·σ_j: every coordinate lies exactly z standard deviations
 * below the honest mean. Without peers σ = 0 and it sends its own honest message.
 *
 * Parameters: strength z > 0 (default 1; the paper derives z from n and f — z ≈ 1 for its n = 50,
 * f = 12 — and follow-up work uses z = 1).
 *
 * Paper: Baruch, Baruch, Goldberg, "A little is enough: circumventing defenses for distributed
 * learning", NeurIPS 2019.
 */
import {
  honestPool,
  messageAttack,
  param,
  poolStatistics,
  type Attack,
  type AttackParams,
} from './attack.ts';

export const ALIE_DEFAULT_Z = 1;

export function createAlie(params: AttackParams = {}): Attack {
  const z = param('alie', 'strength', params.strength, ALIE_DEFAULT_Z, (v) => v > 0);
  return messageAttack('alie', (input) => {
    const { mean, std } = poolStatistics(honestPool(input));
    const out = new Float32Array(mean.length);
    for (let j = 0; j < out.length; j++) out[j] = mean[j]! - z * std[j]!;
    return out;
  });
}
