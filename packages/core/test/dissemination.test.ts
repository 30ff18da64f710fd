import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { planDissemination, type DisseminationInput } from '../src/swarm/dissemination.ts';

const twoClusters = (overrides: Partial<DisseminationInput> = {}) =>
  planDissemination({
    reachable: ['a0', 'a1', 'a2', 'a3', 'b0', 'b1', 'b2', 'b3', 'waiting'],
    clusters: [
      { id: 0, members: ['a0', 'a1', 'a2', 'a3'] },
      { id: 1, members: ['b0', 'b1', 'b2', 'b3'] },
    ],
    proposerOf: (id) => (id === 0 ? 'a2' : 'b0'),
    mayRelay: () => true,
    linkUp: () => true,
    ...overrides,
  });

/** Clusters of tabs t0..t29 (a tab sits in at most one) and the broken links, from fc values. */
function layout(clusterSeats: number[][], broken: [number, number][]) {
  const seated = new Set<number>();
  const clusters = clusterSeats.map((seats, id) => ({
    id,
    members: seats.filter((s) => !seated.has(s) && (seated.add(s), true)).map((s) => `t${s}`),
  }));
  const brokenPairs = new Set(broken.map(([a, b]) => [`t${a}`, `t${b}`].sort().join()));
  return { clusters, brokenPairs };
}

describe('planDissemination', () => {
  it('sends one frame per cluster, to its proposer, and directly only to tabs without a seat', () => {
    const plan = twoClusters();
    expect(plan.relays).toEqual([
      { clusterId: 0, relay: 'a2', covers: ['a0', 'a1', 'a3'] },
      { clusterId: 1, relay: 'b0', covers: ['b1', 'b2', 'b3'] },
    ]);
    expect(plan.direct).toEqual(['waiting']);
  });

  it('a proposer out of reach or not trusted: the lowest-slot member relays', () => {
    const gone = twoClusters({ reachable: ['a0', 'a1', 'a3', 'b0', 'b1', 'b2', 'b3'] });
    expect(gone.relays[0]).toEqual({ clusterId: 0, relay: 'a0', covers: ['a1', 'a3'] });
    const quarantined = twoClusters({ mayRelay: (id) => id !== 'b0' && id !== 'b1' });
    expect(quarantined.relays[1]!.relay).toBe('b2');
    // a quarantined member still gets the frame (it is on its way out, not cut off)
    expect(quarantined.relays[1]!.covers).toContain('b0');
  });

  it('members whose link with the relay is not known to be up get the frame directly', () => {
    const plan = twoClusters({
      linkUp: (a, b) => [a, b].sort().join() !== ['a1', 'a2'].join(),
    });
    expect(plan.relays[0]!.covers).toEqual(['a0', 'a3']);
    expect(plan.direct.sort()).toEqual(['a1', 'waiting']);
  });

  it('a cluster nobody can relay for gets its frames directly', () => {
    const plan = twoClusters({ mayRelay: (id) => !id.startsWith('a') });
    expect(plan.relays.map((r) => r.clusterId)).toEqual([1]);
    expect(plan.direct.sort()).toEqual(['a0', 'a1', 'a2', 'a3', 'waiting']);
  });

  it('covers every reachable tab exactly once, and nobody out of reach', () => {
    fc.assert(
      fc.property(
        fc.array(fc.array(fc.nat(29), { maxLength: 8 }), { maxLength: 6 }),
        fc.uniqueArray(fc.nat(34), { maxLength: 35 }),
        fc.array(fc.tuple(fc.nat(29), fc.nat(29)), { maxLength: 20 }),
        fc.uniqueArray(fc.nat(29), { maxLength: 10 }),
        (clusterSeats, reachableIds, broken, untrusted) => {
          const { clusters, brokenPairs } = layout(clusterSeats, broken);
          const reachable = reachableIds.map((i) => `t${i}`);
          const plan = planDissemination({
            reachable,
            clusters,
            proposerOf: (id) => clusters[id]!.members[1],
            mayRelay: (tab) => !untrusted.map((u) => `t${u}`).includes(tab),
            linkUp: (a, b) => !brokenPairs.has([a, b].sort().join()),
          });
          const got = [
            ...plan.direct,
            ...plan.relays.flatMap((r) => [r.relay, ...r.covers]),
          ].sort();
          expect(got).toEqual([...reachable].sort());
          for (const r of plan.relays) {
            for (const member of r.covers)
              expect(brokenPairs.has([r.relay, member].sort().join())).toBe(false);
            expect(untrusted.map((u) => `t${u}`)).not.toContain(r.relay);
          }
        },
      ),
    );
  });

  it('several nodes plan the same relays and together write each tab one frame', () => {
    fc.assert(
      fc.property(
        fc.array(fc.array(fc.nat(29), { maxLength: 8 }), { maxLength: 6 }),
        // the node holding each of t0..t29 (3: not connected anywhere)
        fc.array(fc.nat(3), { minLength: 30, maxLength: 30 }),
        fc.array(fc.tuple(fc.nat(29), fc.nat(29)), { maxLength: 20 }),
        (clusterSeats, nodeOf, broken) => {
          const { clusters, brokenPairs } = layout(clusterSeats, broken);
          const held = (node: number) => nodeOf.flatMap((n, i) => (n === node ? [`t${i}`] : []));
          const connected = new Set([0, 1, 2].flatMap(held));
          const plans = [0, 1, 2].map((node) =>
            planDissemination({
              reachable: held(node),
              reachableElsewhere: (tab) => connected.has(tab) && !held(node).includes(tab),
              clusters,
              proposerOf: (id) => clusters[id]!.members[1],
              mayRelay: () => true,
              linkUp: (a, b) => !brokenPairs.has([a, b].sort().join()),
            }),
          );
          // one relay per cluster, the same on every node
          for (const plan of plans.slice(1)) expect(plan.relays).toEqual(plans[0]!.relays);
          // what reaches each tab: a node writes to the relays and direct tabs it holds
          const got: string[] = [];
          plans.forEach((plan, node) => {
            for (const r of plan.relays)
              if (held(node).includes(r.relay)) got.push(r.relay, ...r.covers);
            for (const id of plan.direct) {
              expect(held(node)).toContain(id);
              got.push(id);
            }
          });
          expect(got.sort()).toEqual([...connected].sort());
        },
      ),
    );
  });
});
