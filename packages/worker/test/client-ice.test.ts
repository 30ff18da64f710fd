/**
 * The ICE servers in a welcome reach RTCPeerConnection only when they pass the protocol's
 * schema: a real socket.io server plays the coordinator and answers the hello with a welcome.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Server } from 'socket.io';
import { defaultJob, type Welcome } from '@swarmgrad/protocol';
import { CoordinatorClient } from '../src/client.ts';
import { systemClock, silentLogger } from '../src/runtime.ts';

const closers: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0)) await close();
});

async function welcomeWith(iceServers: unknown): Promise<Welcome> {
  const http = createServer();
  const io = new Server(http, { transports: ['websocket'] });
  io.of('/worker').on('connection', (socket) => {
    socket.on('hello', (_hello: unknown, ack: (answer: unknown) => void) =>
      ack({
        ok: true,
        value: {
          tabId: 'tab-ice',
          resumeToken: 'r',
          job: defaultJob,
          jobId: 1,
          dimension: 10,
          iteration: 0,
          phase: 'waiting',
          learningRate: 0.1,
          paramsUrl: '/api/params',
          manifestUrl: '/data/manifest.json',
          iceServers,
        },
      }),
    );
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  closers.push(() => new Promise<void>((resolve) => void io.close(() => resolve())));
  const client = new CoordinatorClient({
    urls: [`http://127.0.0.1:${(http.address() as AddressInfo).port}`],
    hello: () => ({ kind: 'node', backend: 'none' }),
    logger: silentLogger,
    clock: systemClock,
    reconnection: false,
    // the base download is not what this test is about
    fetch: () => new Promise<Response>(() => undefined),
  });
  closers.unshift(() => client.close());
  return client.start();
}

describe('ICE servers in the welcome', () => {
  it('keeps well-formed STUN/TURN entries', async () => {
    const servers = [
      { urls: ['stun:192.0.2.1:3478'] },
      { urls: 'turn:192.0.2.1:3478?transport=udp', username: '1:tab-ice', credential: 'Y3JlZA==' },
    ];
    expect((await welcomeWith(servers)).iceServers).toEqual(servers);
  });

  it('drops a malformed list instead of handing it to RTCPeerConnection', async () => {
    const welcome = await welcomeWith([{ urls: 'http://198.51.100.1/', username: 'u' }]);
    expect(welcome.iceServers).toBeUndefined();
    expect(welcome.tabId).toBe('tab-ice');
  });
});
