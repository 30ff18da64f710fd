/**
 * Links that cannot connect (issue 14, item 3), end to end in Node: a real coordinator in
 * process (socket.io), real workers (TF.js WASM, simple-peer over @roamhq/wrtc). One worker's
 * peer factory makes connections that never connect while `blocked` holds — its end of every
 * link stays silent, as behind a NAT no candidate pair crosses — so its link to the other member
 * of a cluster of two fails at both ends. In a cluster of two, both members must confirm every
 * proposal, which needs both registers: without a path between them the cluster, and with it
 * the swarm, would never close an iteration. The tabs report the failures, the coordinator
 * relays the pair's register frames, the rounds go on; when the link connects again the relay
 * ends.
 */
import { describe, expect, it } from 'vitest';
import { status, waitFor } from '@swarmgrad/test-support/harness';
import type { PeerConstructor } from '../src/mesh.ts';
import type { SwarmWorker } from '../src/worker.ts';
import { useNodeSwarm } from './support/node-swarm.ts';
import { RealPeer, switchablePeer, workerWithPeer } from './support/silent-peer.ts';

const swarm = useNodeSwarm({ cluster: { size: 2, redundancy: 0 } }, { evaluate: false });
const blocked = { value: true };

function spawn(PeerCtor: PeerConstructor): SwarmWorker {
  const worker = workerWithPeer(swarm.coordinator.url, PeerCtor);
  swarm.workers.push(worker);
  return worker;
}

describe('a link that never connects', () => {
  it('is reported by both ends and relayed by the coordinator; the rounds go on', async () => {
    const a = spawn(RealPeer);
    const x = spawn(switchablePeer(blocked));
    await Promise.all([a.start(), x.start()]);
    await waitFor(
      () => [a, x].every((w) => w.status().cluster?.peers.length === 1),
      'one cluster of two',
      20_000,
    );
    expect(a.status().cluster!.id).toBe(x.status().cluster!.id);

    await waitFor(() => swarm.coordinator.relays.relayedPairs === 1, 'the pair relayed', 20_000);
    const relayedAt = swarm.coordinator.iteration;
    expect(swarm.coordinator.events.some((e) => e.kind === 'link-relayed')).toBe(true);
    await waitFor(
      () => swarm.coordinator.iteration >= relayedAt + 10,
      '10 iterations over the relay',
      30_000,
    );

    // every closed iteration was confirmed by the member that did not propose, which needs the
    // proposer's register: at least one relayed frame per iteration, and both directions used
    const received = [a, x].map((w) => w.status().cluster!.peers[0]!.relayedReceived);
    expect(received[0]! + received[1]!).toBeGreaterThanOrEqual(10);
    for (const w of [a, x]) {
      const peer = w.status().cluster!.peers[0]!;
      // never a direct link: every register crossed the coordinator
      expect(peer.link).not.toBe('connected');
      expect(peer.relayed).toBe(true);
      expect(peer.relayedSent).toBeGreaterThan(0);
      expect(peer.relayedReceived).toBeGreaterThan(0);
      expect(w.status().wire.framesReceived).toBe(0);
      // relayed frames pass the same door as a link's: none refused
      expect(w.status().rejected.total).toBe(0);
    }
    // the proposals that moved the model were confirmed by both members, so each held the
    // other's register (the ack of the last one may still be on its way to the proposer)
    await waitFor(
      () => a.status().proposals.counted + x.status().proposals.counted >= 10,
      '10 proposals counted',
      5_000,
    );

    // the coordinator relays no more than the tabs sent (read first, as it counts second)
    const api = await status(swarm.coordinator.url);
    const sent = a.status().wire.relayedFramesSent + x.status().wire.relayedFramesSent;
    // ... and at least what they received before
    expect(api.relayedFrames).toBeGreaterThanOrEqual(received[0]! + received[1]!);
    expect(api.relayedFrames).toBeLessThanOrEqual(sent);
    expect(api.relay.pairs).toBe(1);
    expect(api.relay.bytes).toBeGreaterThan(api.relayedFrames * 40);
    const metrics = await (await fetch(`${swarm.coordinator.url}/metrics`)).text();
    const total = Number(/^swarmgrad_relayed_frames_total (\d+)/m.exec(metrics)?.[1]);
    expect(total).toBeGreaterThanOrEqual(api.relayedFrames);
    expect(metrics).toMatch(/^swarmgrad_relayed_pairs 1$/m);
  }, 90_000);

  it('goes direct again once the link connects, and the relay ends', async () => {
    const [a, x] = swarm.workers;
    blocked.value = false;
    await waitFor(
      () => [a!, x!].every((w) => w.status().cluster?.peers[0]?.link === 'connected'),
      'the direct link up',
      30_000,
    );
    await waitFor(() => swarm.coordinator.relays.relayedPairs === 0, 'the relay ended', 10_000);
    expect(swarm.coordinator.events.some((e) => e.kind === 'link-direct')).toBe(true);
    await waitFor(
      () => [a!, x!].every((w) => w.status().cluster?.peers[0]?.relayed === false),
      'both tabs told',
      10_000,
    );
    const before = (await status(swarm.coordinator.url)).relayedFrames;
    const from = swarm.coordinator.iteration;
    await waitFor(() => swarm.coordinator.iteration >= from + 5, '5 direct iterations', 20_000);
    // each direct iteration's confirmation needed the proposer's register over the link
    const direct = a!.status().wire.framesReceived + x!.status().wire.framesReceived;
    expect(direct).toBeGreaterThanOrEqual(5);
    expect((await status(swarm.coordinator.url)).relayedFrames).toBe(before);
  }, 60_000);
});
