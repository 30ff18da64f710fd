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

/** Waits until each of `workers` has a connected link to every other one (one cluster). */
export async function fullMesh(workers: readonly SwarmWorker[], timeoutMs = 20_000): Promise<void> {
  const peers = workers.length - 1;
  await waitFor(
    () =>
      workers.every(
        (w) => w.status().cluster?.peers.length === peers && connectedLinks(w) === peers,
      ),
    `a full mesh of ${workers.length}`,
    timeoutMs,
  );
}

/** The pipelined job of the pipeline tests: one cluster of three, one local step, S = 2. */
export const pipelinedJob: Partial<JobSpecInput> = {
  cluster: { size: 3, redundancy: 1 },
  codec: { name: 'one-bit', blockSize: 1024 },
  optimizer: { learningRate: 0.5 },
  localSteps: 1,
  staleness: 2,
  pipeline: true,
};

/** `count` workers on the swarm's coordinator (short patience), started, in one full mesh. */
export async function startMeshedWorkers(swarm: NodeSwarm, count: number): Promise<SwarmWorker[]> {
  const workers = Array.from({ length: count }, () =>
    swarm.spawn({ cluster: { minPatienceMs: 600 } }),
  );
  await Promise.all(workers.map((w) => w.start()));
  await fullMesh(workers);
  return workers;
}
