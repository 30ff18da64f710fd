/**
 * Sign-optimal: the attack on 1-bit updates and sign votes. Per coordinate the honest pool votes
 * v_j = Σ_i sign(h_ij); where the majority is narrowest a few opposite votes tie or flip it, where
 * it is wide they cannot. The attacker sends a 1-bit-shaped vector: −sign(v_j)·a on the share ρ of
 * coordinates with the smallest |v_j| (a tied vote is pushed against sign(μ_j)), +sign(v_j)·a
 * elsewhere — it agrees with the honest majority wherever disagreeing would be wasted, so it
 * looks like an honest 1-bit message (its magnitude a = mean |honest| is the codec's block scale).
 *
 * Guarantee: every |out_j| = a; the flipped coordinates are exactly ⌊ρ·d⌋ with the smallest
 * margins |v_j| (ties broken by index), and on each of them out_j·v_j ≤ 0 (out_j·v_j < 0 when
 * v_j ≠ 0); elsewhere out_j has the majority's sign (+a on a zero vote). Without peers the vote
 * is its own signs.
 *
 * Parameters: strength ρ ∈ (0, 1] (default 0.5).
 *
 * Paper: the sign-flipping adversary of signSGD with majority vote (Bernstein, Zhao,
 * Azizzadenesheli, Anandkumar, ICLR 2019), spent where the vote is closest; the 1-bit coding of
 * ../shared/seeds/one-bit-gradient-coding.md.
 */
import {
  honestPool,
  messageAttack,
  param,
  poolStatistics,
  type Attack,
  type AttackParams,
} from './attack.ts';

export const SIGN_OPTIMAL_DEFAULT_SHARE = 0.5;

export function createSignOptimal(params: AttackParams = {}): Attack {
  const share = param(
    'sign-optimal',
    'strength',
    params.strength,
    SIGN_OPTIMAL_DEFAULT_SHARE,
    (v) => v > 0 && v <= 1,
  );
  return messageAttack('sign-optimal', (input) => {
    const pool = honestPool(input);
    const { honest } = input;
    const d = honest.length;
    const votes = new Float64Array(d);
    for (const v of pool) for (let j = 0; j < d; j++) votes[j]! += Math.sign(v[j]!);
    const { mean } = poolStatistics(pool);
    let a = 0;
    for (let j = 0; j < d; j++) a += Math.abs(honest[j]!);
    a = d > 0 ? a / d : 0;
    const order = Array.from({ length: d }, (_, j) => j);
    order.sort((x, y) => Math.abs(votes[x]!) - Math.abs(votes[y]!) || x - y);
    const flipped = Math.floor(share * d);
    const out = new Float32Array(d);
    for (let r = 0; r < d; r++) {
      const j = order[r]!;
      const v = votes[j]!;
      const majority = v !== 0 ? Math.sign(v) : mean[j]! !== 0 ? Math.sign(mean[j]!) : 1;
      out[j] = (r < flipped ? -majority : v !== 0 ? majority : 1) * a;
    }
    return out;
  });
}
