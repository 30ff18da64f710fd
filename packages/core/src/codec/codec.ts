/**
 * The one strategy interface for update codecs, their registry, and the two helpers that move
 * an update into and out of a binary frame (packages/protocol/src/frame.ts).
 *
 * Guarantees:
 * - An encoder writes its payload straight into the frame buffer (one allocation, no copy) and,
 *   with error feedback, keeps the residual e ← (u + e) − decoded, so over any sequence of
 *   updates Σ decoded + e_final = Σ u up to float rounding (DESIGN.md step 3).
 * - Decoding accumulates (out += weight · decoded) without allocating a decoded copy, validates
 *   everything it reads and never throws: a bad payload is a typed Result error and leaves `out`
 *   untouched.
 * Parameters: the dimension d, the block size B of the codecs that keep one scale per block
 * (0 for the codecs that do not), error feedback on/off, a seed for stochastic codecs.
 * Papers: 1-bit SGD with error feedback (Seide et al. 2014); 1-bit gradient coding
 * (shared/seeds/one-bit-gradient-coding.md).
 */
import {
  allocateFrame,
  codecIds,
  fail,
  parseFrame,
  sealFrame,
  type CodecName,
  type Frame,
  type FrameHeader,
  type Result,
} from '@swarmgrad/protocol';

export interface CodecEncoderOptions {
  /** Coordinates per scale block (default: the codec's defaultBlockSize); ignored by fp16/fp32. */
  blockSize?: number;
  /**
   * Keep an error-feedback residual (default: the codec's `errorFeedback`). Ignored by fp32,
   * whose decoding is exact (its residual would stay 0).
   */
  errorFeedback?: boolean;
  /** Seed of a stochastic codec's generator. Give every sender its own seed. */
  seed?: number;
}

/** Stateful per sender: owns the error-feedback residual. Not shared between senders. */
export interface CodecEncoder {
  readonly codec: Codec;
  readonly dimension: number;
  /** Coordinates per scale block, 0 for codecs without blocks. Goes into the frame header. */
  readonly blockSize: number;
  readonly errorFeedback: boolean;
  /** Exact payload length this encoder writes: codec.payloadBytes(dimension, blockSize). */
  payloadBytes(): number;
  /**
   * Encodes update (+ residual) into payload (exactly payloadBytes() long) and, with error
   * feedback, sets residual ← (update + residual) − decoded(payload).
   * Throws RangeError when update.length ≠ dimension, the payload length is wrong, or a
   * coordinate of the update (or of update + residual) is not finite; after a non-finite
   * RangeError the encoder is reset (residual zeroed) and the payload must not be sent.
   */
  encodeInto(update: Float32Array, payload: Uint8Array): void;
  /** The live residual (not a copy), or undefined without error feedback. */
  residual(): Float32Array | undefined;
  /** Zeroes the residual (and nothing else). */
  reset(): void;
}

export interface Codec {
  readonly name: CodecName;
  /** Wire id, equal to codecIds[name] of the frame format. */
  readonly id: number;
  /** Whether encoders keep an error-feedback residual by default. */
  readonly errorFeedback: boolean;
  /** Whether E[decode(encode(v))] = v for the quantizer itself (v = update + residual). */
  readonly unbiased: boolean;
  /** Block size used when none is given; 0 for codecs without blocks. */
  readonly defaultBlockSize: number;
  /** Whether blockSize is valid for this codec (block codecs: positive multiple of 32). */
  isValidBlockSize(blockSize: number): boolean;
  /** Payload length in bytes. Throws RangeError on an invalid dimension or block size. */
  payloadBytes(dimension: number, blockSize: number): number;
  createEncoder(dimension: number, options?: CodecEncoderOptions): CodecEncoder;
  /**
   * out += weight · decode(payload), without allocating a decoded copy. Never throws. Errors:
   * 'dimension-mismatch' (out.length ≠ dimension), 'bad-header' (invalid dimension or block
   * size), 'truncated' / 'oversized' (payload length ≠ payloadBytes), 'non-finite' (a non-finite
   * or negative scale, a non-finite value, a non-finite weight). On error `out` is untouched.
   */
  decodeAccumulate(
    payload: Uint8Array,
    dimension: number,
    blockSize: number,
    out: Float32Array,
    weight?: number,
  ): Result<void>;
}

const byName = new Map<CodecName, Codec>();
const ordered: Codec[] = [];

/** Every registered codec, in registration order (the contract suite runs over this list). */
export const registeredCodecs: readonly Codec[] = ordered;

/** Registers a codec under its name. Idempotent for the same object; a different one throws. */
export function registerCodec(codec: Codec): void {
  const existing = byName.get(codec.name);
  if (existing === codec) return;
  if (existing !== undefined) throw new Error(`codec '${codec.name}' is already registered`);
  if (codecIds[codec.name] !== codec.id) {
    throw new Error(
      `codec '${codec.name}' has id ${codec.id}, the frame format says ${codecIds[codec.name]}`,
    );
  }
  byName.set(codec.name, codec);
  ordered.push(codec);
}

/** The registered codec of that name; throws if none is registered (a programming error). */
export function getCodec(name: CodecName): Codec {
  const codec = byName.get(name);
  if (codec === undefined) throw new Error(`no codec registered as '${name}'`);
  return codec;
}

/** The registered codec of that name, or undefined (for names from config or the wire). */
export function findCodec(name: string): Codec | undefined {
  return byName.get(name as CodecName);
}

/** Bits on the wire per model parameter for this codec (payload only, frame header excluded). */
export function bitsPerParameter(codec: Codec, dimension: number, blockSize: number): number {
  return (8 * codec.payloadBytes(dimension, blockSize)) / dimension;
}

/**
 * Encodes `update` with `encoder` into a new sealed frame: allocateFrame, encodeInto the frame's
 * payload, sealFrame. One allocation, no extra copy. Throws like encoder.encodeInto.
 */
export function encodeToFrame(
  encoder: CodecEncoder,
  update: Float32Array,
  header: Omit<FrameHeader, 'codec' | 'dimension' | 'blockSize'>,
): Uint8Array {
  const { bytes, payload } = allocateFrame(
    {
      ...header,
      codec: encoder.codec.name,
      dimension: encoder.dimension,
      blockSize: encoder.blockSize,
    },
    encoder.payloadBytes(),
  );
  encoder.encodeInto(update, payload);
  return sealFrame(bytes);
}

export interface DecodeExpectations {
  /** The receiver's model dimension; the frame must carry exactly this many parameters. */
  dimension: number;
  /** When given, a frame of another job is rejected with 'wrong-job'. */
  jobId?: number;
  /** When given, a frame of another iteration is rejected with 'wrong-iteration'. */
  iteration?: number;
  /** Passed to parseFrame. */
  maxFrameBytes?: number;
}

/**
 * Parses a frame, checks it against what the receiver expects, and accumulates its decoded
 * update: out += weight · decode(payload). Never throws; on any error `out` is untouched.
 * Errors: those of parseFrame, 'wrong-job', 'wrong-iteration', 'dimension-mismatch'
 * (header or out), 'unknown-codec' (a valid id with no registered codec), and those of the
 * codec's decodeAccumulate.
 */
export function decodeFrameInto(
  frameBytes: Uint8Array,
  out: Float32Array,
  expect: DecodeExpectations,
  weight = 1,
): Result<Frame['header']> {
  const parsed = parseFrame(
    frameBytes,
    expect.maxFrameBytes === undefined ? {} : { maxFrameBytes: expect.maxFrameBytes },
  );
  if (!parsed.ok) return parsed;
  return decodeParsedFrameInto(parsed.value, out, expect, weight);
}

/**
 * decodeFrameInto for a frame the caller already parsed (parseFrame checked its checksum):
 * the same checks after parsing, the same errors, `out` untouched on any of them.
 */
export function decodeParsedFrameInto(
  frame: Frame,
  out: Float32Array,
  expect: DecodeExpectations,
  weight = 1,
): Result<Frame['header']> {
  const { header, payload } = frame;
  if (expect.jobId !== undefined && header.jobId !== expect.jobId >>> 0) {
    return fail('wrong-job', `frame of job ${header.jobId}, expected ${expect.jobId >>> 0}`);
  }
  if (expect.iteration !== undefined && header.iteration !== expect.iteration >>> 0) {
    return fail(
      'wrong-iteration',
      `frame of iteration ${header.iteration}, expected ${expect.iteration >>> 0}`,
    );
  }
  if (header.dimension !== expect.dimension) {
    return fail(
      'dimension-mismatch',
      `frame carries ${header.dimension} parameters, expected ${expect.dimension}`,
    );
  }
  const codec = byName.get(header.codec);
  if (codec === undefined) return fail('unknown-codec', `no codec registered as '${header.codec}'`);
  const decoded = codec.decodeAccumulate(payload, header.dimension, header.blockSize, out, weight);
  if (!decoded.ok) return decoded;
  return { ok: true, value: header };
}

// ---------------------------------------------------------------------------------------------
// Shared helpers for implementations (not part of the package's public surface).

// Payloads are read and written through typed views, which use the host's byte order; the wire
// format is little-endian, as is every browser and Node platform in use. Refuse anything else.
if (new Uint8Array(new Uint32Array([1]).buffer)[0] !== 1) {
  throw new Error('swarmgrad codecs need a little-endian host');
}

/** Dimension valid for a frame: an integer in [1, 2^32 − 1]. */
export function isValidDimension(dimension: number): boolean {
  return Number.isInteger(dimension) && dimension >= 1 && dimension <= 0xffffffff;
}

/** Throws RangeError unless the encoder may be created for this dimension. */
export function assertDimension(dimension: number): void {
  if (!isValidDimension(dimension)) {
    throw new RangeError(`dimension must be an integer in [1, 2^32 - 1], got ${dimension}`);
  }
}

/** Throws RangeError unless update and payload have the encoder's lengths. */
export function assertEncodeArgs(
  encoder: CodecEncoder,
  update: Float32Array,
  payload: Uint8Array,
): void {
  if (update.length !== encoder.dimension) {
    throw new RangeError(`update has ${update.length} coordinates, expected ${encoder.dimension}`);
  }
  const bytes = encoder.payloadBytes();
  if (payload.byteLength !== bytes) {
    throw new RangeError(`payload has ${payload.byteLength} bytes, expected ${bytes}`);
  }
}

/**
 * Checks the parts every decodeAccumulate shares: out length, header values, payload length,
 * weight. Returns undefined when they are fine, else the error Result.
 */
function checkDecodeArgs(
  codec: Codec,
  payload: Uint8Array,
  dimension: number,
  blockSize: number,
  out: Float32Array,
  weight: number,
): Result<void> | undefined {
  if (!isValidDimension(dimension)) return fail('bad-header', `invalid dimension ${dimension}`);
  if (out.length !== dimension) {
    return fail('dimension-mismatch', `output has ${out.length} coordinates, payload ${dimension}`);
  }
  if (!codec.isValidBlockSize(blockSize)) {
    return fail('bad-header', `block size ${blockSize} is invalid for codec '${codec.name}'`);
  }
  const expected = codec.payloadBytes(dimension, blockSize);
  if (payload.byteLength < expected) {
    return fail('truncated', `payload of ${payload.byteLength} bytes, expected ${expected}`);
  }
  if (payload.byteLength > expected) {
    return fail('oversized', `payload of ${payload.byteLength} bytes, expected ${expected}`);
  }
  if (!Number.isFinite(weight)) return fail('non-finite', `weight ${weight} is not finite`);
  return undefined;
}

/** The error an encoder throws for a non-finite update (its residual is then zeroed). */
export function nonFiniteUpdate(where: string, withResidual: boolean): RangeError {
  return new RangeError(
    `non-finite value ${where} of the update${withResidual ? ' (or of update + residual)' : ''}`,
  );
}

/**
 * A codec's own decoding: validate the values of `bytes` (a payload that passed the shared checks,
 * aligned for the codec's typed views), then out += weight · decoded. Leaves `out` untouched on
 * error; never throws.
 */
export type DecodeKernel = (
  bytes: Uint8Array,
  dimension: number,
  blockSize: number,
  out: Float32Array,
  weight: number,
) => Result<void>;

/** Creates a codec's encoder; `codec` is the codec being defined. */
export type EncoderFactory = (
  codec: Codec,
  dimension: number,
  options: CodecEncoderOptions,
) => CodecEncoder;

/**
 * A codec from what is its own: its spec, encoder and decoding kernel. decodeAccumulate runs the
 * checks every codec shares (out length, header values, payload length, weight), then hands
 * `decode` the payload aligned for typed views of `alignment`-byte elements (alignedBytes).
 */
export function defineCodec(
  spec: Omit<Codec, 'createEncoder' | 'decodeAccumulate'>,
  alignment: number,
  createEncoder: EncoderFactory,
  decode: DecodeKernel,
): Codec {
  const codec: Codec = {
    ...spec,
    createEncoder: (dimension, options = {}) => createEncoder(codec, dimension, options),
    decodeAccumulate: (payload, dimension, blockSize, out, weight = 1) =>
      checkDecodeArgs(codec, payload, dimension, blockSize, out, weight) ??
      decode(alignedBytes(payload, alignment), dimension, blockSize, out, weight),
  };
  return codec;
}

/**
 * A codec without blocks (fp32, fp16): block size 0, `bytesPerValue` bytes per coordinate (its
 * typed views' element size).
 */
export function unblockedCodec(
  spec: Pick<Codec, 'name' | 'id' | 'errorFeedback' | 'unbiased'>,
  bytesPerValue: number,
  createEncoder: EncoderFactory,
  decode: DecodeKernel,
): Codec {
  const payloadBytes = (dimension: number, blockSize: number): number => {
    assertDimension(dimension);
    if (blockSize !== 0) throw new RangeError(`${spec.name} has no blocks: block size must be 0`);
    return bytesPerValue * dimension;
  };
  return defineCodec(
    {
      ...spec,
      defaultBlockSize: 0,
      isValidBlockSize: (blockSize) => blockSize === 0,
      payloadBytes,
    },
    bytesPerValue,
    createEncoder,
    decode,
  );
}

/**
 * The payload itself when typed views of `alignment`-byte elements can sit on it (the frame keeps
 * payloads 8-byte aligned), else an aligned copy (rare: a payload sliced at an odd offset; an
 * encoder then copies its result back).
 */
export function alignedBytes(payload: Uint8Array, alignment: number): Uint8Array {
  if (payload.byteOffset % alignment === 0) return payload;
  return payload.slice();
}

/**
 * The shell every encoder shares: dimension and block size checked at creation (through
 * codec.payloadBytes), the error-feedback residual, the argument checks of encodeInto, the aligned
 * target (copied back into an unaligned payload), and the residual zeroed before the RangeError
 * of a non-finite update. An implementation writes the payload in `encodeAligned`.
 */
export abstract class EncoderShell implements CodecEncoder {
  readonly codec: Codec;
  readonly dimension: number;
  readonly blockSize: number;
  readonly errorFeedback: boolean;
  readonly #bytes: number;
  readonly #alignment: number;
  readonly #residual: Float32Array | undefined;
  /** Uint32Array view of the residual's float bits (error feedback only), for sign tricks. */
  protected readonly residualBits: Uint32Array | undefined;

  /**
   * Throws RangeError on an invalid dimension or block size. `alignment`: element size in bytes
   * of the typed views the implementation puts on the payload.
   */
  constructor(
    codec: Codec,
    dimension: number,
    blockSize: number,
    errorFeedback: boolean,
    alignment: number,
  ) {
    assertDimension(dimension);
    this.#bytes = codec.payloadBytes(dimension, blockSize);
    this.codec = codec;
    this.dimension = dimension;
    this.blockSize = blockSize;
    this.errorFeedback = errorFeedback;
    this.#alignment = alignment;
    if (errorFeedback) {
      this.#residual = new Float32Array(dimension);
      this.residualBits = new Uint32Array(this.#residual.buffer);
    }
  }

  payloadBytes(): number {
    return this.#bytes;
  }

  encodeInto(update: Float32Array, payload: Uint8Array): void {
    assertEncodeArgs(this, update, payload);
    const target = alignedBytes(payload, this.#alignment);
    const r = this.#residual;
    const bad = this.encodeAligned(update, target, r);
    if (bad !== undefined) {
      r?.fill(0);
      throw nonFiniteUpdate(bad, r !== undefined);
    }
    if (target !== payload) payload.set(target);
  }

  residual(): Float32Array | undefined {
    return this.#residual;
  }

  reset(): void {
    this.#residual?.fill(0);
  }

  /**
   * Encodes update (+ `residual`, which it then updates, when there is one) into `target`
   * (payloadBytes() long, aligned). Returns undefined, or where a non-finite value was met
   * ('at coordinate 3', 'in block 0'); the shell then zeroes the residual and throws.
   */
  protected abstract encodeAligned(
    update: Float32Array,
    target: Uint8Array,
    residual: Float32Array | undefined,
  ): string | undefined;
}
