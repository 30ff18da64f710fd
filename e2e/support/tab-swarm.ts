/**
 * A coordinator and N real tabs (one browser context each, Donate pressed) shared by the tests
 * of one serial spec file: started in its beforeAll, closed in its afterAll. They run in a
 * network lab (lab.ts): the coordinator in its public namespace, the tabs in one home.
 */
import { test, type Browser } from '@playwright/test';
import { launchBrowser, openTab, type BrowserTab } from './browser-swarm.ts';
import { startCoordinator, type CoordinatorProcess } from './coordinator.ts';
import { openLab, type E2eLab } from './lab.ts';

/** What openTab takes besides the name, per tab (its index from 0). */
type TabOptions = Omit<NonNullable<Parameters<typeof openTab>[2]>, 'name'>;

export interface TabSwarm {
  readonly coordinator: CoordinatorProcess;
  readonly browser: Browser;
  readonly tabs: BrowserTab[];
  /** Date.now() just before the first tab was opened (its Donate). */
  readonly firstDonateAt: number;
}

export function useTabSwarm(
  job: object,
  count: number,
  tabOptions: (index: number) => TabOptions = () => ({}),
): TabSwarm {
  let lab: E2eLab | undefined;
  let coordinator: CoordinatorProcess | undefined;
  let browser: Browser | undefined;
  const tabs: BrowserTab[] = [];
  let firstDonateAt = 0;
  test.beforeAll(async () => {
    test.setTimeout(180_000);
    lab = await openLab();
    coordinator = await startCoordinator({ job, ...lab.serve });
    browser = await launchBrowser(coordinator.url, [], lab.home.chromium);
    firstDonateAt = Date.now();
    for (let i = 0; i < count; i++) {
      tabs.push(
        await openTab(browser, coordinator.url, { ...tabOptions(i), name: `tab ${i + 1}` }),
      );
    }
  });
  test.afterAll(async () => {
    await browser?.close();
    await coordinator?.stop();
    await lab?.destroy();
  });
  return {
    get coordinator() {
      if (!coordinator) throw new Error('the coordinator has not started');
      return coordinator;
    },
    get browser() {
      if (!browser) throw new Error('the browser has not started');
      return browser;
    },
    tabs,
    get firstDonateAt() {
      return firstDonateAt;
    },
  };
}
