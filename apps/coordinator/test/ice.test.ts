/**
 * ICE servers in the welcome (issue 14): the TURN REST credential scheme, the operator's
 * options checked before start, and a real coordinator handing each tab its own short-lived
 * credentials in the welcome, valid against the protocol schema the tab validates with.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { io, type Socket } from 'socket.io-client';
import { iceServersSchema, PROTOCOL_VERSION, type Welcome } from '@swarmgrad/protocol';
import type { Coordinator } from '../src/index.ts';
import { CoordinatorClient, silentLogger, systemClock } from '@swarmgrad/worker';
import {
  checkIceOptions,
  iceRefreshMs,
  iceServersFor,
  IceConfigError,
  turnCredentials,
  welcomeIce,
} from '../src/ice.ts';
import { startCoordinator, waitFor } from '@swarmgrad/test-support/harness';

describe('TURN REST credentials', () => {
  it('username is <expiry>:<tab>, credential base64(HMAC-SHA1(secret, username))', () => {
    // reference value from `printf '1700003600:tab-1' | openssl dgst -sha1 -hmac north -binary | base64`
    const c = turnCredentials('north', 'tab-1', 3600, 1_700_000_000_000);
    expect(c.username).toBe('1700003600:tab-1');
    expect(c.credential).toBe('SDc6cggWg5BS1eYoraYw3gOmI4E=');
    expect(c.expiresAt).toBe(1_700_003_600);
  });

  it('differs per tab and per secret', () => {
    const a = turnCredentials('s', 'tab-a', 60, 0).credential;
    expect(turnCredentials('s', 'tab-b', 60, 0).credential).not.toBe(a);
    expect(turnCredentials('t', 'tab-a', 60, 0).credential).not.toBe(a);
  });

  it('lists STUN as given and TURN with credentials; nothing without options', () => {
    const servers = iceServersFor(
      {
        stun: ['stun:stun.example.org:3478'],
        turn: ['turn:turn.example.org:3478?transport=udp'],
        turnSecret: 'x',
        turnTtlSeconds: 600,
      },
      'tab-9',
      10_000,
    );
    expect(servers).toEqual([
      { urls: ['stun:stun.example.org:3478'] },
      {
        urls: ['turn:turn.example.org:3478?transport=udp'],
        username: '610:tab-9',
        credential: turnCredentials('x', 'tab-9', 600, 10_000).credential,
      },
    ]);
    expect(iceServersSchema.safeParse(servers).success).toBe(true);
    expect(iceServersFor(undefined, 'tab-9')).toEqual([]);
    expect(welcomeIce(undefined, 'tab-9')).toEqual({});
  });
});

describe('checkIceOptions', () => {
  it('refuses TURN without a secret (no static password in the page)', () => {
    expect(() => checkIceOptions({ stun: [], turn: ['turn:h:3478'] })).toThrow(IceConfigError);
    expect(() => checkIceOptions({ stun: [], turn: ['turn:h:3478'] })).toThrow(/secret/);
  });
  it('refuses URLs of the wrong scheme and lifetimes out of range', () => {
    expect(() => checkIceOptions({ stun: ['http://h'], turn: [] })).toThrow(/stun: URL/);
    expect(() => checkIceOptions({ stun: [], turn: ['stun:h'], turnSecret: 's' })).toThrow(
      /turn: URL/,
    );
    expect(() =>
      checkIceOptions({ stun: [], turn: ['turn:h'], turnSecret: 's', turnTtlSeconds: 5 }),
    ).toThrow(/lifetime/);
    expect(() =>
      checkIceOptions({ stun: [], turn: ['turn:h'], turnSecret: 's', refreshSeconds: 86_400 }),
    ).toThrow(/refresh must be within the lifetime/);
  });
  it('accepts a valid configuration', () => {
    const options = {
      stun: ['stun:h:3478'],
      turn: ['turns:h:5349?transport=tcp'],
      turnSecret: 's',
    };
    expect(checkIceOptions(options)).toBe(options);
  });
});

describe('iceServersSchema (what a tab accepts)', () => {
  it('refuses other schemes, extra fields and oversized lists', () => {
    expect(iceServersSchema.safeParse([{ urls: 'javascript:alert(1)' }]).success).toBe(false);
    expect(iceServersSchema.safeParse([{ urls: 'stun:h', extra: 1 }]).success).toBe(false);
    expect(iceServersSchema.safeParse([{ urls: [] }]).success).toBe(false);
    expect(
      iceServersSchema.safeParse(Array.from({ length: 17 }, () => ({ urls: 'stun:h' }))).success,
    ).toBe(false);
    expect(
      iceServersSchema.safeParse([{ urls: 'turn:h', username: 'u', credential: 'c' }]).success,
    ).toBe(true);
  });
});

describe('a coordinator with ICE servers', () => {
  let coordinator: Coordinator;
  const sockets: Socket[] = [];
  const secret = 'integration-secret';

  beforeAll(async () => {
    coordinator = await startCoordinator(
      {},
      {
        ice: checkIceOptions({
          stun: ['stun:192.0.2.1:3478'],
          turn: ['turn:192.0.2.1:3478?transport=udp', 'turn:192.0.2.1:3478?transport=tcp'],
          turnSecret: secret,
          turnTtlSeconds: 900,
        }),
      },
    );
  });
  afterAll(async () => {
    for (const s of sockets) s.disconnect();
    await coordinator?.close();
  });

  async function hello(): Promise<Welcome> {
    const socket = io(`${coordinator.url}/worker`, { transports: ['websocket'] });
    sockets.push(socket);
    const answer = (await socket
      .timeout(5000)
      .emitWithAck('hello', { protocolVersion: PROTOCOL_VERSION, kind: 'node' })) as {
      ok: boolean;
      value: Welcome;
    };
    expect(answer.ok).toBe(true);
    return answer.value;
  }

  it('gives each tab its own credentials, valid for the configured lifetime', async () => {
    const before = Math.floor(Date.now() / 1000);
    const a = await hello();
    const b = await hello();
    const after = Math.floor(Date.now() / 1000);
    for (const welcome of [a, b]) {
      const servers = iceServersSchema.parse(welcome.iceServers);
      expect(servers[0]).toEqual({ urls: ['stun:192.0.2.1:3478'] });
      const turn = servers[1]!;
      expect(turn.urls).toEqual([
        'turn:192.0.2.1:3478?transport=udp',
        'turn:192.0.2.1:3478?transport=tcp',
      ]);
      const [expiry, tab] = turn.username!.split(':');
      expect(tab).toBe(welcome.tabId);
      expect(Number(expiry)).toBeGreaterThanOrEqual(before + 900);
      expect(Number(expiry)).toBeLessThanOrEqual(after + 900);
      // what coturn recomputes from the username with the shared secret
      expect(turn.credential).toBe(
        turnCredentials(secret, welcome.tabId, 900, Number(expiry) * 1000 - 900_000).credential,
      );
      // the secret itself never reaches a tab
      expect(JSON.stringify(welcome)).not.toContain(secret);
    }
    expect(a.iceServers![1]!.username).not.toBe(b.iceServers![1]!.username);
  });
});

describe('TURN credentials while a tab stays connected', () => {
  it('half the lifetime by default; none without TURN', () => {
    expect(iceRefreshMs({ stun: [], turn: ['turn:h'], turnSecret: 's', turnTtlSeconds: 600 })).toBe(
      300_000,
    );
    expect(iceRefreshMs({ stun: ['stun:h'], turn: [] })).toBeUndefined();
    expect(iceRefreshMs(undefined)).toBeUndefined();
  });

  it('a connected tab gets fresh credentials every refresh, validated and later-expiring', async () => {
    const secret = 'refresh-secret';
    const coordinator = await startCoordinator(
      {},
      {
        ice: checkIceOptions({
          stun: [],
          turn: ['turn:192.0.2.1:3478?transport=udp'],
          turnSecret: secret,
          turnTtlSeconds: 900,
          refreshSeconds: 1,
        }),
      },
    );
    // the tab's own client: what it accepts is what the protocol schema lets through
    const client = new CoordinatorClient({
      urls: [coordinator.url],
      hello: () => ({ kind: 'node', backend: 'none' }),
      logger: silentLogger,
      clock: systemClock,
      reconnection: false,
      fetch: () => new Promise<Response>(() => undefined),
    });
    try {
      const refreshed: string[] = [];
      client.on('iceServers', (servers) => refreshed.push(servers[0]!.username!));
      const welcome = await client.start();
      const expiryOf = (username: string) => Number(username.split(':')[0]);
      const first = welcome.iceServers![0]!.username!;
      await waitFor(() => refreshed.length >= 2, 'two refreshes', 10_000);
      expect(client.invalidMessages).toBe(0);
      for (const username of refreshed) {
        expect(username.split(':')[1]).toBe(welcome.tabId);
        expect(expiryOf(username)).toBeGreaterThan(expiryOf(first));
      }
      expect(expiryOf(refreshed[1]!)).toBeGreaterThan(expiryOf(refreshed[0]!));
      // the tab's current list is the fresh one
      expect(client.welcome?.iceServers?.[0]?.username).toBe(refreshed.at(-1));
    } finally {
      client.close();
      await coordinator.close();
    }
  });
});
