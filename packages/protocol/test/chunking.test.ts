import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { CHUNK_HEADER_BYTES, FrameReassembler, MAX_CHUNK_BYTES, chunkFrame } from '../src/index.ts';

function frameOf(length: number, seed = 1): Uint8Array {
  const bytes = new Uint8Array(length);
  let x = seed;
  for (let i = 0; i < length; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    bytes[i] = x >>> 24;
  }
  return bytes;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.compare(a, b) === 0;
}

describe('chunking', () => {
  it('splits into chunks of at most 64 KiB and reassembles the exact bytes', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 300_000 }),
        fc.integer({ min: CHUNK_HEADER_BYTES + 4096, max: MAX_CHUNK_BYTES }),
        (length, chunkBytes) => {
          const frame = frameOf(length, length);
          const chunks = chunkFrame(frame, 7, chunkBytes);
          for (const chunk of chunks) expect(chunk.byteLength).toBeLessThanOrEqual(chunkBytes);
          const reassembler = new FrameReassembler();
          let out: Uint8Array | undefined;
          chunks.forEach((chunk, i) => {
            const r = reassembler.push(chunk);
            expect(r.errors).toEqual([]);
            if (i < chunks.length - 1) expect(r.frame).toBeUndefined();
            else out = r.frame;
          });
          expect(out !== undefined && sameBytes(out, frame)).toBe(true);
        },
      ),
      { numRuns: 40 },
    );
  });

  it('refuses chunk sizes that cannot hold a header and a body', () => {
    expect(() => chunkFrame(frameOf(10), 1, CHUNK_HEADER_BYTES)).toThrow(RangeError);
    expect(() => chunkFrame(frameOf(10), 1, MAX_CHUNK_BYTES + 1)).toThrow(RangeError);
  });

  it('reports a missing chunk and drops the partial frame, then takes the next frame', () => {
    const chunks = chunkFrame(frameOf(200_000), 1);
    expect(chunks.length).toBeGreaterThan(3);
    const reassembler = new FrameReassembler();
    reassembler.push(chunks[0]!);
    const gap = reassembler.push(chunks[2]!);
    expect(gap.errors.map((e) => e.code)).toEqual(['missing-chunk']);
    expect(reassembler.pending).toBe(false);

    const next = frameOf(1000, 9);
    const result = reassembler.push(chunkFrame(next, 2)[0]!);
    expect(result.frame).toEqual(next);
  });

  it('reports a frame abandoned when a new frame starts before it completed', () => {
    const reassembler = new FrameReassembler();
    reassembler.push(chunkFrame(frameOf(150_000), 1)[0]!);
    const next = frameOf(10, 3);
    const r = reassembler.push(chunkFrame(next, 2)[0]!);
    expect(r.errors.map((e) => e.code)).toEqual(['missing-chunk']);
    expect(r.frame).toEqual(next);
  });

  it('reports a duplicated chunk without corrupting the frame', () => {
    const frame = frameOf(150_000);
    const chunks = chunkFrame(frame, 5);
    const reassembler = new FrameReassembler();
    reassembler.push(chunks[0]!);
    const dup = reassembler.push(chunks[0]!);
    expect(dup.errors.map((e) => e.code)).toEqual(['duplicate-chunk']);
    let out: Uint8Array | undefined;
    for (const chunk of chunks.slice(1)) out = reassembler.push(chunk).frame ?? out;
    expect(out !== undefined && sameBytes(out, frame)).toBe(true);
    const late = reassembler.push(chunks[chunks.length - 1]!);
    expect(late.errors.map((e) => e.code)).toEqual(['duplicate-chunk']);
  });

  it('rejects a frame that starts mid-way, inconsistent headers and oversized totals', () => {
    const chunks = chunkFrame(frameOf(150_000), 4);
    const a = new FrameReassembler();
    expect(a.push(chunks[1]!).errors.map((e) => e.code)).toEqual(['missing-chunk']);

    const b = new FrameReassembler();
    b.push(chunks[0]!);
    const forged = chunks[1]!.slice();
    new DataView(forged.buffer).setUint16(10, 99, true);
    expect(b.push(forged).errors.map((e) => e.code)).toEqual(['bad-chunk']);

    const c = new FrameReassembler({ maxFrameBytes: 100_000 });
    expect(c.push(chunks[0]!).errors.map((e) => e.code)).toEqual(['oversized']);
  });

  it('never throws on arbitrary chunk bytes', () => {
    const reassembler = new FrameReassembler();
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 100 }), (bytes) => {
        const r = reassembler.push(bytes);
        expect(Array.isArray(r.errors)).toBe(true);
      }),
    );
  });
});
