/**
 * Zero: send zeros (a free rider that dilutes the average and, under Krum, can be the most
 * central input when gradient noise exceeds the signal).
 *
 * Guarantee: out = 0. Needs no peers.
 *
 * Parameters: none.
 *
 * Paper: the free-rider of the gradient-filter experiments, ../shared/seeds/parle-and-byzantine-filters.md.
 */
import { messageAttack, type Attack } from './attack.ts';

export function createZero(): Attack {
  return messageAttack('zero', ({ honest }) => new Float32Array(honest.length));
}
