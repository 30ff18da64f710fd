import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { sign } from 'node:crypto';
import { newSigningKey, publicKeyOf } from '@swarmgrad/test-support/signing-key';
import {
  ITERATION_FRAME_VERSION,
  ITERATION_HEADER_BYTES,
  ITERATION_SIGNATURE_BYTES,
  MAX_STATED_STALENESS,
  importIterationKey,
  setIterationSignature,
  signedBytes,
  verifyIterationFrame,
  allocateFrame,
  encodeIterationFrame,
  jobIdOf,
  maxUpdateFrameBytes,
  parseFrame,
  parseIterationFrame,
  phases,
  sealFrame,
  type IterationHeader,
} from '../src/index.ts';

/** An update frame as the coordinator's delta (one-bit, d = 7850). */
function deltaFrame(iteration = 7): Uint8Array {
  const payloadBytes = 4 * (Math.ceil(7850 / 1024) + Math.ceil(7850 / 32));
  const { bytes, payload } = allocateFrame(
    {
      codec: 'one-bit',
      jobId: jobIdOf('test-softmax'),
      iteration,
      round: 0,
      senderSlot: 0xffff,
      dimension: 7850,
      blockSize: 1024,
    },
    payloadBytes,
  );
  for (let i = 0; i < payload.length; i++) payload[i] = (i * 131) & 0xff;
  return sealFrame(bytes);
}

const header: IterationHeader = { iteration: 8, learningRate: 0.5, phase: 'training' };

function codeOf(bytes: Uint8Array, limits = {}): string | undefined {
  const parsed = parseIterationFrame(bytes, limits);
  return parsed.ok ? undefined : parsed.error.code;
}

describe('iteration frame', () => {
  it('round-trips every header field and the delta, as an aligned view without copying', () => {
    fc.assert(
      fc.property(
        fc.record({
          iteration: fc.nat({ max: 0xffffffff }),
          learningRate: fc.double({ min: 1e-9, max: 10, noNaN: true }),
          phase: fc.constantFrom(...phases),
          staleness: fc.option(fc.nat({ max: MAX_STATED_STALENESS }), { nil: undefined }),
        }),
        fc.option(fc.uint8Array({ minLength: 1, maxLength: 300 }), { nil: undefined }),
        (generated, delta) => {
          const { staleness, ...rest } = generated;
          const h: IterationHeader = staleness === undefined ? rest : { ...rest, staleness };
          const bytes = encodeIterationFrame(h, delta);
          const parsed = parseIterationFrame(bytes);
          expect(parsed.ok).toBe(true);
          if (!parsed.ok) return;
          expect(parsed.value).toMatchObject(h);
          expect(parsed.value.staleness).toBe(staleness);
          if (delta === undefined) expect(parsed.value.delta).toBeUndefined();
          else {
            expect(Array.from(parsed.value.delta!)).toEqual(Array.from(delta));
            expect(parsed.value.delta!.buffer).toBe(bytes.buffer);
            expect(parsed.value.delta!.byteOffset % 8).toBe(0);
          }
        },
      ),
    );
  });

  it('carries an update frame that still parses after the trip', () => {
    const delta = deltaFrame();
    const parsed = parseIterationFrame(encodeIterationFrame(header, delta), {
      maxDeltaBytes: maxUpdateFrameBytes(7850),
    });
    expect(parsed.ok).toBe(true);
    if (!parsed.ok) return;
    const inner = parseFrame(parsed.value.delta!);
    expect(inner.ok && inner.value.header.iteration).toBe(7);
  });

  const frame = encodeIterationFrame(header, deltaFrame());

  it('rejects a truncated frame (any cut) with "truncated"', () => {
    for (let cut = 0; cut < frame.byteLength; cut += 5) {
      expect(codeOf(frame.subarray(0, cut))).toBe('truncated');
    }
  });

  it('rejects frames over the limit and trailing bytes with "oversized"', () => {
    const deltaBytes = frame.byteLength - ITERATION_HEADER_BYTES - ITERATION_SIGNATURE_BYTES;
    expect(codeOf(frame, { maxDeltaBytes: deltaBytes })).toBeUndefined();
    expect(codeOf(frame, { maxDeltaBytes: deltaBytes - 1 })).toBe('oversized');
    const padded = new Uint8Array(frame.byteLength + 8);
    padded.set(frame);
    expect(codeOf(padded)).toBe('oversized');
  });

  it('rejects a NaN or infinite learning rate with "non-finite"', () => {
    for (const value of [NaN, Infinity, -Infinity]) {
      const bad = frame.slice();
      new DataView(bad.buffer).setFloat64(16, value, true);
      expect(codeOf(bad)).toBe('non-finite');
    }
  });

  it('rejects a wrong version, a bad magic and header fields out of the schema', () => {
    const wrongVersion = frame.slice();
    wrongVersion[4] = ITERATION_FRAME_VERSION + 1;
    expect(codeOf(wrongVersion)).toBe('unsupported-version');
    const wrongMagic = frame.slice();
    wrongMagic[3]! ^= 0xff;
    expect(codeOf(wrongMagic)).toBe('bad-magic');
    // an update frame is not an iteration frame
    expect(codeOf(deltaFrame())).toBe('bad-magic');
    const badPhase = frame.slice();
    badPhase[5] = phases.length;
    expect(codeOf(badPhase)).toBe('bad-header');
    const flags = frame.slice();
    flags[6] = 2;
    expect(codeOf(flags)).toBe('bad-header');
    for (const rate of [0, -0.1, 10.5]) {
      const bad = frame.slice();
      new DataView(bad.buffer).setFloat64(16, rate, true);
      expect(codeOf(bad)).toBe('bad-header');
    }
  });

  it('refuses to encode a header outside the schema', () => {
    expect(() => encodeIterationFrame({ ...header, learningRate: NaN }, undefined)).toThrow(
      RangeError,
    );
    expect(() => encodeIterationFrame({ ...header, iteration: -1 }, undefined)).toThrow(RangeError);
    expect(() =>
      encodeIterationFrame({ ...header, phase: 'nope' as IterationHeader['phase'] }, undefined),
    ).toThrow(RangeError);
  });

  it('never throws on arbitrary bytes, with or without the magic', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.boolean(), (bytes, magic) => {
        if (magic && bytes.length >= 5) bytes.set(frame.subarray(0, 5));
        const parsed = parseIterationFrame(bytes);
        expect(typeof parsed.ok).toBe('boolean');
      }),
    );
  });

  it("states the coordinator's staleness threshold in byte 7, 255 meaning unstated", () => {
    const stated = encodeIterationFrame({ ...header, staleness: 3 }, deltaFrame());
    expect(stated[7]).toBe(3);
    const parsed = parseIterationFrame(stated);
    expect(parsed.ok && parsed.value.staleness).toBe(3);
    expect(frame[7]).toBe(0xff);
    const unstated = parseIterationFrame(frame);
    expect(unstated.ok && 'staleness' in unstated.value).toBe(false);
    for (const staleness of [-1, 1.5, MAX_STATED_STALENESS + 1])
      expect(() => encodeIterationFrame({ ...header, staleness }, undefined)).toThrow(RangeError);
  });

  it('carries the forward flag', () => {
    const relayed = parseIterationFrame(
      encodeIterationFrame(header, deltaFrame(), { forward: true }),
    );
    expect(relayed.ok && relayed.value.forward).toBe(true);
    const direct = parseIterationFrame(frame);
    expect(direct.ok && direct.value.forward).toBe(false);
  });

  it('verifies under the coordinator key only as signed: any changed byte, flag or key fails', async () => {
    const privateKey = newSigningKey();
    const key = await importIterationKey(publicKeyOf(privateKey));
    const other = await importIterationKey(publicKeyOf(newSigningKey()));
    const signedFrame = encodeIterationFrame(header, deltaFrame(), { forward: true });
    setIterationSignature(signedFrame, sign(null, signedBytes(signedFrame), privateKey));
    const verify = async (bytes: Uint8Array, k = key) => {
      const parsed = parseIterationFrame(bytes);
      return parsed.ok && (await verifyIterationFrame(parsed.value, k));
    };
    expect(await verify(signedFrame)).toBe(true);
    expect(await verify(signedFrame, other)).toBe(false);
    // unsigned (zero signature)
    expect(await verify(encodeIterationFrame(header, deltaFrame()))).toBe(false);
    // a relay clearing the forward flag, or changing the learning rate, the delta or the signature
    for (const at of [6, 16, ITERATION_HEADER_BYTES + 40, signedFrame.byteLength - 1]) {
      const changed = signedFrame.slice();
      changed[at]! ^= at === 6 ? 1 : 0x10;
      expect(await verify(changed)).toBe(false);
    }
  });

  it('refuses a key that is not 32 bytes of base64url', async () => {
    await expect(importIterationKey('abc')).rejects.toThrow(RangeError);
  });
});
