/**
 * A cluster member that floods its peers with confirm requests (the mesh message a proposer
 * sends to collect vouchers) for iterations that never come, in Node over real WebRTC with a
 * real coordinator: each peer keeps at most the newest request of one asker waiting, refuses
 * requests of iterations no proposal can be of, and the swarm goes on training.
 */
import { describe, expect, it } from 'vitest';
import { chunkFrame, encodePeerMessage, type PeerMessage } from '@swarmgrad/protocol';
import { waitFor } from '@swarmgrad/test-support/harness';
import type { PeerConstructor, PeerLike, PeerOptions } from '../src/mesh.ts';
import { fullMesh, useNodeSwarm } from './support/node-swarm.ts';
import { RealPeer, workerWithPeer } from './support/silent-peer.ts';

const swarm = useNodeSwarm(
  { cluster: { size: 3, redundancy: 1 }, optimizer: { learningRate: 0.5 } },
  { evaluate: true },
);

/** simple-peer over wrtc, each instance kept so the test can write to its links directly. */
function recordingPeer(into: PeerLike[]): PeerConstructor {
  return class {
    constructor(options: PeerOptions) {
      const peer = new RealPeer(options);
      into.push(peer);
      return peer as never;
    }
  } as unknown as PeerConstructor;
}

const NOBODYS_DIGEST = 'ab'.repeat(32);
const FLOOD = 300;
const FAR_AHEAD = 40;

describe('a peer flooding confirm requests', () => {
  it('keeps one request of it waiting per member, refuses impossible iterations, and the swarm trains on', async () => {
    const members = [0, 1].map(() => swarm.spawn({ cluster: { minPatienceMs: 600 } }));
    const flooderPeers: PeerLike[] = [];
    const flooder = workerWithPeer(swarm.coordinator.url, recordingPeer(flooderPeers));
    swarm.workers.push(flooder);
    await Promise.all(swarm.workers.map((w) => w.start()));
    await fullMesh(swarm.workers);
    await waitFor(() => swarm.coordinator.iteration >= 5, 'five iterations', 30_000);

    const { tabId: proposer, cluster } = flooder.status();
    const rule = members[0]!.status().job!;
    const base = swarm.coordinator.iteration;
    const confirm = (iteration: number): PeerMessage => ({
      type: 'confirm',
      request: {
        clusterId: cluster!.id,
        iteration,
        proposer: proposer!,
        inputs: [{ slot: (cluster!.slot + 1) % 3, digest: NOBODYS_DIGEST }],
        aggregator: { name: rule.aggregator as never, f: rule.f },
      },
    });
    // iterations ahead (registers that are never written) and far beyond any proposal
    const messages = [
      ...Array.from({ length: FLOOD }, (_, k) => confirm(base + 2 + k)),
      ...Array.from({ length: FAR_AHEAD }, (_, k) => confirm(base + 100_000 + k)),
    ];
    const links = flooderPeers.filter((p) => p.connected);
    expect(links.length).toBeGreaterThanOrEqual(2);
    // frame ids far from the mesh's own, each message one chunk
    messages.forEach((message, k) => {
      for (const link of links)
        for (const chunk of chunkFrame(encodePeerMessage(message), 0x7000_0000 + k))
          link.send(chunk);
    });

    for (const member of members) {
      const status = await waitFor(
        () => {
          const s = member.status();
          return (s.rejected.byCode['wrong-iteration'] ?? 0) >= FAR_AHEAD &&
            s.confirmations.superseded >= FLOOD - 1
            ? s
            : undefined;
        },
        'every flooded request seen',
        20_000,
      );
      // the flooder's newest request, at most one of the honest proposer's and one of the
      // coordinator's: never the flood
      expect(status.confirmations.waiting).toBeLessThanOrEqual(3);
    }

    // the cluster still closes rounds and learns
    const after = swarm.coordinator.iteration;
    await waitFor(() => swarm.coordinator.iteration >= after + 10, 'ten more iterations', 60_000);
    await swarm.accuracyAbove(0.5, 'held-out accuracy above 0.5', 60_000);
  }, 150_000);
});
