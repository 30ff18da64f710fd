/**
 * Issue 4, test 1: one tab computes a training step's gradient on TF.js's webgpu backend
 * (Chromium with --enable-unsafe-webgpu; on this machine that is SwiftShader, a software
 * adapter) and it matches the cpu backend's.
 *
 * The page's test hook (`/?debug`, window.__swarmgrad.gradientCheck) builds the default job's
 * model (MLP 784-128-10, d = 101,770) at the coordinator's agreed parameters (GET /api/params,
 * iteration 0 here: the initial weights), takes the first `batchSize` = 64 samples of data
 * partition 0, and computes the flat gradient with packages/worker's computeGradient once on
 * webgpu and once on cpu.
 *
 * Relative error, as asserted: ‖g_webgpu − g_cpu‖∞ / max(‖g_cpu‖∞, 1e-12) ≤ 1e-3 (the largest
 * coordinate difference against the largest coordinate). The per-coordinate error
 * |Δ_i| / max(|g_cpu,i|, 1e-3·‖g_cpu‖∞) is reported too. The adapter's isFallbackAdapter is
 * recorded (expected true with SwiftShader; the test only requires that an adapter answered).
 */
import { expect, test } from '@playwright/test';
import type { Browser } from '@playwright/test';
import { launchBrowser, openTab } from './support/browser-swarm.ts';
import { startCoordinator, type CoordinatorProcess } from './support/coordinator.ts';

let coordinator: CoordinatorProcess;
let browser: Browser;

test.beforeAll(async () => {
  // the default job (every field default) under a test name
  coordinator = await startCoordinator({ job: { name: 'e2e-gradient' } });
  browser = await launchBrowser(coordinator.url);
});

test.afterAll(async () => {
  await browser?.close();
  await coordinator?.stop();
});

test('a webgpu training step matches the cpu backend within 1e-3 relative error', async () => {
  const tab = await openTab(browser, coordinator.url, { name: 'gradient', donate: false });
  const check = await tab.gradientCheck();
  expect(check.model).toBe('mlp-784-128-10');
  expect(check.dimension).toBe(101_770);
  expect(check.batch).toBe(64);
  if ('error' in check.webgpu) throw new Error(`webgpu: ${check.webgpu.error}`);
  if ('error' in check.cpu) throw new Error(`cpu: ${check.cpu.error}`);
  const gpu = check.webgpu;
  const cpu = check.cpu;
  // the backends really ran (setBackend falls back silently otherwise)
  expect(gpu.backend).toBe('webgpu');
  expect(cpu.backend).toBe('cpu');
  expect(gpu.gradient).toHaveLength(check.dimension);
  expect(cpu.gradient).toHaveLength(check.dimension);

  let cpuMax = 0;
  let diffMax = 0;
  let nonZero = 0;
  let nonFinite = 0;
  for (let i = 0; i < check.dimension; i++) {
    const g = cpu.gradient[i]!;
    if (!Number.isFinite(gpu.gradient[i]!) || !Number.isFinite(g)) nonFinite++;
    cpuMax = Math.max(cpuMax, Math.abs(g));
    diffMax = Math.max(diffMax, Math.abs(gpu.gradient[i]! - g));
    if (g !== 0) nonZero++;
  }
  const floor = 1e-3 * cpuMax;
  let perCoordinateMax = 0;
  for (let i = 0; i < check.dimension; i++) {
    const g = cpu.gradient[i]!;
    const rel = Math.abs(gpu.gradient[i]! - g) / Math.max(Math.abs(g), floor);
    perCoordinateMax = Math.max(perCoordinateMax, rel);
  }
  const relative = diffMax / Math.max(cpuMax, 1e-12);
  const record = {
    fallbackAdapter: check.fallbackAdapter,
    adapter: check.adapterInfo,
    lossWebgpu: gpu.loss,
    lossCpu: cpu.loss,
    gradientInfNorm: cpuMax,
    nonZeroCoordinates: nonZero,
    maxAbsDifference: diffMax,
    relativeError: relative,
    perCoordinateMaxRelativeError: perCoordinateMax,
    msWebgpu: Math.round(gpu.ms),
    msCpu: Math.round(cpu.ms),
  };
  console.log(`gradient check: ${JSON.stringify(record)}`);
  test.info().annotations.push({ type: 'gradient-check', description: JSON.stringify(record) });

  expect(nonFinite).toBe(0);
  // a real gradient, not a zero vector both backends agree on
  expect(cpuMax).toBeGreaterThan(0);
  expect(nonZero).toBeGreaterThan(check.dimension / 2);
  expect(Math.abs(gpu.loss - cpu.loss) / cpu.loss).toBeLessThanOrEqual(1e-3);
  expect(relative).toBeLessThanOrEqual(1e-3);
  // an adapter answered and said whether it is a software one (SwiftShader here: true)
  expect(typeof check.fallbackAdapter).toBe('boolean');
  expect(tab.problems).toEqual([]);
  await tab.close();
});
