/**
 * Sign flip: send −k·u, the honest message reversed and scaled (the classic Byzantine attack:
 * it pushes uphill with k times an honest norm).
 *
 * Guarantee: out = −k·honest; ⟨out, honest⟩ = −k‖honest‖² ≤ 0. Needs no peers.
 *
 * Parameters: strength k > 0 (default 4; the browser's fault mode uses 1).
 *
 * Paper: the baseline attack of Blanchard et al. 2017 (Krum) and of CGE's experiments,
 * ../shared/seeds/parle-and-byzantine-filters.md.
 */
import { messageAttack, param, type Attack, type AttackParams } from './attack.ts';

export const SIGN_FLIP_DEFAULT = 4;

export function createSignFlip(params: AttackParams = {}): Attack {
  const k = param('sign-flip', 'strength', params.strength, SIGN_FLIP_DEFAULT, (v) => v > 0);
  return messageAttack('sign-flip', ({ honest }) => honest.map((x) => -k * x));
}
