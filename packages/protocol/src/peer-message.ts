/**
 * Versioned binary frame for the small control messages tabs of one cluster send each other
 * over their data channels, beside registers (frame.ts) and forwarded iteration frames
 * (iteration-frame.ts): the proposer's confirm requests and the members' vouchers
 * (docs/architecture.md, _Confirmations bundled by the proposer_). An 8-byte little-endian
 * header, then the message as UTF-8 JSON, validated with `peerMessageSchema`:
 *
 *   off size field
 *     0    4 magic    'SGPM' (0x4d504753 read little-endian)
 *     4    1 version  PEER_MESSAGE_VERSION (1)
 *     5    3 zero
 *     8      JSON     at most MAX_PEER_MESSAGE_BYTES − 8 bytes
 *
 * Parsing never throws: a typed Result with 'truncated', 'oversized', 'bad-magic',
 * 'unsupported-version' or 'invalid-message'.
 */
import { z } from 'zod';
import { fail, ok, type Result } from './errors.ts';
import { abstainReasons, confirmRequestSchema, digestSchema, macSchema } from './events.ts';

export const PEER_MESSAGE_MAGIC = 0x4d504753;
export const PEER_MESSAGE_VERSION = 1;
export const PEER_MESSAGE_HEADER_BYTES = 8;
export const MAX_PEER_MESSAGE_BYTES = 16 * 1024;

const about = {
  clusterId: z.number().int().nonnegative(),
  iteration: z.number().int().nonnegative(),
  proposer: z.string().min(1).max(64),
};

export const peerMessageSchema = z.discriminatedUnion('type', [
  /** Proposer → members: recompute my proposal (as the coordinator's ConfirmRequest). */
  z.object({ type: z.literal('confirm'), request: confirmRequestSchema }).strict(),
  /** Member → proposer: the digest it computed, signed with its voucher key. */
  z
    .object({
      type: z.literal('vouch'),
      ...about,
      digest: digestSchema,
      mac: macSchema,
    })
    .strict(),
  /** Member → proposer: it cannot judge (the proposer need not wait for it). */
  z
    .object({
      type: z.literal('abstain'),
      ...about,
      reason: z.enum(abstainReasons),
    })
    .strict(),
]);
export type PeerMessage = z.infer<typeof peerMessageSchema>;

/** Whether `bytes` starts like a peer message (magic only: decodePeerMessage checks it). */
export function hasPeerMessageMagic(bytes: Uint8Array): boolean {
  return (
    bytes.byteLength >= 4 &&
    new DataView(bytes.buffer, bytes.byteOffset, 4).getUint32(0, true) === PEER_MESSAGE_MAGIC
  );
}

/** Encodes a message; throws on one outside the schema or the size bound (a bug, not input). */
export function encodePeerMessage(message: PeerMessage): Uint8Array {
  const checked = peerMessageSchema.safeParse(message);
  if (!checked.success) {
    throw new RangeError(`peer message: ${checked.error.issues[0]?.message ?? 'invalid'}`);
  }
  const json = new TextEncoder().encode(JSON.stringify(checked.data));
  const bytes = new Uint8Array(PEER_MESSAGE_HEADER_BYTES + json.byteLength);
  if (bytes.byteLength > MAX_PEER_MESSAGE_BYTES) {
    throw new RangeError(`peer message of ${bytes.byteLength} bytes`);
  }
  const view = new DataView(bytes.buffer);
  view.setUint32(0, PEER_MESSAGE_MAGIC, true);
  view.setUint8(4, PEER_MESSAGE_VERSION);
  bytes.set(json, PEER_MESSAGE_HEADER_BYTES);
  return bytes;
}

export function decodePeerMessage(bytes: Uint8Array): Result<PeerMessage> {
  if (bytes.byteLength < PEER_MESSAGE_HEADER_BYTES) {
    return fail('truncated', `peer message of ${bytes.byteLength} bytes`);
  }
  if (bytes.byteLength > MAX_PEER_MESSAGE_BYTES) {
    return fail('oversized', `peer message of ${bytes.byteLength} bytes`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, PEER_MESSAGE_HEADER_BYTES);
  if (view.getUint32(0, true) !== PEER_MESSAGE_MAGIC)
    return fail('bad-magic', 'not a peer message');
  const version = view.getUint8(4);
  if (version !== PEER_MESSAGE_VERSION) {
    return fail('unsupported-version', `peer message version ${version}`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(
      new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(PEER_MESSAGE_HEADER_BYTES)),
    );
  } catch {
    return fail('invalid-message', 'peer message is not UTF-8 JSON');
  }
  const parsed = peerMessageSchema.safeParse(raw);
  if (!parsed.success) {
    return fail('invalid-message', parsed.error.issues[0]?.message ?? 'bad peer message');
  }
  return ok(parsed.data);
}
