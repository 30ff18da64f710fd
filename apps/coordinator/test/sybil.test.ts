/**
 * Sybil-aware placement against the real coordinator: real socket.io server and clients on
 * loopback, the coordinator trusting loopback as its reverse proxy so each client presents a
 * client address in X-Forwarded-For (documentation ranges, never contacted). Several tabs of
 * one address must never make a majority of a cluster, and one address may open only so
 * many tabs per minute.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { networkInterfaces } from 'node:os';
import { io, type Socket } from 'socket.io-client';
import { groupSeatCap } from '@swarmgrad/core';
import { PROTOCOL_VERSION } from '@swarmgrad/protocol';
import type { Coordinator } from '../src/index.ts';
import { FakeWorker } from '@swarmgrad/test-support/fake-worker';
import { writeFile } from 'node:fs/promises';
import {
  runCli,
  spawnCoordinator,
  startCoordinator,
  status,
  tempDir,
  testJobInput,
  waitFor,
  type ChildCoordinator,
} from '@swarmgrad/test-support/harness';
import { RedisServer } from '@swarmgrad/test-support/redis';

const running: Coordinator[] = [];
const workers: FakeWorker[] = [];
const sockets: Socket[] = [];
const children: ChildCoordinator[] = [];

afterEach(async () => {
  for (const child of children.splice(0)) {
    child.process.kill('SIGKILL');
    await child.exited;
  }
  for (const w of workers.splice(0)) w.close();
  for (const socket of sockets.splice(0)) socket.disconnect();
  for (const c of running.splice(0)) await c.close({ checkpoint: false });
});

const viaProxy = { trustProxy: ['127.0.0.1', '::1'] };

async function tab(url: string, address: string): Promise<FakeWorker> {
  const w = await FakeWorker.connect({ url, headers: { 'x-forwarded-for': address } });
  workers.push(w);
  return w;
}

/**
 * A bare hello from `address` through the trusted proxy: the coordinator's answer. The
 * connection stays open (closed after the test), so the tab stays known for a resume.
 */
async function hello(
  url: string,
  address: string,
  resumeToken?: string,
): Promise<{ ok: boolean; code?: string; tabId?: string; resumeToken?: string }> {
  const socket = io(`${url}/worker`, {
    transports: ['websocket'],
    reconnection: false,
    forceNew: true,
    extraHeaders: { 'x-forwarded-for': address },
  });
  sockets.push(socket);
  socket.on('ping', (ack: () => void) => ack());
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', () => resolve());
    socket.once('connect_error', reject);
  });
  const answer = (await socket.emitWithAck('hello', {
    protocolVersion: PROTOCOL_VERSION,
    kind: 'node',
    backend: 'cpu',
    ...(resumeToken === undefined ? {} : { resumeToken }),
  })) as
    | { ok: true; value: { tabId: string; resumeToken: string } }
    | { ok: false; error: { code: string } };
  return answer.ok
    ? { ok: true, tabId: answer.value.tabId, resumeToken: answer.value.resumeToken }
    : { ok: false, code: answer.error.code };
}

describe('sybil-aware placement', () => {
  it('never seats a majority of one address in a cluster; the surplus waits and is told', async () => {
    const coordinator = await startCoordinator(
      { cluster: { size: 4, redundancy: 0 } },
      { minTabs: 8, addresses: { ...viaProxy, joinsPerMinute: 600, joinBurst: 50 } },
    );
    running.push(coordinator);
    const url = coordinator.url;
    const crowd = '203.0.113.9';
    const crowdTabs: FakeWorker[] = [];
    // the crowd joins first, then five volunteers from five addresses
    for (let i = 0; i < 3; i++) crowdTabs.push(await tab(url, crowd));
    const honest: FakeWorker[] = [];
    for (let i = 1; i <= 5; i++) honest.push(await tab(url, `198.51.100.${i}`));
    await waitFor(() => honest.every((w) => w.placement !== undefined), 'honest placements');
    await waitFor(() => coordinator.iteration >= 2, 'training', 30_000);

    // mid-iteration joins (TabRegistry.seatInVacancy): one more of the crowd, one volunteer
    crowdTabs.push(await tab(url, crowd));
    honest.push(await tab(url, '198.51.100.6'));
    const joinedAt = coordinator.iteration;
    await waitFor(
      () => coordinator.iteration >= joinedAt + 3,
      'iterations after the joins',
      30_000,
    );

    const crowdIds = new Set(crowdTabs.map((w) => w.id));
    const cap = groupSeatCap(4);
    expect(cap).toBe(1);
    let seatedCrowd = 0;
    for (let check = 0; check < 5; check++) {
      const s = await status(url);
      expect(s.clusters.length).toBeGreaterThan(0);
      seatedCrowd = 0;
      for (const cluster of s.clusters) {
        const mine = cluster.members.filter((m) => crowdIds.has(m.tabId)).length;
        seatedCrowd += mine;
        expect(mine).toBeLessThanOrEqual(cap);
        expect(2 * mine).toBeLessThan(4); // never a majority of a cluster of 4
      }
      // every volunteer is seated; the crowd's surplus waits, counted in the status
      for (const w of honest) {
        expect(s.clusters.some((c) => c.members.some((m) => m.tabId === w.id))).toBe(true);
      }
      expect(s.unseated).toBe(crowdTabs.length - seatedCrowd);
      await new Promise((r) => setTimeout(r, 100));
    }
    // at least one of the crowd waits (4 crowd tabs, 6 volunteers: at most 3 clusters)
    expect(seatedCrowd).toBeLessThan(crowdTabs.length);
    expect(seatedCrowd).toBeGreaterThan(0);
    // a waiting tab never had a placement (not even mid-iteration: seatInVacancy obeys the
    // cap too) and was told why; a seated one has a placement
    for (const w of crowdTabs) {
      const seated = (await status(url)).clusters.some((c) =>
        c.members.some((m) => m.tabId === w.id),
      );
      if (seated) expect(w.placement).toBeDefined();
      else {
        expect(w.placement).toBeUndefined();
        await waitFor(() => w.unseated.length > 0, 'unseated notice');
        expect(w.unseated[0]).toEqual({ reason: 'address-group-full', group: `${crowd}/32` });
      }
    }
  }, 60_000);

  it('refuses new tabs over the join rate of an address group with too-many-joins', async () => {
    const coordinator = await startCoordinator(
      {},
      { addresses: { ...viaProxy, ipv4Prefix: 24, joinBurst: 3, joinsPerMinute: 3 } },
    );
    running.push(coordinator);
    const url = coordinator.url;
    const first: Awaited<ReturnType<typeof hello>>[] = [];
    for (let i = 0; i < 3; i++) first.push(await hello(url, '203.0.113.20'));
    expect(first.map((a) => a.ok)).toEqual([true, true, true]);
    // the fourth new tab of 203.0.113.0/24, from another address of the same /24: refused
    expect(await hello(url, '203.0.113.21')).toEqual({ ok: false, code: 'too-many-joins' });
    expect(await hello(url, '203.0.113.20')).toEqual({ ok: false, code: 'too-many-joins' });
    // another /24 is not held back
    expect((await hello(url, '203.0.114.20')).ok).toBe(true);
    // a tab resuming its identity opens no new tab: not charged
    const resumed = await hello(url, '203.0.113.20', first[0]!.resumeToken);
    expect(resumed).toMatchObject({ ok: true, tabId: first[0]!.tabId });
    // counted with the other rejections
    const s = await status(url);
    expect(s.rejected['too-many-joins']).toBe(2);
    const metrics = await (await fetch(`${url}/metrics`)).text();
    expect(metrics).toContain('swarmgrad_rejected_messages_total{code="too-many-joins"} 2');
  });

  // a CI swarm reaches the coordinator on this host's LAN address, which need not be private
  const lan = Object.values(networkInterfaces())
    .flatMap((list) => list ?? [])
    .find((item) => item.family === 'IPv4' && !item.internal)?.address;
  it.skipIf(lan === undefined)('groups no tabs opened on the coordinator host itself', async () => {
    const coordinator = await startCoordinator(
      { cluster: { size: 4, redundancy: 0 } },
      { host: lan!, minTabs: 4, addresses: { joinBurst: 2, joinsPerMinute: 2 } },
    );
    running.push(coordinator);
    const url = `http://${lan!}:${coordinator.port}`;
    const ws: FakeWorker[] = [];
    for (let i = 0; i < 4; i++) {
      const w = await FakeWorker.connect({ url });
      workers.push(w);
      ws.push(w);
    }
    await waitFor(() => ws.every((w) => w.placement !== undefined), 'placements');
    const s = await status(url);
    expect(s.clusters.map((c) => c.members.length)).toEqual([4]);
    expect(s.unseated).toBe(0);
    expect(coordinator.registry.tabs.get(ws[0]!.id)?.addressGroup).toBeUndefined();
  });

  it('believes no proxy header unless the proxy is trusted', async () => {
    // no --trust-proxy: every tab is loopback, an exempt range, whatever its header says
    const coordinator = await startCoordinator(
      {},
      { addresses: { joinBurst: 1, joinsPerMinute: 1 } },
    );
    running.push(coordinator);
    const answers = [];
    for (let i = 0; i < 3; i++) answers.push(await hello(coordinator.url, '203.0.113.30'));
    expect(answers.map((a) => a.ok)).toEqual([true, true, true]);
    expect((await status(coordinator.url)).rejected['too-many-joins']).toBeUndefined();
  });
});

describe('sybil-aware placement on several nodes (Redis)', () => {
  let redis: RedisServer;
  beforeAll(async () => {
    redis = await RedisServer.start();
  }, 300_000);
  afterAll(async () => {
    await redis?.stop();
  });

  it('carries the address group in the join: every node places the tabs of one address alike', async () => {
    const dir = await tempDir();
    const nodes: Coordinator[] = [];
    for (const name of ['a', 'b']) {
      const node = await startCoordinator(
        { cluster: { size: 3, redundancy: 0 } },
        {
          dataDir: join(dir, name),
          minTabs: 6,
          redis: redis.url,
          addresses: { ...viaProxy, joinsPerMinute: 600, joinBurst: 50 },
        },
      );
      running.push(node);
      nodes.push(node);
    }
    const [a, b] = nodes as [Coordinator, Coordinator];
    // three tabs of one address and three volunteers, alternating between the nodes
    const crowd: FakeWorker[] = [];
    const honest: FakeWorker[] = [];
    for (let i = 0; i < 3; i++) {
      crowd.push(await tab((i % 2 === 0 ? a : b).url, '203.0.113.40'));
      honest.push(await tab((i % 2 === 0 ? b : a).url, `198.51.100.${40 + i}`));
    }
    await waitFor(() => honest.every((w) => w.placement !== undefined), 'honest placements');
    await waitFor(() => a.iteration >= 2 && b.iteration >= 2, 'training on both nodes', 30_000);
    const seats = (c: Coordinator) =>
      c.registry.clusters.map((cluster) => ({ id: cluster.id, seats: [...cluster.seats] }));
    await waitFor(
      () => JSON.stringify(seats(a)) === JSON.stringify(seats(b)),
      'one placement on both nodes',
    );
    // the group as the receiving node saw it, on both replicas
    for (const w of crowd) {
      expect(a.registry.tabs.get(w.id)?.addressGroup).toBe('203.0.113.40/32');
      expect(b.registry.tabs.get(w.id)?.addressGroup).toBe('203.0.113.40/32');
    }
    const crowdIds = new Set(crowd.map((w) => w.id));
    for (const cluster of a.registry.clusters) {
      // clusters of 3: at most one seat per address group
      expect(
        cluster.seats.filter((id) => id !== undefined && crowdIds.has(id)).length,
      ).toBeLessThanOrEqual(1);
    }
    // two clusters of three, one crowd tab each: the third waits, on both replicas
    expect(a.registry.clusters.length).toBe(2);
    expect(a.status().unseated).toBe(1);
    expect(b.status().unseated).toBe(1);
  }, 120_000);
});

describe('swarmgrad serve address options', () => {
  it('takes the proxy, prefix and join-rate flags, and refuses bad ones', async () => {
    const dir = await tempDir();
    const job = join(dir, 'job.json');
    await writeFile(job, JSON.stringify(testJobInput));
    const child = await spawnCoordinator([
      '--config',
      job,
      '--data-dir',
      dir,
      '--trust-proxy',
      '127.0.0.1,::1',
      '--ipv4-prefix',
      '16',
      '--joins-per-minute',
      '2',
      '--join-burst',
      '2',
    ]);
    children.push(child);
    expect((await hello(child.url, '203.0.1.1')).ok).toBe(true);
    expect((await hello(child.url, '203.0.2.2')).ok).toBe(true);
    // a third new tab of 203.0.0.0/16
    expect(await hello(child.url, '203.0.3.3')).toEqual({ ok: false, code: 'too-many-joins' });
    expect((await hello(child.url, '203.1.0.1')).ok).toBe(true);

    const bad = await runCli(['serve', '--trust-proxy', 'proxy.example', '--port', '0']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--trust-proxy.*not an address or CIDR: proxy\.example/);
    const prefix = await runCli(['serve', '--ipv6-prefix', '129', '--port', '0']);
    expect(prefix.code).toBe(2);
    expect(prefix.stderr).toMatch(/a prefix length 0-128/);
  }, 120_000);
});
