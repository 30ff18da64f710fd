/**
 * The frame of the worker's end-to-end tests: a real coordinator in-process, started before the
 * file's tests and closed after them, and the Node workers the tests spawn against it (TF.js on
 * WASM, real WebRTC via @roamhq/wrtc), every one of them left after the tests.
 */
import { afterAll, beforeAll } from 'vitest';
import type { JobSpecInput } from '@swarmgrad/protocol';
import type { Coordinator } from '@swarmgrad/coordinator';
import { startCoordinator, waitFor } from '@swarmgrad/test-support/harness';
import { createNodeWorker, type NodeWorkerOptions } from '../../src/node.ts';
import { silentLogger } from '../../src/runtime.ts';
import type { SwarmWorker } from '../../src/worker.ts';

export interface NodeSwarm {
  /** The coordinator (from the file's beforeAll on). */
  readonly coordinator: Coordinator;
  /** Every worker spawned, in order, left or not. */
  readonly workers: SwarmWorker[];
  /** A worker on WASM for this coordinator, without status polling (not started). */
  spawn(options?: Partial<NodeWorkerOptions>): SwarmWorker;
  /**
   * Waits (up to timeoutMs) until, after 20 iterations or more, the held-out accuracy is above
   * `target`; returns it.
   */
  accuracyAbove(target: number, what: string, timeoutMs: number): Promise<number>;
}

/** Registers the beforeAll that starts the coordinator and the afterAll that tears all down. */
export function useNodeSwarm(
  job: Partial<JobSpecInput>,
  options: Parameters<typeof startCoordinator>[1],
): NodeSwarm {
  let coordinator: Coordinator | undefined;
  const workers: SwarmWorker[] = [];
  const swarm: NodeSwarm = {
    get coordinator(): Coordinator {
      if (coordinator === undefined) throw new Error('the coordinator has not started');
      return coordinator;
    },
    workers,
    spawn(extra = {}) {
      const worker = createNodeWorker({
        url: swarm.coordinator.url,
        backend: 'wasm',
        logger: silentLogger,
        statusPollMs: 0,
        ...extra,
      });
      workers.push(worker);
      return worker;
    },
    async accuracyAbove(target, what, timeoutMs) {
      let accuracy = 0;
      await waitFor(
        async () => {
          if (swarm.coordinator.iteration < 20) return false;
          accuracy = (await swarm.coordinator.evaluateNow())?.accuracy ?? 0;
          return accuracy > target;
        },
        what,
        timeoutMs,
      );
      return accuracy;
    },
  };
  beforeAll(async () => {
    coordinator = await startCoordinator(job, options);
  }, 60_000);
  afterAll(async () => {
    await Promise.all(workers.map((w) => w.leave()));
    await coordinator?.close({ checkpoint: false });
  }, 30_000);
  return swarm;
}

/** How many of the worker's cluster peers it has a connected link to. */
export function connectedLinks(worker: SwarmWorker): number {
  return worker.status().cluster?.peers.filter((p) => p.link === 'connected').length ?? 0;
}
