/**
 * Placement: which tab sits in which cluster, at which slot.
 *
 * Guarantees, for every strategy: a tab is in at most one cluster; clusters hold at most
 * `clusterSize` tabs; a tab that stays keeps its cluster and slot (so its WebRTC mesh and
 * gradient-coding partitions survive a rebalance); clusters with no live tab are retired;
 * every live tab is placed. Strategies differ only in the order newcomers are seated.
 * Runs between iterations (DESIGN.md step 1). Pure: no clock, no I/O.
 */

export interface PlacementTab {
  id: string;
  /** Monotonic join sequence number. */
  joinSeq: number;
  /** Measured round-trip time to the coordinator, when known. */
  rttMs?: number;
}

export interface ClusterSeats {
  id: number;
  /** Seat index = gradient-coding slot; undefined = vacant. */
  seats: (string | undefined)[];
}

export interface PlacementInput {
  clusters: readonly ClusterSeats[];
  live: readonly PlacementTab[];
  clusterSize: number;
  nextClusterId: number;
}

export interface PlacementResult {
  clusters: ClusterSeats[];
  nextClusterId: number;
}

export type PlacementName = 'join-order' | 'rtt';

export interface PlacementStrategy {
  readonly name: PlacementName;
  place(input: PlacementInput): PlacementResult;
}

/**
 * The steps every strategy shares. `orderNewcomers` decides the seating order of unplaced
 * tabs and `chooseCluster` which vacant cluster a newcomer joins.
 */
export function placeWith(
  input: PlacementInput,
  orderNewcomers: (tabs: PlacementTab[]) => PlacementTab[],
  chooseCluster: (
    tab: PlacementTab,
    candidates: ClusterSeats[],
    rttOf: (id: string) => number | undefined,
  ) => ClusterSeats,
): PlacementResult {
  const size = input.clusterSize;
  if (!Number.isInteger(size) || size < 1) throw new RangeError(`cluster size ${size}`);
  const liveById = new Map(input.live.map((tab) => [tab.id, tab]));
  const seated = new Set<string>();
  const clusters: ClusterSeats[] = [];
  const bumped: PlacementTab[] = [];

  for (const cluster of [...input.clusters].sort((a, b) => a.id - b.id)) {
    const seats: (string | undefined)[] = [];
    cluster.seats.forEach((tabId, slot) => {
      const tab = tabId === undefined ? undefined : liveById.get(tabId);
      if (tab === undefined || seated.has(tab.id)) {
        if (slot < size) seats[slot] = undefined;
        return;
      }
      if (slot >= size) {
        bumped.push(tab);
        return;
      }
      seats[slot] = tab.id;
      seated.add(tab.id);
    });
    while (seats.length < size) seats.push(undefined);
    if (seats.some((s) => s !== undefined)) clusters.push({ id: cluster.id, seats });
  }

  let nextClusterId = input.nextClusterId;
  const newcomers = orderNewcomers([
    ...bumped,
    ...input.live.filter((tab) => !seated.has(tab.id) && !bumped.includes(tab)),
  ]);
  const rttOf = (id: string): number | undefined => liveById.get(id)?.rttMs;

  // Compact: dissolve the emptiest clusters while their members fit in others' vacancies,
  // so churn does not leave many half-empty clusters (each needs its own majority vote).
  const needed = Math.ceil((seated.size + newcomers.length) / size);
  clusters.sort((a, b) => a.id - b.id);
  while (clusters.length > Math.max(needed, 1)) {
    const smallest = [...clusters].sort((a, b) => occupancy(a) - occupancy(b) || b.id - a.id)[0]!;
    const vacancies = clusters
      .filter((c) => c !== smallest)
      .reduce((n, c) => n + (size - occupancy(c)), 0);
    if (occupancy(smallest) + newcomers.length > vacancies) break;
    clusters.splice(clusters.indexOf(smallest), 1);
    for (const tabId of smallest.seats) {
      if (tabId !== undefined) newcomers.unshift(liveById.get(tabId)!);
    }
  }

  for (const tab of newcomers) {
    const candidates = clusters.filter((c) => occupancy(c) < size);
    let target: ClusterSeats;
    if (candidates.length > 0) {
      target = chooseCluster(tab, candidates, rttOf);
    } else {
      target = { id: nextClusterId++, seats: new Array<string | undefined>(size).fill(undefined) };
      clusters.push(target);
    }
    const slot = target.seats.indexOf(undefined);
    target.seats[slot] = tab.id;
  }
  clusters.sort((a, b) => a.id - b.id);
  return { clusters, nextClusterId };
}

export function occupancy(cluster: ClusterSeats): number {
  let n = 0;
  for (const seat of cluster.seats) if (seat !== undefined) n++;
  return n;
}
