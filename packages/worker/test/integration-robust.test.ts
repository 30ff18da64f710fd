/**
 * Robust mode end to end in Node (real coordinator, real WebRTC via @roamhq/wrtc): a cluster of
 * five with CGE (f = 2), three honest tabs, one sending 100× scaled updates and one sending
 * NaN-poisoned frames; then coordinator connections that drop and come back by themselves.
 */
import { describe, expect, it } from 'vitest';
import { waitFor } from '@swarmgrad/test-support/harness';
import type { WorkerOptions } from '../src/worker.ts';
import { connectedLinks, useNodeSwarm } from './support/node-swarm.ts';

const swarm = useNodeSwarm(
  {
    name: 'robust-softmax',
    cluster: { size: 5, redundancy: 0 },
    aggregator: { name: 'cge', f: 2 },
    optimizer: { learningRate: 0.5 },
  },
  { evaluate: true, allowFaultInjection: true },
);
const { workers } = swarm;
const spawnWorker = (fault?: WorkerOptions['fault']) => swarm.spawn(fault ? { fault } : {});

describe('robust mode with faulty tabs', () => {
  it('filters a scaling tab, refuses a NaN tab at the door, and still learns', async () => {
    const honest = [spawnWorker(), spawnWorker(), spawnWorker()];
    const scaler = spawnWorker('scale');
    const poisoner = spawnWorker('nan');
    await Promise.all(workers.map((w) => w.start()));
    await waitFor(
      () => workers.every((w) => connectedLinks(w) === 4),
      'a full mesh of five',
      20_000,
    );
    await swarm.accuracyAbove(0.7, 'held-out accuracy above 0.7 despite two faulty tabs', 40_000);
    const scalerSlot = scaler.status().cluster!.slot;
    const poisonerSlot = poisoner.status().cluster!.slot;
    for (const w of honest) {
      const status = w.status();
      expect(status.job?.mode).toBe('robust');
      // NaN frames are refused at the door, by code
      expect(status.rejected.byCode['non-finite']).toBeGreaterThan(5);
      const peer = status.cluster!.peers.find((p) => p.slot === poisonerSlot)!;
      expect(peer.rejected).toBeGreaterThan(5);
      const last = status.cluster!.lastAggregate!;
      expect(last.contributors).not.toContain(scalerSlot);
      expect(last.contributors).not.toContain(poisonerSlot);
      expect(last.rejected.map((r) => r.slot)).toEqual(
        expect.arrayContaining([scalerSlot, poisonerSlot]),
      );
      // nobody waits for the poisoner: its refused writes count as written
      expect(last.timedOut).toBe(false);
    }
  }, 60_000);

  it('reconnects by itself when the coordinator connection drops', async () => {
    const sockets = swarm.coordinator.tabs;
    const [transportDrop, serverKick] = workers;
    const dropId = transportDrop!.status().tabId!;
    const kickId = serverKick!.status().tabId!;
    const stepsBefore = transportDrop!.status().steps;
    // each worker's connection events from here on: a drop (false) must come before the
    // reconnection (true), seen by the worker itself, not inferred from its end state
    const seen = [transportDrop!, serverKick!].map((w) => {
      const events: boolean[] = [];
      const off = w.on('connection', (connected) => events.push(connected));
      return { events, off };
    });
    expect(transportDrop!.status().connected && serverKick!.status().connected).toBe(true);
    sockets.get(dropId)!.conn.close(); // the network drops: socket.io reconnects
    sockets.get(kickId)!.disconnect(true); // the server closes the socket: we come back anyway
    const droppedThenBack = (events: boolean[]) => {
      const down = events.indexOf(false);
      return down >= 0 && events.indexOf(true, down + 1) > down;
    };
    await waitFor(
      () => seen.every(({ events }) => droppedThenBack(events)),
      'each worker seeing its connection drop and then come back',
      15_000,
    );
    for (const { events, off } of seen) {
      off();
      expect(events[0]).toBe(false);
    }
    expect(transportDrop!.status().connected && serverKick!.status().connected).toBe(true);
    const before = swarm.coordinator.iteration;
    await waitFor(() => swarm.coordinator.iteration >= before + 5, 'training goes on', 20_000);
    await waitFor(
      () => transportDrop!.status().steps > stepsBefore + 2,
      'the reconnected tab computing',
      20_000,
    );
    const tabIds = new Set(swarm.coordinator.registry.connected().map((t) => t.id));
    expect(tabIds.has(transportDrop!.status().tabId!)).toBe(true);
    expect(tabIds.has(serverKick!.status().tabId!)).toBe(true);
  }, 60_000);
});
