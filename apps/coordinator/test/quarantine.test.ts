/**
 * Quarantine by the cluster's majority: tabs report the peers their robust filter quarantined
 * (`report.quarantinedPeers`); the coordinator quarantines a tab only when more than half of the
 * other live members of its cluster name it, lists it in /api/status `quarantined`, and unseats
 * it at the next iteration.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { DashboardStatus } from '@swarmgrad/protocol';
import type { Coordinator } from '../src/index.ts';
import { connectPlaced, type FakeWorker } from '@swarmgrad/test-support/fake-worker';
import { startCoordinator, waitFor } from '@swarmgrad/test-support/harness';

const running: Coordinator[] = [];
const workers: FakeWorker[] = [];

afterEach(async () => {
  for (const w of workers.splice(0)) w.close();
  for (const c of running.splice(0)) await c.close({ checkpoint: false });
});

async function statusOf(coordinator: Coordinator): Promise<DashboardStatus> {
  return (await (await fetch(`${coordinator.url}/api/status`)).json()) as DashboardStatus;
}

describe('quarantine by the cluster majority', () => {
  it('quarantines a tab only when a majority of its peers report it, then unseats it', async () => {
    const coordinator = await startCoordinator(
      { cluster: { size: 4, redundancy: 0 }, aggregator: { name: 'cge', f: 1 } },
      { minTabs: 4 },
    );
    running.push(coordinator);
    const urls = [coordinator.url, coordinator.url, coordinator.url, coordinator.url];
    const tabs = await connectPlaced(urls, { delayMs: 20 }, workers);
    const [a, b, c, suspect] = tabs as [FakeWorker, FakeWorker, FakeWorker, FakeWorker];
    const first = await statusOf(coordinator);
    expect(first.clusters).toHaveLength(1);
    expect(first.quarantined).toEqual([]);

    // one peer alone (it may be the liar) and the suspect naming others: nothing happens
    a.reportQuarantined([suspect.id]);
    suspect.reportQuarantined([a.id, b.id, c.id]);
    await waitFor(
      async () => (await statusOf(coordinator)).iteration > first.iteration + 3,
      'iterations',
    );
    const one = await statusOf(coordinator);
    expect(one.quarantined).toEqual([]);
    expect(one.clusters[0]!.members.filter((m) => m.live)).toHaveLength(4);

    // a second peer: 2 of the 3 others, a majority
    b.reportQuarantined([suspect.id]);
    const quarantined = await waitFor(async () => {
      const s = await statusOf(coordinator);
      return s.quarantined.length > 0 ? s.quarantined : undefined;
    }, 'the quarantine');
    expect(quarantined).toHaveLength(1);
    expect(quarantined[0]!.tabId).toBe(suspect.id);
    expect(quarantined[0]!.clusterId).toBe(first.clusters[0]!.id);
    expect([...quarantined[0]!.reportedBy].sort()).toEqual([a.id, b.id].sort());

    // unseated at the next iteration, and the honest three keep training without it
    const after = await waitFor(async () => {
      const s = await statusOf(coordinator);
      const seated = s.clusters.flatMap((cl) => cl.members.map((m) => m.tabId));
      return seated.includes(suspect.id) ? undefined : s;
    }, 'the quarantined tab to be unseated');
    expect(after.clusters.flatMap((cl) => cl.members.map((m) => m.tabId)).sort()).toEqual(
      [a.id, b.id, c.id].sort(),
    );
    const at = after.iteration;
    await waitFor(async () => (await statusOf(coordinator)).iteration > at + 2, 'more iterations');
    expect((await statusOf(coordinator)).quarantined.map((q) => q.tabId)).toEqual([suspect.id]);
  });
});
