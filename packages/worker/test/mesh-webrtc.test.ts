/** The mesh on real WebRTC data channels (simple-peer over @roamhq/wrtc) in Node. */
import wrtc from '@roamhq/wrtc';
import Peer from 'simple-peer';
import { afterEach, describe, expect, it } from 'vitest';
import { waitFor } from '@swarmgrad/test-support/harness';
import { Mesh, type PeerConstructor } from '../src/mesh.ts';
import { silentLogger, systemClock } from '../src/runtime.ts';

const meshes: Mesh[] = [];

afterEach(() => {
  for (const mesh of meshes.splice(0)) mesh.close();
});

function pair() {
  const byId = new Map<string, Mesh>();
  const received = new Map<string, Uint8Array[]>();
  for (const id of ['tab-a', 'tab-b']) {
    const mesh = new Mesh({
      selfId: id,
      PeerCtor: Peer as unknown as PeerConstructor,
      wrtc,
      sendSignal: (to, data) => setTimeout(() => byId.get(to)?.handleSignal(id, data), 1),
      clock: systemClock,
      logger: silentLogger,
    });
    received.set(id, []);
    mesh.on('frame', (_from, frame) => received.get(id)!.push(frame));
    byId.set(id, mesh);
    meshes.push(mesh);
  }
  return { a: byId.get('tab-a')!, b: byId.get('tab-b')!, received };
}

describe('mesh over real WebRTC', () => {
  it('carries a multi-chunk frame both ways and re-establishes a reset link', async () => {
    const { a, b, received } = pair();
    a.setPeers(['tab-b']);
    b.setPeers(['tab-a']);
    await waitFor(
      () => a.linkState('tab-b') === 'connected' && b.linkState('tab-a') === 'connected',
      'the link',
      10_000,
    );
    const frame = Uint8Array.from({ length: 300_000 }, (_, i) => (i * 7) & 0xff);
    a.send('tab-b', frame);
    b.send('tab-a', frame.subarray(0, 1000));
    await waitFor(
      () => received.get('tab-b')!.length === 1 && received.get('tab-a')!.length === 1,
      'frames',
      10_000,
    );
    expect(Buffer.from(received.get('tab-b')![0]!).equals(Buffer.from(frame))).toBe(true);
    expect(a.linkInfo()[0]!.errors).toBe(0);

    // tear it down; the initiator (tab-a) offers again after its backoff
    a.publish(frame.subarray(0, 5000));
    await waitFor(() => received.get('tab-b')!.length === 2, 'the register', 10_000);
    expect(a.reset('tab-b')).toBe(true);
    expect(a.linkState('tab-b')).toBe('reconnecting');
    await waitFor(
      () => a.linkState('tab-b') === 'connected' && b.linkState('tab-a') === 'connected',
      'the link again',
      15_000,
    );
    // the current register is sent again on the new connection
    await waitFor(() => received.get('tab-b')!.length === 3, 'the register again', 10_000);
    expect(received.get('tab-b')![2]!.byteLength).toBe(5000);
  }, 30_000);
});
