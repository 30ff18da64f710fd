import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  FRAME_HEADER_BYTES,
  FRAME_VERSION,
  allocateFrame,
  jobIdOf,
  parseFrame,
  sealFrame,
  type FrameHeader,
} from '../src/index.ts';

const header: FrameHeader = {
  codec: 'one-bit',
  jobId: jobIdOf('mnist-mlp'),
  iteration: 42,
  round: 3,
  senderSlot: 5,
  dimension: 101_770,
  blockSize: 1024,
};

function makeFrame(payload: Uint8Array, h: FrameHeader = header): Uint8Array {
  const { bytes, payload: target } = allocateFrame(h, payload.byteLength);
  target.set(payload);
  return sealFrame(bytes);
}

describe('update frame', () => {
  it('round-trips every header field and the payload, as a view without copying', () => {
    fc.assert(
      fc.property(
        fc.record({
          codec: fc.constantFrom('fp32', 'fp16', 'one-bit', 'stochastic-one-bit' as const),
          jobId: fc.nat({ max: 0xffffffff }),
          iteration: fc.nat({ max: 0xffffffff }),
          round: fc.nat({ max: 0xffff }),
          senderSlot: fc.nat({ max: 0xffff }),
          dimension: fc.nat({ max: 0xffffffff }),
          blockSize: fc.nat({ max: 0xffffffff }),
          staleness: fc.nat({ max: 0xffff }),
          stepDelayUnits: fc.nat({ max: 0xffff }),
        }),
        fc.uint8Array({ maxLength: 300 }),
        ({ stepDelayUnits, ...fields }, payload) => {
          // a mean delay in 1/256 iteration, never above the staleness
          const h = { ...fields, stepDelay: Math.min(fields.staleness, stepDelayUnits / 256) };
          const bytes = makeFrame(payload, h);
          const parsed = parseFrame(bytes);
          expect(parsed.ok).toBe(true);
          if (!parsed.ok) return;
          expect(parsed.value.header).toMatchObject({ ...h, payloadBytes: payload.byteLength });
          expect(Array.from(parsed.value.payload)).toEqual(Array.from(payload));
          expect(parsed.value.payload.buffer).toBe(bytes.buffer);
          expect(parsed.value.payload.byteOffset % 8).toBe(0);
        },
      ),
    );
  });

  const payload = Uint8Array.from({ length: 64 }, (_, i) => (i * 37) & 0xff);

  it('rejects a truncated frame (any cut) with "truncated"', () => {
    const bytes = makeFrame(payload);
    for (let cut = 0; cut < bytes.byteLength; cut += 7) {
      const parsed = parseFrame(bytes.subarray(0, cut));
      expect(parsed.ok).toBe(false);
      if (!parsed.ok) expect(parsed.error.code).toBe('truncated');
    }
  });

  it('rejects oversized frames and trailing bytes with "oversized"', () => {
    const bytes = makeFrame(payload);
    const tooBig = parseFrame(bytes, { maxFrameBytes: bytes.byteLength - 1 });
    expect(!tooBig.ok && tooBig.error.code).toBe('oversized');
    const padded = new Uint8Array(bytes.byteLength + 4);
    padded.set(bytes);
    const trailing = parseFrame(padded);
    expect(!trailing.ok && trailing.error.code).toBe('oversized');
  });

  it('reads version 1 frames (no staleness field) as staleness 0, version 2 (no step delay) with the step delay of the staleness, and holds their reserved tails to zero', () => {
    const v3 = makeFrame(payload, { ...header, staleness: 3, stepDelay: 0.75 });
    const parsed = parseFrame(v3);
    expect(parsed.ok && parsed.value.header.staleness).toBe(3);
    expect(parsed.ok && parsed.value.header.stepDelay).toBe(0.75);
    // no step delay stated: every step as behind as the first
    const unstated = parseFrame(makeFrame(payload, { ...header, staleness: 2 }));
    expect(unstated.ok && unstated.value.header.stepDelay).toBe(2);
    // a mean delay above the oldest step's is not written, and not read
    const capped = parseFrame(makeFrame(payload, { ...header, staleness: 1, stepDelay: 5 }));
    expect(capped.ok && capped.value.header.stepDelay).toBe(1);
    const lying = makeFrame(payload, { ...header, staleness: 1, stepDelay: 1 });
    lying[38] = 0x01; // 257/256: above the staleness of 1
    lying[39] = 0x01;
    const liar = parseFrame(lying);
    expect(!liar.ok && liar.error.code).toBe('bad-header');

    const v2 = makeFrame(payload, { ...header, staleness: 3, stepDelay: 0 });
    v2[4] = 2;
    const older = parseFrame(v2);
    expect(older.ok && older.value.header.staleness).toBe(3);
    expect(older.ok && older.value.header.stepDelay).toBe(3);
    const v2WithStepDelay = makeFrame(payload, { ...header, staleness: 3, stepDelay: 1 });
    v2WithStepDelay[4] = 2;
    const refusedV2 = parseFrame(v2WithStepDelay);
    expect(!refusedV2.ok && refusedV2.error.code).toBe('bad-header');

    const v1 = makeFrame(payload);
    v1[4] = 1;
    const old = parseFrame(v1);
    expect(old.ok && old.value.header.staleness).toBe(0);
    // in version 1 bytes 36–39 are all reserved: a staleness there is a bad header
    const v1WithStaleness = makeFrame(payload, { ...header, staleness: 3 });
    v1WithStaleness[4] = 1;
    const refused = parseFrame(v1WithStaleness);
    expect(!refused.ok && refused.error.code).toBe('bad-header');

    const reservedSet = makeFrame(payload);
    reservedSet[6] = 1;
    const bad = parseFrame(reservedSet);
    expect(!bad.ok && bad.error.code).toBe('bad-header');

    const tooOld = makeFrame(payload);
    tooOld[4] = 0;
    const v0 = parseFrame(tooOld);
    expect(!v0.ok && v0.error.code).toBe('unsupported-version');
  });

  it('rejects a wrong version, a bad magic and an unknown codec with their codes', () => {
    const wrongVersion = makeFrame(payload);
    wrongVersion[4] = FRAME_VERSION + 1;
    const v = parseFrame(wrongVersion);
    expect(!v.ok && v.error.code).toBe('unsupported-version');

    const wrongMagic = makeFrame(payload);
    wrongMagic[0]! ^= 0xff;
    const m = parseFrame(wrongMagic);
    expect(!m.ok && m.error.code).toBe('bad-magic');

    const wrongCodec = makeFrame(payload);
    wrongCodec[5] = 200;
    const c = parseFrame(wrongCodec);
    expect(!c.ok && c.error.code).toBe('unknown-codec');
  });

  it('detects any single flipped payload bit with "checksum-mismatch"', () => {
    fc.assert(
      fc.property(fc.nat({ max: payload.byteLength * 8 - 1 }), (bit) => {
        const bytes = makeFrame(payload);
        bytes[FRAME_HEADER_BYTES + (bit >> 3)]! ^= 1 << (bit & 7);
        const parsed = parseFrame(bytes);
        expect(!parsed.ok && parsed.error.code).toBe('checksum-mismatch');
      }),
    );
  });

  it('never throws on arbitrary bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        const parsed = parseFrame(bytes);
        expect(typeof parsed.ok).toBe('boolean');
      }),
    );
  });
});
