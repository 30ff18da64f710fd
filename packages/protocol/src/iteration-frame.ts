/**
 * Versioned binary iteration frame: what the coordinator sends every tab when an iteration
 * closes — the iteration's header and the agreed delta (an update frame, frame.ts) in one buffer.
 * The coordinator builds it once per iteration and writes the same bytes to every socket, one
 * WebSocket frame per tab (socket-parser.ts carries it past socket.io's JSON + attachment
 * encoding). With cluster dissemination (docs/architecture.md) the coordinator sends it to one
 * relay tab per cluster, which forwards the same bytes to its peers over the data channels: the
 * frame is therefore signed by the coordinator (Ed25519, its public key in the welcome), so a
 * relay can withhold a frame but not forge or alter one. A fixed 24-byte little-endian header,
 * the delta, then the signature:
 *
 *   off size field
 *     0    4 magic        'SGIT' (0x54494753 read little-endian)
 *     4    1 version      ITERATION_FRAME_VERSION (3)
 *     5    1 phase        index in `phases` (events.ts)
 *     6    1 flags        bit 0 FORWARD: the recipient relays it to its cluster; others 0
 *     7    1 staleness    the coordinator's staleness threshold S when it closed the
 *                         iteration (0–254; 255 = not stated): proposals whose inputs are older
 *                         are refused, so a pipelined tab drops a register older than that
 *                         before sending it (with `staleness: "auto"`, S moves at run time)
 *     8    4 iteration    u32, the iteration the delta moves the agreed base to
 *    12    4 deltaBytes   u32, 0 = no delta (the tab fetches the parameters instead)
 *    16    8 learningRate f64
 *    24      delta        an update frame; 8-byte aligned when the frame buffer is
 *   24+n  64 signature    Ed25519 over bytes [0, 24+n) (iteration-signature.ts); zero until
 *                         the coordinator signs
 *
 * The decoded header is checked against iterationHeaderSchema (zod). Parsing never throws: it
 * returns a typed Result with a frame error code ('truncated', 'oversized', 'bad-magic',
 * 'unsupported-version', 'bad-header', 'non-finite'). The delta is returned as a view and
 * checked by whoever decodes it (parseFrame / decodeFrameInto: checksum, job, dimension); the
 * signature is checked by whoever did not get the frame from the coordinator itself.
 */
import { z } from 'zod';
import { fail, ok, type Result } from './errors.ts';
import { phases, type IterationStart } from './events.ts';
import { MAX_FRAME_BYTES } from './frame.ts';

export const ITERATION_FRAME_MAGIC = 0x54494753;
export const ITERATION_FRAME_VERSION = 3;
export const ITERATION_HEADER_BYTES = 24;
export const ITERATION_SIGNATURE_BYTES = 64;
/** Flag: the recipient forwards the frame to the peers of its cluster (it is their relay). */
export const ITERATION_FLAG_FORWARD = 1;
/** The header's staleness byte when the frame states no threshold. */
const STALENESS_UNSTATED = 0xff;
/** The largest staleness threshold a frame can state. */
export const MAX_STATED_STALENESS = STALENESS_UNSTATED - 1;

/** A parsed iteration frame: the tab's view, whether to forward it, and what was signed. */
export interface ParsedIterationFrame extends IterationStart {
  forward: boolean;
  /** The bytes the signature covers (a view). */
  signed: Uint8Array;
  /** The coordinator's Ed25519 signature (a view). */
  signature: Uint8Array;
}

/** The header fields as validated; learning rates obey the job's bounds (job.ts). */
export const iterationHeaderSchema = z
  .object({
    iteration: z.number().int().min(0).max(0xffffffff),
    learningRate: z.number().finite().positive().max(10),
    phase: z.enum(phases),
    staleness: z.number().int().min(0).max(MAX_STATED_STALENESS).optional(),
  })
  .strict();
export type IterationHeader = z.infer<typeof iterationHeaderSchema>;

export interface IterationFrameLimits {
  /** Largest delta accepted (bytes, update frame header included). Default MAX_FRAME_BYTES. */
  maxDeltaBytes?: number;
}

/** Whether `bytes` starts like an iteration frame (magic only: parseIterationFrame checks it). */
export function hasIterationMagic(bytes: Uint8Array): boolean {
  return (
    bytes.byteLength >= 4 &&
    new DataView(bytes.buffer, bytes.byteOffset, 4).getUint32(0, true) === ITERATION_FRAME_MAGIC
  );
}

/**
 * Builds the frame of one iteration, its signature zero (the coordinator signs `signedBytes`
 * and writes the signature with `setIterationSignature`). Throws on a header outside
 * iterationHeaderSchema (the coordinator's own values: a bug, not input) or a delta larger than
 * the frame format allows.
 */
export function encodeIterationFrame(
  header: IterationHeader,
  delta: Uint8Array | undefined,
  options: { forward?: boolean } = {},
): Uint8Array {
  const checked = iterationHeaderSchema.safeParse(header);
  if (!checked.success) {
    throw new RangeError(`iteration header: ${checked.error.issues[0]?.message ?? 'invalid'}`);
  }
  const deltaBytes = delta?.byteLength ?? 0;
  if (deltaBytes > MAX_FRAME_BYTES) throw new RangeError(`delta of ${deltaBytes} bytes`);
  const bytes = new Uint8Array(ITERATION_HEADER_BYTES + deltaBytes + ITERATION_SIGNATURE_BYTES);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, ITERATION_FRAME_MAGIC, true);
  view.setUint8(4, ITERATION_FRAME_VERSION);
  view.setUint8(5, phases.indexOf(checked.data.phase));
  view.setUint8(6, options.forward === true ? ITERATION_FLAG_FORWARD : 0);
  view.setUint8(7, checked.data.staleness ?? STALENESS_UNSTATED);
  view.setUint32(8, checked.data.iteration, true);
  view.setUint32(12, deltaBytes, true);
  view.setFloat64(16, checked.data.learningRate, true);
  if (delta !== undefined) bytes.set(delta, ITERATION_HEADER_BYTES);
  return bytes;
}

/** The part of an encoded iteration frame its signature covers (a view). */
export function signedBytes(frame: Uint8Array): Uint8Array {
  return frame.subarray(0, frame.byteLength - ITERATION_SIGNATURE_BYTES);
}

/** Writes the signature into an encoded iteration frame. */
export function setIterationSignature(frame: Uint8Array, signature: Uint8Array): void {
  if (signature.byteLength !== ITERATION_SIGNATURE_BYTES)
    throw new RangeError(`signature of ${signature.byteLength} bytes`);
  frame.set(signature, frame.byteLength - ITERATION_SIGNATURE_BYTES);
}

/** The largest iteration frame whose delta is at most `maxDeltaBytes`. */
export function maxIterationFrameBytes(maxDeltaBytes: number): number {
  return ITERATION_HEADER_BYTES + maxDeltaBytes + ITERATION_SIGNATURE_BYTES;
}

/** Parses an iteration frame; the delta is a view into `bytes` (no copy). */
export function parseIterationFrame(
  bytes: Uint8Array,
  limits: IterationFrameLimits = {},
): Result<ParsedIterationFrame> {
  const maxDelta = Math.min(limits.maxDeltaBytes ?? MAX_FRAME_BYTES, MAX_FRAME_BYTES);
  const maxBytes = maxIterationFrameBytes(maxDelta);
  if (bytes.byteLength > maxBytes) {
    return fail('oversized', `iteration frame of ${bytes.byteLength} bytes exceeds ${maxBytes}`);
  }
  if (bytes.byteLength < ITERATION_HEADER_BYTES + ITERATION_SIGNATURE_BYTES) {
    return fail('truncated', `iteration frame of ${bytes.byteLength} bytes: header incomplete`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint32(0, true) !== ITERATION_FRAME_MAGIC) {
    return fail('bad-magic', 'not an iteration frame');
  }
  const version = view.getUint8(4);
  if (version !== ITERATION_FRAME_VERSION) {
    return fail(
      'unsupported-version',
      `iteration frame version ${version}, expected ${ITERATION_FRAME_VERSION}`,
    );
  }
  const flags = view.getUint8(6);
  if ((flags & ~ITERATION_FLAG_FORWARD) !== 0)
    return fail('bad-header', 'reserved flags must be zero');
  const learningRate = view.getFloat64(16, true);
  if (!Number.isFinite(learningRate)) {
    return fail('non-finite', `learning rate ${learningRate}`);
  }
  const staleness = view.getUint8(7);
  const header = iterationHeaderSchema.safeParse({
    iteration: view.getUint32(8, true),
    learningRate,
    phase: phases[view.getUint8(5)],
    ...(staleness === STALENESS_UNSTATED ? {} : { staleness }),
  });
  if (!header.success) {
    const issue = header.error.issues[0];
    return fail('bad-header', `${issue?.path.join('.') ?? 'header'}: ${issue?.message ?? ''}`);
  }
  const deltaBytes = view.getUint32(12, true);
  const available = bytes.byteLength - ITERATION_HEADER_BYTES - ITERATION_SIGNATURE_BYTES;
  if (deltaBytes > available) {
    return fail('truncated', `delta declares ${deltaBytes} bytes, ${available} present`);
  }
  if (deltaBytes < available) {
    return fail('oversized', `${available - deltaBytes} bytes after the declared delta`);
  }
  const signatureAt = ITERATION_HEADER_BYTES + deltaBytes;
  return ok({
    ...header.data,
    delta: deltaBytes === 0 ? undefined : bytes.subarray(ITERATION_HEADER_BYTES, signatureAt),
    forward: (flags & ITERATION_FLAG_FORWARD) !== 0,
    signed: bytes.subarray(0, signatureAt),
    signature: bytes.subarray(signatureAt),
  });
}
