/**
 * Issue 18, item 3, in a real browser.
 *
 * 1. The gallery's CNN (examples/jobs/mnist-cnn.json) trains on wasm, the fastest backend of a
 *    machine without a GPU: TF.js wasm has no Conv2DBackpropFilter, the worker registers its
 *    own (packages/worker/src/wasm-conv-filter.ts). A tab told to use wasm (`?backend=wasm`)
 *    keeps it and computes training steps, with no kernel error on the page.
 * 2. A model whose gradient wasm still cannot compute (a depthwise convolution: no
 *    DepthwiseConv2dNativeBackpropFilter) does not start training on it: the trial refuses wasm
 *    up front, another backend is chosen, the volunteer page's backend line says why wasm was
 *    skipped, and the tab computes training steps on the backend it chose.
 */
import { readFile } from 'node:fs/promises';
import { expect, test, type Browser } from '@playwright/test';
import type { WorkerStatus } from '@swarmgrad/worker';
import { launchBrowser, openTab, type BrowserTab } from './support/browser-swarm.ts';
import { startCoordinator, until, type CoordinatorProcess } from './support/coordinator.ts';

let coordinator: CoordinatorProcess | undefined;
let browser: Browser | undefined;

test.afterEach(async () => {
  await browser?.close();
  await coordinator?.stop();
  browser = coordinator = undefined;
});

async function cnnJob(): Promise<Record<string, unknown> & { model: { topology: Topology } }> {
  const file = new URL('../examples/jobs/mnist-cnn.json', import.meta.url);
  return JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown> & {
    model: { topology: Topology };
  };
}

interface Topology {
  config: { layers: { class_name: string; config: Record<string, unknown> }[] };
}

/** A tab of a one-tab cluster on `job`, with its backend forced, once it computed steps. */
async function trainingTab(
  job: Record<string, unknown>,
  name: string,
): Promise<{ tab: BrowserTab; status: WorkerStatus }> {
  coordinator = await startCoordinator({
    job: { ...job, name, cluster: { size: 1, redundancy: 0 } },
  });
  browser = await launchBrowser(coordinator.url);
  const tab = await openTab(browser, coordinator.url, { name, backend: 'wasm' });
  const status = await until(
    async () => {
      const s = await tab.status();
      if (s?.error) throw new Error(s.error);
      return s !== undefined && s.steps > 2 ? s : undefined;
    },
    `the tab to compute ${name} training steps`,
    150_000,
    250,
  );
  return { tab, status };
}

test('the gallery CNN trains on wasm, with the filter gradient the worker supplies', async () => {
  test.setTimeout(180_000);
  const { tab, status } = await trainingTab(await cnnJob(), 'e2e-cnn-wasm');
  const choice = status.backend!;
  console.log(`backend: ${choice.reason}`);
  expect(choice.backend).toBe('wasm');
  expect(choice.trials.find((t) => t.backend === 'wasm')?.msPerStep).toBeGreaterThan(0);
  await expect(tab.page.locator('.backend-line__reason')).toContainText('wasm');
  expect(tab.problems.filter((p) => /kernel|Conv2D/i.test(p))).toEqual([]);
  // a real loss: not a backend reading back zeros
  expect(status.trainingLoss).toBeGreaterThan(0);
  expect(Number.isFinite(status.trainingLoss)).toBe(true);
});

test('a tab forced to wasm skips it for a depthwise CNN, says so, and trains on another backend', async () => {
  test.setTimeout(180_000);
  const job = await cnnJob();
  // the first convolution made depthwise: wasm has neither of its gradient kernels
  job.model.topology.config.layers[0] = {
    class_name: 'DepthwiseConv2D',
    config: {
      name: 'depthwise',
      kernel_size: [5, 5],
      depth_multiplier: 8,
      activation: 'relu',
      batch_input_shape: [null, 28, 28, 1],
      dtype: 'float32',
    },
  };
  const { tab, status } = await trainingTab(job, 'e2e-depthwise-backend');
  const choice = status.backend!;
  console.log(`backend: ${choice.reason}`);
  expect(choice.backend).not.toBe('wasm');
  expect(choice.trials.find((t) => t.backend === 'wasm')?.error).toMatch(
    /lacks kernel .*DepthwiseConv2dNativeBackpropFilter/,
  );
  // with wasm out, nothing but cpu is left: the software-rendered GPUs are timed too
  expect(choice.trials.filter((t) => t.skipped !== undefined)).toEqual([]);
  expect(choice.trials.map((t) => t.backend).sort()).toEqual(['cpu', 'wasm', 'webgl', 'webgpu']);
  const line = tab.page.locator('.backend-line__reason');
  await expect(line).toContainText('wasm: lacks kernel');
  await expect(line).toContainText('DepthwiseConv2dNativeBackpropFilter');
  expect(tab.problems.filter((p) => /Depthwise/.test(p))).toEqual([]);
});
