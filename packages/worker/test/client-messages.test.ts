/**
 * Every message the coordinator sends a tab is checked against its protocol schema
 * (serverMessageSchemas): a real socket.io server plays the coordinator and sends the tab
 * malformed messages of each kind, then well-formed ones; only the latter reach the tab.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Socket } from 'socket.io';
import type { ConfirmRequest, Phase, Placement, WireError } from '@swarmgrad/protocol';
import { waitFor } from '@swarmgrad/test-support/harness';
import { fakeCoordinator, validWelcome } from './support/fake-coordinator.ts';

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0)) await close();
});

const placement: Placement = {
  clusterId: 0,
  slot: 1,
  peers: [{ tabId: 'peer-a', slot: 0 }],
  partitions: [{ local: 1, global: [1], coefficient: 1 }],
  clusterSize: 2,
  redundancy: 0,
  scheme: 'cyclic',
  codeSeed: 7,
  aggregator: { name: 'mean', f: 0 },
  proposer: false,
  clusterCount: 1,
};
const confirm: ConfirmRequest = {
  clusterId: 0,
  iteration: 3,
  proposer: 'peer-a',
  inputs: [{ slot: 0, digest: 'a'.repeat(64) }],
  aggregator: { name: 'mean', f: 0 },
};

describe('the welcome and what follows it', () => {
  it('a phase sent right after the welcome is the phase the tab keeps', async () => {
    // the coordinator's welcome said 'waiting' and its next message said 'training' (a tab
    // seated after a restart); the tab applied the welcome after an await, so the older phase
    // overwrote the newer one and it never computed (coordinator-restart.test.ts)
    for (let run = 0; run < 10; run++) {
      const fake = await fakeCoordinator(
        { phase: 'waiting' },
        { afterWelcome: (s) => s.emit('phase', 'training') },
      );
      closers.push(fake.close);
      await fake.client.start();
      await fake.socket;
      await waitFor(() => fake.client.phase === 'training', 'the phase after the welcome', 5000);
      // and it stays (nothing applies the welcome's phase late)
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(fake.client.phase).toBe('training');
      await fake.close();
      closers.pop();
    }
  });
});

describe('messages from the coordinator', () => {
  it('drops each malformed message, counts it, and delivers the well-formed ones', async () => {
    const fake = await fakeCoordinator();
    closers.push(fake.close);
    const { client } = fake;
    const seen = {
      placements: [] as Placement[],
      confirms: [] as ConfirmRequest[],
      phases: [] as Phase[],
      rejections: [] as WireError[],
      relayPeers: [] as string[][],
      frames: [] as { from: string; bytes: number[] }[],
      signals: [] as string[],
    };
    client.on('placement', (p) => seen.placements.push(p));
    client.on('confirm', (c) => seen.confirms.push(c));
    client.on('phase', (p) => seen.phases.push(p));
    client.on('rejected', (e) => seen.rejections.push(e));
    client.on('relayPeers', (peers) => seen.relayPeers.push(peers));
    client.on('relayedFrame', (from, frame) => seen.frames.push({ from, bytes: [...frame] }));
    client.on('signal', (m) => seen.signals.push(m.from));
    await client.start();
    const socket: Socket = await fake.socket;

    const malformed: [string, unknown][] = [
      ['placement', { ...placement, slot: -1 }],
      ['placement', { ...placement, peers: [{ tabId: 42, slot: 0 }] }],
      ['placement', { ...placement, aggregator: { name: 'bogus', f: 0 } }],
      ['placement', { ...placement, partitions: [{ local: 0, global: [0], coefficient: NaN }] }],
      ['confirm', { ...confirm, inputs: [{ slot: 0, digest: 'not-hex' }] }],
      ['phase', 'exploding'],
      ['rejected', { code: 'no-such-code', message: 'x', event: 'hello' }],
      ['relay-peers', { peers: ['ok', 17] }],
      ['relayed-frame', { from: 'peer-a', frame: 'not bytes' }],
      ['signal', { data: {} }],
      ['placement', null],
    ];
    for (const [event, payload] of malformed) socket.emit(event, payload);
    socket.emit('placement', placement);
    socket.emit('confirm', confirm);
    socket.emit('phase', 'training');
    socket.emit('rejected', { code: 'rate-limited', message: 'slow down', event: 'report' });
    socket.emit('relay-peers', { peers: ['peer-a'] });
    socket.emit('relayed-frame', { from: 'peer-a', frame: new Uint8Array([1, 2, 3]) });
    socket.emit('signal', { from: 'peer-a', data: { type: 'offer' } });
    await waitFor(() => seen.signals.length === 1, 'the well-formed messages');

    expect(client.invalidMessages).toBe(malformed.length);
    expect(seen.placements).toEqual([placement]);
    expect(seen.confirms).toEqual([confirm]);
    expect(seen.phases).toEqual(['training']);
    expect(seen.rejections.map((e) => e.code)).toEqual(['rate-limited']);
    expect(seen.relayPeers).toEqual([['peer-a']]);
    expect(seen.frames).toEqual([{ from: 'peer-a', bytes: [1, 2, 3] }]);
    expect(client.phase).toBe('training');
  });

  it('gives up on a coordinator whose welcome does not parse, with a typed error', async () => {
    const fake = await fakeCoordinator({ dimension: 'ten' });
    closers.push(fake.close);
    const fatal: WireError[] = [];
    fake.client.on('fatal', (e) => fatal.push(e));
    await expect(fake.client.start()).rejects.toMatchObject({ code: 'invalid-message' });
    expect(fatal.map((e) => e.code)).toEqual(['invalid-message']);
    expect(fake.client.invalidMessages).toBe(1);
    // the same server with a well-formed welcome is accepted
    const good = await fakeCoordinator({ tabId: validWelcome.tabId });
    closers.push(good.close);
    expect((await good.client.start()).dimension).toBe(validWelcome.dimension);
  });
});
