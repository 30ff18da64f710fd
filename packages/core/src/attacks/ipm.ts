/**
 * IPM — inner-product manipulation: every colluder sends −ε·μ, the honest mean reversed and
 * shrunk. Small enough (ε < 1) to sit near the honest inputs, so median- and Krum-style rules keep
 * it, it makes the inner product of the aggregate with the true gradient small or negative.
 *
 * Guarantee: out = −ε·μ over the honest pool ({honest} ∪ peers), so ⟨out, μ⟩ = −ε‖μ‖² < 0 whenever
 * μ ≠ 0. Without peers μ is its own honest message.
 *
 * Parameters: strength ε > 0 (default 0.1, the paper's choice against median and Krum; ε well
 * above 1 breaks the mean).
 *
 * Paper: Xie, Koyejo, Gupta, "Fall of empires: breaking Byzantine-tolerant SGD by inner product
 * manipulation", UAI 2019.
 */
import {
  honestPool,
  messageAttack,
  param,
  poolStatistics,
  type Attack,
  type AttackParams,
} from './attack.ts';

export const IPM_DEFAULT_EPSILON = 0.1;

export function createIpm(params: AttackParams = {}): Attack {
  const eps = param('ipm', 'strength', params.strength, IPM_DEFAULT_EPSILON, (v) => v > 0);
  return messageAttack('ipm', (input) => {
    const { mean } = poolStatistics(honestPool(input));
    const out = new Float32Array(mean.length);
    for (let j = 0; j < out.length; j++) out[j] = -eps * mean[j]!;
    return out;
  });
}
