/**
 * Issue 18, item 3, in a real browser: a tab told to use wasm (`?backend=wasm`) for the CNN of
 * examples/jobs/mnist-cnn.json does not start training on a backend that cannot compute its
 * gradient (TF.js wasm has no Conv2DBackpropFilter): its trial refuses wasm up front, another
 * backend is chosen, the volunteer page's backend line says why wasm was skipped, and the tab
 * computes training steps on the backend it chose.
 */
import { readFile } from 'node:fs/promises';
import { expect, test, type Browser } from '@playwright/test';
import { launchBrowser, openTab, type BrowserTab } from './support/browser-swarm.ts';
import { startCoordinator, until, type CoordinatorProcess } from './support/coordinator.ts';

let coordinator: CoordinatorProcess;
let browser: Browser;
let tab: BrowserTab;

test.afterAll(async () => {
  await browser?.close();
  await coordinator?.stop();
});

test('a tab forced to wasm skips it for a CNN, says so, and trains on another backend', async () => {
  test.setTimeout(180_000);
  const file = new URL('../examples/jobs/mnist-cnn.json', import.meta.url);
  const job = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
  // one tab is a whole cluster here
  coordinator = await startCoordinator({
    job: { ...job, name: 'e2e-cnn-backend', cluster: { size: 1, redundancy: 0 } },
  });
  browser = await launchBrowser(coordinator.url);
  tab = await openTab(browser, coordinator.url, { name: 'cnn tab', backend: 'wasm' });
  const status = await until(
    async () => {
      const s = await tab.status();
      if (s?.error) throw new Error(s.error);
      return s !== undefined && s.steps > 0 ? s : undefined;
    },
    'the tab to compute CNN training steps',
    150_000,
    250,
  );
  const choice = status.backend!;
  expect(choice.backend).not.toBe('wasm');
  expect(choice.trials.find((t) => t.backend === 'wasm')?.error).toMatch(
    /lacks kernel .*Conv2DBackpropFilter/,
  );
  const line = tab.page.locator('.backend-line__reason');
  await expect(line).toContainText('wasm: lacks kernel');
  await expect(line).toContainText('Conv2DBackpropFilter');
  console.log(`backend: ${choice.reason}`);
  expect(tab.problems.filter((p) => /Conv2DBackpropFilter/.test(p))).toEqual([]);
});
