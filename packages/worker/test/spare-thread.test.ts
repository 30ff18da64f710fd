/**
 * A pipelined tab starts its training thread while it still measures its backends (worker.ts
 * `startSpareThread`): the coordinator's /api/status, read before the backends are timed, says
 * whether the job is pipelined, and the thread's script loads meanwhile instead of after the tab
 * is seated (in the browser 1–2.6 s of each tab's start; docs/benchmarks.md). Real coordinator
 * in-process, real Node workers (TF.js WASM, WebRTC via @roamhq/wrtc); the training thread is
 * training-thread.ts served in this process (support/thread-pair.ts).
 */
import { describe, expect, it } from 'vitest';
import { waitFor } from '@swarmgrad/test-support/harness';
import type { SwarmWorker } from '../src/worker.ts';
import { pipelinedJob, useNodeSwarm, type NodeSwarm } from './support/node-swarm.ts';
import { threadPair } from './support/thread-pair.ts';

/** fetch, with the job's `pipeline` in /api/status replaced: what an older or lying page reads. */
function statusSaying(pipeline: boolean): typeof fetch {
  return async (input, init) => {
    const response = await fetch(input, init);
    if (!String(input).endsWith('/api/status')) return response;
    const body = (await response.json()) as { job: { pipeline?: boolean } };
    body.job.pipeline = pipeline;
    return new Response(JSON.stringify(body), {
      status: response.status,
      headers: { 'content-type': 'application/json' },
    });
  };
}

/** A worker whose training threads are counted, each noting whether its backend was known. */
function threadedWorker(
  swarm: NodeSwarm,
  fetchImpl?: typeof fetch,
): {
  worker: SwarmWorker;
  created: { backendKnown: boolean }[];
  pair: ReturnType<typeof threadPair>;
} {
  const pair = threadPair();
  const created: { backendKnown: boolean }[] = [];
  const worker: SwarmWorker = swarm.spawn({
    cluster: { minPatienceMs: 600 },
    ...(fetchImpl === undefined ? {} : { fetch: fetchImpl }),
    trainingThread: () => {
      created.push({ backendKnown: worker.status().backend !== undefined });
      return pair.create();
    },
  });
  return { worker, created, pair };
}

async function trainsOnItsThread(worker: SwarmWorker): Promise<void> {
  await waitFor(
    () => worker.status().pipeline.thread && worker.status().steps >= 20,
    'twenty steps on the training thread',
    60_000,
  );
}

describe('a pipelined job', () => {
  const swarm = useNodeSwarm(pipelinedJob, {});

  it('has its training thread started before the backends are measured, and used', async () => {
    const { worker, created, pair } = threadedWorker(swarm);
    const peers = [0, 1].map(() => swarm.spawn({ cluster: { minPatienceMs: 600 } }));
    await Promise.all([worker, ...peers].map((w) => w.start()));
    await trainsOnItsThread(worker);
    // one thread: the one started early is the one that steps, none made at seating
    expect(created).toEqual([{ backendKnown: false }]);
    expect(worker.status().backend?.backend).toBe('wasm');
    expect(worker.status().pipeline.threadNote).toBeNull();
    expect(worker.status().pipeline.threadStartedEarly).toBe(true);
    await worker.leave();
    expect(pair.terminated()).toBe(true);
  }, 90_000);

  it('whose status does not say so gets its thread once seated, not before', async () => {
    const { worker, created } = threadedWorker(swarm, statusSaying(false));
    await worker.start();
    await trainsOnItsThread(worker);
    expect(created).toEqual([{ backendKnown: true }]);
    expect(worker.status().pipeline.threadStartedEarly).toBe(false);
  }, 90_000);

  it('has the early thread stopped when the tab leaves before it is seated', async () => {
    const { worker, created, pair } = threadedWorker(swarm);
    const starting = worker.start();
    await waitFor(() => created.length === 1, 'the early thread', 30_000);
    await worker.leave();
    await starting.catch(() => undefined);
    expect(pair.terminated()).toBe(true);
    expect(created).toHaveLength(1);
  }, 60_000);
});

describe('a lock-step job whose status says pipelined', () => {
  const swarm = useNodeSwarm({ ...pipelinedJob, pipeline: false }, {});

  it('drops the early thread once the welcome says lock-step, and trains on its own thread', async () => {
    const { worker, created, pair } = threadedWorker(swarm, statusSaying(true));
    const peers = [0, 1].map(() => swarm.spawn({ cluster: { minPatienceMs: 600 } }));
    await Promise.all([worker, ...peers].map((w) => w.start()));
    await waitFor(() => worker.status().steps >= 5, 'five lock-step steps', 60_000);
    expect(created).toEqual([{ backendKnown: false }]);
    expect(pair.terminated()).toBe(true);
    expect(worker.status().pipeline.enabled).toBe(false);
    expect(worker.status().pipeline.thread).toBe(false);
  }, 90_000);
});
