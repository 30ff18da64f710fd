/**
 * Test-only misbehaviour of a tab's own outgoing register (DESIGN.md "fault injection is a
 * first-class option"): a thin shell over core's attack library (packages/core/src/attacks, one
 * file per attack, the same code the simulator's Table 5 measures). Only used when the
 * coordinator allows fault injection: the tab announces its mode in hello and a coordinator that
 * refuses it answers 'fault-injection-disabled'.
 *
 * Register modes: the attack is applied to the honest message u before it is coded. What the
 * attacker sees is what a tab holds: its peers' registers of the current iteration, or of the
 * previous one when it holds more of those (ClusterRound.peerRegisters); colluding modes (alie,
 * ipm, min-max, min-sum, mimic, sign-optimal, drift) compute their statistics over u and those
 * registers. The browser keeps its historical strengths: sign-flip −u, scale SCALE_FACTOR·u,
 * random of u's norm, stale STALE_LAG iterations; the others use core's defaults. 'nan' codes the
 * honest update, then overwrites the frame's first float with NaN and reseals it (peers must
 * reject it as 'non-finite'). In the register modes the proposal this tab may send as its
 * cluster's proposer is not altered.
 *
 * Proposal modes (core attacks/proposal.ts): the register stays honest; 'proposal-scale' and
 * 'proposal-flip' rewrite the proposal this tab sends as its cluster's proposer (its members
 * recompute the update and contradict it), 'proposal-race' also proposes its own register as
 * the cluster update for every iteration, as soon as it has computed it, proposer or not;
 * 'proposal-silent' never proposes.
 */
import {
  createAttack,
  createRng,
  forgeProposal,
  isProposalAttackName,
  type Attack,
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

/** The modes that attack cluster dissemination (see protocol's faultModes). */
export function isRelayAttack(mode: FaultMode): mode is 'relay-withhold' | 'relay-forge' {
  return mode === 'relay-withhold' || mode === 'relay-forge';
}

export class FaultInjector {
  readonly mode: FaultMode;
  /** The register attack (undefined in the proposal modes, whose registers stay honest). */
  private readonly attack: Attack | undefined;
  private readonly rng: Rng;

  constructor(mode: FaultMode, seed = 1) {
    this.mode = mode;
    // every fault mode is a register attack of core's library or a proposal attack
    this.attack =
      isProposalAttackName(mode) || isRelayAttack(mode)
        ? undefined
        : createAttack(mode, browserParams[mode]);
    this.rng = createRng(seed);
  }

  /** The message to send instead of the honest `update` (a new array, or `update` itself). */
  corruptUpdate(
    update: Float32Array,
    peers: readonly PeerRegister[] = [],
    iteration = 0,
  ): Float32Array {
    if (this.attack === undefined) return update;
    return this.attack.craft({ honest: update, peers, iteration, rng: this.rng });
  }

  /** The cluster update this tab proposes instead of the honest one (proposal modes). */
  corruptProposal(update: Float32Array): Float32Array {
    if (this.mode === 'proposal-scale' || this.mode === 'proposal-flip') {
      return forgeProposal(this.mode, update);
    }
    return update;
  }

  /** Whether this tab never proposes, even as its cluster's proposer. */
  get silent(): boolean {
    return this.mode === 'proposal-silent';
  }

  /** Whether this tab proposes its own register for every iteration, proposer or not. */
  get races(): boolean {
    return this.mode === 'proposal-race';
  }

  /** Whether this tab, as its cluster's relay, drops the iteration frames it should forward. */
  get withholdsIterations(): boolean {
    return this.mode === 'relay-withhold';
  }

  /**
   * The iteration frame this tab forwards as its cluster's relay: 'relay-forge' doubles the
   * learning rate in its header (a copy) — a well-formed frame whose delta still decodes, so only
   * the coordinator's signature can tell it from the real one.
   */
  forwardedIteration(frame: Uint8Array): Uint8Array {
    if (this.mode !== 'relay-forge') return frame;
    const forged = frame.slice();
    const header = new DataView(forged.buffer, forged.byteOffset, 24);
    header.setFloat64(16, Math.min(10, 2 * header.getFloat64(16, true)), true);
    return forged;
  }

  /** Applied to the sealed frame: 'nan' poisons it (see the file comment); others pass. */
  corruptFrame(frame: Uint8Array): Uint8Array {
    return this.attack === undefined ? frame : this.attack.corruptFrame(frame);
  }
}
