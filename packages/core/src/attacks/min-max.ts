/**
 * Min-max (Shejwalkar & Houmansadr): every colluder sends m = μ + γ·p, p a perturbation direction
 * (default −σ), with the largest γ ≥ 0 such that m is no farther from any honest input than the
 * honest inputs are from each other: max_i ‖m − h_i‖ ≤ max_{i,k} ‖h_i − h_k‖. It is as far from
 * the honest mean as a distance-based filter can be made to accept.
 *
 * Guarantee: over the honest pool H = {honest} ∪ peers, max_i ‖out − h_i‖ ≤ max_{i,k} ‖h_i − h_k‖
 * (up to float32 rounding of out). γ is exact, not searched: each ‖μ + γp − h_i‖² is a quadratic
 * in γ, feasible at γ = 0 (μ is a convex combination of H), so the feasible set is [0, γ*] with γ*
 * the smallest of the quadratics' positive roots. Without peers (or p = 0) out = μ.
 *
 * Parameters: perturbation 'std' (−σ, default; the paper's best against most rules), 'unit'
 * (−μ/‖μ‖) or 'sign' (−sign(μ)).
 *
 * Paper: Shejwalkar, Houmansadr, "Manipulating the Byzantine: optimizing model poisoning attacks
 * and defenses for federated learning", NDSS 2021 (AGR-agnostic min-max).
 */
import { messageAttack, type Attack, type AttackParams } from './attack.ts';
import { craftOptimized } from './optimized.ts';

export function createMinMax(params: AttackParams = {}): Attack {
  const perturbation = params.perturbation ?? 'std';
  return messageAttack('min-max', (input) => craftOptimized(input, perturbation, 'max'));
}
