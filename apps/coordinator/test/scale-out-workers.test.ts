/**
 * Issue 8 with the real worker: Node workers (packages/worker: TF.js WASM, real WebRTC data
 * channels through @roamhq/wrtc, 1-bit registers) connected to two coordinator nodes sharing a
 * redis-server form one cluster: their WebRTC signaling crosses nodes through socket.io's Redis
 * adapter, the cluster trades frames over the mesh and trains past 0.7 held-out accuracy (the
 * bar of packages/worker/test/integration.test.ts, the same job and cluster: 3 tabs, cyclic
 * code with redundancy 1), the iteration frames reach it through its relay whichever node holds
 * it, and both nodes hold the same parameters as every worker.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import pino from 'pino';
import { createNodeWorker } from '@swarmgrad/worker/node';
import { Coordinator, parseJob } from '../src/index.ts';
import { silentLogger, type SwarmWorker } from '@swarmgrad/worker';
import { tempDir, testJobInput, waitFor } from '@swarmgrad/test-support/harness';
import { RedisServer } from '@swarmgrad/test-support/redis';

let redis: RedisServer;
const nodes: Coordinator[] = [];
const workers: SwarmWorker[] = [];

beforeAll(async () => {
  redis = await RedisServer.start();
  const dir = await tempDir();
  for (const name of ['a', 'b']) {
    nodes.push(
      await Coordinator.start({
        job: parseJob({
          ...testJobInput,
          name: 'test-scale-out-workers',
          cluster: { size: 3, redundancy: 1 },
          codec: { name: 'one-bit', blockSize: 1024 },
          optimizer: { learningRate: 0.5 },
        }),
        port: 0,
        host: '127.0.0.1',
        dataDir: join(dir, name),
        adminToken: 'test-token',
        logger: pino({ level: 'silent' }),
        evaluate: true,
        minTabs: 1,
        redis: redis.url,
      }),
    );
  }
}, 300_000);

afterAll(async () => {
  await Promise.all(workers.map((w) => w.leave()));
  for (const node of nodes) await node.close({ checkpoint: false });
  await redis?.stop();
}, 60_000);

describe('Node workers over real WebRTC, spread over two coordinator nodes', () => {
  it('form one mesh across nodes and train past 0.7 held-out accuracy', async () => {
    const [a, b] = nodes as [Coordinator, Coordinator];
    // workers 0 and 2 on node a, worker 1 on node b; each knows both nodes
    for (const urls of [
      [a.url, b.url],
      [b.url, a.url],
      [a.url, b.url],
    ]) {
      const worker = createNodeWorker({
        url: urls,
        backend: 'wasm',
        logger: silentLogger,
        statusPollMs: 0,
        cluster: { minPatienceMs: 600 },
      });
      workers.push(worker);
    }
    await Promise.all(workers.map((w) => w.start()));
    expect(new Set(workers.map((w) => w.status().url))).toEqual(new Set([a.url, b.url]));

    // one cluster of three, every tab linked to both peers (offers/answers relayed across nodes)
    await waitFor(
      () =>
        workers.every(
          (w) =>
            w.status().cluster?.peers.length === 2 &&
            w.status().cluster!.peers.every((p) => p.link === 'connected'),
        ),
      'a full mesh across the two nodes',
      30_000,
    );
    expect(new Set(workers.map((w) => w.status().cluster!.id)).size).toBe(1);

    let accuracy = 0;
    await waitFor(
      async () => {
        if (a.iteration < 20) return false;
        accuracy = (await a.evaluateNow())?.accuracy ?? 0;
        return accuracy > 0.7;
      },
      'held-out accuracy above 0.7',
      60_000,
    );
    expect(accuracy).toBeGreaterThan(0.7);
    for (const w of workers) {
      expect(w.status().wire.framesReceived).toBeGreaterThan(10);
      expect(w.status().rejected.total).toBe(0);
    }
    // the iterations reached the cluster through its relay, across nodes (one node holds the
    // relay, the other a member it covers): frames signed by one node verify with the key the
    // other node's welcome gave, since the nodes share the signing key
    const frames = workers.map((w) => w.status().iterationFrames);
    expect(frames.reduce((n, f) => n + f.forwarded, 0)).toBeGreaterThan(10);
    expect(frames.filter((f) => f.fromPeers > 10).length).toBeGreaterThanOrEqual(2);
    expect(frames.map((f) => f.refused)).toEqual([0, 0, 0]);
    expect(new Set(workers.map((w) => w.status().url)).size).toBe(2);

    // hold still, then: both replicas and every worker at one iteration, bit for bit
    a.control({ action: 'pause' });
    await waitFor(
      () =>
        b.phase === 'paused' &&
        a.iteration === b.iteration &&
        workers.every((w) => w.base()?.iteration === a.iteration),
      'everyone paused at one iteration',
      15_000,
    );
    expect(Buffer.from(a.base.buffer).equals(Buffer.from(b.base.buffer))).toBe(true);
    for (const w of workers) {
      expect(Buffer.from(w.base()!.params.buffer).equals(Buffer.from(a.base.buffer))).toBe(true);
    }
  }, 120_000);
});
