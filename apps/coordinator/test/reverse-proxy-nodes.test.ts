/**
 * The multi-node deployment docs/architecture.md documents, run for real: three `swarmgrad serve
 * --redis` nodes (child processes, SIGKILL-able) behind Debian's nginx (scripts/ensure-nginx.mjs
 * installs it when missing) configured with the doc's ```nginx block, only its addresses
 * replaced. Tabs know one URL, the proxy's: nginx hands each WebSocket connection and each
 * request to a node of its choice (round robin, no sticky sessions), the tabs form one swarm and
 * train; when the node holding the most tabs is killed, they reconnect through the same URL to
 * the others and resume their seats.
 *
 * Tabs are ClientTab (the real tab connection with a softmax-regression gradient, as in
 * scale-out.test.ts); the accuracy bar is that file's: > 75 % held-out after 40 iterations.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ClientTab } from './support/client-tab.ts';
import { evaluatedOnEveryNode, view } from './support/node-view.ts';
import {
  spawnCoordinator,
  tempDir,
  testJobInput,
  waitFor,
  type ChildCoordinator,
} from '@swarmgrad/test-support/harness';
import { freePort, RedisServer } from '@swarmgrad/test-support/redis';
import { documentedNginxSite, startNginx, type RunningNginx } from '@swarmgrad/test-support/nginx';

const NODES = 3;
const TABS = 6;

describe('three nodes behind nginx (docs/architecture.md)', () => {
  let redis: RedisServer;
  let nginx: RunningNginx | undefined;
  let proxy = '';
  const nodes: ChildCoordinator[] = [];
  const tabs: ClientTab[] = [];

  beforeAll(async () => {
    redis = await RedisServer.start();
    const dir = await tempDir();
    const config = join(dir, 'job.json');
    await writeFile(
      config,
      JSON.stringify({ ...testJobInput, evaluateEvery: 10, checkpointEvery: 10 }),
    );
    const ports = await Promise.all(Array.from({ length: NODES }, () => freePort()));
    nodes.push(
      ...(await Promise.all(
        ports.map((port, i) =>
          spawnCoordinator(
            [
              '--redis',
              redis.url,
              '--config',
              config,
              '--data-dir',
              join(dir, `node-${i}`),
              '--port',
              String(port),
              // as the doc's comment says: the proxy's X-Forwarded-For is believed
              '--trust-proxy',
              '127.0.0.1',
            ],
            { SWARMGRAD_LEASE_MS: '2000' },
          ),
        ),
      )),
    );
    // the ports asked for are the ports served (the upstreams below name them)
    expect(nodes.map((n) => Number(new URL(n.url).port))).toEqual(ports);
    const proxyPort = await freePort();
    const site = await documentedNginxSite('docs/architecture.md', [
      ...ports.map(
        (port, i) =>
          [new RegExp(`server 10\\.0\\.0\\.1${i + 1}:8080 `), `server 127.0.0.1:${port} `] as const,
      ),
      ['listen 80;', `listen 127.0.0.1:${proxyPort};`],
    ]);
    proxy = `http://127.0.0.1:${proxyPort}`;
    nginx = await startNginx(site, async () => {
      const answer = await fetch(`${proxy}/api/status`).catch(() => undefined);
      return answer?.status === 200;
    });
  }, 300_000);

  afterAll(async () => {
    for (const tab of tabs) tab.close();
    await nginx?.stop();
    for (const node of nodes) if (node.process.exitCode === null) node.process.kill('SIGKILL');
    await redis?.stop();
  });

  it('tabs that know only the proxy are held by the nodes it picks, form one swarm and train to > 75%', async () => {
    for (let i = 0; i < TABS; i++) tabs.push(await ClientTab.start([proxy]));
    expect(tabs.every((t) => t.client.url === proxy)).toBe(true);
    const urls = nodes.map((n) => n.url);
    await waitFor(
      async () => {
        const views = await Promise.all(urls.map(view));
        const sockets = views.map((v) => v.node.sockets);
        const seated = views.every((v) => v.tabs === TABS && v.clusters.length === TABS / 2);
        return seated && sockets.reduce((a, b) => a + b, 0) === TABS;
      },
      'every tab seated, seen alike from every node',
      60_000,
    );
    const trained = await evaluatedOnEveryNode(urls, 40);
    for (const v of trained) expect(v.accuracy!).toBeGreaterThan(0.75);
    // the API answers through the proxy from whichever node nginx picks (round robin, no
    // stickiness: consecutive requests reach different nodes), each with the whole swarm
    const answers = [];
    for (let i = 0; i < 2 * NODES; i++) answers.push(await view(proxy));
    expect(new Set(answers.map((a) => a.node.id)).size).toBeGreaterThan(1);
    for (const a of answers) {
      expect(a.tabs).toBe(TABS);
      expect(a.node.nodes).toHaveLength(NODES);
    }
  }, 150_000);

  it('a node killed with SIGKILL: its tabs reconnect through the proxy to the others, keep their seats, and training goes on', async () => {
    const views = await Promise.all(nodes.map((n) => view(n.url)));
    const victim = views.reduce(
      (most, v, i) => (v.node.sockets > views[most]!.node.sockets ? i : most),
      0,
    );
    const held = views[victim]!.node.sockets;
    expect(held).toBeGreaterThan(0);
    const ids = tabs.map((t) => t.id).sort();
    const welcomes = tabs.map((t) => t.welcomedBy.length);
    const before = Math.max(...views.map((v) => v.iteration));
    const killed = nodes[victim]!;
    killed.process.kill('SIGKILL');
    await killed.exited;

    const rest = nodes.filter((n) => n !== killed).map((n) => n.url);
    const after = await waitFor(
      async () => {
        const v = await Promise.all(rest.map(view));
        const sockets = v.reduce((a, x) => a + x.node.sockets, 0);
        const gone = v.every((x) => x.node.nodes.length === NODES - 1);
        return sockets === TABS &&
          gone &&
          v.every((x) => x.tabs === TABS && x.iteration >= before + 10)
          ? v
          : false;
      },
      'every tab on the two live nodes and ten more iterations',
      60_000,
    );
    // the killed node's tabs came back through the one URL they know, under their own ids
    expect(tabs.every((t) => t.client.connected && t.client.url === proxy)).toBe(true);
    expect(tabs.map((t) => t.id).sort()).toEqual(ids);
    const rewelcomed = tabs.filter((t, i) => t.welcomedBy.length > welcomes[i]!);
    expect(rewelcomed.length).toBeGreaterThanOrEqual(held);
    const seated = after[0]!.clusters.flatMap((c) => c.members.map((m) => m.tabId)).sort();
    expect(seated).toEqual(ids);
    // the two live nodes hold one lease between them
    expect(after.filter((v) => v.node.leaseHolder)).toHaveLength(1);
  }, 120_000);
});
