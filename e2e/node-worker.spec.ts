/**
 * Issue 4, test 5: the Node worker (`swarmgrad worker --url http://<lan ip>:<port>`: the same
 * packages/worker code on TF.js WASM/CPU, @roamhq/wrtc for WebRTC) joins a swarm of three
 * Chromium tabs on the default job (cluster size 4, so the four make one cluster) and trains
 * with them: it is seated in the tabs' cluster, its data channels to all three tabs connect,
 * the tabs aggregate its registers (its slot among their aggregates' contributors), and
 * iterations keep advancing. All in a network lab (support/lab.ts): the worker in the tabs' home.
 */
import { expect, test, type Browser } from '@playwright/test';
import {
  launchBrowser,
  openTab,
  startNodeWorker,
  untilTraining,
  type BrowserTab,
  type NodeWorkerProcess,
} from './support/browser-swarm.ts';
import { startCoordinator, until, type CoordinatorProcess } from './support/coordinator.ts';
import { openLab, type E2eLab } from './support/lab.ts';

let lab: E2eLab;
let coordinator: CoordinatorProcess;
let browser: Browser;
let node: NodeWorkerProcess | undefined;
const tabs: BrowserTab[] = [];

function note(type: string, value: unknown): void {
  const description = typeof value === 'string' ? value : JSON.stringify(value);
  console.log(`${type}: ${description}`);
  test.info().annotations.push({ type, description });
}

test.beforeAll(async () => {
  test.setTimeout(180_000);
  lab = await openLab();
  coordinator = await startCoordinator({ job: { name: 'e2e-node-worker' }, ...lab.serve });
  browser = await launchBrowser(coordinator.url, [], lab.home.chromium);
  for (let i = 0; i < 3; i++) {
    tabs.push(await openTab(browser, coordinator.url, { name: `tab ${i + 1}` }));
  }
  await Promise.all(tabs.map((tab) => untilTraining(tab, 120_000)));
});

test.afterAll(async () => {
  await node?.stop();
  await browser?.close();
  await coordinator?.stop();
  await lab?.destroy();
});

test('the Node worker joins a swarm of browser tabs and trains with them', async () => {
  test.setTimeout(240_000);
  const browserIds = (await Promise.all(tabs.map((t) => t.status()))).map((s) => s!.tabId!);
  node = startNodeWorker(coordinator.url, [], lab.inHome);
  const nodeId = await node.tabId;
  const joinedAt = (await coordinator.status()).iteration;

  // seated in the browser tabs' cluster
  const cluster = await until(
    async () => {
      const s = await coordinator.status();
      return s.clusters.find((c) => c.members.some((m) => m.tabId === nodeId && m.live));
    },
    'the Node worker to be seated',
    60_000,
  );
  expect(
    cluster.members
      .filter((m) => m.live)
      .map((m) => m.tabId)
      .sort(),
  ).toEqual([...browserIds, nodeId].sort());
  const nodeMember = cluster.members.find((m) => m.tabId === nodeId)!;
  expect(['wasm', 'cpu']).toContain(nodeMember.backend);

  // every browser tab's link to it connects and carries its registers
  await until(
    async () => {
      for (const tab of tabs) {
        const peer = (await tab.status())!.cluster?.peers.find((p) => p.tabId === nodeId);
        if (peer?.link !== 'connected' || peer.bytesReceived === 0 || peer.rejected > 0) {
          return false;
        }
      }
      return true;
    },
    'the browser tabs to be linked to the Node worker and receive its registers',
    90_000,
    500,
  );
  // and the Node worker says so itself: all three links up, computing
  const line = await until(
    () => {
      const last = node!.lastLine();
      return last && / \(3\/3 links\)/.test(last) && !/ 0 steps/.test(last) ? last : undefined;
    },
    'the Node worker to report 3/3 links',
    30_000,
    500,
  );
  note('node worker', line);

  // its registers count: the tabs' aggregates include its slot, iteration after iteration
  const slot = (await tabs[0]!.status())!.cluster!.peers.find((p) => p.tabId === nodeId)!.slot;
  const counted = new Set<number>();
  await until(
    async () => {
      for (const tab of tabs) {
        const last = (await tab.status())!.cluster?.lastAggregate;
        if (last && last.contributors.includes(slot)) counted.add(last.iteration);
      }
      return counted.size >= 5;
    },
    'five aggregates with the Node worker’s register',
    60_000,
    250,
  );
  const status = await coordinator.status();
  note('with the node worker', {
    nodeId,
    slot,
    iterationsSinceJoin: status.iteration - joinedAt,
    aggregatesWithItsRegister: [...counted].sort((a, b) => a - b),
    accuracy: status.accuracy,
  });
  expect(status.phase).toBe('training');
  expect(status.iteration - joinedAt).toBeGreaterThanOrEqual(10);
  expect(node.output()).not.toMatch(/error|refused/i);
  for (const tab of tabs) expect(tab.problems).toEqual([]);
});
