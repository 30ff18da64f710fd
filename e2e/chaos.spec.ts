/**
 * Issue 6, the chaos suite: real Chromium tabs (one browser context each) on the volunteer page
 * against a coordinator child process, driven through the swarm package's API and Playwright
 * fixture (`@swarmgrad/swarm`, the code behind `swarmgrad swarm`). Each test states its numbers:
 *
 * 1. 25% churn with rejoin (a quarter of the tabs closed per minute, each INSIDE a round, a
 *    replacement opened after each): held-out accuracy reaches 0.90, no round stalls.
 * 2. Three clusters of two: every tab of one cluster closed (the majority limit: 2 of 3 clusters
 *    must stay live) and training goes on; one cluster more and the coordinator reports
 *    `quorum-lost` and stops; two tabs return and training resumes from the iteration it
 *    stopped at.
 * 3. One Byzantine tab in four (the default rule, Multi-Krum with f = 1, one cluster of four), for each attack
 *    of `--attack`: accuracy at iteration 100 within 2 points of the clean run's, and the
 *    attacking tab — and no honest one — quarantined by its cluster by iteration 250. A `stale`
 *    tab (replaying its own honest updates of 5 iterations ago) is caught by the lag-symmetry
 *    test of core's Quarantine, which needs 60–100+ iterations of evidence (bench/quarantine.ts);
 *    an attack run therefore goes on past iteration 100 until its attacker is quarantined.
 *    The attacks that stay within the honest spread by construction (zero and those of the
 *    literature: alie, ipm, min-max, min-sum, mimic, sign-optimal, drift — Table 5 of
 *    docs/results.md shows the quarantine does not see them) must cost at most 2 points and get
 *    no honest tab quarantined; whether their tab is caught is recorded, not required. The
 *    proposal attacks (the attacker opens first and holds the proposer role): `proposal-scale`
 *    and `proposal-flip` are refuted by the cluster and quarantined, `proposal-race` is struck
 *    and quarantined for proposing without the role, `proposal-silent` (never proposes) loses
 *    the role after the coordinator's patience. "Accuracy at iteration 100" is the mean of the
 *    evaluations at 80, 85, …, 100, for every run; the clean reference is the mean of two clean
 *    runs (accuracyNear, CLEAN_RUNS).
 * 4. The coordinator killed with SIGKILL mid-training and restarted on its port and data
 *    directory: it resumes at or after its last checkpoint and the same tabs reconnect by
 *    themselves and train on.
 *
 * A round stalls (packages/swarm watch.ts) when the iteration stands still for longer than
 * max(10 × the median time per iteration, 15 s) while the coordinator is in `training` (a
 * majority of clusters live); `quorum-lost` and an unreachable coordinator are not stalls.
 *
 * Every tab uses the wasm backend (`backend: 'wasm'`: the fastest here, docs/benchmarks.md)
 * instead of timing all four backends, so that many tabs start quickly on two cores.
 */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { faultModes, type DashboardStatus, type FaultMode } from '@swarmgrad/protocol';
import {
  fetchMetrics,
  launchSwarm,
  until,
  type Swarm,
  type SwarmSummary,
  type SwarmTab,
} from '@swarmgrad/swarm';
import { expect, test } from '@swarmgrad/swarm/fixture';
import { e2eNetwork } from './support/lab.ts';

const backend = 'wasm' as const;

// every tab's quarantine windows that struck a peer, echoed into the test's output: when an
// honest tab is quarantined, the log says which test struck it (packages/swarm browser.ts)
process.env.SWARMGRAD_TAB_LOG ??= 'quarantine';

function note(type: string, value: unknown): void {
  const description = typeof value === 'string' ? value : JSON.stringify(value);
  console.log(`${type}: ${description}`);
  test.info().annotations.push({ type, description });
}

/** The swarm's tab that holds `tabId` now. */
function tabWithId(swarm: Swarm, tabId: string): SwarmTab {
  const tab = swarm.live().find((t) => t.ids.includes(tabId));
  if (!tab) throw new Error(`no live tab with id ${tabId}`);
  return tab;
}

/** Live member ids per cluster, once the coordinator shows `clusters` clusters of `size`. */
async function untilPlaced(swarm: Swarm, clusters: number, size: number) {
  return until(
    async () => {
      const s = await swarm.status();
      const live = s.clusters.map((c) => c.members.filter((m) => m.live).map((m) => m.tabId));
      const placed =
        s.phase === 'training' &&
        s.iteration >= 3 &&
        live.length === clusters &&
        live.every((m) => m.length === size);
      return placed ? { status: s, live } : undefined;
    },
    `${clusters} clusters of ${size}`,
    180_000,
    500,
  );
}

test('25% churn with rejoin: the target accuracy is reached and no round stalls', async ({
  launchSwarm,
}) => {
  test.setTimeout(20 * 60_000);
  const swarm = await launchSwarm({
    network: e2eNetwork,
    serve: { job: { name: 'chaos-churn', cluster: { size: 2 } } },
    tabs: 4,
    backend,
    // 0.25 × 4 tabs = one close a minute on average (Poisson), each inside a round, a
    // replacement opened after each
    churn: { rate: 0.25, rejoin: true, seed: 6 },
  });
  await swarm.untilJoined();
  // the run is judged only once churn has closed two tabs, so it has churn to survive
  await until(() => swarm.closes.length >= 2, 'two tabs closed by churn', 12 * 60_000, 1000);
  const summary = await swarm.run({ accuracy: 0.9, timeoutSeconds: 18 * 60 });
  await swarm.stopChurn();
  note('summary', summary);
  note('closes', swarm.closes);
  expect(summary.ok).toBe(true);
  expect(summary.accuracy).toBeGreaterThanOrEqual(0.9);
  expect(summary.tabsClosed).toBeGreaterThanOrEqual(2);
  // every close happened inside a round: the tab was computing or had published its register
  // for the coordinator's current iteration, and its cluster had not proposed
  for (const close of swarm.closes) {
    expect(close.midRound).toBe(true);
    expect(close.iteration).toBeDefined();
  }
  // a replacement for every close
  expect(swarm.tabs.length).toBe(4 + swarm.closes.length);
  expect(summary.roundsStalled).toBe(0);
  expect(summary.medianIterationSeconds).not.toBeNull();
  // 1-bit updates on the data channels (peer messages are not updates: more than 1 bit each)
  expect(summary.wireBitsPerParam).not.toBeNull();
  expect(summary.wireBitsPerParam!).toBeLessThanOrEqual(1.1);
  expect(summary.wireBitsPerParam!).toBeGreaterThan(1);
});

test('clusters closed up to the majority limit: training continues; one more: quorum-lost; tabs return: it resumes', async ({
  launchSwarm,
}) => {
  test.setTimeout(15 * 60_000);
  const swarm = await launchSwarm({
    network: e2eNetwork,
    serve: { job: { name: 'chaos-majority', cluster: { size: 2 } } },
    tabs: 6,
    backend,
  });
  await swarm.untilJoined();
  const { live } = await untilPlaced(swarm, 3, 2);
  const [first, second] = live as [string[], string[], string[]];

  // 1. every tab of one cluster closed mid-round: 2 of 3 clusters live, a majority
  for (const id of first) {
    const record = await swarm.closeTab(tabWithId(swarm, id), { midRound: true });
    expect(record.midRound).toBe(true);
  }
  const afterFirst = await until(
    async () => {
      const s = await swarm.status();
      return s.quorum.live === 2 ? s : undefined;
    },
    'the coordinator to count 2 live clusters',
    30_000,
    200,
  );
  const continued = await until(
    async () => {
      const s = await swarm.status();
      return s.iteration >= afterFirst.iteration + 20 ? s : undefined;
    },
    '20 more iterations with one cluster gone',
    180_000,
    500,
  );
  note('one cluster closed', {
    iterationAtClose: afterFirst.iteration,
    iterationLater: continued.iteration,
    live: continued.quorum.live,
    majority: continued.quorum.majority,
  });
  expect(continued.phase).toBe('training');
  expect(continued.quorum.majority).toBe(2);
  expect(swarm.stalls.roundsStalled).toBe(0);
  const accuracyBefore = continued.accuracy;

  // 2. one cluster more: 1 of 3 live, below the majority → quorum-lost, and no iteration closes
  for (const id of second) await swarm.closeTab(tabWithId(swarm, id), { midRound: true });
  const lost = await until(
    async () => {
      const s = await swarm.status();
      return s.phase === 'quorum-lost' ? s : undefined;
    },
    'quorum-lost',
    30_000,
    200,
  );
  const whileLost: DashboardStatus[] = [];
  for (let i = 0; i < 10; i++) {
    await new Promise((r) => setTimeout(r, 500));
    whileLost.push(await swarm.status());
  }
  note('quorum lost', {
    iteration: lost.iteration,
    polls: whileLost.map((s) => `${s.phase}@${s.iteration}`),
  });
  for (const s of whileLost) {
    expect(s.phase).toBe('quorum-lost');
    expect(s.iteration).toBe(lost.iteration);
  }

  // 3. tabs return: two new tabs take the empty seats, the quorum comes back, training resumes
  // from the iteration it stopped at
  await swarm.openTab();
  await swarm.openTab();
  await swarm.untilJoined();
  const resumed = await until(
    async () => {
      const s = await swarm.status();
      return s.phase === 'training' && s.iteration >= lost.iteration + 10 ? s : undefined;
    },
    'training to resume',
    240_000,
    500,
  );
  const evaluated = await until(
    async () => {
      const s = await swarm.status();
      return s.evaluatedAt !== null && s.evaluatedAt > lost.iteration ? s : undefined;
    },
    'an evaluation after the resume',
    120_000,
    500,
  );
  note('resumed', {
    lostAt: lost.iteration,
    iteration: resumed.iteration,
    live: resumed.quorum.live,
    accuracyBefore,
    accuracyAfter: evaluated.accuracy,
    evaluatedAt: evaluated.evaluatedAt,
  });
  expect(resumed.quorum.live).toBeGreaterThanOrEqual(2);
  // from where it was: the newcomers' base is the agreed one at the coordinator's iteration
  for (const tab of swarm.live().slice(-2)) {
    const s = await tab.status();
    expect(s?.iteration).toBeGreaterThanOrEqual(lost.iteration);
  }
  // the parameters were kept, not reset: the accuracy did not fall back towards chance
  expect(accuracyBefore).not.toBeNull();
  expect(evaluated.accuracy!).toBeGreaterThanOrEqual(accuracyBefore! - 0.02);
  expect(swarm.stalls.roundsStalled).toBe(0);
});

test.describe('one Byzantine tab in four', () => {
  /** Accuracy is compared at this iteration. */
  const ITERATIONS = 100;
  /** An attack run goes on after ITERATIONS until its attacker is quarantined, at most to here. */
  const QUARANTINE_HORIZON = 250;
  const job = (name: string, maxIterations: number) => ({
    name,
    // the default rule (Multi-Krum, f = 1: the coordinate median in a cluster of four)
    cluster: { size: 4 },
    maxIterations,
    evaluateEvery: 5,
  });
  /**
   * The clean reference near ITERATIONS: the mean of CLEAN_RUNS clean runs' accuracyNear. One
   * clean run is itself a noisy sample (eleven measured 0.857–0.877 on 2026-12-04/05, one
   * standard deviation ≈ 0.7 points), and the 2-point comparison of one attack run with one
   * clean run then failed on noise: IPM, whose mean over 8 runs was 0.6 points below its clean
   * run, once sat 2.55 below a clean run at the top of that range.
   */
  const CLEAN_RUNS = 2;
  let cleanNear: { iterations: number[]; accuracy: number; runs: number[] };

  test.beforeAll(async () => {
    test.setTimeout(12 * 60_000);
    const nears: { iterations: number[]; accuracy: number }[] = [];
    for (let run = 0; run < CLEAN_RUNS; run++) {
      const swarm = await launchSwarm({
        network: e2eNetwork,
        serve: { job: job('chaos-clean', ITERATIONS) },
        tabs: 4,
        backend,
      });
      let clean: SwarmSummary;
      let near: { iterations: number[]; accuracy: number };
      try {
        await swarm.untilJoined();
        clean = await swarm.run({ accuracy: 0, maxIterations: ITERATIONS, timeoutSeconds: 480 });
        near = await accuracyNear(swarm, ITERATIONS);
      } finally {
        await swarm.close();
      }
      console.log(`clean run ${run + 1}: ${JSON.stringify({ ...clean, near })}`);
      expect(clean.ok).toBe(true);
      expect(clean.evaluatedAt).toBe(ITERATIONS);
      // an absolute floor, so that "within 2 points of the clean run" cannot pass on a broken
      // clean run (eleven clean runs on 2026-12-04/05 measured 0.857–0.877 near iteration 100)
      expect(near.accuracy).toBeGreaterThanOrEqual(0.82);
      // honest tabs are never quarantined
      expect(clean.quarantined).toEqual([]);
      nears.push(near);
    }
    const runs = nears.map((n) => n.accuracy);
    const accuracy = runs.reduce((a, b) => a + b, 0) / runs.length;
    cleanNear = { iterations: nears[0]!.iterations, accuracy, runs };
  });

  /** The weak register attacks, which the quarantine must catch, and the proposal attacks
   * (refuted by the cluster, or struck for racing), which the coordinator must. */
  const caughtModes: readonly FaultMode[] = [
    'sign-flip',
    'scale',
    'nan',
    'random',
    'stale',
    'proposal-scale',
    'proposal-flip',
    'proposal-race',
  ];
  for (const attack of faultModes) {
    const mustCatch = caughtModes.includes(attack);
    test(`${attack}: accuracy within 2 points of the clean run, and ${mustCatch ? 'the tab is' : 'no honest tab'} quarantined`, async ({
      launchSwarm,
    }) => {
      test.setTimeout(10 * 60_000);
      const swarm = await launchSwarm({
        network: e2eNetwork,
        serve: {
          job: job(`chaos-${attack}`, QUARANTINE_HORIZON),
          allowFaultInjection: true,
          // the proposal verdicts are logged as events: a failure shows how the attacker fared
          logLevel: 'info',
        },
        tabs: 4,
        backend,
        byzantine: { count: 1, attack: attack as FaultMode },
      });
      await swarm.untilJoined();
      const { byzantine } = await swarm.summary();
      expect(byzantine).toHaveLength(1);
      // until iteration ITERATIONS is evaluated and the attacker is quarantined (or the job ends)
      const end = await until(
        () => {
          const s = swarm.lastStatus();
          if (s === undefined) return undefined;
          const caught = s.quarantined.some((q) => q.tabId === byzantine[0]);
          const evaluated = (s.evaluatedAt ?? 0) >= ITERATIONS;
          return ((caught || !mustCatch) && evaluated) || s.phase === 'done' ? s : undefined;
        },
        `${attack}: the attacker quarantined by iteration ${QUARANTINE_HORIZON}`,
        9 * 60_000,
        500,
      );
      const accuracy = await accuracyNear(swarm, ITERATIONS);
      const summary = await swarm.summary();
      note(attack, {
        accuracy,
        clean: cleanNear,
        iteration: end.iteration,
        quarantined: summary.quarantined,
        byzantine,
        quarantine: end.quarantined,
        proposals: end.proposals,
        events: proposalEvents(swarm.coordinator?.output() ?? ''),
      });
      // both runs' accuracy near ITERATIONS, measured alike (see accuracyNear)
      expect(accuracy.accuracy).toBeGreaterThanOrEqual(cleanNear.accuracy - 0.02);
      const honestQuarantined = summary.quarantined.filter((id) => !byzantine.includes(id));
      if ((mustCatch && !summary.quarantined.includes(byzantine[0]!)) || honestQuarantined.length) {
        // what the honest tabs' filters last saw, for the failure's report (the windows that
        // struck a tab are in the output above)
        const honest = swarm.live().filter((t) => t.fault === undefined);
        const filters = await Promise.all(
          honest.map(async (t) => {
            const q = (await t.status())?.cluster?.quarantine;
            const last = q?.lastWindow;
            return {
              tab: t.name,
              quarantined: q?.quarantined,
              window: last?.index,
              failed: last?.failed,
              directions: last?.directions,
              lags: last?.lags.map(({ id, z, iterations }) => ({ id, z, iterations })),
            };
          }),
        );
        note(`${attack}: the honest tabs' filters`, filters);
      }
      if (mustCatch) {
        // the attacker, and nobody else
        expect(summary.quarantined).toEqual(byzantine);
      } else {
        expect(honestQuarantined).toEqual([]);
      }
      // a proposer that never proposes loses the role (it opened first, so it held it)
      if (attack === 'proposal-silent') expect(end.proposals.silent).toBeGreaterThanOrEqual(1);
      // a relay (it opened first: the proposer relays) that withholds or forges iteration
      // frames: its members asked the coordinator, and a forged frame was refused by them
      if (attack === 'relay-withhold' || attack === 'relay-forge') {
        expect(end.iterationFrames.request).toBeGreaterThanOrEqual(1);
        const honest = swarm.live().filter((t) => t.fault === undefined);
        const statuses = await Promise.all(honest.map((t) => t.status()));
        const refused = statuses.reduce((n, s) => n + (s?.iterationFrames.refused ?? 0), 0);
        note(`${attack} frames`, {
          coordinator: end.iterationFrames,
          refusedByHonestTabs: refused,
        });
        if (attack === 'relay-forge') expect(refused).toBeGreaterThanOrEqual(1);
      }
      expect(swarm.stalls.roundsStalled).toBe(0);
    });
  }
});

/** The messages of the coordinator's proposal and quarantine events in its (pino) output. */
function proposalEvents(output: string): string[] {
  return output.split('\n').flatMap((line) => {
    try {
      const entry = JSON.parse(line) as { event?: string; msg?: string };
      return /^(proposal|tab-quarantined|tab-joined|proposer)/.test(entry.event ?? '')
        ? [`${entry.event}: ${entry.msg}`]
        : [];
    } catch {
      return [];
    }
  });
}

/**
 * The mean held-out accuracy of the evaluations in [iteration − 20, iteration] (/api/metrics.csv;
 * evaluateEvery 5 gives five, at least four are required). One evaluation swings by about a
 * point from one to the next (one-bit updates, the agreed model oscillates), so a single
 * evaluation of each run made the 2-point comparison fail on noise (a racer quarantined at
 * iteration 4: 0.8285 against a clean 0.8495); all runs are measured the same way.
 */
async function accuracyNear(
  swarm: Swarm,
  iteration: number,
): Promise<{ iterations: number[]; accuracy: number }> {
  const { csv, rows } = await fetchMetrics(swarm.apiUrl);
  const near = rows
    .filter((r) => r.iteration >= iteration - 20 && r.iteration <= iteration)
    .flatMap((r) =>
      r.heldOutAccuracy === null ? [] : [{ iteration: r.iteration, accuracy: r.heldOutAccuracy }],
    );
  if (near.length < 4) {
    throw new Error(`fewer than four evaluations in [${iteration - 20}, ${iteration}]: ${csv}`);
  }
  return {
    iterations: near.map((e) => e.iteration),
    accuracy: near.reduce((sum, e) => sum + e.accuracy, 0) / near.length,
  };
}

test('the coordinator killed with SIGKILL resumes from its checkpoint and the tabs reconnect by themselves', async ({
  launchSwarm,
}) => {
  test.setTimeout(15 * 60_000);
  const swarm = await launchSwarm({
    network: e2eNetwork,
    serve: { job: { name: 'chaos-sigkill', cluster: { size: 2 }, checkpointEvery: 10 } },
    tabs: 4,
    backend,
  });
  await swarm.untilJoined();
  await untilPlaced(swarm, 2, 2);
  const coordinator = swarm.coordinator!;
  const before = await until(
    async () => {
      const s = await swarm.status();
      return s.iteration >= 25 ? s : undefined;
    },
    'iteration 25',
    240_000,
    250,
  );
  const ids = swarm.live().map((t) => t.ids.at(-1)!);
  const oldPid = coordinator.pid;
  await coordinator.kill('SIGKILL');
  // the newest complete checkpoint on disk when it died
  const dirs = (await readdir(join(coordinator.dataDir, 'checkpoints'))).filter((d) =>
    /^iter-\d+$/.test(d),
  );
  const checkpoint = Math.max(...dirs.map((d) => Number(d.slice(5))));
  expect(checkpoint).toBeGreaterThanOrEqual(10);

  await coordinator.restart();
  expect(coordinator.pid).not.toBe(oldPid);
  const restarted = await coordinator.status();
  // the tabs reconnect by themselves (the swarm opens nothing), and training goes on
  const trained = await until(
    async () => {
      const s = await swarm.status();
      return s.tabs === 4 && s.phase === 'training' && s.iteration >= restarted.iteration + 10
        ? s
        : undefined;
    },
    'the four tabs to reconnect and train 10 iterations',
    240_000,
    500,
  );
  note('sigkill', {
    phaseAfterRestart: restarted.phase,
    stalls: swarm.stalls.stalls,
    iterationBeforeKill: before.iteration,
    lastCheckpoint: checkpoint,
    resumedAt: restarted.iteration,
    iterationLater: trained.iteration,
    tabIdsBefore: ids,
  });
  expect(restarted.iteration).toBeGreaterThanOrEqual(checkpoint);
  expect(restarted.iteration).toBeGreaterThanOrEqual(before.iteration);
  expect(swarm.tabs).toHaveLength(4);
  expect(swarm.live()).toHaveLength(4);
  for (const tab of swarm.live()) {
    // a tab that missed a frame downloads the parameters (resync) and has no base meanwhile
    // (status iteration undefined): one CI run read a tab in that moment; wait it out, bounded
    const s = await until(
      async () => {
        const status = await tab.status();
        return status?.iteration !== undefined ? status : undefined;
      },
      `${tab.name} to hold a base`,
      30_000,
      250,
    );
    expect(s.connected).toBe(true);
    expect(s.iteration).toBeGreaterThanOrEqual(restarted.iteration);
    expect(s.steps).toBeGreaterThan(0);
  }
  expect(swarm.stalls.roundsStalled).toBe(0);
});
