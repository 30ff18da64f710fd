/**
 * Label flip: an honest computation on poisoned data, every label y becoming C − 1 − y (9 − y on
 * MNIST). It acts on the data ('data'): the caller trains on flipped labels and sends the result;
 * `craft` returns that message unchanged.
 *
 * Guarantee: out = honest (as computed on the flipped labels). Needs no peers.
 *
 * Parameters: none.
 *
 * Paper: the data-poisoning attack of SafeguardSGD's and CGE's experiments,
 * ../shared/seeds/parle-and-byzantine-filters.md.
 */
import { messageAttack, type Attack } from './attack.ts';

export function createLabelFlip(): Attack {
  return messageAttack('label-flip', ({ honest }) => Float32Array.from(honest), 'data');
}
