/**
 * Test-only misbehaviour of a tab's own outgoing register (DESIGN.md "fault injection is a
 * first-class option"): a thin shell over core's attack library (packages/core/src/attacks, one
 * file per attack, the same code the simulator's Table 5 measures). Only used when the
 * coordinator allows fault injection: the tab announces its mode in hello and a coordinator that
 * refuses it answers 'fault-injection-disabled'.
 *
 * The attack is applied to the honest message u before it is coded. What the attacker sees is
 * what a tab holds: its peers' registers of the current iteration, or of the previous one when it
 * holds more of those (ClusterRound.peerRegisters); colluding modes (alie, ipm, min-max,
 * min-sum, mimic, sign-optimal, drift) compute their statistics over u and those registers. The
 * browser keeps its historical strengths: sign-flip −u, scale SCALE_FACTOR·u, random of u's norm,
 * stale STALE_LAG iterations; the others use core's defaults. 'nan' codes the honest update, then
 * overwrites the frame's first float with NaN and reseals it (peers must reject it as
 * 'non-finite'). The proposal this tab may send as its cluster's proposer is not altered.
 */
import {
  createAttack,
  createRng,
  type Attack,
  type AttackName,
  type AttackParams,
  type PeerRegister,
  type Rng,
} from '@swarmgrad/core';
import type { FaultMode } from '@swarmgrad/protocol';

export const SCALE_FACTOR = 100;
export const STALE_LAG = 5;

const browserParams: Partial<Record<FaultMode, AttackParams>> = {
  'sign-flip': { strength: 1 },
  scale: { strength: SCALE_FACTOR },
  random: { strength: 1 },
  stale: { lag: STALE_LAG },
};

export class FaultInjector {
  readonly mode: FaultMode;
  private readonly attack: Attack;
  private readonly rng: Rng;

  constructor(mode: FaultMode, seed = 1) {
    this.mode = mode;
    // every fault mode is an attack of core's library (a compile-time check)
    const name: AttackName = mode;
    this.attack = createAttack(name, browserParams[mode]);
    this.rng = createRng(seed);
  }

  /** The message to send instead of the honest `update` (a new array). */
  corruptUpdate(
    update: Float32Array,
    peers: readonly PeerRegister[] = [],
    iteration = 0,
  ): Float32Array {
    return this.attack.craft({ honest: update, peers, iteration, rng: this.rng });
  }

  /** Applied to the sealed frame: 'nan' poisons it (see the file comment); others pass. */
  corruptFrame(frame: Uint8Array): Uint8Array {
    return this.attack.corruptFrame(frame);
  }
}
