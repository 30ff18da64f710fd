/**
 * Issue 17, item 2, with real tabs: iteration frames travel through the clusters. The
 * coordinator (a `swarmgrad serve --dissemination cluster` child process) writes each
 * closed iteration, signed, to one relay tab per cluster; the relay forwards it over its data
 * channels and its peers apply it only after checking the coordinator's signature. Then the
 * relay of one cluster is closed inside a round: its cluster still gets every iteration (the
 * coordinator resends the last one to the departed relay's members, the next ones go to a new
 * relay) and no round stalls.
 */
import type { DashboardStatus } from '@swarmgrad/protocol';
import { until, type Swarm, type SwarmTab } from '@swarmgrad/swarm';
import { expect, test } from '@swarmgrad/swarm/fixture';
import { e2eNetwork } from './support/lab.ts';

function note(type: string, value: unknown): void {
  const description = typeof value === 'string' ? value : JSON.stringify(value);
  console.log(`${type}: ${description}`);
  test.info().annotations.push({ type, description });
}

async function untilIteration(swarm: Swarm, iteration: number, what: string) {
  return until(
    async () => {
      const s = await swarm.status();
      return s.iteration >= iteration ? s : undefined;
    },
    what,
    240_000,
    500,
  );
}

/** Each live tab with its worker status. */
async function statuses(swarm: Swarm) {
  const all = await Promise.all(
    swarm.live().map(async (tab) => ({ tab, status: await tab.status() })),
  );
  return all.filter((t): t is { tab: SwarmTab; status: NonNullable<typeof t.status> } =>
    Boolean(t.status),
  );
}

test('iterations reach every tab through its cluster relay, also after the relay closes', async ({
  launchSwarm,
}) => {
  test.setTimeout(12 * 60_000);
  const swarm = await launchSwarm({
    network: e2eNetwork,
    serve: {
      job: { name: 'e2e-dissemination', cluster: { size: 3 } },
      args: ['--dissemination', 'cluster'],
    },
    tabs: 6,
    backend: 'wasm',
  });
  await swarm.untilJoined();
  const placed = await until(
    async () => {
      const s = await swarm.status();
      const live = s.clusters.map((c) => c.members.filter((m) => m.live).length);
      return s.phase === 'training' && s.iteration >= 10 && live.join() === '3,3' ? s : undefined;
    },
    'two clusters of three training',
    240_000,
    500,
  );

  // 1. one frame per cluster per iteration from the coordinator; the members get theirs from
  //    the relay, signature checked, and none is refused (counted once every tab has been in
  //    its seat for ten iterations: the last to join got its base by download)
  const settled = await untilIteration(swarm, placed.iteration + 10, 'ten iterations seated');
  const tabs = await statuses(swarm);
  const relays = tabs.filter((t) => t.status.cluster?.proposer === true);
  const members = tabs.filter((t) => t.status.cluster?.proposer === false);
  note('frames at iteration ' + settled.iteration, {
    coordinator: settled.iterationFrames,
    tabs: tabs.map((t) => ({ proposer: t.status.cluster?.proposer, ...t.status.iterationFrames })),
  });
  expect(relays).toHaveLength(2);
  expect(members).toHaveLength(4);
  for (const { status } of relays) expect(status.iterationFrames.forwarded).toBeGreaterThan(0);
  for (const { status } of members) {
    expect(status.iterationFrames.fromPeers).toBeGreaterThan(0);
    expect(status.iterationFrames.refused).toBe(0);
  }
  // the coordinator wrote about two frames per iteration (one per cluster), not six
  expect(settled.iterationFrames.relay).toBeGreaterThanOrEqual(settled.iteration);
  expect(settled.iterationFrames.direct + settled.iterationFrames.request).toBeLessThan(
    settled.iterationFrames.relay / 2,
  );

  // 2. close one cluster's relay inside a round
  const relay = relays[0]!;
  const clusterId = relay.status.cluster!.id;
  const record = await swarm.closeTab(relay.tab, { midRound: true });
  note('relay closed', record);
  const closedAt: DashboardStatus = await swarm.status();
  const later = await untilIteration(swarm, closedAt.iteration + 20, '20 iterations after');
  // the cluster's two remaining members are still training at the swarm's iteration
  const after = (await statuses(swarm)).filter((t) => t.status.cluster?.id === clusterId);
  note('after the relay closed', {
    closedAt: closedAt.iteration,
    later: later.iteration,
    coordinator: later.iterationFrames,
    cluster: after.map((t) => ({ iteration: t.status.iteration, ...t.status.iterationFrames })),
  });
  expect(after).toHaveLength(2);
  for (const { status } of after) {
    expect(status.iteration).toBeGreaterThanOrEqual(closedAt.iteration + 15);
    expect(status.iterationFrames.refused).toBe(0);
  }
  // one of them relays now
  expect(after.filter((t) => t.status.cluster?.proposer === true)).toHaveLength(1);
  expect(swarm.stalls.roundsStalled).toBe(0);
  const summary = await swarm.summary();
  expect(summary.iterationFrames.relay).toBeGreaterThan(summary.iterationFrames.direct);
});
