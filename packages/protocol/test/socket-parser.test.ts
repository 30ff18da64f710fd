import { describe, expect, it } from 'vitest';
import { Decoder, Encoder, PacketType, type Packet } from 'socket.io-parser';
import { encodeIterationFrame } from '../src/index.ts';
import {
  ITERATION_EVENT,
  WORKER_NAMESPACE,
  coordinatorParser,
  tabParser,
} from '../src/socket-parser.ts';

const frame = Buffer.from(
  encodeIterationFrame(
    { iteration: 3, learningRate: 0.1, phase: 'training' },
    Uint8Array.from({ length: 64 }, (_, i) => i),
  ),
);

const iterationPacket = (data: unknown = frame, extra: Partial<Packet> = {}): Packet => ({
  type: PacketType.EVENT,
  nsp: WORKER_NAMESPACE,
  data: [ITERATION_EVENT, data],
  ...extra,
});

/** Feeds encoded chunks to a decoder; returns the packets it emitted. */
function decodeAll(decoder: Decoder, chunks: unknown[]): Packet[] {
  const out: Packet[] = [];
  decoder.on('decoded', (packet: Packet) => out.push(packet));
  for (const chunk of chunks) decoder.add(chunk);
  return out;
}

describe('coordinator parser', () => {
  it('encodes an iteration frame as the very same bytes, one binary message', () => {
    const encoded = new coordinatorParser.Encoder().encode(iterationPacket());
    expect(encoded).toHaveLength(1);
    expect(encoded[0]).toBe(frame);
    // socket.io's parser: a JSON packet with a placeholder, then the attachment
    const plain = new Encoder().encode(iterationPacket());
    expect(plain).toHaveLength(2);
    expect(typeof plain[0]).toBe('string');
  });

  it('leaves every other packet to socket.io, byte for byte', () => {
    const packets: Packet[] = [
      { type: PacketType.EVENT, nsp: WORKER_NAMESPACE, data: ['phase', 'training'] },
      { type: PacketType.EVENT, nsp: WORKER_NAMESPACE, data: ['signal', { from: 'a', data: {} }] },
      { type: PacketType.EVENT, nsp: '/dashboard', data: ['status', { tabs: 3 }] },
      iterationPacket(frame, { nsp: '/dashboard' }), // another namespace
      iterationPacket(frame, { id: 4 }), // with an ack
      iterationPacket(Buffer.from('not a frame')), // not an iteration frame
      { type: PacketType.EVENT, nsp: WORKER_NAMESPACE, data: [ITERATION_EVENT, frame, 1] },
      { type: PacketType.CONNECT, nsp: WORKER_NAMESPACE, data: { sid: 'x' } },
    ];
    for (const packet of packets) {
      const ours = new coordinatorParser.Encoder().encode(structuredClone(packet));
      const theirs = new Encoder().encode(structuredClone(packet));
      expect(ours).toEqual(theirs);
    }
  });

  it('does not accept an iteration frame from a tab (socket.io refuses a bare attachment)', () => {
    expect(() => new coordinatorParser.Decoder().add(frame)).toThrow(/not reconstructing/);
  });
});

describe('tab parser', () => {
  it('decodes the bare frame as the worker namespace iteration event (Buffer or ArrayBuffer)', () => {
    const [encoded] = new coordinatorParser.Encoder().encode(iterationPacket());
    const arrayBuffer = frame.buffer.slice(frame.byteOffset, frame.byteOffset + frame.byteLength);
    for (const chunk of [encoded, arrayBuffer]) {
      const [packet, ...rest] = decodeAll(new tabParser.Decoder(), [chunk]);
      expect(rest).toHaveLength(0);
      expect(packet).toMatchObject({ type: PacketType.EVENT, nsp: WORKER_NAMESPACE });
      const [event, bytes] = packet!.data as [string, Uint8Array];
      expect(event).toBe(ITERATION_EVENT);
      expect(bytes).toBeInstanceOf(Uint8Array);
      expect(Array.from(bytes)).toEqual(Array.from(frame));
    }
  });

  it('still decodes socket.io packets, also an attachment that starts like a frame', () => {
    const packets: Packet[] = [
      { type: PacketType.EVENT, nsp: WORKER_NAMESPACE, data: ['phase', 'paused'] },
      // a binary event whose attachment is an iteration frame: the attachment path wins
      iterationPacket(frame, { id: 9 }),
      { type: PacketType.EVENT, nsp: WORKER_NAMESPACE, data: ['x', frame, frame] },
    ];
    for (const packet of packets) {
      const chunks = new Encoder().encode(structuredClone(packet));
      const decoded = decodeAll(new tabParser.Decoder(), chunks);
      expect(decoded).toHaveLength(1);
      const expected = decodeAll(new Decoder(), new Encoder().encode(structuredClone(packet)));
      expect(decoded[0]).toEqual(expected[0]);
    }
  });

  it('refuses other bare binary messages as socket.io does', () => {
    expect(() => new tabParser.Decoder().add(Buffer.from('SGUF....'))).toThrow(
      /not reconstructing/,
    );
  });
});
