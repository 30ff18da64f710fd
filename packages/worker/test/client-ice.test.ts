/**
 * The ICE servers in a welcome reach RTCPeerConnection only when they pass the protocol's
 * schema: a real socket.io server plays the coordinator and answers the hello with a welcome.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Welcome } from '@swarmgrad/protocol';
import { fakeCoordinator } from './support/fake-coordinator.ts';

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0)) await close();
});

async function welcomeWith(iceServers: unknown): Promise<Welcome> {
  const fake = await fakeCoordinator({ tabId: 'tab-ice', iceServers });
  closers.push(fake.close);
  return fake.client.start();
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
