/**
 * Splitting frames into data-channel messages and putting them back together.
 *
 * Chrome refuses data-channel messages over 256 KiB, so every frame travels as chunks of at
 * most MAX_CHUNK_BYTES (64 KiB, header included). Each chunk carries a 16-byte header:
 *
 *   off size field
 *     0    2 magic      0x4353 ('SC')
 *     2    1 version    CHUNK_VERSION
 *     3    1 reserved   0
 *     4    4 frameId    u32, increasing per sender link
 *     8    2 index      u16, 0-based
 *    10    2 count      u16, chunks in this frame
 *    12    4 totalBytes u32, the frame's length
 *
 * A link (one WebRTC data channel) is ordered and reliable, so the reassembler expects the
 * chunks of one frame in order and reports, with typed codes, a duplicated chunk, a missing
 * chunk (a gap, or a new frame starting before the previous one completed) and inconsistent
 * headers. A bad chunk never corrupts a later frame: the partial frame is dropped.
 */
import { fail, type ProtocolError, type Result, ok } from './errors.ts';
import { MAX_FRAME_BYTES } from './frame.ts';

export const CHUNK_MAGIC = 0x4353;
export const CHUNK_VERSION = 1;
export const CHUNK_HEADER_BYTES = 16;
export const MAX_CHUNK_BYTES = 64 * 1024;

export interface ChunkHeader {
  frameId: number;
  index: number;
  count: number;
  totalBytes: number;
}

export function chunkFrame(
  frame: Uint8Array,
  frameId: number,
  maxChunkBytes = MAX_CHUNK_BYTES,
): Uint8Array[] {
  if (maxChunkBytes <= CHUNK_HEADER_BYTES || maxChunkBytes > MAX_CHUNK_BYTES) {
    throw new RangeError(`chunk size must be in (${CHUNK_HEADER_BYTES}, ${MAX_CHUNK_BYTES}]`);
  }
  const body = maxChunkBytes - CHUNK_HEADER_BYTES;
  const count = Math.max(1, Math.ceil(frame.byteLength / body));
  if (count > 0xffff)
    throw new RangeError(`frame of ${frame.byteLength} bytes needs too many chunks`);
  const chunks: Uint8Array[] = [];
  for (let index = 0; index < count; index++) {
    const start = index * body;
    const slice = frame.subarray(start, Math.min(frame.byteLength, start + body));
    const chunk = new Uint8Array(CHUNK_HEADER_BYTES + slice.byteLength);
    const view = new DataView(chunk.buffer);
    view.setUint16(0, CHUNK_MAGIC, true);
    view.setUint8(2, CHUNK_VERSION);
    view.setUint32(4, frameId >>> 0, true);
    view.setUint16(8, index, true);
    view.setUint16(10, count, true);
    view.setUint32(12, frame.byteLength, true);
    chunk.set(slice, CHUNK_HEADER_BYTES);
    chunks.push(chunk);
  }
  return chunks;
}

export function parseChunkHeader(chunk: Uint8Array): Result<ChunkHeader> {
  if (chunk.byteLength < CHUNK_HEADER_BYTES) return fail('truncated', 'chunk shorter than header');
  if (chunk.byteLength > MAX_CHUNK_BYTES) return fail('oversized', 'chunk larger than 64 KiB');
  const view = new DataView(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  if (view.getUint16(0, true) !== CHUNK_MAGIC) return fail('bad-magic', 'not a frame chunk');
  if (view.getUint8(2) !== CHUNK_VERSION) {
    return fail('unsupported-version', `chunk version ${view.getUint8(2)}`);
  }
  const header = {
    frameId: view.getUint32(4, true),
    index: view.getUint16(8, true),
    count: view.getUint16(10, true),
    totalBytes: view.getUint32(12, true),
  };
  if (header.count === 0 || header.index >= header.count) {
    return fail('bad-chunk', `chunk ${header.index} of ${header.count}`);
  }
  return ok(header);
}

export interface ReassemblyResult {
  /** The complete frame, when this chunk finished one. */
  frame: Uint8Array | undefined;
  /** Problems found while taking this chunk (the chunk or an earlier partial frame dropped). */
  errors: ProtocolError[];
}

interface PartialFrame {
  frameId: number;
  count: number;
  nextIndex: number;
  bytes: Uint8Array;
  filled: number;
}

export class FrameReassembler {
  private partial: PartialFrame | undefined;
  private lastCompleted: number | undefined;
  private readonly maxFrameBytes: number;

  constructor(options: { maxFrameBytes?: number } = {}) {
    this.maxFrameBytes = options.maxFrameBytes ?? MAX_FRAME_BYTES;
  }

  push(chunk: Uint8Array): ReassemblyResult {
    const errors: ProtocolError[] = [];
    const parsed = parseChunkHeader(chunk);
    if (!parsed.ok) return { frame: undefined, errors: [parsed.error] };
    const header = parsed.value;
    const body = chunk.subarray(CHUNK_HEADER_BYTES);

    let partial = this.partial;
    if (partial !== undefined && partial.frameId !== header.frameId) {
      errors.push({
        code: 'missing-chunk',
        message: `frame ${partial.frameId} dropped: chunks ${partial.nextIndex}..${partial.count - 1} never arrived`,
      });
      partial = this.partial = undefined;
    }
    if (partial === undefined) {
      if (header.frameId === this.lastCompleted) {
        errors.push({
          code: 'duplicate-chunk',
          message: `frame ${header.frameId} already complete`,
        });
        return { frame: undefined, errors };
      }
      if (header.index !== 0) {
        errors.push({
          code: 'missing-chunk',
          message: `frame ${header.frameId} starts at chunk ${header.index}`,
        });
        return { frame: undefined, errors };
      }
      if (header.totalBytes > this.maxFrameBytes) {
        errors.push({ code: 'oversized', message: `frame of ${header.totalBytes} bytes refused` });
        return { frame: undefined, errors };
      }
      partial = this.partial = {
        frameId: header.frameId,
        count: header.count,
        nextIndex: 0,
        bytes: new Uint8Array(header.totalBytes),
        filled: 0,
      };
    }

    if (header.count !== partial.count || header.totalBytes !== partial.bytes.byteLength) {
      errors.push({
        code: 'bad-chunk',
        message: `frame ${header.frameId}: inconsistent chunk header`,
      });
      this.partial = undefined;
      return { frame: undefined, errors };
    }
    if (header.index < partial.nextIndex) {
      errors.push({
        code: 'duplicate-chunk',
        message: `frame ${header.frameId}: chunk ${header.index} received twice`,
      });
      return { frame: undefined, errors };
    }
    if (header.index > partial.nextIndex) {
      errors.push({
        code: 'missing-chunk',
        message: `frame ${header.frameId}: chunk ${partial.nextIndex} missing before ${header.index}`,
      });
      this.partial = undefined;
      return { frame: undefined, errors };
    }
    if (partial.filled + body.byteLength > partial.bytes.byteLength) {
      errors.push({
        code: 'oversized',
        message: `frame ${header.frameId}: chunks exceed totalBytes`,
      });
      this.partial = undefined;
      return { frame: undefined, errors };
    }
    partial.bytes.set(body, partial.filled);
    partial.filled += body.byteLength;
    partial.nextIndex++;
    if (partial.nextIndex < partial.count) return { frame: undefined, errors };

    this.partial = undefined;
    if (partial.filled !== partial.bytes.byteLength) {
      errors.push({
        code: 'truncated',
        message: `frame ${header.frameId}: ${partial.filled} of ${partial.bytes.byteLength} bytes`,
      });
      return { frame: undefined, errors };
    }
    this.lastCompleted = partial.frameId;
    return { frame: partial.bytes, errors };
  }

  /** True while a frame is partly received. */
  get pending(): boolean {
    return this.partial !== undefined;
  }

  /** Drops a partial frame (a link closed, a deadline passed) and says so. */
  abandon(): ProtocolError | undefined {
    const partial = this.partial;
    this.partial = undefined;
    if (partial === undefined) return undefined;
    return {
      code: 'missing-chunk',
      message: `frame ${partial.frameId} abandoned after ${partial.nextIndex} of ${partial.count} chunks`,
    };
  }
}
