/**
 * Min-sum (Shejwalkar & Houmansadr): every colluder sends m = μ + γ·p (p default −σ) with the
 * largest γ ≥ 0 such that the sum of m's squared distances to the honest inputs is no more than
 * the largest such sum of an honest input: Σ_i ‖m − h_i‖² ≤ max_k Σ_i ‖h_k − h_i‖². It passes
 * score-based filters (Krum's family) that rank inputs by summed distances.
 *
 * Guarantee: over the honest pool H = {honest} ∪ peers, Σ_i ‖out − h_i‖² ≤ max_k Σ_i ‖h_k − h_i‖²
 * (up to float32 rounding). γ is exact: the sum is a quadratic in γ, feasible at γ = 0. Without
 * peers (or p = 0) out = μ.
 *
 * Parameters: perturbation 'std' (default), 'unit' or 'sign' (see min-max.ts).
 *
 * Paper: Shejwalkar, Houmansadr, NDSS 2021 (AGR-agnostic min-sum).
 */
import { messageAttack, type Attack, type AttackParams } from './attack.ts';
import { craftOptimized } from './optimized.ts';

export function createMinSum(params: AttackParams = {}): Attack {
  const perturbation = params.perturbation ?? 'std';
  return messageAttack('min-sum', (input) => craftOptimized(input, perturbation, 'sum'));
}
