/**
 * A real socket.io server playing the coordinator for one CoordinatorClient: it answers the
 * hello with a welcome (a valid one, with `welcome` fields replaced) and hands the test the
 * server side of the connection, so a test can send the tab any message, well-formed or not.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Server, type Socket } from 'socket.io';
import { defaultJob } from '@swarmgrad/protocol';
import { coordinatorParser } from '@swarmgrad/protocol/socket-parser';
import { CoordinatorClient } from '../../src/client.ts';
import { systemClock, silentLogger } from '../../src/runtime.ts';

export const validWelcome = {
  tabId: 'tab-fake',
  resumeToken: 'r',
  job: defaultJob,
  jobId: 1,
  dimension: 10,
  iteration: 0,
  phase: 'waiting',
  learningRate: 0.1,
  paramsUrl: '/api/params',
  manifestUrl: '/data/manifest.json',
};

export interface FakeCoordinator {
  client: CoordinatorClient;
  /** The server side of the client's connection, once it said hello. */
  socket: Promise<Socket>;
  close(): Promise<void>;
}

export async function fakeCoordinator(
  welcome: Record<string, unknown> = {},
  options: {
    fetch?: typeof fetch;
    minStallMs?: number;
    /** Runs right after the welcome is sent, in the same tick (messages that follow it). */
    afterWelcome?: (socket: Socket) => void;
  } = {},
): Promise<FakeCoordinator> {
  const http = createServer();
  const io = new Server(http, { transports: ['websocket'], parser: coordinatorParser });
  let connected: (socket: Socket) => void = () => undefined;
  const socket = new Promise<Socket>((resolve) => (connected = resolve));
  io.of('/worker').on('connection', (s) => {
    s.on('hello', (_hello: unknown, ack: (answer: unknown) => void) => {
      ack({ ok: true, value: { ...validWelcome, ...welcome } });
      options.afterWelcome?.(s);
      connected(s);
    });
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  const client = new CoordinatorClient({
    urls: [`http://127.0.0.1:${(http.address() as AddressInfo).port}`],
    hello: () => ({ kind: 'node', backend: 'none' }),
    logger: silentLogger,
    clock: systemClock,
    reconnection: false,
    // the base download is not what most of these tests are about
    fetch: options.fetch ?? (() => new Promise<Response>(() => undefined)),
    ...(options.minStallMs === undefined ? {} : { minStallMs: options.minStallMs }),
  });
  return {
    client,
    socket,
    close: async () => {
      client.close();
      await new Promise<void>((resolve) => void io.close(() => resolve()));
    },
  };
}
