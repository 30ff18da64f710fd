/**
 * The mesh's side of links that cannot connect (issue 14, item 3): a failed attempt is emitted
 * as `failed`, relayed peers get the register and `send` frames through `relaySend` while their
 * link is down, frames relayed to the tab come out as `frame`, and a link that connects carries
 * the frames again. In-memory simple-peer stand-in, signals dropped while `blocked`.
 */
import { describe, expect, it } from 'vitest';
import { Mesh } from '../src/mesh.ts';
import { silentLogger } from '../src/runtime.ts';
import { FakeClock } from '@swarmgrad/test-support/host';
import { FakeNetwork } from './support/fake-peer.ts';

async function flush(rounds = 50): Promise<void> {
  for (let i = 0; i < rounds; i++) await Promise.resolve();
}

function setup() {
  const clock = new FakeClock();
  const network = new FakeNetwork();
  const blocked = { value: true };
  const meshes = new Map<string, Mesh>();
  const frames = new Map<string, { from: string; frame: Uint8Array }[]>();
  const failures = new Map<string, { peer: string; attempts: number; reason: string }[]>();
  const relayed = new Map<string, { to: string; frame: Uint8Array }[]>();
  for (const id of ['a', 'b']) {
    const mesh = new Mesh({
      selfId: id,
      PeerCtor: network.ctor(),
      sendSignal: (to, data) =>
        queueMicrotask(() => {
          if (!blocked.value) meshes.get(to)?.handleSignal(id, data);
        }),
      relaySend: (to, frame) => relayed.get(id)!.push({ to, frame }),
      clock,
      logger: silentLogger,
      connectTimeoutMs: 1000,
    });
    frames.set(id, []);
    failures.set(id, []);
    relayed.set(id, []);
    mesh.on('frame', (from, frame) => frames.get(id)!.push({ from, frame }));
    mesh.on('failed', (peer, info) => failures.get(id)!.push({ peer, ...info }));
    meshes.set(id, mesh);
  }
  return { clock, blocked, a: meshes.get('a')!, b: meshes.get('b')!, frames, failures, relayed };
}

const frame = (seed: number) => Uint8Array.from({ length: 100 }, (_, i) => (i + seed) & 0xff);

describe('mesh links that do not connect', () => {
  it('emits failed at both ends when no attempt connects, again on every attempt', async () => {
    const { clock, a, b, failures } = setup();
    a.setPeers(['b']);
    b.setPeers(['a']);
    await flush();
    expect(failures.get('a')).toEqual([]);
    clock.advance(1000);
    await flush();
    expect(failures.get('a')).toEqual([{ peer: 'b', attempts: 1, reason: 'timeout' }]);
    expect(failures.get('b')).toMatchObject([{ peer: 'a', reason: 'timeout' }]);
    // the retries (backoff ≤ 10 s) fail too and are reported each time
    for (let i = 0; i < 6; i++) {
      clock.advance(11_000);
      await flush();
    }
    expect(failures.get('a')!.length).toBeGreaterThanOrEqual(4);
    expect(failures.get('b')!.length).toBeGreaterThanOrEqual(4);
    expect(a.linkState('b')).not.toBe('connected');
  });

  it('relays the register and sends to a relayed peer while its link is down, once per frame', async () => {
    const { clock, a, b, frames, relayed } = setup();
    a.setPeers(['b']);
    b.setPeers(['a']);
    await flush();
    clock.advance(1000);
    await flush();
    const first = frame(1);
    a.publish(first);
    // not relayed yet: nothing leaves
    expect(relayed.get('a')).toEqual([]);
    a.setRelayed(['b', 'a']); // its own id is ignored
    expect(relayed.get('a')).toEqual([{ to: 'b', frame: first }]);
    a.setRelayed(['b']); // the same list again sends nothing new
    expect(relayed.get('a')).toHaveLength(1);
    const second = frame(2);
    a.publish(second);
    a.publish(undefined);
    const direct = frame(3);
    expect(a.send('b', direct)).toBe(true);
    expect(relayed.get('a')!.map((r) => r.frame)).toEqual([first, second, direct]);
    // a peer asking for the register again gets it through the relay
    a.publish(second);
    a.handleSignal('b', { type: 'resend-register' });
    expect(relayed.get('a')!.map((r) => r.frame)).toEqual([first, second, direct, second, second]);
    expect(a.linkInfo()[0]).toMatchObject({ relayed: true, relayedSent: 5, relayedReceived: 0 });
    expect(a.relayedFramesSent).toBe(5);
    // the other end: relayed frames come out as frames of that peer; unknown senders are dropped
    b.receiveRelayed('a', first);
    b.receiveRelayed('c', first);
    expect(frames.get('b')).toEqual([{ from: 'a', frame: first }]);
    expect(b.linkInfo()[0]).toMatchObject({ relayedReceived: 1 });
    expect(b.relayedFramesReceived).toBe(1);
    expect(b.framesReceived).toBe(0);
    // the relay list ends: nothing goes through the coordinator any more
    a.setRelayed([]);
    a.publish(frame(4));
    expect(relayed.get('a')).toHaveLength(5);
    expect(a.isRelayed('b')).toBe(false);
  });

  it('once the link connects, frames go direct even to a relayed peer', async () => {
    const { clock, blocked, a, b, frames, relayed } = setup();
    a.setPeers(['b']);
    b.setPeers(['a']);
    await flush();
    clock.advance(1000);
    await flush();
    a.setRelayed(['b']);
    b.setRelayed(['a']);
    blocked.value = false;
    // the next attempt (backoff ≤ 0.75 s after the first failure) connects
    for (let i = 0; i < 20 && a.linkState('b') !== 'connected'; i++) {
      clock.advance(500);
      await flush();
    }
    expect(a.linkState('b')).toBe('connected');
    expect(b.linkState('a')).toBe('connected');
    const next = frame(5);
    a.publish(next);
    await flush();
    expect(relayed.get('a')).toEqual([]);
    expect(frames.get('b')!.map((f) => f.frame)).toEqual([next]);
  });

  it('a new identity forgets the relayed peers', () => {
    const { a } = setup();
    a.setPeers(['b']);
    a.setRelayed(['b']);
    expect(a.isRelayed('b')).toBe(true);
    a.setSelf('a2');
    expect(a.isRelayed('b')).toBe(false);
  });
});
