/**
 * The operator dashboard against four real Chromium tabs (one browser context each, the
 * volunteer page, real WebRTC data channels; `@swarmgrad/swarm`'s fixture), where dashboard.spec.ts
 * drives the controls with Node fake workers. What the page shows here comes from what real tabs
 * did and reported, nothing is scripted: the tabs the coordinator seated, drawn in their
 * clusters; the wire panel's bytes by path — tab to tab (the tabs' reported data-channel
 * traffic), proposals, broadcast — each non-zero and growing while the swarm trains, and adding
 * up to the coordinator's total; the accuracy curve gaining points; a real tab closed by the test
 * in the event log.
 */
import type { WirePath } from '@swarmgrad/protocol';
import { until } from '@swarmgrad/swarm';
import { expect, test } from '@swarmgrad/swarm/fixture';
import { e2eNetwork } from './support/lab.ts';
import type { Page } from '@playwright/test';

/** The bytes one path of the wire panel shows (its data attribute, the exact count). */
async function shownBytes(page: Page, path: WirePath): Promise<number> {
  return Number(await page.getByTestId(`wire-${path}`).getAttribute('data-bytes'));
}

test('the dashboard shows four real tabs: their clusters, their bytes by path, their curves and a closed tab', async ({
  launchSwarm,
}) => {
  test.setTimeout(6 * 60_000);
  const swarm = await launchSwarm({
    network: e2eNetwork,
    serve: { job: { name: 'e2e-dashboard-real-tabs', cluster: { size: 2 }, evaluateEvery: 5 } },
    tabs: 4,
    backend: 'wasm',
  });
  await swarm.untilJoined();
  const placed = await until(
    async () => {
      const s = await swarm.status();
      const live = s.clusters.flatMap((c) => c.members.filter((m) => m.live));
      return s.phase === 'training' && s.iteration >= 5 && live.length === 4 ? s : undefined;
    },
    'four real tabs seated and training',
    180_000,
    500,
  );

  // the dashboard in a context of its own in the tabs' Chromium: inside the lab, and launched to
  // treat the coordinator's plain-http lab origin as secure (COOP/COEP honoured, as for the tabs)
  const dashboard = await swarm.live()[0]!.page.context().browser()!.newContext();
  const page = await dashboard.newPage();
  const problems: string[] = [];
  page.on('pageerror', (e) => problems.push(String(e)));
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(m.text());
  });
  await page.goto(`${swarm.apiUrl}/dashboard`);
  await expect(page.getByTestId('job-name')).toHaveText('e2e-dashboard-real-tabs');
  await expect(page.getByTestId('tab-count')).toHaveText('4');
  await expect(page.getByTestId('cluster')).toHaveCount(2);
  // every real tab is drawn in the cluster the coordinator seated it in
  for (const cluster of placed.clusters) {
    const card = page.locator(`[data-testid="cluster"][data-cluster="${cluster.id}"]`);
    for (const m of cluster.members.filter((x) => x.live))
      await expect(card.locator(`[data-tab="${m.tabId}"]`)).toBeVisible();
  }
  // ... and those are the tabs this test opened
  const opened = new Set(swarm.live().flatMap((t) => t.ids));
  for (const m of placed.clusters.flatMap((c) => c.members.filter((x) => x.live)))
    expect(opened.has(m.tabId)).toBe(true);

  // the wire panel: tab-to-tab bytes reported by the tabs, proposals and broadcast frames, each
  // non-zero and growing as the swarm trains
  await expect(page.getByTestId('wire-peer')).toBeVisible();
  for (const path of ['peer', 'proposal', 'broadcast'] as const) {
    // growing from what is shown now (≥ 0): non-zero too
    const before = await shownBytes(page, path);
    await expect.poll(() => shownBytes(page, path), { timeout: 30_000 }).toBeGreaterThan(before);
  }
  // the breakdown adds up to the coordinator's total, and the tabs' traffic dominates it: every
  // tab sends its register to its cluster peer each iteration, one proposal per cluster goes up
  const s = await swarm.status();
  const { byPath } = s.wire;
  expect(byPath.peer + byPath.proposal + byPath.broadcast + byPath.relay).toBe(s.wire.bytesSent);
  expect(byPath.peer).toBeGreaterThan(byPath.proposal);
  // the coordinator's tab-to-tab count is the sum of the tabs' reports, so it can only lag what
  // the tabs wrote to their links, read after it; and the browser's own getStats() counted bytes
  // on those data channels
  const links = (await Promise.all(swarm.live().map((t) => t.dataChannels()))).flat();
  const written = links.reduce((sum, link) => sum + link.bytesSent, 0);
  const counted = links.reduce((sum, link) => sum + (link.stats?.bytesSent ?? 0), 0);
  console.log(`wire: ${JSON.stringify({ byPath, total: s.wire.bytesSent, written, counted })}`);
  expect(byPath.peer).toBeLessThanOrEqual(written);
  expect(counted).toBeGreaterThan(0);

  // the accuracy curve gains points from the coordinator's evaluations
  const chart = page.getByTestId('accuracy-chart');
  const points = async () => Number(await chart.getAttribute('data-points'));
  await expect.poll(points, { timeout: 30_000 }).toBeGreaterThan(0);
  const before = await points();
  await expect.poll(points, { timeout: 60_000 }).toBeGreaterThan(before);

  // a real tab closed by the test shows in the event log, and the count follows
  const victim = swarm.live()[3]!;
  const victimId = victim.ids.at(-1)!;
  await swarm.closeTab(victim, { midRound: false });
  const entry = page
    .locator('[data-testid="event"]')
    .filter({ hasText: new RegExp(`${victimId} left`) })
    .first();
  await expect(entry).toBeVisible({ timeout: 15_000 });
  await expect(page.getByTestId('tab-count')).toHaveText('3');
  expect(problems).toEqual([]);
  await dashboard.close();
});
