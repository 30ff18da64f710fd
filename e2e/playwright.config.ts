/**
 * Playwright for swarmgrad's end-to-end tests: Debian's Chromium (Playwright's own browser
 * download is not used; scripts/ensure-chromium.mjs installs it), headless, one worker and no
 * retries, so a test that fails fails. The tests start their own coordinators; the global
 * setup only makes sure the web app is built. Screenshots the tests save on purpose go to
 * test-results/screenshots/ (see support/screenshots.ts).
 */
import { defineConfig } from '@playwright/test';
import { fileURLToPath } from 'node:url';
import { chromiumBaseArgs, chromiumPath } from '@swarmgrad/swarm/browser';

// the swarmgrad executable the specs' swarms start coordinators with (packages/swarm useCli);
// the runner's workers inherit it
process.env.SWARMGRAD_CLI ??= fileURLToPath(
  new URL('../apps/coordinator/bin/swarmgrad.js', import.meta.url),
);

export default defineConfig({
  testDir: '.',
  testMatch: '**/*.spec.ts',
  outputDir: '../test-results',
  globalSetup: './support/global-setup.ts',
  workers: 1,
  retries: 0,
  fullyParallel: false,
  forbidOnly: !!process.env.CI,
  // generous: a loaded 2-core machine runs a coordinator, its evaluator thread and Chromium
  timeout: 120_000,
  expect: { timeout: 20_000 },
  reporter: [['list']],
  use: {
    browserName: 'chromium',
    headless: true,
    viewport: { width: 1280, height: 800 },
    actionTimeout: 20_000,
    navigationTimeout: 30_000,
    trace: 'retain-on-failure',
    screenshot: 'only-on-failure',
    launchOptions: {
      executablePath: chromiumPath,
      args: [...chromiumBaseArgs],
    },
  },
});
