/**
 * Issue 16: pipelined tabs in real Chromium over real WebRTC data channels. Four tabs (one
 * browser context each, the volunteer page, Donate pressed) on the default job with
 * `pipeline: true` (and `cluster.size: 2`, two clusters, as the browser-swarm spec): every tab
 * keeps stepping while its register is exchanged and the round runs, so its registers carry
 * steps taken on the previous base (tagged in the frame: staleness ≥ 1, at most the bound an
 * auto job allows) and, when a round outlasts a step, more than one step. Its peers take every
 * register (none refused as stale), and the swarm reaches 0.90 held-out accuracy within 6
 * minutes of the first Donate. The job runs `staleness: "auto"` (issue 16 item 3): the
 * coordinator has set S from its SDDE analysis of the delays it measured, says why on the
 * dashboard's staleness panel, and enforces that S. The last tab opens with `?thread=off`: its
 * steps run on the page's own thread instead of a training thread, and it pipelines the same.
 * Then a tab closes and the iterations go on.
 */
import { expect, test } from '@playwright/test';
import { stalenessLimit } from '@swarmgrad/protocol';
import { untilTraining } from './support/browser-swarm.ts';
import { until } from './support/coordinator.ts';
import { useTabSwarm } from './support/tab-swarm.ts';

test.describe.configure({ mode: 'serial' });

const job = {
  name: 'e2e-pipelined',
  cluster: { size: 2 },
  pipeline: true,
  staleness: 'auto' as const,
};
const ACCURACY_DEADLINE_MS = 6 * 60_000;

const TABS = 4;
/** The tab whose steps run on the page (`?thread=off`), not on a training thread. */
const ON_PAGE = TABS - 1;
const swarm = useTabSwarm(job, TABS, (i) => (i === ON_PAGE ? { thread: false } : {}));
const { tabs } = swarm;

test('four pipelined tabs send registers computed while the round ran and reach 90% held-out accuracy', async () => {
  test.setTimeout(ACCURACY_DEADLINE_MS + 60_000);
  await Promise.all(tabs.map((tab) => untilTraining(tab, 120_000)));
  const seen = tabs.map(() => ({
    staleness: new Set<number>(),
    stepDelays: [] as { staleness: number; stepDelay: number }[],
    maxSteps: 0,
  }));
  const sample = async () => {
    const statuses = await Promise.all(tabs.map((tab) => tab.status()));
    statuses.forEach((s, i) => {
      const p = s!.pipeline;
      if (p.lastStaleness !== null) seen[i]!.staleness.add(p.lastStaleness);
      if (p.lastStaleness !== null && p.lastStepDelay !== null)
        seen[i]!.stepDelays.push({ staleness: p.lastStaleness, stepDelay: p.lastStepDelay });
      seen[i]!.maxSteps = Math.max(seen[i]!.maxSteps, p.lastSteps ?? 0);
    });
  };
  const reached = await until(
    async () => {
      await sample();
      const s = await swarm.coordinator.status();
      return s.accuracy !== null && s.accuracy >= 0.9 ? s : undefined;
    },
    'held-out accuracy ≥ 0.90',
    ACCURACY_DEADLINE_MS - (Date.now() - swarm.firstDonateAt),
    500,
  );
  const note = {
    accuracy: reached.accuracy,
    iteration: reached.iteration,
    secondsSinceFirstDonate: Math.round((Date.now() - swarm.firstDonateAt) / 1000),
    staleness: seen.map((s) => [...s.staleness].sort()),
    maxSteps: seen.map((s) => s.maxSteps),
  };
  console.log(`pipelined: ${JSON.stringify(note)}`);
  test.info().annotations.push({ type: 'pipelined', description: JSON.stringify(note) });
  expect(reached.accuracy).toBeGreaterThanOrEqual(0.9);
  for (const [i, tab] of tabs.entries()) {
    const status = (await tab.status())!;
    expect(status.pipeline.enabled).toBe(true);
    if (i === ON_PAGE) {
      // ?thread=off: the steps run between the page's other work, and pipeline all the same
      expect(status.pipeline.thread).toBe(false);
      expect(status.pipeline.threadNote).toMatch(/\?thread=off/);
      expect(status.pipeline.threadStartedEarly).toBe(false);
    } else {
      // a browser tab on wasm takes its steps on its training thread (training-thread.ts)
      expect(status.pipeline.thread, status.pipeline.threadNote ?? undefined).toBe(true);
      // its Worker was created while the tab timed its backends, not after it was seated
      expect(status.pipeline.threadStartedEarly).toBe(true);
    }
    expect(Math.max(...seen[i]!.staleness)).toBeGreaterThanOrEqual(1);
    expect(Math.max(...seen[i]!.staleness)).toBeLessThanOrEqual(stalenessLimit(job));
    expect(seen[i]!.maxSteps).toBeGreaterThan(1);
    // the mean delay of a register's steps: tagged, never above its oldest step's staleness
    expect(seen[i]!.stepDelays.length).toBeGreaterThan(0);
    for (const { staleness, stepDelay } of seen[i]!.stepDelays) {
      expect(stepDelay).toBeGreaterThanOrEqual(0);
      expect(stepDelay).toBeLessThanOrEqual(staleness);
    }
    expect(Math.max(...seen[i]!.stepDelays.map((d) => d.stepDelay))).toBeGreaterThan(0);
    // its peer took every register: none refused as stale or otherwise
    expect(status.rejected.total).toBe(0);
    expect(status.wire.framesReceived).toBeGreaterThan(20);
    expect(tab.problems).toEqual([]);
  }
  // S was chosen by the analysis, is enforced, and the dashboard says why
  const status = await swarm.coordinator.status();
  expect(status.job.staleness).toBe('auto');
  expect(status.stalenessAuto).not.toBeNull();
  expect(status.stalenessAuto!.reason).toMatch(/the fastest stable threshold for \d+ tabs/);
  expect(status.stalenessThreshold).toBe(status.stalenessAuto!.threshold);
  expect(status.staleness!.threshold).toBeLessThanOrEqual(stalenessLimit(job));
  const page = await swarm.browser.newPage();
  try {
    await page.goto(`${swarm.coordinator.url}/dashboard`);
    await expect(page.getByTestId('staleness-auto')).toContainText(
      /Auto S = \d+ \(since iteration/,
    );
    await expect(page.getByTestId('staleness-auto')).toContainText('the fastest stable threshold');
    await expect(page.getByTestId('job')).toContainText(/auto, \d+ iterations now/);
  } finally {
    await page.close();
  }
});

test('a pipelined tab closes and the iterations go on', async () => {
  test.setTimeout(120_000);
  const before = (await swarm.coordinator.status()).iteration;
  await tabs[0]!.close();
  await until(
    async () => (await swarm.coordinator.status()).iteration >= before + 20,
    '20 more iterations after a tab closed',
    90_000,
  );
});
