/**
 * socket.io parsers that carry the iteration frame (iteration-frame.ts) as one binary WebSocket
 * message. socket.io's own parser sends an event with a binary argument as two messages — a
 * JSON packet with a placeholder, then the bytes as an attachment — so a broadcast of one
 * iteration costs two writes per tab (and its pre-encoded-frame shortcut only applies to a
 * single text packet). Here:
 *
 * - coordinatorParser (the server's `parser` option): `emit('iteration', frame)` on the worker
 *   namespace, with `frame` an iteration frame and no ack, is encoded as the frame's bytes alone.
 *   A broadcast encodes once (socket.io-adapter encodes a packet once per broadcast and hands
 *   the same encoded buffers to every socket), so every tab gets the same Buffer in one message.
 *   Everything else is encoded by socket.io's parser, unchanged; incoming packets are decoded by
 *   it unchanged too (a tab cannot send an iteration frame).
 * - tabParser (the tab's `parser` option): a binary message that arrives while no attachment is
 *   expected and starts with the iteration frame's magic is the `iteration` event of the worker
 *   namespace, its argument the bytes as a Uint8Array (parseIterationFrame validates them). Any
 *   other message goes to socket.io's parser, unchanged.
 *
 * Both sides must use them: a client on socket.io's default parser fails on the bare binary
 * message ("got binary data when not reconstructing a packet") and reconnects. Clients that never
 * join the worker namespace (the dashboard) receive no iteration frame and need nothing.
 */
import { Decoder, Encoder, PacketType, protocol, type Packet } from 'socket.io-parser';
import { hasIterationMagic } from './iteration-frame.ts';

/** The socket.io namespace of tabs (workers). */
export const WORKER_NAMESPACE = '/worker';
/** The event that carries an iteration frame. */
export const ITERATION_EVENT = 'iteration';

function asBytes(chunk: unknown): Uint8Array | undefined {
  if (chunk instanceof Uint8Array) return chunk; // Node's Buffer too
  if (chunk instanceof ArrayBuffer) return new Uint8Array(chunk);
  if (ArrayBuffer.isView(chunk))
    return new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  return undefined;
}

class CoordinatorEncoder extends Encoder {
  override encode(packet: Packet): unknown[] {
    if (
      packet.type === PacketType.EVENT &&
      packet.nsp === WORKER_NAMESPACE &&
      packet.id === undefined &&
      Array.isArray(packet.data) &&
      packet.data.length === 2 &&
      packet.data[0] === ITERATION_EVENT
    ) {
      const bytes = asBytes(packet.data[1]);
      if (bytes !== undefined && hasIterationMagic(bytes)) return [packet.data[1]];
    }
    return super.encode(packet);
  }
}

class TabDecoder extends Decoder {
  override add(chunk: unknown): void {
    // socket.io-parser keeps the packet whose attachments it awaits in `reconstructor`: a
    // binary message then is one of those attachments, whatever its first bytes
    const reconstructing = (this as unknown as { reconstructor: unknown }).reconstructor;
    if (!reconstructing && typeof chunk !== 'string') {
      const bytes = asBytes(chunk);
      if (bytes !== undefined && hasIterationMagic(bytes)) {
        this.emitReserved('decoded', {
          type: PacketType.EVENT,
          nsp: WORKER_NAMESPACE,
          data: [ITERATION_EVENT, bytes],
        });
        return;
      }
    }
    super.add(chunk);
  }
}

/** The coordinator's socket.io parser (`new Server(http, { parser: coordinatorParser })`). */
export const coordinatorParser = { protocol, PacketType, Encoder: CoordinatorEncoder, Decoder };

/** A tab's socket.io parser (`io(url, { parser: tabParser })`). */
export const tabParser = { protocol, PacketType, Encoder, Decoder: TabDecoder };
