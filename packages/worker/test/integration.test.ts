/**
 * End to end in Node: a real coordinator in-process, real workers (createWorker via the Node
 * entry: TF.js WASM, simple-peer over @roamhq/wrtc — real WebRTC data channels), one cluster
 * of 3 with redundancy 1 (cyclic gradient code, any 2 of 3 decode exactly), 1-bit codec.
 */
import { describe, expect, it } from 'vitest';
import { getCodec } from '@swarmgrad/core';
import { FRAME_HEADER_BYTES, CHUNK_HEADER_BYTES } from '@swarmgrad/protocol';
import { waitFor } from '@swarmgrad/test-support/harness';
import { connectedLinks, useNodeSwarm } from './support/node-swarm.ts';

const swarm = useNodeSwarm(
  {
    cluster: { size: 3, redundancy: 1 },
    codec: { name: 'one-bit', blockSize: 1024 },
    optimizer: { learningRate: 0.5 },
  },
  { evaluate: true },
);
const { workers } = swarm;
const spawnWorker = () => swarm.spawn({ cluster: { minPatienceMs: 600 } });

describe('workers in Node over real WebRTC', () => {
  it('form a mesh, trade 1-bit frames and train the model past 0.7 held-out accuracy', async () => {
    const started = [spawnWorker(), spawnWorker(), spawnWorker()];
    await Promise.all(started.map((w) => w.start()));
    for (const w of started) {
      expect(w.status().backend?.backend).toBe('wasm');
      // the choice reached the coordinator in the hello
      expect(swarm.coordinator.registry.tabs.get(w.status().tabId!)?.backend).toBe('wasm');
    }

    // one cluster of three, every tab linked to both peers
    await waitFor(
      () => started.every((w) => w.status().cluster?.peers.length === 2 && connectedLinks(w) === 2),
      'a full mesh',
      20_000,
    );
    const clusters = new Set(started.map((w) => w.status().cluster!.id));
    expect(clusters.size).toBe(1);
    expect(started.filter((w) => w.status().cluster!.proposer)).toHaveLength(1);

    const accuracy = await swarm.accuracyAbove(0.7, 'held-out accuracy above 0.7', 40_000);
    expect(accuracy).toBeGreaterThan(0.7);

    // every tab sent and received register frames; the link bytes are the 1-bit frames
    const d = swarm.coordinator.dimension;
    const payload = getCodec('one-bit').payloadBytes(d, 1024);
    const perFrame = payload + FRAME_HEADER_BYTES + CHUNK_HEADER_BYTES; // one chunk per frame
    const expectedBits = (8 * perFrame) / d;
    for (const w of started) {
      const wire = w.status().wire;
      expect(wire.framesSent).toBeGreaterThan(10);
      expect(wire.framesReceived).toBeGreaterThan(10);
      expect(wire.bitsPerParameter!).toBeCloseTo(expectedBits, 6);
      expect(wire.bitsPerParameter!).toBeLessThan(1.1);
      expect(wire.compression!).toBeGreaterThan(29);
      expect(w.status().rejected.total).toBe(0);
    }
    const proposals = started.reduce((n, w) => n + w.status().proposals.counted, 0);
    expect(proposals).toBeGreaterThan(10);
  }, 60_000);

  it('keeps the rounds going when the proposer is closed mid-round', async () => {
    // the hardest tab to lose: the one that sends the cluster's proposal
    const proposer = workers.find((w) => w.status().cluster?.proposer)!;
    await waitFor(
      () => proposer.status().state === 'computing',
      'proposer computing',
      10_000,
    ).catch(() => undefined);
    const before = swarm.coordinator.iteration;
    await proposer.leave();
    await waitFor(() => swarm.coordinator.iteration >= before + 15, '15 more iterations', 20_000);
    const survivors = workers.filter((w) => w !== proposer);
    expect(survivors.filter((w) => w.status().cluster?.proposer)).toHaveLength(1);
    for (const w of survivors) {
      const status = w.status();
      expect(status.cluster?.peers).toHaveLength(1);
      // two of three slots still decode exactly (cyclic code, redundancy 1)
      expect(status.cluster?.lastAggregate?.approximate).toBe(false);
    }
    const newProposer = survivors.find((w) => w.status().cluster?.proposer)!;
    expect(newProposer.status().proposals.counted).toBeGreaterThan(10);
  }, 40_000);

  it('lets a worker join mid-training at the current iteration with the agreed base', async () => {
    const late = spawnWorker();
    await late.start();
    await waitFor(
      () => late.status().cluster !== undefined && late.status().steps > 0,
      'the late worker training',
      20_000,
    );
    await waitFor(() => connectedLinks(late) === 2, 'the late worker linked', 20_000);
    const joinedAt = late.base()!.iteration;
    expect(joinedAt).toBeGreaterThan(15);

    // hold the iteration still, then compare every live base with the coordinator's
    swarm.coordinator.control({ action: 'pause' });
    const live = workers.filter((w) => w.status().state !== 'left');
    await waitFor(
      () => live.every((w) => w.base()?.iteration === swarm.coordinator.iteration),
      'every worker at the coordinator iteration',
      10_000,
    );
    for (const w of live) {
      const base = w.base()!;
      expect(base.iteration).toBe(swarm.coordinator.iteration);
      expect(
        Buffer.from(base.params.buffer).equals(Buffer.from(swarm.coordinator.base.buffer)),
      ).toBe(true);
    }
    swarm.coordinator.control({ action: 'resume' });
    const before = swarm.coordinator.iteration;
    await waitFor(() => swarm.coordinator.iteration >= before + 5, 'training resumed', 15_000);
    expect(late.status().wire.framesSent).toBeGreaterThan(0);
  }, 60_000);

  it("switches every live tab to the operator's aggregator and back, and training goes on", async () => {
    const live = () => workers.filter((w) => w.status().state !== 'left');
    const expectRule = async (name: string, mode: string) => {
      await waitFor(
        () => live().every((w) => w.status().job?.aggregator === name),
        `every live tab on ${name}`,
        15_000,
      );
      for (const w of live()) expect(w.status().job?.mode).toBe(mode);
      const from = swarm.coordinator.iteration;
      await waitFor(
        () => swarm.coordinator.iteration >= from + 5,
        `iterations under ${name}`,
        20_000,
      );
      // the rule in force aggregated this iteration: robust results come from the filter
      await waitFor(
        () => live().every((w) => w.status().cluster?.lastAggregate?.mode === mode),
        `aggregates made in ${mode} mode`,
        15_000,
      );
    };
    expect(swarm.coordinator.control({ action: 'set-aggregator', name: 'median', f: 1 }).ok).toBe(
      true,
    );
    await expectRule('median', 'robust');
    expect(swarm.coordinator.control({ action: 'set-aggregator', name: 'mean', f: 0 }).ok).toBe(
      true,
    );
    await expectRule('mean', 'coded');
    const accuracy = (await swarm.coordinator.evaluateNow())?.accuracy ?? 0;
    expect(accuracy).toBeGreaterThan(0.7);
  }, 90_000);
});
