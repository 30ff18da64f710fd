/**
 * The volunteer page (/) before Donate: it says what the tab will do, runs under the CSP and
 * COEP, opens no connection to the swarm until Donate, and reads well at 390 px. What happens
 * after Donate (the browser worker training over WebRTC) is tested in browser-swarm.spec.ts.
 *
 * The swarm's other "tabs" here are Node fake workers (see support/swarm.ts).
 */
import { expect, test } from '@playwright/test';
import { startSwarm, until, type Swarm } from './support/swarm.ts';
import { saveScreenshot } from './support/screenshots.ts';

let swarm: Swarm;

test.beforeAll(async () => {
  test.setTimeout(120_000);
  swarm = await startSwarm({ tabs: 2 });
  await until(async () => (await swarm.status()).iteration >= 2, 'the swarm to train');
});

test.afterAll(async () => {
  await swarm?.stop();
});

test('says what the tab will do and starts nothing before Donate', async ({ page }) => {
  const problems: string[] = [];
  const sockets: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(m.text());
  });
  page.on('pageerror', (e) => problems.push(String(e)));
  page.on('websocket', (ws) => sockets.push(ws.url()));

  await page.setViewportSize({ width: 390, height: 844 });
  await page.goto(`${swarm.url}/`);
  await expect(page.getByTestId('volunteer-job')).toHaveText('e2e-dashboard');
  await expect(page.locator('.lead')).toContainText('softmax-784-10');
  await expect(page.getByText('Uses your GPU or CPU')).toBeVisible();
  await expect(page.getByText(/Sends about 1\.03 bits per parameter/)).toBeVisible();
  await expect(page.getByText('Nothing starts before you press Donate.')).toBeVisible();
  const donate = page.getByTestId('donate');
  await expect(donate).toBeVisible();
  await expect(donate).toBeEnabled();
  // 2 tabs with m = 2: one cluster
  await expect(page.getByTestId('swarm')).toContainText('1 cluster');

  // nothing joined: no socket to the coordinator, and the swarm still counts 2 tabs
  expect(sockets).toEqual([]);
  expect((await swarm.status()).tabs).toBe(2);
  expect(await page.evaluate(() => globalThis.crossOriginIsolated)).toBe(true);

  // readable at 390 px: nothing wider than the screen
  const overflow = await page.evaluate(
    () => document.documentElement.scrollWidth - document.documentElement.clientWidth,
  );
  expect(overflow).toBeLessThanOrEqual(0);
  await saveScreenshot(page, 'volunteer-390x844', { fullPage: true });
  await page.setViewportSize({ width: 1280, height: 800 });
  await saveScreenshot(page, 'volunteer-1280x800');
  expect(problems).toEqual([]);
});

// A chunk of the training code lost on the way (a lossy link: the network lab's wan profile
// lost one in a run, and that tab never joined) is fetched again: the tab still joins.
test('loads the training code after a failed chunk fetch and joins', async ({ page }) => {
  test.setTimeout(120_000);
  const aborted: string[] = [];
  await page.route(/\/assets\/simplepeer\.min-[^/]*\.js$/, async (route) => {
    if (aborted.length === 0) {
      aborted.push(route.request().url());
      await route.abort('connectionreset');
    } else await route.continue();
  });
  const sockets: string[] = [];
  page.on('websocket', (ws) => sockets.push(ws.url()));
  // the page's tab is the one seated that is none of the fake tabs (a count of tabs would also
  // rise when a fake tab reconnects)
  const fakes = new Set(swarm.tabs.map((tab) => tab.id));
  await page.goto(`${swarm.url}/?backend=wasm`);
  await page.getByTestId('donate').click();
  await until(
    async () =>
      (await swarm.status()).clusters.some((c) =>
        c.members.some((m) => m.live && !fakes.has(m.tabId)),
      )
        ? true
        : undefined,
    'the tab to join',
    60_000,
  );
  expect(aborted).toHaveLength(1);
  expect(sockets.some((url) => url.includes('/socket.io/'))).toBe(true);
  await expect(page.getByText('The training code did not load')).toHaveCount(0);
});
