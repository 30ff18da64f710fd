/**
 * NaN: a well-formed frame whose payload carries a NaN. The attacker codes its honest message,
 * then overwrites the first four payload bytes with a float32 NaN (the first block scale of a sign
 * codec, the first value of fp32, a NaN pair of halves for fp16) and reseals the frame, so header,
 * length and checksum are right and only the content check at the door can catch it.
 *
 * Guarantee: `craft` returns the honest message (the encoder refuses non-finite input);
 * `corruptFrame` returns a frame that `parseFrame` accepts and `decodeFrameInto` rejects as
 * 'non-finite'. A frame too short to carry a payload word is returned unchanged.
 *
 * Parameters: none.
 *
 * Paper: the door of DESIGN.md step 4 ("NaN, wrong length, wrong version: rejected at the door").
 */
import { FRAME_HEADER_BYTES, sealFrame } from '@swarmgrad/protocol';
import type { Attack } from './attack.ts';

export function corruptFrameWithNaN(frame: Uint8Array): Uint8Array {
  if (frame.byteLength < FRAME_HEADER_BYTES + 4) return frame;
  const view = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  view.setUint32(FRAME_HEADER_BYTES, 0x7fc00000, true);
  return sealFrame(frame);
}

export function createNaN(): Attack {
  return {
    name: 'nan',
    acts: 'frame',
    craft: ({ honest }) => Float32Array.from(honest),
    corruptFrame: corruptFrameWithNaN,
  };
}
