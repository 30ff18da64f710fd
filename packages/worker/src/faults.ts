/**
 * Test-only misbehaviour of a tab's own outgoing register (DESIGN.md "fault injection is a
 * first-class option"). Only used when the coordinator allows fault injection: the tab announces
 * its mode in hello and a coordinator that refuses it answers 'fault-injection-disabled'.
 *
 * Modes (applied to the honest message u before it is 1-bit coded):
 * - 'sign-flip': −u (the classic Byzantine sign attack).
 * - 'scale':     SCALE_FACTOR · u (a large-norm update; CGE drops it first).
 * - 'random':    Gaussian noise with the norm of u (seeded).
 * - 'stale':     the honest update of STALE_LAG iterations ago, stamped with the current
 *                iteration (a replayed, outdated update that passes the door).
 * - 'nan':       the honest update is coded, then the frame's first float (a block scale for the
 *                sign codecs, a coordinate for fp32/fp16) is overwritten with NaN and the frame
 *                resealed, so the checksum is right and peers must reject it as 'non-finite'.
 * - 'proposal-scale', 'proposal-flip': the register stays honest; the proposal this tab sends
 *   as its cluster's proposer is PROPOSAL_SCALE × and PROPOSAL_FLIP × the cluster update (a tab
 *   that rewrites its outgoing proposal frame). Its cluster's members recompute the update and
 *   contradict it (core swarm/proposal.ts).
 * - 'proposal-race': the register stays honest; the tab also proposes its own register as the
 *   cluster update for every iteration, as soon as it has computed it, proposer or not.
 * In the register modes the proposal this tab may send as its cluster's proposer is not altered.
 */
import { createRng, gaussian, l2Norm, type Rng } from '@swarmgrad/core';
import { FRAME_HEADER_BYTES, sealFrame, type FaultMode } from '@swarmgrad/protocol';

export const SCALE_FACTOR = 100;
export const STALE_LAG = 5;
export const PROPOSAL_SCALE = 100;
export const PROPOSAL_FLIP = -4;

export class FaultInjector {
  readonly mode: FaultMode;
  private readonly rng: Rng;
  private readonly history: Float32Array[] = [];

  constructor(mode: FaultMode, seed = 1) {
    this.mode = mode;
    this.rng = createRng(seed);
  }

  /** The message to send instead of the honest `update` (a new array, or `update` itself). */
  corruptUpdate(update: Float32Array): Float32Array {
    switch (this.mode) {
      case 'sign-flip':
        return update.map((v) => -v);
      case 'scale':
        return update.map((v) => SCALE_FACTOR * v);
      case 'random': {
        const norm = l2Norm(update) || 1e-3;
        const noise = new Float32Array(update.length);
        for (let i = 0; i < noise.length; i++) noise[i] = gaussian(this.rng);
        const scale = norm / (l2Norm(noise) || 1);
        for (let i = 0; i < noise.length; i++) noise[i]! *= scale;
        return noise;
      }
      case 'stale': {
        this.history.push(Float32Array.from(update));
        if (this.history.length > STALE_LAG + 1) this.history.shift();
        return this.history[0]!;
      }
      case 'nan':
      case 'proposal-scale':
      case 'proposal-flip':
      case 'proposal-race':
        return update;
    }
  }

  /** The cluster update this tab proposes instead of the honest one (proposal modes). */
  corruptProposal(update: Float32Array): Float32Array {
    switch (this.mode) {
      case 'proposal-scale':
        return update.map((v) => PROPOSAL_SCALE * v);
      case 'proposal-flip':
        return update.map((v) => PROPOSAL_FLIP * v);
      default:
        return update;
    }
  }

  /** Whether this tab proposes its own register for every iteration, proposer or not. */
  get races(): boolean {
    return this.mode === 'proposal-race';
  }

  /** Applied to the sealed frame: 'nan' poisons it (see the file comment); others pass. */
  corruptFrame(frame: Uint8Array): Uint8Array {
    if (this.mode !== 'nan' || frame.byteLength < FRAME_HEADER_BYTES + 4) return frame;
    const view = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
    view.setFloat32(FRAME_HEADER_BYTES, Number.NaN, true);
    return sealFrame(frame);
  }
}
