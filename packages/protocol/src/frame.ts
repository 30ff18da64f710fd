/**
 * Versioned binary update frame: the only thing tabs send each other (and the coordinator)
 * to carry a model update. A fixed 40-byte little-endian header, then the codec's payload:
 *
 *   off size field
 *     0    4 magic        'SGUF' (0x46554753 read little-endian)
 *     4    1 version      FRAME_VERSION
 *     5    1 codecId      see codecIds
 *     6    2 flags        reserved, must be 0
 *     8    4 jobId        u32 job identifier (hash of the job name, see jobIdOf)
 *    12    4 iteration    u32
 *    16    2 round        u16 agreement round (0 = a tab's update inside its cluster)
 *    18    2 senderSlot   u16 slot of the sender in its cluster (0xffff = a cluster proposal)
 *    20    4 dimension    u32 number of model parameters
 *    24    4 blockSize    u32 coordinates per scale block (codec-specific, 0 when unused)
 *    28    4 payloadBytes u32
 *    32    4 checksum     checksum32(payload)
 *    36    2 staleness    u16 iterations between the base the sender's local steps began on and
 *                         `iteration` (0 in lock-step; ≥ 1 for a pipelined tab, issue 16)
 *    38    2 stepDelay    u16 in 1/256 iteration: the mean over the update's local steps of the
 *                         iterations between the base each step was taken on and `iteration`
 *                         (≤ staleness; what seed 001's step scale reads, the drop rule reads
 *                         staleness). Keeps the payload 8-byte aligned for typed views.
 *
 * Version 2 frames (bytes 38–39 reserved, zero) still parse, with stepDelay = staleness (every
 * step counted as behind as the first); version 1 frames (bytes 36–39 reserved, zero) with
 * staleness and stepDelay 0.
 *
 * Parsing never throws: it returns a typed Result with one of the frame error codes.
 */
import { checksum32 } from './checksum.ts';
import { fail, ok, type Result } from './errors.ts';

export const FRAME_MAGIC = 0x46554753;
export const FRAME_VERSION = 3;
/** The oldest frame version still read (version 1: no staleness field, 2: no stepDelay). */
export const OLDEST_FRAME_VERSION = 1;
export const FRAME_HEADER_BYTES = 40;
/** Largest frame accepted: 64M parameters of fp32 plus header. Callers pass tighter limits. */
export const MAX_FRAME_BYTES = 256 * 1024 * 1024 + FRAME_HEADER_BYTES;

/**
 * The largest update frame of `dimension` parameters any codec writes: the header, 4 bytes a
 * parameter (fp32; also one-bit's scales at block size 1) and one-bit's sign words (4 bytes per
 * 32 parameters). Every door for update frames (peer registers, relayed frames, proposals,
 * iteration deltas) refuses larger ones with this one bound; core's codec contract test checks
 * that no codec exceeds it.
 */
export function maxUpdateFrameBytes(dimension: number): number {
  return FRAME_HEADER_BYTES + 4 * dimension + 4 * Math.ceil(dimension / 32);
}

export const codecIds = {
  fp32: 1,
  fp16: 2,
  'one-bit': 3,
  'stochastic-one-bit': 4,
} as const;
export type CodecName = keyof typeof codecIds;
export const codecNames = Object.keys(codecIds) as CodecName[];

export function codecNameOf(id: number): CodecName | undefined {
  return codecNames.find((name) => codecIds[name] === id);
}

export interface FrameHeader {
  codec: CodecName;
  jobId: number;
  iteration: number;
  round: number;
  senderSlot: number;
  dimension: number;
  blockSize: number;
  /** Iterations the sender's base was behind `iteration` when its local steps began (0: none). */
  staleness?: number;
  /**
   * Mean over the update's local steps of the iterations each step's base was behind
   * `iteration` (in steps of 1/256; absent when written: taken as `staleness`).
   */
  stepDelay?: number;
}

/** The stepDelay field's unit: 1/256 of an iteration. */
const STEP_DELAY_UNITS = 256;

function u16(value: number): number {
  return Math.min(0xffff, Math.max(0, value));
}

/**
 * The step delay a frame of this staleness carries for `stepDelay`: rounded to 1/256, at most
 * the staleness (none stated, or NaN: the staleness). Whoever keeps a register's age beside the
 * frame keeps this value, so every member of a cluster computes a proposal's age alike.
 */
export function frameStepDelay(stepDelay: number | undefined, staleness: number): number {
  const oldest = u16(Math.floor(staleness));
  const stated = stepDelay === undefined || Number.isNaN(stepDelay) ? oldest : stepDelay;
  return u16(Math.round(Math.min(oldest, stated) * STEP_DELAY_UNITS)) / STEP_DELAY_UNITS;
}

export interface Frame {
  header: FrameHeader & { payloadBytes: number; checksum: number };
  /** A view into the frame's bytes (no copy), 8-byte aligned when the frame buffer is. */
  payload: Uint8Array;
}

export const PROPOSAL_SLOT = 0xffff;

/** Stable u32 id of a job name (FNV-1a over UTF-16 code units). */
export function jobIdOf(name: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) hash = Math.imul(hash ^ name.charCodeAt(i), 0x01000193);
  return hash >>> 0;
}

/**
 * Allocates a frame with room for `payloadBytes` and writes the header except the checksum.
 * The caller (a codec) writes the payload straight into `payload`, then calls sealFrame.
 */
export function allocateFrame(
  header: FrameHeader,
  payloadBytes: number,
): { bytes: Uint8Array; payload: Uint8Array } {
  const bytes = new Uint8Array(FRAME_HEADER_BYTES + payloadBytes);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, FRAME_MAGIC, true);
  view.setUint8(4, FRAME_VERSION);
  view.setUint8(5, codecIds[header.codec]);
  view.setUint16(6, 0, true);
  view.setUint32(8, header.jobId >>> 0, true);
  view.setUint32(12, header.iteration >>> 0, true);
  view.setUint16(16, header.round, true);
  view.setUint16(18, header.senderSlot, true);
  view.setUint32(20, header.dimension >>> 0, true);
  view.setUint32(24, header.blockSize >>> 0, true);
  view.setUint32(28, payloadBytes, true);
  const staleness = u16(Math.floor(header.staleness ?? 0));
  view.setUint16(36, staleness, true);
  view.setUint16(38, frameStepDelay(header.stepDelay, staleness) * STEP_DELAY_UNITS, true);
  return { bytes, payload: bytes.subarray(FRAME_HEADER_BYTES) };
}

/** Computes and stores the payload checksum. Returns the same bytes for chaining. */
export function sealFrame(bytes: Uint8Array): Uint8Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  view.setUint32(32, checksum32(bytes.subarray(FRAME_HEADER_BYTES)), true);
  return bytes;
}

export interface ParseLimits {
  maxFrameBytes?: number;
}

export function parseFrame(bytes: Uint8Array, limits: ParseLimits = {}): Result<Frame> {
  const maxBytes = limits.maxFrameBytes ?? MAX_FRAME_BYTES;
  if (bytes.byteLength > maxBytes) {
    return fail('oversized', `frame of ${bytes.byteLength} bytes exceeds the limit of ${maxBytes}`);
  }
  if (bytes.byteLength < FRAME_HEADER_BYTES) {
    return fail('truncated', `frame of ${bytes.byteLength} bytes is shorter than its header`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint32(0, true) !== FRAME_MAGIC) return fail('bad-magic', 'not an update frame');
  const version = view.getUint8(4);
  if (version < OLDEST_FRAME_VERSION || version > FRAME_VERSION) {
    return fail(
      'unsupported-version',
      `frame version ${version}, expected ${OLDEST_FRAME_VERSION}–${FRAME_VERSION}`,
    );
  }
  const codec = codecNameOf(view.getUint8(5));
  if (codec === undefined) return fail('unknown-codec', `codec id ${view.getUint8(5)}`);
  const reservedTail =
    version === 1 ? view.getUint32(36, true) : version === 2 ? view.getUint16(38, true) : 0;
  if (view.getUint16(6, true) !== 0 || reservedTail !== 0) {
    return fail('bad-header', 'reserved header fields must be zero');
  }
  const payloadBytes = view.getUint32(28, true);
  const available = bytes.byteLength - FRAME_HEADER_BYTES;
  if (payloadBytes > available) {
    return fail('truncated', `payload declares ${payloadBytes} bytes, ${available} present`);
  }
  if (payloadBytes < available) {
    return fail('oversized', `${available - payloadBytes} bytes after the declared payload`);
  }
  const payload = bytes.subarray(FRAME_HEADER_BYTES);
  const checksum = view.getUint32(32, true);
  const staleness = version === 1 ? 0 : view.getUint16(36, true);
  const stepDelay =
    version === 1 ? 0 : version === 2 ? staleness : view.getUint16(38, true) / STEP_DELAY_UNITS;
  if (stepDelay > staleness) {
    return fail('bad-header', `step delay ${stepDelay} above the staleness ${staleness}`);
  }
  if (checksum32(payload) !== checksum) {
    return fail('checksum-mismatch', 'payload checksum does not match the header');
  }
  return ok({
    header: {
      codec,
      jobId: view.getUint32(8, true),
      iteration: view.getUint32(12, true),
      round: view.getUint16(16, true),
      senderSlot: view.getUint16(18, true),
      dimension: view.getUint32(20, true),
      blockSize: view.getUint32(24, true),
      staleness,
      stepDelay,
      payloadBytes,
      checksum,
    },
    payload,
  });
}
