/**
 * Mimic: every colluder sends a copy of one honest peer's register, always the same peer. Each
 * message is a genuine honest update, so no filter can tell it apart; the damage is
 * over-representing that one worker's data (with non-i.i.d. partitions the aggregate drifts to its
 * optimum) and shrinking the honest diversity the filters and the quarantine measure.
 *
 * Guarantee: out is a copy of the register of the target peer: the peer with the smallest id among
 * those visible when the attacker first sees any, kept while it stays visible (the next smallest
 * otherwise). Colluders that see the same peers pick the same target. Without peers it sends its
 * own honest message.
 *
 * Parameters: none.
 *
 * Paper: Karimireddy, He, Jaggi, "Byzantine-robust learning on heterogeneous datasets via
 * bucketing", ICLR 2022 (the mimic attack; there the target is chosen by a warm-up phase, here it
 * is the first visible peer by id).
 */
import { allFinite } from '../vector.ts';
import { messageAttack, type Attack } from './attack.ts';

export function createMimic(): Attack {
  let target: string | undefined;
  return messageAttack('mimic', ({ honest, peers }) => {
    const usable = peers.filter((p) => p.update.length === honest.length && allFinite(p.update));
    let chosen = usable.find((p) => p.id === target);
    if (chosen === undefined) {
      for (const p of usable) if (chosen === undefined || p.id < chosen.id) chosen = p;
      target = chosen?.id;
    }
    return Float32Array.from(chosen?.update ?? honest);
  });
}
