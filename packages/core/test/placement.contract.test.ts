import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  occupancy,
  placementStrategies,
  type ClusterSeats,
  type PlacementTab,
} from '../src/placement/index.ts';

type Step = { join: number; leave: number[]; size: number };

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
