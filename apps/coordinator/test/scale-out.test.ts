/**
 * Issue 8: several coordinator processes, one swarm, on Redis. A real redis-server (Debian's
 * package, installed by scripts/ensure-redis.mjs when missing) on a free port, and coordinator
 * nodes started as `swarmgrad serve --redis <url>` child processes (SIGKILL-able), or in this
 * process where the test reads their replicas. Tabs are ClientTab: the real tab connection
 * (CoordinatorClient: several URLs, failover, resume token) with a softmax-regression gradient.
 *
 * The job is the coordinator tests' usual one (harness.ts testJobInput: softmax-784-10, clusters
 * of 2, 1-bit codec) and "the usual accuracy" is coordinator.test.ts's bar: > 75% held-out
 * after 40 iterations.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { decodeFrameInto } from '@swarmgrad/core';
import type { JobSpecInput } from '@swarmgrad/protocol';
import type { Coordinator } from '../src/index.ts';
import { ClientTab } from './support/client-tab.ts';
import { evaluatedOnEveryNode, view } from './support/node-view.ts';
import { connectPlaced, type FakeWorker } from '@swarmgrad/test-support/fake-worker';
import {
  spawnCoordinator,
  startCoordinator,
  tempDir,
  testJobInput,
  waitFor,
  type ChildCoordinator,
} from '@swarmgrad/test-support/harness';
import { RedisServer } from '@swarmgrad/test-support/redis';

async function params(url: string): Promise<Buffer> {
  return Buffer.from(await (await fetch(`${url}/api/params`)).arrayBuffer());
}

async function control(url: string, action: 'pause' | 'resume'): Promise<void> {
  const response = await fetch(`${url}/api/control`, {
    method: 'POST',
    headers: { authorization: 'Bearer test-token', 'content-type': 'application/json' },
    body: JSON.stringify({ action }),
  });
  expect(response.status).toBe(200);
}

/** Every live node at one iteration, paused, with the same parameters: returns the iteration. */
async function pausedAndEqual(urls: string[], tabs: ClientTab[]): Promise<number> {
  await control(urls[0]!, 'pause');
  const iteration = await waitFor(async () => {
    const views = await Promise.all(urls.map(view));
    const its = new Set(views.map((v) => v.iteration));
    return views.every((v) => v.phase === 'paused') && its.size === 1 ? views[0]!.iteration : false;
  }, 'every node paused at one iteration');
  const bytes = await Promise.all(urls.map(params));
  for (const b of bytes.slice(1)) expect(b.equals(bytes[0]!)).toBe(true);
  // every tab's base, kept by delta frames from whichever node it is on, is the same too
  await waitFor(() => tabs.every((t) => t.client.iteration === iteration), 'tabs at the iteration');
  const agreed = new Float32Array(tabs[0]!.client.welcome!.dimension);
  const frame = new Uint8Array(bytes[0]!);
  expect(
    decodeFrameInto(frame, agreed, {
      dimension: agreed.length,
      jobId: tabs[0]!.client.welcome!.jobId,
    }).ok,
  ).toBe(true);
  for (const tab of tabs) {
    const own = tab.client.base!;
    expect(
      Buffer.from(own.buffer, own.byteOffset, own.byteLength).equals(Buffer.from(agreed.buffer)),
    ).toBe(true);
  }
  return iteration;
}

/** Each tab's base moved one iteration at a time (or resynced from a node), never back. */
function expectConsecutive(tabs: ClientTab[]): void {
  for (const tab of tabs) {
    for (let i = 1; i < tab.moves.length; i++) {
      const { iteration, resynced } = tab.moves[i]!;
      const previous = tab.moves[i - 1]!.iteration;
      expect(iteration).toBeGreaterThanOrEqual(previous);
      if (!resynced) expect(iteration).toBe(previous + 1);
    }
  }
}

describe('multi-node coordinator on Redis (child processes)', () => {
  let redis: RedisServer;
  const nodes: ChildCoordinator[] = [];
  const tabs: ClientTab[] = [];
  let killed: ChildCoordinator | undefined;
  const live = () => nodes.filter((n) => n !== killed);

  let dir = '';
  let config = '';

  beforeAll(async () => {
    redis = await RedisServer.start();
    dir = await tempDir();
    config = join(dir, 'job.json');
    await writeFile(
      config,
      JSON.stringify({ ...testJobInput, evaluateEvery: 10, checkpointEvery: 10 }),
    );
    const started = await Promise.all(
      [0, 1, 2].map(async (i) =>
        spawnCoordinator(
          ['--redis', redis.url, '--config', config, '--data-dir', join(dir, `node-${i}`)],
          { SWARMGRAD_LEASE_MS: '2000' },
        ),
      ),
    );
    nodes.push(...started);
    // (the first run on a fresh machine also installs redis-server: apt-get)
  }, 300_000);

  afterAll(async () => {
    for (const tab of tabs) tab.close();
    for (const node of nodes) {
      if (node.process.exitCode === null) node.process.kill('SIGKILL');
    }
    await redis?.stop();
  });

  it('tabs spread over three nodes form one set of clusters, signal across nodes and train to > 75%', async () => {
    const urls = nodes.map((n) => n.url);
    // tab i starts on node i % 3 and knows the others
    for (let i = 0; i < 6; i++) {
      const own = urls.slice(i % 3).concat(urls.slice(0, i % 3));
      tabs.push(await ClientTab.start(own));
    }
    expect(new Set(tabs.map((t) => t.client.url)).size).toBe(3);

    // one placement, seen alike from every node: 3 clusters of 2, every tab seated once
    let seen = '';
    await waitFor(
      async () => {
        const views = await Promise.all(urls.map(view));
        seen = JSON.stringify(
          views.map((v) => ({
            tabs: v.tabs,
            iteration: v.iteration,
            phase: v.phase,
            clusters: v.clusters.map((c) => c.members.map((m) => `${m.tabId}${m.live ? '' : '-'}`)),
          })),
        );
        return views.every((v) => v.tabs === 6 && v.clusters.length === 3);
      },
      'six tabs in three clusters on every node',
      60_000,
    ).catch((error: unknown) => {
      throw new Error(`${String(error)}; the nodes' views: ${seen}`);
    });
    const views = await Promise.all(urls.map(view));
    const seating = views.map((v) =>
      JSON.stringify(v.clusters.map((c) => [c.id, c.members.map((m) => m.tabId)])),
    );
    expect(new Set(seating).size).toBe(1);
    expect(views[0]!.clusters.flatMap((c) => c.members.map((m) => m.tabId)).sort()).toEqual(
      tabs.map((t) => t.id).sort(),
    );
    // one lease holder among the three
    expect(views.filter((v) => v.node.leaseHolder)).toHaveLength(1);
    expect(views[0]!.node.nodes).toHaveLength(3);

    // clusters pair tabs of different nodes (join order): a signal crosses nodes
    await waitFor(() => tabs.every((t) => t.placement !== undefined), 'placements');
    const pairs = tabs.flatMap((a) =>
      tabs
        .filter((b) => b !== a && b.placement!.clusterId === a.placement!.clusterId)
        .map((b) => [a, b] as const),
    );
    const [a, b] = pairs.find(([x, y]) => x.client.url !== y.client.url)!;
    a.client.signal(b.id, { type: 'offer', sdp: 'v=0 cross-node' });
    await waitFor(() => b.signals.find((s) => s.from === a.id), 'the signal on the other node');

    // training: the lease holder evaluates; every node records the evaluation
    const trained = await evaluatedOnEveryNode(urls, 40);
    for (const v of trained) expect(v.accuracy!).toBeGreaterThan(0.75);
    // every proposer's proposals were counted on the way
    expect(tabs.filter((t) => t.counted > 10)).toHaveLength(3);

    // all replicas and all tabs hold bit-identical parameters
    await pausedAndEqual(urls, tabs);
    await control(urls[1]!, 'resume');
  }, 150_000);

  it('every node shows every tab’s report and the whole swarm’s bytes, whichever node holds the tab', async () => {
    const urls = nodes.map((n) => n.url);
    // each tab reports to the node holding it: a loss, a step count and peer bytes of its own
    tabs.forEach((tab, i) =>
      tab.client.report({
        state: 'computing',
        steps: 100 + i,
        examplesPerSecond: 64 * (i + 1),
        computeMs: 10,
        wallMs: 20,
        peerBytesSent: 1000 * (i + 1),
        peerFp32Bytes: 32_000 * (i + 1),
        trainingLoss: 0.5 + i / 10,
        throttle: 1,
      }),
    );
    const meanLoss = tabs.reduce((sum, _, i) => sum + 0.5 + i / 10, 0) / tabs.length;
    const peerBytes = tabs.reduce((sum, _, i) => sum + 1000 * (i + 1), 0);
    type Seen = { steps: Record<string, number>; loss: number | null; peer: number };
    const seen = (status: Record<string, unknown>): Seen => {
      const v = status as unknown as {
        clusters: { members: { tabId: string; state: string; steps: number }[] }[];
        trainingLoss: number | null;
        wire: { byPath: { peer: number } };
      };
      const steps: Record<string, number> = {};
      for (const m of v.clusters.flatMap((c) => c.members))
        if (m.state === 'computing') steps[m.tabId] = m.steps;
      return { steps: sortedKeys(steps), loss: v.trainingLoss, peer: v.wire.byPath.peer };
    };
    const expected = Object.fromEntries(tabs.map((t, i) => [t.id, 100 + i]));
    let last: Seen[] = [];
    await waitFor(
      async () => {
        last = await Promise.all(
          urls.map(async (u) => seen((await (await fetch(`${u}/api/status`)).json()) as never)),
        );
        return last.every(
          (s) =>
            JSON.stringify(s.steps) === JSON.stringify(sortedKeys(expected)) &&
            s.loss !== null &&
            Math.abs(s.loss - meanLoss) < 1e-9 &&
            s.peer === peerBytes,
        );
      },
      'every node showing all six reports and the swarm’s peer bytes',
      15_000,
    ).catch((error: unknown) => {
      throw new Error(`${String(error)}; the nodes saw ${JSON.stringify(last)}`);
    });
    // each node holds only some of the tabs: the rest came from the others' shares
    const held = await Promise.all(urls.map(async (u) => (await view(u)).node.sockets));
    expect(held.every((n) => n < tabs.length)).toBe(true);
  }, 60_000);

  it('a node killed with SIGKILL: its tabs resume on the others, no iteration is lost, the checkpoint lease moves', async () => {
    const urls = nodes.map((n) => n.url);
    const views = await Promise.all(urls.map(view));
    const holder = views.findIndex((v) => v.node.leaseHolder);
    expect(holder).toBeGreaterThanOrEqual(0);
    killed = nodes[holder]!;
    const victims = tabs.filter((t) => t.client.url === killed!.url);
    expect(victims.length).toBeGreaterThan(0);
    const before = Math.max(...views.map((v) => v.iteration));
    killed.process.kill('SIGKILL');
    await killed.exited;

    const rest = live().map((n) => n.url);
    // another node takes the lease and checkpoints
    const after = await waitFor(
      async () => {
        const v = await Promise.all(rest.map(view));
        const h = v.find((x) => x.node.leaseHolder && x.node.checkpoints > 0);
        const gone = v.every((x) => !x.node.nodes.includes(views[holder]!.node.id));
        return h && h.node.lastCheckpoint > before && gone ? v : false;
      },
      'a checkpoint by the new lease holder',
      30_000,
    );
    expect(after.filter((v) => v.node.leaseHolder)).toHaveLength(1);
    expect(after[0]!.node.nodes).toHaveLength(2);

    // its tabs reconnected to other nodes by themselves, under their own identities
    await waitFor(
      () => victims.every((t) => t.client.connected && t.client.url !== killed!.url),
      'the killed node’s tabs on other nodes',
      30_000,
    );
    await waitFor(async () => {
      const v = await Promise.all(rest.map(view));
      return v.every((x) => x.tabs === 6 && x.iteration >= before + 10);
    }, 'six tabs and ten more iterations');

    // no iteration lost: every tab's base went through consecutive iterations (or resynced
    // from a node's parameters), never backwards, and all still agree bit for bit
    expectConsecutive(tabs);
    const iteration = await pausedAndEqual(rest, tabs);
    expect(iteration).toBeGreaterThanOrEqual(before + 10);
    await control(rest[0]!, 'resume');
  }, 90_000);

  it('Redis restarted mid-training: nodes report it, pause, and resume when it is back, nothing corrupted', async () => {
    const rest = live().map((n) => n.url);
    await waitFor(async () => (await view(rest[0]!)).phase === 'training', 'training');
    const before = (await view(rest[0]!)).iteration;
    await redis.stop();
    const down = await waitFor(async () => {
      const v = await Promise.all(rest.map(view));
      return v.every((x) => x.node.redis === 'down' && x.phase === 'paused') ? v : false;
    }, 'every node reporting Redis down and paused');
    // the tabs were told to pause
    await waitFor(() => tabs.every((t) => t.client.phase === 'paused'), 'tabs paused');
    const frozen = down[0]!.iteration;
    expect(frozen).toBeGreaterThanOrEqual(before);
    // each node logged it (its output reaches this process through a pipe, which can trail the
    // status answer that said 'down')
    await waitFor(
      () => live().every((n) => /redis unreachable/.test(n.stdout() + n.stderr())),
      'every node logging redis unreachable',
      10_000,
    );

    await redis.launch();
    await waitFor(async () => {
      const v = await Promise.all(rest.map(view));
      return v.every(
        (x) => x.node.redis === 'up' && x.phase === 'training' && x.iteration >= frozen + 10,
      );
    }, 'Redis back, training on, ten more iterations');
    await waitFor(() => tabs.every((t) => t.client.phase === 'training'), 'tabs training');
    expectConsecutive(tabs);
    const iteration = await pausedAndEqual(rest, tabs);
    expect(iteration).toBeGreaterThanOrEqual(frozen + 10);
  }, 90_000);

  it('a node started later loads the snapshot, replays the trimmed log and holds the same state; another job is refused', async () => {
    // the lease holder snapshotted and trimmed the log at its checkpoints
    const redisClient = new Redis(redis.url);
    const info = (await redisClient.call(
      'XINFO',
      'STREAM',
      `swarmgrad:${testJobInput.name}:log`,
    )) as unknown[];
    await redisClient.quit();
    const field = (name: string) => Number(info[info.indexOf(name) + 1]);
    expect(field('length')).toBeLessThan(field('entries-added'));

    const late = await spawnCoordinator(
      ['--redis', redis.url, '--config', config, '--data-dir', join(dir, 'node-late')],
      { SWARMGRAD_LEASE_MS: '2000' },
    );
    nodes.push(late);
    const all = live().map((n) => n.url);
    const lateView = await view(late.url);
    expect(lateView.tabs).toBe(6);
    expect(lateView.clusters.length).toBe(3);
    // still paused where the others are, with bit-identical parameters (tabs included)
    await pausedAndEqual(all, tabs);
    await control(late.url, 'resume');
    await waitFor(
      async () => (await view(late.url)).iteration >= lateView.iteration + 5,
      'the late node following',
    );
    await pausedAndEqual(all, tabs);

    // a node with another job does not join this swarm
    const other = join(dir, 'other-job.json');
    await writeFile(other, JSON.stringify({ ...testJobInput, staleness: 5 }));
    await expect(
      spawnCoordinator([
        '--redis',
        redis.url,
        '--config',
        other,
        '--data-dir',
        join(dir, 'node-other'),
      ]),
    ).rejects.toThrow(/job differs from the swarm/);
  }, 90_000);
});

describe('multi-node coordinator on Redis (in-process nodes)', () => {
  let redis: RedisServer;
  const running: Coordinator[] = [];
  const workers: FakeWorker[] = [];

  beforeAll(async () => {
    redis = await RedisServer.start();
  }, 300_000);

  afterAll(async () => {
    for (const w of workers) w.close();
    for (const c of running) await c.close({ checkpoint: false });
    await redis?.stop();
  });

  /** Two in-process nodes 'a' and 'b' of one swarm on this Redis, for the job with `overrides`. */
  async function startNodes(
    overrides: Partial<JobSpecInput>,
    minTabs: number,
  ): Promise<[Coordinator, Coordinator]> {
    const dir = await tempDir();
    const nodes: Coordinator[] = [];
    for (const name of ['a', 'b']) {
      const node = await startCoordinator(overrides, {
        dataDir: join(dir, name),
        minTabs,
        redis: redis.url,
      });
      running.push(node);
      nodes.push(node);
    }
    return nodes as [Coordinator, Coordinator];
  }

  it('only the lease holder closes, from proposals both nodes received; the other adopts its result, and a late proposal joins the next iteration', async () => {
    // three clusters of one tab, a grace of 0: an iteration closes on the first majority
    const [a, b] = await startNodes(
      { cluster: { size: 1, redundancy: 0 }, agreement: { graceMs: 0 } },
      3,
    );
    const w = await connectPlaced([a.url, b.url, a.url], { autoPropose: false }, workers);
    const clusterOf = (x: FakeWorker) => x.placement!.clusterId;
    const i0 = a.iteration;
    expect(b.iteration).toBe(i0);

    // clusters 0 (on a) and 1 (on b) propose: a majority of 3, which the lease holder closes
    await Promise.all([w[0]!.propose(), w[1]!.propose()]);
    await waitFor(() => a.iteration === i0 + 1 && b.iteration === i0 + 1, 'the close on both');
    // the third cluster's proposal on the old base arrives after the close: one iteration
    // stale (≤ staleness 2), it is counted into the next iteration on both nodes
    const late = await w[2]!.propose(w[2]!.computeUpdate(), i0);
    expect(late.ok).toBe(true);
    await waitFor(
      () =>
        a.status().quorum.proposed.includes(clusterOf(w[2]!)) &&
        b.status().quorum.proposed.includes(clusterOf(w[2]!)),
      'the late proposal held by both nodes',
    );
    expect(a.status().quorum.lastMajority).toEqual(b.status().quorum.lastMajority);
    expect(a.status().quorum.lastMajority).not.toContain(clusterOf(w[2]!));

    // the log: one close per iteration, all published by the lease holder (the other node only
    // adopted them), and the replicas hold bit-identical parameters
    await Promise.all([w[0]!.propose(), w[1]!.propose()]);
    await waitFor(() => a.iteration === i0 + 2 && b.iteration === i0 + 2, 'the second close');
    const holder = [a, b].find((c) => c.nodeStatus()?.leaseHolder === true);
    expect(holder).toBeDefined();
    const log = new Redis(redis.url);
    const entries = await log.xrange(`swarmgrad:${testJobInput.name}:log`, '-', '+');
    await log.quit();
    const closes = entries
      .flatMap(([, fields]) => {
        const decoded = JSON.parse(fields[1]!) as unknown;
        return (fields[0] === 'b' ? decoded : [decoded]) as {
          kind: string;
          node: string;
          iteration: number;
        }[];
      })
      .filter((c) => c.kind === 'closed');
    expect(closes.map((c) => c.iteration)).toEqual([...new Set(closes.map((c) => c.iteration))]);
    expect(closes.map((c) => c.iteration)).toContain(i0 + 2);
    expect(new Set(closes.map((c) => c.node))).toEqual(new Set([holder!.nodeId]));
    expect(a.iteration).toBe(i0 + 2);
    expect(Buffer.from(a.base.buffer).equals(Buffer.from(b.base.buffer))).toBe(true);
  }, 60_000);

  it('the nodes share one voucher secret: a proposal one node receives, vouched for by a member the other holds, is confirmed without asking', async () => {
    // each node drew its own secret; the first one's travels in the replica in Redis
    const [a, b] = await startNodes(
      {
        name: 'test-scale-out-vouchers',
        cluster: { size: 2, redundancy: 1 },
        agreement: { graceMs: 0 },
      },
      2,
    );
    expect(b.vouchers.keyHexFor('tab-x')).toBe(a.vouchers.keyHexFor('tab-x'));
    const w = await connectPlaced([a.url, b.url], { autoPropose: false }, workers);
    expect(w[0]!.placement!.clusterId).toBe(w[1]!.placement!.clusterId);
    const proposer = w.find((x) => x.placement!.proposer)!;
    const member = w.find((x) => x !== proposer)!;
    const i0 = a.iteration;
    expect(await proposer.proposeVouched([member])).toEqual({ ok: true });
    await waitFor(() => a.iteration > i0 && b.iteration > i0, 'the close on both');
    expect(member.confirmRequests).toEqual([]);
    expect(a.status().proposals.confirmed).toBe(1);
    expect(b.status().proposals.confirmed).toBe(1);
  }, 60_000);

  it('quarantine by cluster majority from reports received by different nodes, alike on both', async () => {
    const [a, b] = await startNodes(
      {
        name: 'test-scale-out-quarantine',
        cluster: { size: 4, redundancy: 0 },
        aggregator: { name: 'cge', f: 1 },
      },
      4,
    );
    const tabs = await connectPlaced([a.url, b.url, a.url, b.url], { delayMs: 20 }, workers);
    const [p, q, r, suspect] = tabs as [FakeWorker, FakeWorker, FakeWorker, FakeWorker];
    // one peer (on node a) alone: no quarantine; a second (on node b): 2 of 3, a majority
    p.reportQuarantined([suspect.id]);
    const at = a.iteration;
    await waitFor(() => a.iteration > at + 3, 'iterations');
    expect(a.status().quarantined).toEqual([]);
    q.reportQuarantined([suspect.id]);
    await waitFor(
      () => a.status().quarantined.length > 0 && b.status().quarantined.length > 0,
      'the quarantine on both nodes',
    );
    for (const c of [a, b]) {
      expect(c.status().quarantined.map((x) => [x.tabId, [...x.reportedBy].sort()])).toEqual([
        [suspect.id, [p.id, q.id].sort()],
      ]);
    }
    // unseated at the next iteration, on both nodes alike
    await waitFor(
      () =>
        [a, b].every((c) =>
          c.status().clusters.every((cl) => cl.members.every((m) => m.tabId !== suspect.id)),
        ),
      'the suspect unseated',
    );
    const seats = (c: Coordinator) =>
      JSON.stringify(c.status().clusters.map((cl) => cl.members.map((m) => [m.tabId, m.slot])));
    await waitFor(() => seats(a) === seats(b), 'the same seats');
    expect(r.placement).toBeDefined();
  }, 60_000);
});

function sortedKeys(record: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(record).sort(([a], [b]) => a.localeCompare(b)));
}
