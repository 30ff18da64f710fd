import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  MAX_PEER_MESSAGE_BYTES,
  PEER_MESSAGE_HEADER_BYTES,
  decodePeerMessage,
  encodePeerMessage,
  hasPeerMessageMagic,
  type PeerMessage,
} from '../src/peer-message.ts';
import { FRAME_MAGIC } from '../src/frame.ts';

const about = { clusterId: 3, iteration: 17, proposer: 'tab-a' };
const messages: PeerMessage[] = [
  {
    type: 'confirm',
    request: {
      ...about,
      inputs: [
        { slot: 0, digest: 'a'.repeat(64) },
        { slot: 2, digest: 'b'.repeat(64) },
      ],
      aggregator: { name: 'cge', f: 1 },
    },
  },
  { type: 'vouch', ...about, digest: 'c'.repeat(64), mac: 'd'.repeat(64) },
  { type: 'abstain', ...about, reason: 'missing-register' },
];

describe('peer messages', () => {
  it('round-trip every kind and are told apart from update frames by their magic', () => {
    for (const m of messages) {
      const bytes = encodePeerMessage(m);
      expect(hasPeerMessageMagic(bytes)).toBe(true);
      expect(decodePeerMessage(bytes)).toEqual({ ok: true, value: m });
    }
    const update = new Uint8Array(32);
    new DataView(update.buffer).setUint32(0, FRAME_MAGIC, true);
    expect(hasPeerMessageMagic(update)).toBe(false);
    expect(decodePeerMessage(update)).toMatchObject({ ok: false, error: { code: 'bad-magic' } });
  });

  it('refuse what is not one, with a typed code, and never throw', () => {
    const good = encodePeerMessage(messages[1]!);
    const withJson = (json: string) => {
      const body = new TextEncoder().encode(json);
      const bytes = new Uint8Array(PEER_MESSAGE_HEADER_BYTES + body.byteLength);
      bytes.set(good.subarray(0, PEER_MESSAGE_HEADER_BYTES));
      bytes.set(body, PEER_MESSAGE_HEADER_BYTES);
      return bytes;
    };
    const code = (bytes: Uint8Array) => {
      const r = decodePeerMessage(bytes);
      return r.ok ? 'ok' : r.error.code;
    };
    expect(code(good.subarray(0, 5))).toBe('truncated');
    const newer = good.slice();
    newer[4] = 2;
    expect(code(newer)).toBe('unsupported-version');
    expect(code(withJson('{not json'))).toBe('invalid-message');
    expect(code(withJson('{"type":"vouch","clusterId":-1}'))).toBe('invalid-message');
    // a voucher with a field more, or a MAC that is not 64 hex digits
    expect(code(withJson(JSON.stringify({ ...messages[1], extra: 1 })))).toBe('invalid-message');
    expect(code(withJson(JSON.stringify({ ...messages[1], mac: 'zz' })))).toBe('invalid-message');
    expect(code(new Uint8Array(MAX_PEER_MESSAGE_BYTES + 1))).toBe('oversized');
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (tail) => {
        const bytes = new Uint8Array(PEER_MESSAGE_HEADER_BYTES + tail.byteLength);
        bytes.set(good.subarray(0, PEER_MESSAGE_HEADER_BYTES));
        bytes.set(tail, PEER_MESSAGE_HEADER_BYTES);
        expect(() => decodePeerMessage(bytes)).not.toThrow();
      }),
    );
  });
});
