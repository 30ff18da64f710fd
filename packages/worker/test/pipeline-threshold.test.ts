/**
 * The staleness threshold S moves at run time (an operator's `set-staleness`, or the
 * `staleness: "auto"` mode) below the job's bound: pipelined workers learn it from the
 * iteration frames (byte 7) and drop a register staler than it before sending it, and the
 * coordinator judges each iteration's proposals by the S its frame stated. Before both, a
 * lowered S made every pipelined register (staleness 1) a refused proposal and the cluster
 * waited for the silent-proposer timeout. Real coordinator, three Node workers on WASM, real
 * WebRTC (@roamhq/wrtc).
 */
import { describe, expect, it } from 'vitest';
import { waitFor } from '@swarmgrad/test-support/harness';
import { pipelinedJob, startMeshedWorkers, useNodeSwarm } from './support/node-swarm.ts';

const swarm = useNodeSwarm(pipelinedJob, { evaluate: false });

describe('a staleness threshold lowered while pipelined workers train', () => {
  it('is obeyed from the next iteration on: fresh registers only, no proposal refused, no stall', async () => {
    const workers = await startMeshedWorkers(swarm, 3);
    const staleSeen = (from: number) => {
      const seen = new Set<number>();
      const sample = setInterval(() => {
        if (swarm.coordinator.iteration < from) return;
        for (const w of workers) {
          const last = w.status().pipeline.lastStaleness;
          if (last !== null) seen.add(last);
        }
      }, 10);
      return { seen, stop: () => clearInterval(sample) };
    };
    // pipelined under S = 2: registers carry steps taken on the previous base
    const before = staleSeen(0);
    await waitFor(
      () => swarm.coordinator.iteration >= 8 && before.seen.has(1),
      'a register one iteration stale under S = 2',
      40_000,
    );
    before.stop();

    expect(swarm.coordinator.control({ action: 'set-staleness', threshold: 0 })).toMatchObject({
      ok: true,
    });
    const loweredAt = swarm.coordinator.iteration;
    const refusedBefore = swarm.coordinator.status().staleDropped;
    const droppedBefore = workers.map((w) => w.status().pipeline.staleDropped);
    // registers taken once the next frame (stating S = 0) arrived
    const after = staleSeen(loweredAt + 2);
    await waitFor(
      () => swarm.coordinator.iteration >= loweredAt + 15,
      '15 iterations after S was lowered to 0',
      40_000,
    );
    after.stop();

    expect(swarm.coordinator.status().stalenessThreshold).toBe(0);
    expect([...after.seen]).toEqual([0]);
    // the workers threw their stale progress away instead of sending it
    expect(workers.some((w, i) => w.status().pipeline.staleDropped > droppedBefore[i]!)).toBe(true);
    // and the coordinator refused nothing as stale
    expect(swarm.coordinator.status().staleDropped).toBe(refusedBefore);
  }, 120_000);
});
