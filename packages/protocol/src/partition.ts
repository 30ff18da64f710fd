/**
 * Data partition files: the binary format the coordinator serves under `/data/<sha256>.bin`
 * and tabs download, and the manifest that lists them. Pure (no DOM, no Node APIs): hashing
 * uses Web Crypto (`crypto.subtle`), available in browsers and Node >= 20.
 *
 * Layout, little-endian, a 16-byte header then the samples:
 *
 *   off size field
 *     0    4 magic     'SGDP' (0x50444753 read little-endian)
 *     4    1 version   PARTITION_VERSION
 *     5    1 classes   number of classes (labels are < classes)
 *     6    2 reserved  0
 *     8    4 count     u32 samples
 *    12    4 features  u32 features per sample (784 for MNIST)
 *    16    count × features pixel bytes (u8, value = round(x · 255)), row-major
 *     …    count label bytes (u8)
 *
 * Guarantees: parsing never throws; it returns a typed Result ('truncated', 'bad-magic',
 * 'unsupported-version', 'bad-header', 'oversized', 'invalid-message' for a label out of
 * range, 'dimension-mismatch' against expected features, 'checksum-mismatch' when the
 * SHA-256 of the bytes differs from the manifest's).
 *
 * The manifest that lists these files is `dataManifestSchema` (dataset.ts); docs/datasets.md describes both for people.
 */
import { fail, ok, type Result } from './errors.ts';

export const PARTITION_MAGIC = 0x50444753;
export const PARTITION_VERSION = 1;
export const PARTITION_HEADER_BYTES = 16;

export interface PartitionData {
  /** count × features values in [0, 1] (pixel / 255). */
  xs: Float32Array;
  labels: Uint8Array;
  count: number;
  features: number;
  classes: number;
}

/** Serialises samples given as bytes (already quantised pixels). */
export function encodePartition(
  pixels: Uint8Array,
  labels: Uint8Array,
  features: number,
  classes: number,
): Uint8Array {
  const count = labels.length;
  if (pixels.length !== count * features) {
    throw new RangeError(`${pixels.length} pixels for ${count} samples of ${features} features`);
  }
  if (!Number.isInteger(classes) || classes < 1 || classes > 255) {
    throw new RangeError(`classes must be 1..255, got ${classes}`);
  }
  const bytes = new Uint8Array(PARTITION_HEADER_BYTES + count * (features + 1));
  const view = new DataView(bytes.buffer);
  view.setUint32(0, PARTITION_MAGIC, true);
  view.setUint8(4, PARTITION_VERSION);
  view.setUint8(5, classes);
  view.setUint16(6, 0, true);
  view.setUint32(8, count, true);
  view.setUint32(12, features, true);
  bytes.set(pixels, PARTITION_HEADER_BYTES);
  bytes.set(labels, PARTITION_HEADER_BYTES + count * features);
  return bytes;
}

export interface PartitionExpectations {
  /** Reject files whose feature count differs ('dimension-mismatch'). */
  features?: number;
  classes?: number;
  /** Reject files whose sample count differs ('bad-header'). */
  count?: number;
}

/** Parses a partition file (structure only; see verifyPartition for the hash check). */
export function parsePartition(
  bytes: Uint8Array,
  expect: PartitionExpectations = {},
): Result<PartitionData> {
  if (bytes.byteLength < PARTITION_HEADER_BYTES) {
    return fail('truncated', `partition of ${bytes.byteLength} bytes is shorter than its header`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint32(0, true) !== PARTITION_MAGIC) {
    return fail('bad-magic', 'not a data partition');
  }
  const version = view.getUint8(4);
  if (version !== PARTITION_VERSION) {
    return fail(
      'unsupported-version',
      `partition version ${version}, expected ${PARTITION_VERSION}`,
    );
  }
  const classes = view.getUint8(5);
  const count = view.getUint32(8, true);
  const features = view.getUint32(12, true);
  if (view.getUint16(6, true) !== 0) return fail('bad-header', 'reserved field must be zero');
  if (classes < 1 || features < 1) return fail('bad-header', 'classes and features must be > 0');
  if (expect.features !== undefined && features !== expect.features) {
    return fail('dimension-mismatch', `${features} features, expected ${expect.features}`);
  }
  if (expect.classes !== undefined && classes !== expect.classes) {
    return fail('dimension-mismatch', `${classes} classes, expected ${expect.classes}`);
  }
  if (expect.count !== undefined && count !== expect.count) {
    return fail('bad-header', `${count} samples, expected ${expect.count}`);
  }
  const needed = PARTITION_HEADER_BYTES + count * (features + 1);
  if (bytes.byteLength < needed) {
    return fail('truncated', `partition declares ${needed} bytes, ${bytes.byteLength} present`);
  }
  if (bytes.byteLength > needed) {
    return fail('oversized', `${bytes.byteLength - needed} bytes after the declared samples`);
  }
  const pixelStart = PARTITION_HEADER_BYTES;
  const labelStart = pixelStart + count * features;
  const labels = bytes.slice(labelStart, labelStart + count);
  for (let i = 0; i < count; i++) {
    if (labels[i]! >= classes) {
      return fail('invalid-message', `label ${labels[i]} of sample ${i} is not below ${classes}`);
    }
  }
  const xs = new Float32Array(count * features);
  for (let i = 0; i < xs.length; i++) xs[i] = bytes[pixelStart + i]! / 255;
  return ok({ xs, labels, count, features, classes });
}

/** Lower-case hex SHA-256 (Web Crypto). */
export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  // copy into a fresh ArrayBuffer: digest() rejects views over SharedArrayBuffer
  const digest = await crypto.subtle.digest('SHA-256', bytes.slice());
  let hex = '';
  for (const byte of new Uint8Array(digest)) hex += byte.toString(16).padStart(2, '0');
  return hex;
}

/**
 * Parses a downloaded partition and checks it against its manifest entry: structure first
 * (so a cut-off download reports 'truncated'), then the SHA-256 ('checksum-mismatch').
 */
export async function verifyPartition(
  bytes: Uint8Array,
  expectedSha256: string,
  expect: PartitionExpectations = {},
): Promise<Result<PartitionData>> {
  const parsed = parsePartition(bytes, expect);
  if (!parsed.ok) return parsed;
  const actual = await sha256Hex(bytes);
  if (actual !== expectedSha256.toLowerCase()) {
    return fail('checksum-mismatch', `sha256 ${actual}, manifest says ${expectedSha256}`);
  }
  return parsed;
}

/** The path a partition is served under. */
export function partitionUrl(sha256: string): string {
  return `/data/${sha256}.bin`;
}
