/**
 * Byzantine workers: what a misbehaving tab sends in place of its honest message. The first
 * five are the fault modes of `swarmgrad swarm` (packages/protocol faultModes); label-flip and
 * zero complete the set of seed 002's related work (SafeguardSGD, CGE, LICM-SGD experiments).
 *
 * - sign-flip:  −k·u (k = magnitude, default 4): pushes uphill, with a norm k times an honest one.
 * - scale:      k·u (default 100).
 * - nan:        a well-formed frame whose payload holds a NaN (the attacker bypasses its encoder,
 *               which refuses non-finite input); receivers must reject it at the door.
 * - random:     a Gaussian vector of norm k·‖u‖ (default 10), direction uniform.
 * - stale:      replays its own honest message from `lag` rounds earlier (default 20), i.e. an
 *               update computed on parameters that old.
 * - label-flip: an honest computation on poisoned data: every label y becomes 9 − y.
 * - zero:       sends zeros (a free-rider that dilutes the average).
 * An attacker otherwise follows the protocol: correct frame header, length and checksum.
 */
import { gaussian, l2Norm, type Rng } from '@swarmgrad/core';
import type { FaultMode } from '@swarmgrad/protocol';
import { FRAME_HEADER_BYTES, sealFrame } from '@swarmgrad/protocol';

export type AttackName = FaultMode | 'label-flip' | 'zero';

export const attackNames: readonly AttackName[] = [
  'sign-flip',
  'scale',
  'label-flip',
  'zero',
  'random',
  'nan',
  'stale',
  'proposal-scale',
  'proposal-flip',
  'proposal-race',
];

export const defaultMagnitude: Record<AttackName, number> = {
  'sign-flip': 4,
  scale: 100,
  nan: 1,
  random: 10,
  stale: 1,
  'label-flip': 1,
  zero: 0,
  // proposal attacks act on the cluster's proposal, not on registers (scenario.ts)
  'proposal-scale': 100,
  'proposal-flip': 4,
  'proposal-race': 1,
};

/** Per-attacker memory (the stale attack's history). */
export class AttackerState {
  private readonly history: Float32Array[] = [];
  constructor(readonly lag: number) {}

  /** Stores a copy of this round's honest message and returns the one `lag` rounds older (or the oldest). */
  replay(honest: Float32Array): Float32Array {
    this.history.push(Float32Array.from(honest));
    if (this.history.length > this.lag + 1) this.history.shift();
    return this.history[0]!;
  }
}

/**
 * Turns the honest message into the attacker's, in place (label-flip acts earlier, on the data,
 * and leaves the message alone here; nan is applied to the frame by `corruptFrame`).
 */
export function applyAttack(
  attack: AttackName,
  message: Float32Array,
  magnitude: number,
  state: AttackerState,
  rng: Rng,
): void {
  switch (attack) {
    case 'sign-flip':
      for (let i = 0; i < message.length; i++) message[i] = -magnitude * message[i]!;
      return;
    case 'scale':
      for (let i = 0; i < message.length; i++) message[i] = magnitude * message[i]!;
      return;
    case 'zero':
      message.fill(0);
      return;
    case 'random': {
      const norm = l2Norm(message);
      let sq = 0;
      for (let i = 0; i < message.length; i++) {
        const g = gaussian(rng);
        message[i] = g;
        sq += g * g;
      }
      const k = sq > 0 ? (magnitude * norm) / Math.sqrt(sq) : 0;
      for (let i = 0; i < message.length; i++) message[i] = message[i]! * k;
      return;
    }
    case 'stale':
      message.set(state.replay(message));
      return;
    case 'nan':
    case 'label-flip':
    case 'proposal-scale':
    case 'proposal-flip':
    case 'proposal-race':
      return;
  }
}

/**
 * The nan attack on a sealed frame: the first four payload bytes become a float32 NaN (the first
 * scale of a sign codec, the first value of fp32, a NaN half for fp16), then the frame is
 * resealed so its checksum is valid — only the content check at the door can catch it.
 */
export function corruptFrame(frame: Uint8Array): Uint8Array {
  const view = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  view.setUint32(FRAME_HEADER_BYTES, 0x7fc00000, true);
  return sealFrame(frame);
}
