import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  groupSeatCap,
  occupancy,
  placementStrategies,
  type ClusterSeats,
  type PlacementTab,
} from '../src/placement/index.ts';

type Step = { join: number; leave: number[]; size: number };
type GroupStep = { join: number[]; leave: number[]; size: number };

describe.each(placementStrategies.map((s) => [s.name, s] as const))(
  'placement %s',
  (_name, strategy) => {
    it('seats every live tab exactly once, never overfills, retires empty clusters', () => {
      fc.assert(
        fc.property(
          fc.array(
            fc.record({
              join: fc.nat({ max: 12 }),
              leave: fc.array(fc.nat({ max: 40 }), { maxLength: 6 }),
              size: fc.constantFrom(2, 3, 4, 4, 4, 8),
            }),
            { minLength: 1, maxLength: 12 },
          ),
          (steps: Step[]) => {
            let live: PlacementTab[] = [];
            let clusters: ClusterSeats[] = [];
            let nextClusterId = 0;
            let seq = 0;
            for (const step of steps) {
              const before = new Map<string, [number, number]>();
              for (const c of clusters) c.seats.forEach((t, s) => t && before.set(t, [c.id, s]));
              live = live.filter((_t, i) => !step.leave.includes(i));
              for (let j = 0; j < step.join; j++) {
                const id = `t${seq}`;
                live.push({ id, joinSeq: seq++, rttMs: (seq * 37) % 100 });
              }
              const result = strategy.place({
                clusters,
                live,
                clusterSize: step.size,
                nextClusterId,
              });
              clusters = result.clusters;
              nextClusterId = result.nextClusterId;
              expect(result.unseated).toEqual([]);

              const seen = new Map<string, [number, number]>();
              for (const c of clusters) {
                expect(c.seats.length).toBe(step.size);
                expect(occupancy(c)).toBeGreaterThan(0);
                c.seats.forEach((t, s) => {
                  if (t === undefined) return;
                  expect(seen.has(t)).toBe(false);
                  seen.set(t, [c.id, s]);
                });
              }
              expect([...seen.keys()].sort()).toEqual(live.map((t) => t.id).sort());
              expect(new Set(clusters.map((c) => c.id)).size).toBe(clusters.length);
              // a stayer keeps its cluster and slot unless its cluster was dissolved or its
              // slot no longer exists
              const survivingIds = new Set(clusters.map((c) => c.id));
              for (const [tab, [cid, slot]] of before) {
                const now = seen.get(tab);
                if (now === undefined || !survivingIds.has(cid) || slot >= step.size) continue;
                expect(now).toEqual([cid, slot]);
              }
              if (live.length > 0) {
                expect(clusters.length).toBeLessThanOrEqual(live.length);
              }
            }
          },
        ),
        { numRuns: 200 },
      );
    });

    it('never seats a majority of one address group in a cluster; waits only when it must', () => {
      fc.assert(
        fc.property(
          fc.array(
            fc.record({
              // each joining tab's group: 0-2 one of three shared addresses, 3 none of its own
              join: fc.array(fc.nat({ max: 3 }), { maxLength: 10 }),
              leave: fc.array(fc.nat({ max: 40 }), { maxLength: 6 }),
              size: fc.constantFrom(1, 2, 3, 4, 4, 5, 8),
            }),
            { minLength: 1, maxLength: 14 },
          ),
          (steps: GroupStep[]) => {
            let live: PlacementTab[] = [];
            let clusters: ClusterSeats[] = [];
            let nextClusterId = 0;
            let seq = 0;
            let size = 0;
            for (const step of steps) {
              const sameSize = step.size === size;
              size = step.size;
              const before = new Map<string, [number, number]>();
              for (const c of clusters) c.seats.forEach((t, s) => t && before.set(t, [c.id, s]));
              live = live.filter((_t, i) => !step.leave.includes(i));
              for (const g of step.join) {
                const id = `t${seq}`;
                live.push({
                  id,
                  joinSeq: seq++,
                  rttMs: (seq * 37) % 100,
                  ...(g < 3 ? { group: `10.0.${g}.1/32` } : {}),
                });
              }
              const result = strategy.place({ clusters, live, clusterSize: size, nextClusterId });
              clusters = result.clusters;
              nextClusterId = result.nextClusterId;

              const groupOf = new Map(live.map((t) => [t.id, t.group]));
              const cap = groupSeatCap(size);
              const seen = new Map<string, [number, number]>();
              const countIn = (c: ClusterSeats, group: string) =>
                c.seats.filter((t) => t !== undefined && groupOf.get(t) === group).length;
              for (const c of clusters) {
                expect(c.seats.length).toBe(size);
                expect(occupancy(c)).toBeGreaterThan(0);
                c.seats.forEach((t, s) => {
                  if (t === undefined) return;
                  expect(seen.has(t)).toBe(false);
                  seen.set(t, [c.id, s]);
                });
                for (const g of ['10.0.0.1/32', '10.0.1.1/32', '10.0.2.1/32']) {
                  const n = countIn(c, g);
                  expect(n).toBeLessThanOrEqual(cap);
                  // never a majority of the cluster nor of any member's others (m ≥ 3)
                  if (size >= 3) expect(2 * n).toBeLessThan(size);
                  if (size >= 3) expect(2 * n).toBeLessThanOrEqual(size - 1);
                }
              }
              // seated and waiting tabs are the live tabs, once each
              for (const id of result.unseated) expect(seen.has(id)).toBe(false);
              expect(new Set(result.unseated).size).toBe(result.unseated.length);
              expect([...seen.keys(), ...result.unseated].sort()).toEqual(
                live.map((t) => t.id).sort(),
              );
              // a tab waits only when its group is at the cap in every cluster with a vacancy
              // (and there is one: with none, a new cluster would have been opened for it)
              const open = clusters.filter((c) => occupancy(c) < size);
              for (const id of result.unseated) {
                const group = groupOf.get(id);
                expect(group).toBeDefined();
                expect(open.length).toBeGreaterThan(0);
                for (const c of open) expect(countIn(c, group!)).toBe(cap);
              }
              // stayers keep cluster and slot when the size did not change, and a seated tab
              // is never unseated then (compaction only moves tabs that find seats)
              const survivingIds = new Set(clusters.map((c) => c.id));
              for (const [tab, [cid, slot]] of before) {
                const now = seen.get(tab);
                if (!sameSize || !groupOf.has(tab)) continue;
                expect(now).toBeDefined();
                if (survivingIds.has(cid)) expect(now).toEqual([cid, slot]);
              }
            }
          },
        ),
        { numRuns: 300 },
      );
    });

    it('seats one tab of a crowd per cluster of 4 and lets the rest wait', () => {
      const crowd = Array.from({ length: 6 }, (_, i) => ({
        id: `s${i}`,
        joinSeq: i,
        group: '198.51.100.7/32',
      }));
      const honest = Array.from({ length: 6 }, (_, i) => ({ id: `h${i}`, joinSeq: 6 + i }));
      const result = strategy.place({
        clusters: [],
        live: [...crowd, ...honest],
        clusterSize: 4,
        nextClusterId: 0,
      });
      // s0 opens cluster 0; s1..s5 wait behind its vacancies; the honest tabs fill cluster 0
      // and open cluster 1, where s1 then sits; s2 finds no vacancy left and opens cluster 2
      // (a cluster is opened only when none has a vacancy); s3..s5 wait behind cluster 2
      for (const c of result.clusters) {
        expect(c.seats.filter((t) => t?.startsWith('s')).length).toBeLessThanOrEqual(1);
      }
      expect(
        result.clusters.flatMap((c) => c.seats).filter((t) => t?.startsWith('h')),
      ).toHaveLength(6);
      expect(result.clusters.map(occupancy)).toEqual([4, 4, 1]);
      expect(result.unseated).toEqual(['s3', 's4', 's5']);
    });

    it('unseats the surplus of a group when the cluster size shrinks', () => {
      const live = [
        { id: 'a', joinSeq: 0, group: 'g' },
        { id: 'b', joinSeq: 1, group: 'g' },
        { id: 'c', joinSeq: 2 },
        { id: 'd', joinSeq: 3 },
        { id: 'e', joinSeq: 4 },
      ];
      // at size 5 the cap is 2: a and b share cluster 0
      const { clusters } = strategy.place({
        clusters: [{ id: 0, seats: ['a', 'b', 'c', 'd', 'e'] }],
        live,
        clusterSize: 5,
        nextClusterId: 1,
      });
      expect(clusters[0]!.seats).toEqual(['a', 'b', 'c', 'd', 'e']);
      // at size 3 the cap is 1: b leaves cluster 0 and sits with the bumped tabs
      const shrunk = strategy.place({ clusters, live, clusterSize: 3, nextClusterId: 1 });
      expect(shrunk.unseated).toEqual([]);
      expect(shrunk.clusters[0]!.seats).toEqual(['a', 'd', 'c']);
      const seatOfB = shrunk.clusters.find((c) => c.seats.includes('b'))!;
      expect(seatOfB.id).not.toBe(0);
    });

    it('fills clusters of the requested size from scratch', () => {
      const live = Array.from({ length: 10 }, (_, i) => ({ id: `t${i}`, joinSeq: i, rttMs: i }));
      const { clusters, nextClusterId } = strategy.place({
        clusters: [],
        live,
        clusterSize: 4,
        nextClusterId: 0,
      });
      expect(clusters.map(occupancy)).toEqual([4, 4, 2]);
      expect(nextClusterId).toBe(3);
    });

    it('compacts two half-empty clusters into one', () => {
      const live = [0, 1, 2].map((i) => ({ id: `t${i}`, joinSeq: i }));
      const { clusters } = strategy.place({
        clusters: [
          { id: 0, seats: ['t0', undefined, undefined, undefined] },
          { id: 1, seats: ['t1', 't2', undefined, undefined] },
        ],
        live,
        clusterSize: 4,
        nextClusterId: 2,
      });
      expect(clusters.length).toBe(1);
      expect(clusters[0]!.seats.slice(0, 2)).toEqual(['t1', 't2']);
    });
  },
);

describe('rtt placement', () => {
  it('groups tabs with similar round-trip times', () => {
    const rtts = [5, 200, 6, 210, 7, 190, 8, 205];
    const live = rtts.map((rttMs, i) => ({ id: `t${i}`, joinSeq: i, rttMs }));
    const strategy = placementStrategies.find((s) => s.name === 'rtt')!;
    const { clusters } = strategy.place({ clusters: [], live, clusterSize: 4, nextClusterId: 0 });
    const groups = clusters.map((c) => c.seats.map((id) => rtts[Number(id!.slice(1))]!));
    expect(Math.max(...groups[0]!)).toBeLessThan(10);
    expect(Math.min(...groups[1]!)).toBeGreaterThan(150);
  });
});

describe.each(placementStrategies.map((s) => [s.name, s] as const))(
  'placement %s, tabs that cannot reach each other',
  (_name, strategy) => {
    const tab = (id: string, joinSeq: number): PlacementTab => ({ id, joinSeq });
    const seatsOf = (clusters: ClusterSeats[]) => clusters.map((c) => c.seats);

    it('moves the later joiner of a pair to a vacancy of another cluster', () => {
      const result = strategy.place({
        clusters: [
          { id: 0, seats: ['a', 'b'] },
          { id: 1, seats: ['c', undefined] },
        ],
        live: [tab('a', 0), tab('b', 1), tab('c', 2)],
        clusterSize: 2,
        nextClusterId: 2,
        apart: [['b', 'a']],
      });
      expect(seatsOf(result.clusters)).toEqual([
        ['a', undefined],
        ['c', 'b'],
      ]);
    });

    it('swaps it with a member of a full cluster, beside nobody it cannot reach', () => {
      const input = {
        clusters: [
          { id: 0, seats: ['a', 'b'] },
          { id: 1, seats: ['c', 'd'] },
        ],
        live: [tab('a', 0), tab('b', 1), tab('c', 2), tab('d', 3)],
        clusterSize: 2,
        nextClusterId: 2,
      };
      expect(seatsOf(strategy.place({ ...input, apart: [['a', 'b']] }).clusters)).toEqual([
        ['a', 'c'],
        ['b', 'd'],
      ]);
      // c cannot reach a either: d takes b's place
      expect(
        seatsOf(
          strategy.place({
            ...input,
            apart: [
              ['a', 'b'],
              ['a', 'c'],
            ],
          }).clusters,
        ),
      ).toEqual([
        ['a', 'd'],
        ['c', 'b'],
      ]);
    });

    it('leaves a pair together when no move parts it, and opens no cluster for it', () => {
      const one = strategy.place({
        clusters: [{ id: 0, seats: ['a', 'b', 'c', 'd'] }],
        live: [tab('a', 0), tab('b', 1), tab('c', 2), tab('d', 3)],
        clusterSize: 4,
        nextClusterId: 1,
        apart: [['a', 'b']],
      });
      expect(seatsOf(one.clusters)).toEqual([['a', 'b', 'c', 'd']]);
      // nobody reaches anybody: nothing moves
      const ids = ['a', 'b', 'c', 'd'];
      const all = ids.flatMap((x) => ids.filter((y) => x < y).map((y) => [x, y] as const));
      const none = strategy.place({
        clusters: [
          { id: 0, seats: ['a', 'b'] },
          { id: 1, seats: ['c', 'd'] },
        ],
        live: ids.map((id, i) => tab(id, i)),
        clusterSize: 2,
        nextClusterId: 2,
        apart: all,
      });
      expect(seatsOf(none.clusters)).toEqual([
        ['a', 'b'],
        ['c', 'd'],
      ]);
    });

    it('seats a newcomer away from a tab it cannot reach', () => {
      const result = strategy.place({
        clusters: [
          { id: 0, seats: ['a', undefined] },
          { id: 1, seats: ['b', undefined] },
        ],
        live: [tab('a', 0), tab('b', 1), tab('n', 2)],
        clusterSize: 2,
        nextClusterId: 2,
        apart: [['n', 'a']],
      });
      expect(seatsOf(result.clusters)).toEqual([
        ['a', undefined],
        ['b', 'n'],
      ]);
    });

    it('keeps every guarantee, parts pairs only by moves that join none, and is its own fixpoint', () => {
      fc.assert(
        fc.property(
          fc.integer({ min: 1, max: 14 }),
          fc.constantFrom(2, 3, 4),
          fc.array(fc.tuple(fc.nat({ max: 13 }), fc.nat({ max: 13 })), { maxLength: 20 }),
          fc.array(fc.tuple(fc.nat({ max: 13 }), fc.nat({ max: 3 })), { maxLength: 14 }),
          (count, size, pairs, groups) => {
            const group = new Map(groups.map(([i, g]) => [`t${i}`, `g${g}`]));
            const live: PlacementTab[] = Array.from({ length: count }, (_x, i) => ({
              id: `t${i}`,
              joinSeq: i,
              ...(group.has(`t${i}`) ? { group: group.get(`t${i}`)! } : {}),
            }));
            const apart = pairs.map(([x, y]) => [`t${x}`, `t${y}`] as const);
            // first without the pairs (where tabs sit when their links fail), then with them
            const formed = strategy.place({
              clusters: [],
              live,
              clusterSize: size,
              nextClusterId: 0,
            });
            const input = { live, clusterSize: size, apart };
            const parted = strategy.place({
              ...input,
              clusters: formed.clusters,
              nextClusterId: formed.nextClusterId,
            });
            const together = (clusters: ClusterSeats[]) => {
              let n = 0;
              for (const c of clusters) {
                for (const [x, y] of apart) {
                  if (x !== y && c.seats.includes(x) && c.seats.includes(y)) n++;
                }
              }
              return n;
            };
            expect(together(parted.clusters)).toBeLessThanOrEqual(together(formed.clusters));
            // no cluster opened to part a pair: a new one was opened for a tab that waited
            // before (parting filled the last vacancy; a waiting tab gets a cluster as always)
            const formedIds = new Set(formed.clusters.map((c) => c.id));
            for (const c of parted.clusters.filter((x) => !formedIds.has(x.id))) {
              expect(c.seats.some((id) => id !== undefined && formed.unseated.includes(id))).toBe(
                true,
              );
            }
            // parting can free a seat a waiting tab's group may take, never take one
            for (const id of parted.unseated) expect(formed.unseated).toContain(id);
            const cap = groupSeatCap(size);
            for (const c of parted.clusters) {
              expect(c.seats.length).toBe(size);
              const held = new Map<string, number>();
              for (const id of c.seats) {
                const g = id === undefined ? undefined : group.get(id);
                if (g !== undefined) held.set(g, (held.get(g) ?? 0) + 1);
              }
              for (const n of held.values()) expect(n).toBeLessThanOrEqual(cap);
            }
            const again = strategy.place({
              ...input,
              clusters: parted.clusters,
              nextClusterId: parted.nextClusterId,
            });
            expect(again.clusters).toEqual(parted.clusters);
          },
        ),
        { numRuns: 300 },
      );
    });
  },
);
