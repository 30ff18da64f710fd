/**
 * Quarantine benchmark (issue 6): how soon a cluster catches a tab that replays its own honest
 * updates of 5 iterations ago (fault mode 'stale'), and how close honest tabs come to being
 * flagged, with the lag-symmetry test of packages/core/src/quarantine.ts.
 *
 *   npm run bench -- quarantine [--runs 2] [--iterations 250] [--attacks none,stale] [--json]
 *
 * Each run starts an in-process coordinator with the chaos suite's robust job (MLP 784-128-10,
 * one cluster of four, CGE f = 1) and four Node workers (WASM, real WebRTC via @roamhq/wrtc);
 * with an attack, the fourth runs that fault mode. A run ends when the attacker is quarantined
 * or at `--iterations` (as the chaos suite's attack runs do); the bench then reads one honest
 * worker's last quarantine window: every tab's lag-symmetry z (Newey–West standard errors) over
 * how many iterations. Printed per run: the
 * iteration the coordinator quarantined each tab at (a majority of the cluster reported it),
 * the attacker's z (— once quarantined: it is no longer judged), and the largest z of an honest
 * tab. The workers share one Node process,
 * so their timing differs from browser tabs'; the statistics of their updates do not.
 */
import { parseArgs } from 'node:util';
import { faultModes, type FaultMode } from '@swarmgrad/protocol';
import type { WindowReport } from '@swarmgrad/core';
import { startCoordinator, waitFor } from '@swarmgrad/test-support/harness';
import { createNodeWorker } from '@swarmgrad/worker/node';
import { silentLogger } from '@swarmgrad/worker';

interface RunResult {
  run: number;
  attack: FaultMode | 'none';
  iterations: number;
  attacker: string | undefined;
  /** Tabs the coordinator quarantined, with the iteration it did so at. */
  quarantined: { tabId: string; iteration: number }[];
  attackerZ: number | undefined;
  /** The largest z of an honest tab (the side the test fails on). */
  honestMaxZ: number;
  lags: WindowReport['lags'];
}

async function runOnce(run: number, attack: FaultMode | 'none', iterations: number) {
  const coordinator = await startCoordinator(
    {
      name: `bench-quarantine-${attack}`,
      model: { preset: 'mlp-784-128-10' },
      partitions: 32,
      cluster: { size: 4, redundancy: 1 },
      aggregator: { name: 'cge', f: 1 },
      optimizer: { learningRate: 0.1 },
      agreement: { graceMs: 250 },
      maxIterations: iterations,
      evaluateEvery: 1000,
    },
    { allowFaultInjection: attack !== 'none' },
  );
  const workers = [0, 1, 2, 3].map((i) =>
    createNodeWorker({
      url: coordinator.url,
      backend: 'wasm',
      logger: silentLogger,
      statusPollMs: 0,
      ...(i === 3 && attack !== 'none' ? { fault: attack } : {}),
    }),
  );
  try {
    await Promise.all(workers.map((w) => w.start()));
    const ids = workers.map((w) => w.status().tabId ?? '?');
    const attacker = attack === 'none' ? undefined : ids[3];
    await waitFor(
      () =>
        (coordinator.status().iteration ?? 0) >= iterations - 1 ||
        coordinator.status().quarantined.some((q) => q.tabId === attacker),
      `iteration ${iterations - 1} or the attacker quarantined`,
      30 * 60_000,
    );
    const lags = workers[0]!.status().cluster?.quarantine?.lastWindow?.lags ?? [];
    const named = lags.map((l) => ({ ...l, id: l.id === 'self' ? ids[0]! : l.id }));
    const honest = named.filter((l) => l.id !== attacker);
    const result: RunResult = {
      run,
      attack,
      iterations,
      attacker,
      quarantined: coordinator
        .status()
        .quarantined.map((q) => ({ tabId: q.tabId, iteration: q.iteration })),
      attackerZ: named.find((l) => l.id === attacker)?.z,
      honestMaxZ: Math.max(...honest.map((l) => l.z)),
      lags: named,
    };
    return result;
  } finally {
    await Promise.all(workers.map((w) => w.leave()));
    await coordinator.close({ checkpoint: false });
  }
}

export async function run(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      runs: { type: 'string', default: '2' },
      iterations: { type: 'string', default: '250' },
      attacks: { type: 'string', default: 'none,stale' },
      json: { type: 'boolean', default: false },
    },
  });
  const runs = Number(values.runs);
  const iterations = Number(values.iterations);
  if (!Number.isInteger(runs) || runs < 1) throw new RangeError('--runs needs an integer ≥ 1');
  if (!Number.isInteger(iterations) || iterations < 40) {
    throw new RangeError('--iterations needs an integer ≥ 40 (the test judges from 30 on)');
  }
  const attacks = values.attacks.split(',').map((a) => a.trim());
  for (const a of attacks) {
    if (a !== 'none' && !(faultModes as readonly string[]).includes(a)) {
      throw new RangeError(`unknown attack '${a}' (none, ${faultModes.join(', ')})`);
    }
  }
  const results: RunResult[] = [];
  for (let r = 1; r <= runs; r++) {
    for (const attack of attacks as (FaultMode | 'none')[]) {
      const result = await runOnce(r, attack, iterations);
      results.push(result);
      if (values.json) continue;
      const caught = result.quarantined.find((q) => q.tabId === result.attacker);
      const wrongly = result.quarantined.filter((q) => q.tabId !== result.attacker);
      console.log(
        [
          `run ${r}`.padEnd(6),
          attack.padEnd(10),
          `attacker quarantined at: ${caught ? caught.iteration : '—'}`.padEnd(30),
          `attacker z: ${result.attackerZ?.toFixed(1) ?? '—'}`.padEnd(16),
          `honest max z: ${result.honestMaxZ.toFixed(1)}`.padEnd(20),
          `honest quarantined: ${wrongly.length}`,
        ].join(' '),
      );
    }
  }
  if (values.json) console.log(JSON.stringify(results));
}
