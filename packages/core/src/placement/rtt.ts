/**
 * Round-trip-time placement: newcomers are seated fastest first, each in the vacant cluster
 * whose members' mean RTT is closest to its own, so a cluster's wait-free reads are not held
 * back by one far-away tab. Tabs with no measurement sort last, by join order.
 */
import { placeWith, type PlacementStrategy } from './placement.ts';

export const rttPlacement: PlacementStrategy = {
  name: 'rtt',
  place: (input) =>
    placeWith(
      input,
      (tabs) =>
        [...tabs].sort(
          (a, b) =>
            (a.rttMs ?? Number.POSITIVE_INFINITY) - (b.rttMs ?? Number.POSITIVE_INFINITY) ||
            a.joinSeq - b.joinSeq,
        ),
      (tab, candidates, rttOf) => {
        const own = tab.rttMs ?? Number.POSITIVE_INFINITY;
        let best = candidates[0]!;
        let bestGap = Number.POSITIVE_INFINITY;
        for (const cluster of candidates) {
          const rtts = cluster.seats
            .map((id) => (id === undefined ? undefined : rttOf(id)))
            .filter((r): r is number => r !== undefined);
          const mean = rtts.length > 0 ? rtts.reduce((s, r) => s + r, 0) / rtts.length : own;
          const gap = Number.isFinite(own) ? Math.abs(mean - own) : 0;
          if (gap < bestGap) {
            bestGap = gap;
            best = cluster;
          }
        }
        return best;
      },
    ),
};
