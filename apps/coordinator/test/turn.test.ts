/**
 * Issue 14: the TURN credentials a coordinator hands out are accepted by a real TURN server
 * (Debian's coturn with `use-auth-secret`, started here on free ports), and refused once
 * expired or when made with another secret. The credentials come from a real coordinator's
 * welcome over socket.io; the TURN client is a minimal RFC 5766 Allocate (packages/test-support/src/turn.ts).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { io, type Socket } from 'socket.io-client';
import { iceServersSchema, PROTOCOL_VERSION, type Welcome } from '@swarmgrad/protocol';
import type { Coordinator } from '../src/index.ts';
import { checkIceOptions, turnCredentials } from '../src/ice.ts';
import { runCli, startCoordinator, tempDir } from '@swarmgrad/test-support/harness';
import { allocate, Coturn } from '@swarmgrad/test-support/turn';

describe('TURN credentials against coturn', () => {
  let coturn: Coturn;
  let coordinator: Coordinator;
  let socket: Socket | undefined;

  beforeAll(async () => {
    // the first run on a fresh machine also installs coturn (apt-get)
    coturn = await Coturn.start();
    coordinator = await startCoordinator(
      {},
      {
        ice: checkIceOptions({
          stun: [`stun:${coturn.host}:${coturn.port}`],
          turn: [`turn:${coturn.host}:${coturn.port}?transport=udp`],
          turnSecret: coturn.secret,
          turnTtlSeconds: 120,
        }),
      },
    );
  }, 180_000);

  afterAll(async () => {
    socket?.disconnect();
    await coordinator?.close();
    await coturn?.stop();
  });

  it('allocates a relay with the credentials from a welcome', async () => {
    socket = io(`${coordinator.url}/worker`, { transports: ['websocket'] });
    const answer = (await socket
      .timeout(5000)
      .emitWithAck('hello', { protocolVersion: PROTOCOL_VERSION, kind: 'node' })) as {
      ok: boolean;
      value: Welcome;
    };
    expect(answer.ok).toBe(true);
    const turn = iceServersSchema.parse(answer.value.iceServers).find((s) => s.username);
    expect(turn?.username).toMatch(new RegExp(`^\\d+:${answer.value.tabId}$`));
    const result = await allocate(coturn, {
      username: turn!.username!,
      credential: turn!.credential!,
    });
    expect(result.error, `${result.reason ?? ''}\n${coturn.output.slice(-2000)}`).toBeUndefined();
    expect(result.relayed?.address).toBe(coturn.host);
    expect(result.relayed!.port).toBeGreaterThan(0);
  });

  it('refuses an expired credential (401)', async () => {
    // made correctly with the right secret, but its expiry passed a minute ago
    const expired = turnCredentials(coturn.secret, 'tab-late', 60, Date.now() - 120_000);
    const result = await allocate(coturn, expired);
    expect(result.relayed).toBeUndefined();
    expect(result.error).toBe(401);
    // the same tab with a live expiry is accepted: only the time differs
    const fresh = turnCredentials(coturn.secret, 'tab-late', 60);
    expect((await allocate(coturn, fresh)).relayed).toBeDefined();
  });

  it('refuses a credential made with another secret (401)', async () => {
    const forged = turnCredentials('not-the-secret', 'tab-forged', 600);
    const result = await allocate(coturn, forged);
    expect(result.relayed).toBeUndefined();
    expect(result.error).toBe(401);
  });
});

describe('swarmgrad serve ICE flags', () => {
  it('refuses TURN servers without a shared secret', async () => {
    const result = await runCli([
      'serve',
      '--port',
      '0',
      '--data-dir',
      await tempDir(),
      '--turn',
      'turn:192.0.2.1:3478',
    ]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/shared secret/);
  }, 60_000);
});
