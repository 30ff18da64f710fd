/**
 * Tabs whose links cannot connect are seated apart (issue 14, item 3), end to end in Node: a
 * real coordinator in process, four real workers (TF.js WASM, simple-peer over @roamhq/wrtc)
 * in clusters of two. One worker's links never connect (its end stays silent, as behind a NAT
 * no candidate pair crosses). Each cluster it shares with another worker reports the failure
 * from both ends; at the next iteration placement parts the pair (a swap with the other
 * cluster) and the relay of that pair ends, until every worker has failed with it once: then
 * no move can part it, it stays with the last one, relayed, and the other two link directly.
 */
import { describe, expect, it } from 'vitest';
import { waitFor } from '@swarmgrad/test-support/harness';
import type { SwarmWorker } from '../src/worker.ts';
import { useNodeSwarm } from './support/node-swarm.ts';
import { RealPeer, switchablePeer, workerWithPeer } from './support/silent-peer.ts';

const swarm = useNodeSwarm({ cluster: { size: 2, redundancy: 0 } }, { evaluate: false });

describe('a tab whose links never connect', () => {
  it('is seated apart from each tab it failed with while a move can part them; then relayed', async () => {
    const coordinator = swarm.coordinator;
    const spawn = (silent: boolean): SwarmWorker => {
      const ctor = silent ? switchablePeer({ value: true }) : RealPeer;
      const worker = workerWithPeer(coordinator.url, ctor);
      swarm.workers.push(worker);
      return worker;
    };
    // joined in this order: x sits beside a first
    const a = spawn(false);
    await a.start();
    const x = spawn(true);
    await x.start();
    const others = [a, spawn(false), spawn(false)];
    for (const w of others.slice(1)) await w.start();
    const ids = (workers: SwarmWorker[]) => workers.map((w) => w.status().tabId!);
    const xId = x.status().tabId!;

    // x fails with each of the three in turn
    await waitFor(
      () => ids(others).every((id) => coordinator.registry.isApart(xId, id)),
      'x apart from every other worker',
      120_000,
    );
    const parted = coordinator.events.filter((e) => e.kind === 'tabs-parted');
    expect(parted.length).toBeGreaterThanOrEqual(2);
    for (const event of parted) expect(event.message).toContain(xId);
    expect(coordinator.registry.apartPairs()).toHaveLength(3);

    // no move parts x from the last one: that pair is relayed; the other two link directly
    await waitFor(() => coordinator.relays.relayedPairs === 1, 'the last pair relayed', 30_000);
    const partner = others.find(
      (w) =>
        w.status().cluster?.id !== undefined && w.status().cluster?.id === x.status().cluster?.id,
    )!;
    expect(partner).toBeDefined();
    expect(coordinator.relays.peersOf(xId)).toEqual([partner.status().tabId]);
    const pair = others.filter((w) => w !== partner);
    expect(pair[0]!.status().cluster!.id).toBe(pair[1]!.status().cluster!.id);
    await waitFor(
      () => pair.every((w) => w.status().cluster?.peers[0]?.link === 'connected'),
      'the other two linked directly',
      30_000,
    );
    // and training goes on, with nobody parted again
    const from = coordinator.iteration;
    const events = coordinator.events.filter((e) => e.kind === 'tabs-parted').length;
    await waitFor(() => coordinator.iteration >= from + 5, 'five more iterations', 30_000);
    expect(coordinator.events.filter((e) => e.kind === 'tabs-parted')).toHaveLength(events);
  }, 180_000);
});
