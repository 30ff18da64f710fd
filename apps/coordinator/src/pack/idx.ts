/**
 * IDX files (the MNIST format, http://yann.lecun.com/exdb/mnist/): a big-endian header —
 * two zero bytes, a data-type byte, a dimension-count byte, then one u32 per dimension —
 * followed by the values, row-major. Only unsigned bytes (type 0x08) are read, as MNIST and
 * its look-alikes (Fashion-MNIST, KMNIST, EMNIST) store them. A gzip-compressed file
 * (`*.gz`, magic 1f 8b) is decompressed first.
 *
 * Guarantees: `parseIdx` never reads past the buffer; every problem is a DataError naming the
 * file and the header field (magic, data type, dimension count, dimension i) or the size
 * (a truncated file says how many bytes the header promises and how many are there).
 */
import { readFile } from 'node:fs/promises';
import { gunzipSync } from 'node:zlib';
import { DataError } from './errors.ts';

export interface IdxArray {
  /** Dimensions from the header; dims[0] is the number of items. */
  dims: number[];
  /** prod(dims) unsigned bytes, row-major (a view into the file's bytes). */
  data: Uint8Array;
}

const TYPE_NAMES: Record<number, string> = {
  0x08: 'unsigned byte',
  0x09: 'signed byte',
  0x0b: 'short',
  0x0c: 'int',
  0x0d: 'float',
  0x0e: 'double',
};

/** Parses an IDX file's bytes (already decompressed). `file` names it in errors. */
export function parseIdx(bytes: Uint8Array, file: string): IdxArray {
  if (bytes.byteLength < 4) {
    throw new DataError(file, `IDX header: ${bytes.byteLength} bytes, the magic number needs 4`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes[0] !== 0 || bytes[1] !== 0) {
    throw new DataError(
      file,
      `IDX header field magic: bytes 0-1 must be 00 00, got ${hex(bytes[0]!)} ${hex(bytes[1]!)} (not an IDX file)`,
    );
  }
  const type = bytes[2]!;
  if (type !== 0x08) {
    const name = TYPE_NAMES[type];
    throw new DataError(
      file,
      `IDX header field data type (byte 2): 0x${hex(type)}${name ? ` (${name})` : ' (unknown)'}; only 0x08 (unsigned byte) is supported`,
    );
  }
  const rank = bytes[3]!;
  if (rank < 1 || rank > 4) {
    throw new DataError(
      file,
      `IDX header field dimension count (byte 3): ${rank}, expected 1 to 4`,
    );
  }
  const headerBytes = 4 + 4 * rank;
  if (bytes.byteLength < headerBytes) {
    throw new DataError(
      file,
      `IDX header truncated: ${rank} dimensions need ${headerBytes} header bytes, the file has ${bytes.byteLength}`,
    );
  }
  const dims: number[] = [];
  for (let i = 0; i < rank; i++) {
    const size = view.getUint32(4 + 4 * i, false);
    if (size === 0 && i > 0) {
      throw new DataError(file, `IDX header field dimension ${i}: 0`);
    }
    dims.push(size);
  }
  const values = dims.reduce((a, b) => a * b, 1);
  const expected = headerBytes + values;
  if (bytes.byteLength < expected) {
    throw new DataError(
      file,
      `truncated: the IDX header (dimensions ${dims.join(' × ')}) promises ${expected} bytes, the file has ${bytes.byteLength}`,
    );
  }
  if (bytes.byteLength > expected) {
    throw new DataError(
      file,
      `${bytes.byteLength - expected} bytes after the ${dims.join(' × ')} values the IDX header declares`,
    );
  }
  return { dims, data: bytes.subarray(headerBytes, expected) };
}

/** Reads and parses an IDX file, gunzipping it when it is gzip-compressed. */
export async function readIdx(file: string): Promise<IdxArray> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(file);
  } catch (error) {
    throw new DataError(file, `cannot read the file (${(error as Error).message})`);
  }
  if (bytes[0] === 0x1f && bytes[1] === 0x8b) {
    try {
      bytes = gunzipSync(bytes);
    } catch (error) {
      throw new DataError(file, `gzip: ${(error as Error).message}`);
    }
  }
  return parseIdx(bytes, file);
}

/**
 * Images (rank ≥ 2: count × the shape of one sample) and their labels (rank 1, one byte
 * each), checked against each other. Returns samples of prod(dims[1..]) bytes.
 */
export function idxSamples(
  images: IdxArray,
  imagesFile: string,
  labels: IdxArray,
  labelsFile: string,
): { pixels: Uint8Array; labels: Uint8Array; count: number; shape: number[] } {
  if (images.dims.length < 2) {
    throw new DataError(
      imagesFile,
      `IDX header field dimension count: ${images.dims.length}; images need at least 2 (count and the sample's shape)`,
    );
  }
  if (labels.dims.length !== 1) {
    throw new DataError(
      labelsFile,
      `IDX header field dimension count: ${labels.dims.length}; labels need 1 (one byte per sample)`,
    );
  }
  if (images.dims[0] !== labels.dims[0]) {
    throw new DataError(
      labelsFile,
      `IDX header field dimension 0: ${labels.dims[0]} labels, but ${imagesFile} holds ${images.dims[0]} images`,
    );
  }
  return {
    pixels: images.data,
    labels: labels.data,
    count: images.dims[0]!,
    shape: images.dims.slice(1),
  };
}

/** An IDX file of unsigned bytes with these dimensions (the inverse of parseIdx). */
export function encodeIdx(dims: number[], data: Uint8Array): Uint8Array {
  const values = dims.reduce((a, b) => a * b, 1);
  if (data.length !== values) {
    throw new RangeError(`${data.length} values for dimensions ${dims.join(' × ')}`);
  }
  const bytes = new Uint8Array(4 + 4 * dims.length + values);
  const view = new DataView(bytes.buffer);
  bytes[2] = 0x08;
  bytes[3] = dims.length;
  dims.forEach((d, i) => view.setUint32(4 + 4 * i, d, false));
  bytes.set(data, 4 + 4 * dims.length);
  return bytes;
}

function hex(byte: number): string {
  return byte.toString(16).padStart(2, '0');
}
