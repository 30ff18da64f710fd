/**
 * A tab's identity is its own: the coordinator draws ids no tab of the swarm holds, and a join
 * whose tab id another tab already holds (drawn again by chance, e.g. by two nodes at once) but
 * whose resume token is not that tab's changes nothing — before, it took over the other tab's
 * record and seat and disconnected it as a "ghost" (seen once at 10,000 tabs in the bench).
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Coordinator } from '../src/index.ts';
import { connectPlaced, type FakeWorker } from '@swarmgrad/test-support/fake-worker';
import { startCoordinator, waitFor } from '@swarmgrad/test-support/harness';

const running: Coordinator[] = [];
const workers: FakeWorker[] = [];

afterEach(async () => {
  for (const w of workers.splice(0)) w.close();
  for (const c of running.splice(0)) await c.close({ checkpoint: false });
});

describe('tab identity', () => {
  it('a join with a held tab id and another resume token neither takes the tab over nor drops it', async () => {
    const coordinator = await startCoordinator(
      { cluster: { size: 2, redundancy: 0 } },
      { minTabs: 2 },
    );
    running.push(coordinator);
    const [a, b] = (await connectPlaced([coordinator.url, coordinator.url], {}, workers)) as [
      FakeWorker,
      FakeWorker,
    ];
    for (const w of [a, b]) expect(w.id).toMatch(/^tab-[0-9a-f]{12}$/);
    expect(a.id).not.toBe(b.id);
    const held = coordinator.registry.tabs.get(a.id)!;
    const { resumeToken, socketId } = held;
    const seat = coordinator.registry.seatOf(a.id);
    expect(seat).toBeDefined();

    let result: unknown;
    coordinator.submit(
      coordinator.command({
        kind: 'join',
        tabId: a.id,
        resumeToken: 'not-the-tabs-own-token',
        helloKind: 'node',
        backend: 'cpu',
        fallbackAdapter: undefined,
        fault: undefined,
        socketId: 'another-socket',
      }),
      (r) => (result = r),
    );
    await waitFor(() => result !== undefined, 'the join settled');
    expect(result).toBeInstanceOf(Error);
    expect((result as Error).message).toMatch(/in use/);
    const after = coordinator.registry.tabs.get(a.id)!;
    expect(after.resumeToken).toBe(resumeToken);
    expect(after.socketId).toBe(socketId);
    expect(coordinator.registry.seatOf(a.id)).toEqual(seat);
    // the tab keeps its connection and keeps training
    const at = coordinator.iteration;
    await waitFor(() => coordinator.iteration >= at + 2, 'two more iterations');
    expect(a.socket.connected).toBe(true);
    expect(coordinator.registry.tabs.get(a.id)!.connected).toBe(true);
  });
});
