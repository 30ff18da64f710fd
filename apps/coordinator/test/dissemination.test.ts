/**
 * Dissemination through the clusters (issue 17, item 2), at the coordinator: with `cluster`
 * dissemination each closed iteration goes, signed and flagged FORWARD, to one relay tab per
 * cluster (its proposer) and to no other seated tab; a tab that missed frames gets them by asking
 * (`iteration-request`), signed with the key of its welcome; when a relay leaves, its cluster's
 * members get the last frame from the coordinator. Real coordinator and socket.io clients (fake
 * workers: no data channels, so they do not forward; forwarding between real tabs is tested in
 * e2e/dissemination.spec.ts, the relay choice in packages/core/test/dissemination.test.ts).
 */
import { afterEach, describe, expect, it } from 'vitest';
import {
  importIterationKey,
  parseIterationFrame,
  verifyIterationFrame,
  type ParsedIterationFrame,
} from '@swarmgrad/protocol';
import type { Coordinator } from '../src/index.ts';
import { FakeWorker } from '@swarmgrad/test-support/fake-worker';
import { startCoordinator, waitFor } from '@swarmgrad/test-support/harness';

const running: Coordinator[] = [];
const workers: FakeWorker[] = [];

afterEach(async () => {
  for (const w of workers.splice(0)) w.close();
  for (const c of running.splice(0)) await c.close({ checkpoint: false });
});

interface Recorded {
  tab: FakeWorker;
  frames: ParsedIterationFrame[];
}

async function swarmOfEight(): Promise<{ coordinator: Coordinator; tabs: Recorded[] }> {
  const coordinator = await startCoordinator(
    { cluster: { size: 4, redundancy: 0 } },
    { minTabs: 8, dissemination: 'cluster' },
  );
  running.push(coordinator);
  const tabs: Recorded[] = [];
  for (let i = 0; i < 8; i++) {
    const tab = await FakeWorker.connect({ url: coordinator.url });
    workers.push(tab);
    const recorded: Recorded = { tab, frames: [] };
    tab.socket.on('iteration', (bytes) => {
      const parsed = parseIterationFrame(bytes);
      if (parsed.ok) recorded.frames.push(parsed.value);
    });
    tabs.push(recorded);
  }
  await waitFor(() => tabs.every((t) => t.tab.placement !== undefined), 'placements');
  // the links a real tab reports as they connect: the relay forwards only over links up
  for (const { tab } of tabs)
    for (const peer of tab.placement!.peers)
      tab.socket.emit('link', { peer: peer.tabId, state: 'connected', attempts: 0 });
  return { coordinator, tabs };
}

async function metric(coordinator: Coordinator, name: string): Promise<number> {
  const text = await (await fetch(`${coordinator.url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(name));
  return line === undefined ? 0 : Number(line.split(' ').at(-1));
}

describe('cluster dissemination', () => {
  it('a member whose link with its relay is not reported up gets its frames directly', async () => {
    const coordinator = await startCoordinator(
      { cluster: { size: 4, redundancy: 0 } },
      { minTabs: 4, dissemination: 'cluster' },
    );
    running.push(coordinator);
    const frames = new Map<FakeWorker, ParsedIterationFrame[]>();
    for (let i = 0; i < 4; i++) {
      const tab = await FakeWorker.connect({ url: coordinator.url });
      workers.push(tab);
      frames.set(tab, []);
      tab.socket.on('iteration', (bytes) => {
        const parsed = parseIterationFrame(bytes);
        if (parsed.ok) frames.get(tab)!.push(parsed.value);
      });
    }
    await waitFor(() => workers.every((t) => t.placement !== undefined), 'placements');
    const relay = workers.find((t) => t.placement?.proposer === true)!;
    const [linked, unlinked] = workers.filter((t) => t !== relay);
    relay.socket.emit('link', { peer: linked!.id, state: 'connected', attempts: 0 });
    const start = coordinator.iteration;
    await waitFor(() => coordinator.iteration >= start + 4, 'four more iterations', 30_000);
    const after = (t: FakeWorker) => frames.get(t)!.filter((f) => f.iteration > start + 1);
    await waitFor(() => after(unlinked!).length >= 2, 'direct frames for the unlinked member');
    expect(after(linked!)).toEqual([]);
    expect(after(unlinked!).every((f) => !f.forward)).toBe(true);
  });

  it('sends each iteration to one relay per cluster, which alone is told to forward it', async () => {
    const { coordinator, tabs } = await swarmOfEight();
    await waitFor(() => coordinator.iteration >= 4, 'four iterations', 30_000);
    const relays = tabs.filter((t) => t.tab.placement?.proposer === true);
    expect(relays).toHaveLength(2);
    // the close runs before the frames are on the wire
    await waitFor(
      () => relays.every((r) => r.frames.some((f) => f.iteration === 4)),
      'the relays holding iteration 4',
    );
    for (const { tab, frames } of tabs) {
      const got = frames.filter((f) => f.iteration >= 2 && f.iteration <= 4);
      if (tab.placement?.proposer) {
        expect(got.map((f) => f.iteration)).toEqual([2, 3, 4]);
        expect(got.every((f) => f.forward)).toBe(true);
      } else {
        // the members get it from their relay (fake workers do not forward: nothing here)
        expect(got).toEqual([]);
      }
    }
    const relayed = await metric(coordinator, 'swarmgrad_iteration_frames_total{to="relay"}');
    expect(relayed).toBeGreaterThanOrEqual(2 * 4);
    expect(await metric(coordinator, 'swarmgrad_iteration_frames_total{to="direct"}')).toBe(0);
  });

  it('a member asking gets the frames after its iteration, signed with its welcome key', async () => {
    const { coordinator, tabs } = await swarmOfEight();
    await waitFor(() => coordinator.iteration >= 3, 'three iterations', 30_000);
    const member = tabs.find((t) => t.tab.placement?.proposer === false)!;
    const before = member.frames.length;
    const current = coordinator.iteration;
    member.tab.socket.emit('iteration-request', { after: 1 });
    // (later iterations may reach it as a relay: asking passed its relay over)
    const asked = () => member.frames.slice(before).filter((f) => f.iteration <= current);
    await waitFor(() => asked().length >= current - 1, 'the frames asked for');
    const answered = asked();
    expect(answered.map((f) => f.iteration)).toEqual(
      answered.map((_, i) => 2 + i), // 2 … current, in order, none twice
    );
    expect(answered.every((f) => !f.forward)).toBe(true);
    const key = await importIterationKey(member.tab.welcome.iterationKey!);
    for (const frame of answered) expect(await verifyIterationFrame(frame, key)).toBe(true);
    // a malformed request is refused with a typed error, nothing sent
    member.tab.socket.emit('iteration-request', { after: 'x' });
    await waitFor(
      () => member.tab.rejections.find((r) => r.event === 'iteration-request'),
      'the refusal',
    );
    expect(member.tab.rejections.at(-1)?.code).toBe('invalid-message');
  });

  it('a member that had to ask passes its relay over: another member relays next', async () => {
    const { coordinator, tabs } = await swarmOfEight();
    await waitFor(() => coordinator.iteration >= 2, 'two iterations', 30_000);
    const relay = tabs.find((t) => t.tab.placement?.proposer === true)!;
    const members = tabs.filter(
      (t) => t !== relay && t.tab.placement?.clusterId === relay.tab.placement?.clusterId,
    );
    // the relay's member asks for what follows an old iteration: the relay did not deliver
    const start = coordinator.iteration;
    members[0]!.tab.socket.emit('iteration-request', { after: start - 1 });
    await waitFor(() => coordinator.iteration >= start + 3, 'three more iterations', 30_000);
    const flaggedAfter = (t: Recorded) =>
      t.frames.filter((f) => f.forward && f.iteration > start + 1).length;
    // the passed-over relay is told to forward nothing more; a member of its cluster is
    await waitFor(() => members.some((m) => flaggedAfter(m) > 0), 'a new relay');
    expect(flaggedAfter(relay)).toBe(0);
  });

  it('when a relay leaves, its members get the last iteration from the coordinator', async () => {
    const { coordinator, tabs } = await swarmOfEight();
    await waitFor(() => coordinator.iteration >= 2, 'two iterations', 30_000);
    // stop the swarm between iterations so "the last frame" stays put
    const response = await fetch(`${coordinator.url}/api/control`, {
      method: 'POST',
      headers: { authorization: 'Bearer test-token', 'content-type': 'application/json' },
      body: JSON.stringify({ action: 'pause' }),
    });
    expect(response.ok).toBe(true);
    await waitFor(() => coordinator.phase === 'paused', 'paused');
    const relay = tabs.find((t) => t.tab.placement?.proposer === true)!;
    const last = Math.max(...relay.frames.map((f) => f.iteration));
    const members = tabs.filter(
      (t) => t !== relay && t.tab.placement?.clusterId === relay.tab.placement?.clusterId,
    );
    const others = tabs.filter((t) => t !== relay && !members.includes(t));
    const before = new Map(tabs.map((t) => [t, t.frames.length]));
    relay.tab.close();
    await waitFor(
      () => members.every((m) => m.frames.slice(before.get(m)).some((f) => f.iteration === last)),
      "the departed relay's cluster gets the last frame",
    );
    // the other cluster's relay is still there: nothing resent to it
    for (const t of others) expect(t.frames.length).toBe(before.get(t));
  });
});
