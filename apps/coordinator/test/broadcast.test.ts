/**
 * The iteration broadcast: one binary WebSocket message per tab per iteration, carrying the
 * iteration frame (packages/protocol iteration-frame.ts), encoded once for all tabs.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Server } from 'socket.io';
import { io, type Socket } from 'socket.io-client';
import {
  encodeIterationFrame,
  hasIterationMagic,
  parseFrame,
  parseIterationFrame,
} from '@swarmgrad/protocol';
import { coordinatorParser, tabParser, WORKER_NAMESPACE } from '@swarmgrad/protocol/socket-parser';
import type { Coordinator } from '../src/index.ts';
import { FakeWorker } from '@swarmgrad/test-support/fake-worker';
import { startCoordinator, waitFor } from '@swarmgrad/test-support/harness';

const closers: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  vi.restoreAllMocks();
  for (const close of closers.splice(0)) await close();
});

/** What a client's engine.io socket received as `message` packets (one per WebSocket message). */
function recordMessages(socket: Socket): { data: string | Uint8Array }[] {
  const messages: { data: string | Uint8Array }[] = [];
  const attach = () =>
    socket.io.engine.on('packet', (packet: { type: string; data?: unknown }) => {
      if (packet.type !== 'message') return;
      const data = packet.data;
      messages.push({
        data:
          typeof data === 'string'
            ? data
            : data instanceof ArrayBuffer
              ? new Uint8Array(data)
              : (data as Uint8Array),
      });
    });
  if (socket.io.engine) attach();
  else socket.io.once('open', attach);
  return messages;
}

describe('iteration broadcast', () => {
  it('a socket.io broadcast of an iteration frame is encoded once and is one message per tab', async () => {
    for (const parsers of ['ours', "socket.io's"] as const) {
      const http = createServer();
      const server = new Server(http, {
        transports: ['websocket'],
        ...(parsers === 'ours' ? { parser: coordinatorParser } : {}),
      });
      await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
      const url = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
      const clients = Array.from({ length: 3 }, () =>
        io(`${url}${WORKER_NAMESPACE}`, {
          transports: ['websocket'],
          forceNew: true,
          reconnection: false,
          ...(parsers === 'ours' ? { parser: tabParser } : {}),
        }),
      );
      closers.push(async () => {
        for (const c of clients) c.disconnect();
        await new Promise<void>((resolve) => void server.close(() => resolve()));
      });
      const messages = clients.map(recordMessages);
      const received = clients.map(() => [] as Uint8Array[]);
      clients.forEach((c, i) => c.on('iteration', (frame: Uint8Array) => received[i]!.push(frame)));
      await waitFor(
        () => server.of(WORKER_NAMESPACE).sockets.size === clients.length,
        'three connections',
      );
      await waitFor(() => clients.every((c) => c.connected), 'clients connected');

      for (const m of messages) m.length = 0; // the namespace's connect packets
      // the server's one encoder (socket.io-adapter encodes a broadcast with it)
      const encode = vi.spyOn(server.encoder, 'encode');
      const frame = encodeIterationFrame(
        { iteration: 12, learningRate: 0.25, phase: 'training' },
        Uint8Array.from({ length: 1000 }, (_, i) => (i * 7) & 0xff),
      );
      server.of(WORKER_NAMESPACE).local.emit('iteration', Buffer.from(frame));
      await waitFor(() => received.every((r) => r.length === 1), 'the iteration everywhere');
      const encodings = encode.mock.calls.length;
      encode.mockRestore();

      // encoded once for the three sockets
      expect(encodings).toBe(1);
      for (const r of received) expect(Array.from(r[0]!)).toEqual(Array.from(frame));
      if (parsers === 'ours') {
        // one binary message per tab: the frame itself
        for (const m of messages) {
          expect(m).toHaveLength(1);
          expect(typeof m[0]!.data).not.toBe('string');
          expect(hasIterationMagic(m[0]!.data as Uint8Array)).toBe(true);
        }
      } else {
        // socket.io's own encoding: a JSON packet with a placeholder, then the attachment
        for (const m of messages) {
          expect(m).toHaveLength(2);
          expect(m[0]!.data).toContain('"_placeholder":true');
        }
      }
    }
  });

  it('tabs of a training coordinator get each iteration as one binary message', async () => {
    const coordinator: Coordinator = await startCoordinator({}, { minTabs: 2 });
    const workers: FakeWorker[] = [];
    closers.push(async () => {
      for (const w of workers) w.close();
      await coordinator.close({ checkpoint: false });
    });
    for (let i = 0; i < 2; i++) workers.push(await FakeWorker.connect({ url: coordinator.url }));
    const messages = workers.map((w) => recordMessages(w.socket));
    await waitFor(() => coordinator.iteration >= 3, 'three iterations');
    const from = coordinator.iteration;
    await waitFor(() => workers.every((w) => w.iteration >= from + 5), 'five more iterations');

    for (const [index, received] of messages.entries()) {
      const binary = received.filter((m) => typeof m.data !== 'string');
      const iterations = binary
        .map((m) => parseIterationFrame(m.data as Uint8Array))
        .map((parsed) => {
          expect(parsed.ok).toBe(true);
          return parsed.ok ? parsed.value : undefined;
        });
      const numbers = iterations.map((start) => start!.iteration);
      // every iteration the worker moved through came in one binary message, in order
      for (let it = from + 1; it <= workers[index]!.iteration; it++)
        expect(numbers.filter((n) => n === it)).toHaveLength(1);
      for (const start of iterations) {
        expect(start!.phase).toBe('training');
        expect(start!.learningRate).toBe(coordinator.status().learningRate);
        const delta = parseFrame(new Uint8Array(start!.delta!));
        expect(delta.ok && delta.value.header.iteration).toBe(start!.iteration);
      }
      // and no text message carries an iteration (no JSON header beside the bytes)
      expect(
        received.filter((m) => typeof m.data === 'string' && m.data.includes('["iteration"')),
      ).toEqual([]);
    }
  });
});
