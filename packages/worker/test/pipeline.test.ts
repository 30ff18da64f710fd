/**
 * Pipelined tabs (issue 16) end to end in Node: a real coordinator in-process, three real
 * workers (TF.js WASM, real WebRTC data channels via @roamhq/wrtc) on a job with
 * `pipeline: true` and one local step. A pipelined tab keeps stepping while its register is
 * exchanged and the round runs, so its registers carry steps taken on the previous base
 * (staleness ≥ 1, tagged in the frame) and, when the round outlasts a step, more than one step;
 * its peers accept them (staleness bound 2) and the swarm trains.
 */
import { describe, expect, it } from 'vitest';
import { waitFor } from '@swarmgrad/test-support/harness';
import { pipelinedJob, startMeshedWorkers, useNodeSwarm } from './support/node-swarm.ts';

const swarm = useNodeSwarm(pipelinedJob, { evaluate: true });

describe('pipelined workers in Node over real WebRTC', () => {
  it('send registers computed while the round ran (tagged stale by 1, several steps) and train past 0.7', async () => {
    const workers = await startMeshedWorkers(swarm, 3);
    const seen = workers.map(() => ({
      stale: new Set<number>(),
      stepDelays: new Set<number>(),
      maxSteps: 0,
    }));
    const sample = setInterval(() => {
      workers.forEach((w, i) => {
        const p = w.status().pipeline;
        if (p.lastStaleness !== null) seen[i]!.stale.add(p.lastStaleness);
        if (p.lastStepDelay !== null) seen[i]!.stepDelays.add(p.lastStepDelay);
        seen[i]!.maxSteps = Math.max(seen[i]!.maxSteps, p.lastSteps ?? 0);
      });
    }, 20);
    try {
      const accuracy = await swarm.accuracyAbove(0.7, 'held-out accuracy above 0.7', 60_000);
      expect(accuracy).toBeGreaterThan(0.7);
    } finally {
      clearInterval(sample);
    }
    for (const [i, w] of workers.entries()) {
      const status = w.status();
      expect(status.pipeline.enabled).toBe(true);
      // steps taken on the base before the register's iteration opened
      expect(Math.max(...seen[i]!.stale)).toBeGreaterThanOrEqual(1);
      expect(Math.max(...seen[i]!.stale)).toBeLessThanOrEqual(2);
      // the tab did not wait for the round: some registers hold more than localSteps steps
      expect(seen[i]!.maxSteps).toBeGreaterThan(1);
      // its peers took every register: none stale, none refused
      expect(status.rejected.total).toBe(0);
      // the mean delay of its steps, never above the oldest step's
      for (const d of seen[i]!.stepDelays) expect(d).toBeLessThanOrEqual(2);
      expect(status.wire.framesReceived).toBeGreaterThan(10);
    }
    // the proposals carried their registers' staleness to the coordinator: the staleness
    // panel's measured ages (every proposal here is of the open iteration, age 0 before that)
    const panel = await waitFor(
      () => {
        const summary = swarm.coordinator.status().staleness;
        return summary && summary.samples > 10 ? summary : undefined;
      },
      "the staleness panel's ages",
      20_000,
    );
    expect(panel.histogram.some((h) => h.age >= 1 && h.count > 0)).toBe(true);
    expect(panel.meanAge).toBeGreaterThan(0.5);
  }, 90_000);
});
