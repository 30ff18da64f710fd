/**
 * Issue 4, tests 2–4: four real Chromium tabs (one browser context each, the volunteer page on
 * the coordinator's LAN address, Donate pressed) train over real WebRTC data channels.
 *
 * The job is the default one (MLP 784-128-10 on MNIST, d = 101,770, 1-bit codec, B = 1024,
 * learning rate 0.1, L = 1, redundancy s = 1, evaluateEvery 5) except `cluster.size: 2`: the
 * default size 4 would put four tabs into ONE cluster, and the issue asks for two; and
 * `pipeline: false` (lock-step), for test 3. Nothing was tuned for speed.
 *
 * The tests run in order on one swarm:
 * 2. the four tabs sit in two clusters of two, every link connected, and the coordinator's
 *    held-out accuracy (/api/status `accuracy`) reaches 0.90 within 6 minutes of the first
 *    Donate;
 * 4. the update traffic each tab's RTCPeerConnection.getStats() counts on its data channels
 *    ('data-channel' reports, payload bytes) is ≤ 1.1 bits per parameter per update per link;
 * 3. one tab, its cluster's proposer, is closed mid-round — after it published its register for
 *    the current iteration and before the coordinator counted its cluster's proposal (its peer
 *    computes at a 10 % share meanwhile) — and iterations go on with no gap over 20 s; a new
 *    tab then joins, takes the vacant seat, and its base follows the coordinator's iteration.
 *    Where inside that window the close lands is not chosen: with the dynamic backup workers
 *    (seed 003) a cluster of two whose gradient code decodes from one register (s = 1) soon stops
 *    waiting for the slow peer (waitFor 1), and the proposer aggregates the moment its own
 *    register is written; it is then caught with its proposal waiting for the slow peer's
 *    confirmation. The note says which.
 */
import { expect, test } from '@playwright/test';
import type { WorkerStatus } from '@swarmgrad/worker';
import { openTab, untilTraining } from './support/browser-swarm.ts';
import { until } from './support/coordinator.ts';
import { saveScreenshot } from './support/screenshots.ts';
import { useTabSwarm } from './support/tab-swarm.ts';

test.describe.configure({ mode: 'serial' });

// lock-step: test 3 catches a tab between publishing its register and its cluster's proposal,
// a moment a pipelined tab never waits in (pipeline.spec.ts closes a pipelined tab)
const job = { name: 'e2e-two-clusters', cluster: { size: 2 }, pipeline: false };
const DIMENSION = 101_770;
const ACCURACY_DEADLINE_MS = 6 * 60_000;
const MAX_ITERATION_GAP_MS = 20_000;

const swarm = useTabSwarm(job, 4);
const { tabs } = swarm;

function note(type: string, value: unknown): void {
  const description = typeof value === 'string' ? value : JSON.stringify(value);
  console.log(`${type}: ${description}`);
  test.info().annotations.push({ type, description });
}

test('four tabs in two clusters train the default MNIST job to 90% held-out accuracy', async () => {
  test.setTimeout(ACCURACY_DEADLINE_MS + 60_000);
  const statuses = await Promise.all(tabs.map((tab) => untilTraining(tab, 120_000)));
  const ids = statuses.map((s) => s.tabId!);
  // two clusters of two, made of exactly our four tabs, each tab linked to its peer
  const placed = await until(async () => {
    const s = await swarm.coordinator.status();
    const live = s.clusters.map((c) => c.members.filter((m) => m.live).map((m) => m.tabId));
    return s.clusters.length === 2 && live.every((m) => m.length === 2) ? live : undefined;
  }, 'two clusters of two');
  expect(placed.flat().sort()).toEqual([...ids].sort());
  for (const s of await Promise.all(tabs.map((t) => t.status()))) {
    expect(s!.kind).toBe('browser');
    expect(s!.cluster!.size).toBe(2);
    expect(s!.cluster!.peers).toHaveLength(1);
    expect(s!.cluster!.peers[0]!.link).toBe('connected');
    expect(s!.job!.dimension).toBe(DIMENSION);
  }
  note(
    'backends',
    statuses.map((s) => s.backend?.reason),
  );
  // the page is cross-origin isolated (COOP/COEP): a tab that picked wasm runs it threaded
  const wasmTabs = statuses.filter((s) => s.backend?.backend === 'wasm');
  expect(wasmTabs.length).toBeGreaterThan(0);
  for (const s of wasmTabs) expect(s.backend!.threaded).toBe(true);
  // a software WebGPU adapter (this machine's SwiftShader) is not timed once wasm runs the job
  for (const s of statuses) {
    const webgpu = s.backend!.trials.find((t) => t.backend === 'webgpu');
    if (s.backend!.fallbackAdapter === true && s.backend!.backend === 'wasm') {
      expect(webgpu?.msPerStep).toBeUndefined();
      expect(webgpu?.skipped).toMatch(/fallback adapter.*not timed: wasm runs this job/);
    }
  }

  const reached = await until(
    async () => {
      const s = await swarm.coordinator.status();
      return s.accuracy !== null && s.accuracy >= 0.9 ? s : undefined;
    },
    'held-out accuracy ≥ 0.90',
    ACCURACY_DEADLINE_MS - (Date.now() - swarm.firstDonateAt),
    1000,
  );
  const seconds = (Date.now() - swarm.firstDonateAt) / 1000;
  note('accuracy', {
    accuracy: reached.accuracy,
    evaluatedAt: reached.evaluatedAt,
    iteration: reached.iteration,
    secondsSinceFirstDonate: Math.round(seconds),
  });
  expect(reached.accuracy).toBeGreaterThanOrEqual(0.9);
  expect(reached.phase).toBe('training');
  // the proposals came with their members' vouchers (docs/architecture.md, _Confirmations
  // bundled by the proposer_): every one checked, none forged, and the coordinator asked members
  // itself for fewer proposals than it confirmed (a voucher can miss its proposal's wait)
  const metrics = await (await fetch(`${swarm.coordinator.loopbackUrl}/metrics`)).text();
  const counter = (pattern: RegExp) => Number(pattern.exec(metrics)?.[1] ?? 0);
  const verified = counter(/^swarmgrad_vouchers_total\{result="verified"\} (\d+)$/m);
  const forged = counter(/^swarmgrad_vouchers_total\{result="forged"\} (\d+)$/m);
  const asked = counter(/^swarmgrad_confirm_requests_total (\d+)$/m);
  const confirmed = counter(/^swarmgrad_proposal_verdicts_total\{verdict="confirmed"\} (\d+)$/m);
  note('confirmations', { confirmed, vouchersVerified: verified, forged, membersAsked: asked });
  expect(forged).toBe(0);
  expect(verified).toBeGreaterThan(0.5 * confirmed);
  expect(asked).toBeLessThan(0.5 * confirmed);
  await saveScreenshot(tabs[0]!.page, 'swarm-volunteer-tab');
  for (const tab of tabs) expect(tab.problems).toEqual([]);
});

test('update traffic on the data channels is at most 1.1 bits per parameter per update', async () => {
  const perTab: { tab: string; links: number; updates: number; bytes: number; bits: number }[] = [];
  let bytes = 0;
  let updates = 0;
  let control = 0;
  let controlFrames = 0;
  for (const tab of tabs) {
    const status = (await tab.status())!;
    const channels = await tab.dataChannels();
    expect(channels).toHaveLength(status.cluster!.peers.length);
    let tabBytes = 0;
    let tabUpdates = 0;
    for (const link of channels) {
      expect(link.state).toBe('connected');
      expect(link.stats).not.toBeNull();
      const stats = link.stats!;
      // one data channel per link, one message per update frame (a 1-bit frame of d = 101,770
      // is ~13 KB, under the 64 KiB chunk size), and the link never reconnected: the browser's
      // message count equals the frames the worker sent on this link — between the count when
      // getStats() was asked for and the count when it answered (the tab keeps sending).
      // Peer messages (confirm requests, vouchers) are messages too, and left out of the updates
      expect(stats.channels).toBe(1);
      expect(stats.messagesSent).toBeGreaterThanOrEqual(link.framesSent);
      expect(stats.messagesSent).toBeLessThanOrEqual(link.framesSentAfter);
      expect(link.framesSentAfter - link.framesSent).toBeLessThanOrEqual(3);
      const linkUpdates = link.framesSent - link.controlFramesSent;
      expect(linkUpdates).toBeGreaterThan(50);
      // a proposer asks its member, the member vouches: at most one of each per iteration
      expect(link.controlFramesSent).toBeGreaterThan(0);
      expect(link.controlFramesSent).toBeLessThanOrEqual(linkUpdates + 3);
      control += link.controlBytesSent;
      controlFrames += link.controlFramesSent;
      tabBytes += stats.bytesSent - link.controlBytesSent;
      tabUpdates += linkUpdates;
    }
    bytes += tabBytes;
    updates += tabUpdates;
    perTab.push({
      tab: tab.name,
      links: channels.length,
      updates: tabUpdates,
      bytes: tabBytes,
      bits: (8 * tabBytes) / (tabUpdates * DIMENSION),
    });
  }
  const bits = (8 * bytes) / (updates * DIMENSION);
  note('bits per parameter per update per link', { overall: bits, perTab });
  note('peer messages (confirm requests and vouchers)', {
    frames: controlFrames,
    bytes: control,
    bitsPerParameterPerUpdate: (8 * control) / (updates * DIMENSION),
  });
  // header + chunk header + 1 bit per parameter + one fp32 scale per 1024: ≈ 1.036
  expect(bits).toBeGreaterThan(1);
  expect(bits).toBeLessThanOrEqual(1.1);
  for (const t of perTab) expect(t.bits).toBeLessThanOrEqual(1.1);
});

test('a tab closed mid-round does not stall the rounds, and a new tab joins and catches up', async () => {
  test.setTimeout(240_000);
  const dashboard = await swarm.browser.newPage();
  await dashboard.goto(`${swarm.coordinator.loopbackUrl}/dashboard`);

  // iterations as /api/status shows them, polled every 100 ms from here on
  const seen: { at: number; iteration: number }[] = [];
  let polling = true;
  const poller = (async () => {
    while (polling) {
      try {
        const s = await swarm.coordinator.status();
        if (seen.length === 0 || seen.at(-1)!.iteration !== s.iteration) {
          seen.push({ at: Date.now(), iteration: s.iteration });
        }
      } catch {
        // the next poll
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  })();

  // the victim: a cluster's proposer, caught after it published its register for the current
  // iteration (state 'waiting', its own slot held) and before the coordinator counted its
  // cluster's proposal (see the file comment)
  const proposers = await Promise.all(tabs.map(async (t) => (await t.status())!.cluster?.proposer));
  const victim = tabs[proposers.indexOf(true)]!;
  expect(victim).toBeDefined();
  const before = (await victim.status())!;
  const victimId = before.tabId!;
  const clusterId = before.cluster!.id;
  const survivorId = before.cluster!.peers[0]!.tabId;
  // the survivor computes at a 10 % share for the moment (the page's throttle, Home = minimum),
  // so the victim waits for its register, or its proposal for the survivor's confirmation, long
  // enough to be caught there: with both tabs at full speed that wait can be shorter than one
  // status poll
  const survivor = (
    await Promise.all(tabs.map(async (t) => ({ t, id: (await t.status())?.tabId })))
  ).find((e) => e.id === survivorId)!.t;
  const throttle = survivor.page.locator('#throttle');
  await throttle.press('Home');
  await expect(throttle).toHaveValue('0.1');
  let closedAt = 0;
  let closedIteration = 0;
  let closedAfterAggregating = false;
  await until(
    async () => {
      const s = (await victim.status())!;
      if (s.state !== 'waiting' || !s.cluster || !s.cluster.held.includes(s.cluster.slot)) {
        return false;
      }
      if (!s.cluster.proposer) return false;
      const c = await swarm.coordinator.status();
      if (c.iteration !== s.iteration || c.quorum.proposed.includes(s.cluster.id)) return false;
      closedAfterAggregating = s.cluster.lastAggregate?.iteration === s.iteration;
      closedIteration = s.iteration!;
      closedAt = Date.now();
      await victim.close();
      return true;
    },
    'the victim to be mid-round',
    30_000,
    0,
  );
  await throttle.press('End');
  await expect(throttle).toHaveValue('1');
  note('closed mid-round', {
    victim: victim.name,
    victimId,
    clusterId,
    iteration: closedIteration,
    stage: closedAfterAggregating
      ? 'aggregated, proposal not counted yet'
      : 'register published, not aggregated',
  });

  // the coordinator saw it leave before its cluster proposed — or, when the victim was caught
  // after aggregating, possibly just after: its proposal was on its way and may be counted
  // before the leave is (a fresh-clone CI run saw the event as 'tab-left' then)
  const leftKinds = closedAfterAggregating
    ? '[data-kind="tab-left-mid-round"], [data-testid="event"][data-kind="tab-left"]'
    : '[data-kind="tab-left-mid-round"]';
  await expect(
    dashboard.locator(`[data-testid="event"]${leftKinds}`).filter({ hasText: victimId }).first(),
  ).toBeVisible({ timeout: 20_000 });

  // training goes on: 30 s of iterations after the close, with no gap over the bound
  await until(async () => Date.now() - closedAt > 30_000, '30 s after the close', 40_000, 500);
  const afterClose = seen.filter((e) => e.at >= closedAt);
  expect(afterClose.length).toBeGreaterThan(20);
  const remaining = (await swarm.coordinator.status()).clusters.find((c) => c.id === clusterId);
  expect(remaining?.members.filter((m) => m.live).map((m) => m.tabId)).toEqual([survivorId]);

  // a new tab joins later and takes the vacant seat
  const newcomer = await openTab(swarm.browser, swarm.coordinator.url, { name: 'newcomer' });
  tabs.push(newcomer);
  const joined: WorkerStatus = await untilTraining(newcomer, 120_000);
  const newId = joined.tabId!;
  const seated = await until(async () => {
    const s = await swarm.coordinator.status();
    const home = s.clusters.find((c) => c.members.some((m) => m.tabId === newId && m.live));
    return home ? { clusters: s.clusters.length, home } : undefined;
  }, 'the newcomer to be seated');
  expect(seated.clusters).toBe(2);
  expect(seated.home.id).toBe(clusterId);
  expect(joined.cluster!.peers.map((p) => p.tabId)).toEqual([survivorId]);

  // its base follows the coordinator's on 5 samples 2 s apart: the tab's iteration lies between
  // the coordinator's just before its status was read (less 2) and just after; and it computes
  const samples: { before: number; tab: number | undefined; after: number }[] = [];
  let steps = joined.steps;
  for (let i = 0; i < 5; i++) {
    await new Promise((r) => setTimeout(r, 2000));
    const beforeRead = (await swarm.coordinator.status()).iteration;
    const mine = (await newcomer.status())!;
    const afterRead = (await swarm.coordinator.status()).iteration;
    samples.push({ before: beforeRead, tab: mine.iteration, after: afterRead });
    expect(mine.steps).toBeGreaterThan(steps);
    steps = mine.steps;
  }
  note('newcomer iterations', samples);
  for (const { before: b, tab: t, after: a } of samples) {
    expect(t).toBeDefined();
    expect(t!).toBeGreaterThanOrEqual(b - 2);
    expect(t!).toBeLessThanOrEqual(a);
  }

  polling = false;
  await poller;
  const windowed = seen.filter((e) => e.at >= closedAt);
  let maxGap = 0;
  for (let i = 1; i < windowed.length; i++) {
    maxGap = Math.max(maxGap, windowed[i]!.at - windowed[i - 1]!.at);
  }
  maxGap = Math.max(maxGap, windowed[0]!.at - closedAt);
  note('after the close', {
    iterations: windowed.at(-1)!.iteration - closedIteration,
    seconds: Math.round((windowed.at(-1)!.at - closedAt) / 1000),
    maxGapMs: maxGap,
  });
  expect(maxGap).toBeLessThanOrEqual(MAX_ITERATION_GAP_MS);
  for (const tab of tabs) expect(tab.problems).toEqual([]);
  await dashboard.close();
});
