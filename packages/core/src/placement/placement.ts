/**
 * Placement: which tab sits in which cluster, at which slot.
 *
 * Guarantees, for every strategy: a tab is in at most one cluster; clusters hold at most
 * `clusterSize` tabs; a tab that stays keeps its cluster and slot (so its WebRTC mesh and
 * gradient-coding partitions survive a rebalance) — except to part two tabs that cannot reach
 * each other (below); clusters with no live tab are retired;
 * no address group holds more than `groupSeatCap(clusterSize)` seats of one cluster (so the
 * tabs of one client never make a majority of a cluster: they can neither confirm its
 * proposals nor quarantine its honest members alone); every live tab is placed except a tab
 * whose group already holds the cap in every cluster with a vacancy — it waits, unseated,
 * and is listed in `unseated`. A new cluster is opened only when no cluster has a vacancy,
 * so one group cannot open clusters of its own at will either. Strategies differ only in the
 * order newcomers are seated and which allowed cluster each joins.
 *
 * Tabs that cannot reach each other (`apart`: pairs whose direct link failed, issue 14 item 3)
 * are kept in different clusters when the seats allow it: a newcomer prefers a cluster without
 * a tab it cannot reach, and two such tabs seated together are parted — the later joiner moves
 * to a vacancy of another cluster, or swaps with a member of another cluster — only when the
 * move seats nobody beside a tab they cannot reach and keeps every group under its cap. Each
 * move parts a pair and joins none, so placement ends, and placing its own result again with
 * the same input changes nothing (every pair left together was tried after the last move). A
 * pair no move can part stays together (its frames go through the coordinator's relay). No
 * cluster is opened to part a pair (only, as always, for a tab that waits while no cluster has
 * a vacancy — parting can fill the last one).
 * Runs between iterations (DESIGN.md step 1). Pure: no clock, no I/O.
 *
 * Parameters: clusterSize m; each tab's `group` (an opaque key; the coordinator derives it
 * from the tab's network address). Paper: none; the bound is the majority rule of seed 000
 * applied inside a cluster (quarantine needs a majority of the other members).
 */

export interface PlacementTab {
  id: string;
  /** Monotonic join sequence number. */
  joinSeq: number;
  /** Measured round-trip time to the coordinator, when known. */
  rttMs?: number;
  /**
   * Address group (e.g. the tab's /32 or /64 network): tabs sharing a group are capped per
   * cluster by `groupSeatCap`. Absent: the tab is a group of its own.
   */
  group?: string;
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
  /** Pairs of tab ids that cannot reach each other (order within a pair does not matter). */
  apart?: readonly (readonly [string, string])[];
}

export interface PlacementResult {
  clusters: ClusterSeats[];
  nextClusterId: number;
  /**
   * Live tabs left without a seat because their address group holds the cap in every
   * cluster with a vacancy (in seating order). Every other live tab is seated.
   */
  unseated: string[];
}

/**
 * Most seats one address group may hold in a cluster of size m: ⌈m/2⌉ − 1, i.e. strictly
 * fewer than half, so the group is never a majority of the cluster nor of the other members
 * of any one of them (quarantine asks for a majority of the others). For m ≤ 2 that is 0,
 * which would seat nobody: one seat instead (a cluster of 2 then has at most one tab per
 * group — a tie, not a majority; a cluster of 1 is its own majority whatever placement does).
 */
export function groupSeatCap(clusterSize: number): number {
  return Math.max(1, Math.ceil(clusterSize / 2) - 1);
}

export type PlacementName = 'join-order' | 'rtt';

export interface PlacementStrategy {
  readonly name: PlacementName;
  place(input: PlacementInput): PlacementResult;
}

/**
 * The steps every strategy shares. `orderNewcomers` decides the seating order of unplaced
 * tabs and `chooseCluster` which cluster a newcomer joins among those with a vacancy its
 * address group may take.
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
  const cap = groupSeatCap(size);
  const liveById = new Map(input.live.map((tab) => [tab.id, tab]));
  const groupOf = (id: string): string | undefined => liveById.get(id)?.group;
  const seated = new Set<string>();
  const clusters: ClusterSeats[] = [];
  const bumped: PlacementTab[] = [];
  const grouped = input.live.some((tab) => tab.group !== undefined);

  for (const cluster of [...input.clusters].sort((a, b) => a.id - b.id)) {
    const seats: (string | undefined)[] = [];
    const held = new Map<string, number>();
    cluster.seats.forEach((tabId, slot) => {
      const tab = tabId === undefined ? undefined : liveById.get(tabId);
      if (tab === undefined || seated.has(tab.id)) {
        if (slot < size) seats[slot] = undefined;
        return;
      }
      // past the (new) size, or past its group's cap (the size shrank): seated again below
      const heldByGroup = tab.group === undefined ? 0 : (held.get(tab.group) ?? 0);
      if (slot >= size || heldByGroup >= cap) {
        if (slot < size) seats[slot] = undefined;
        bumped.push(tab);
        return;
      }
      if (tab.group !== undefined) held.set(tab.group, heldByGroup + 1);
      seats[slot] = tab.id;
      seated.add(tab.id);
    });
    while (seats.length < size) seats.push(undefined);
    if (seats.some((s) => s !== undefined)) clusters.push({ id: cluster.id, seats });
  }

  const newcomers = orderNewcomers([
    ...bumped,
    ...input.live.filter((tab) => !seated.has(tab.id) && !bumped.includes(tab)),
  ]);
  const rttOf = (id: string): number | undefined => liveById.get(id)?.rttMs;
  const partners = partnerMap(input.apart ?? [], liveById);
  const seating: Seating = { size, cap, groupOf, chooseCluster, rttOf, partners };

  // Compact: dissolve the emptiest clusters while their members fit in others' vacancies,
  // so churn does not leave many half-empty clusters (each needs its own majority vote).
  // With address groups, "fit" means: seating them (and the newcomers) there keeps every
  // group under its cap, tried on a copy first so that compaction never unseats a tab.
  const needed = Math.ceil((seated.size + newcomers.length) / size);
  clusters.sort((a, b) => a.id - b.id);
  while (clusters.length > Math.max(needed, 1)) {
    const smallest = [...clusters].sort((a, b) => occupancy(a) - occupancy(b) || b.id - a.id)[0]!;
    const others = clusters.filter((c) => c !== smallest);
    const vacancies = others.reduce((n, c) => n + (size - occupancy(c)), 0);
    if (occupancy(smallest) + newcomers.length > vacancies) break;
    const moved = smallest.seats.flatMap((id) => (id === undefined ? [] : [liveById.get(id)!]));
    const queue = [...moved, ...newcomers];
    if (grouped && queue.some((tab) => tab.group !== undefined)) {
      // dissolve only when every moved tab finds a seat and no more newcomers wait than
      // would without dissolving
      const copy = (list: ClusterSeats[]) => list.map((c) => ({ id: c.id, seats: [...c.seats] }));
      const closed = { next: Number.NaN, open: false };
      const merged = seatAll(seating, copy(others), queue, closed).waiting;
      const kept = seatAll(seating, copy(clusters), newcomers, closed).waiting;
      if (merged.some((tab) => moved.includes(tab)) || merged.length > kept.length) break;
    }
    clusters.splice(clusters.indexOf(smallest), 1);
    newcomers.unshift(...moved);
  }

  const counter = { next: input.nextClusterId, open: true };
  let { waiting } = seatAll(seating, clusters, newcomers, counter);
  clusters.sort((a, b) => a.id - b.id);
  if (partners.size > 0) {
    // parting moves vacancies between clusters, or fills the last one: a tab waiting under its
    // group's cap may fit now, or get a new cluster by the usual rule (no vacancy left anywhere)
    for (;;) {
      part(seating, clusters, liveById);
      const before = waiting.length;
      if (before === 0) break;
      waiting = seatAll(seating, clusters, waiting, counter).waiting;
      clusters.sort((a, b) => a.id - b.id);
      if (waiting.length === before) break;
    }
  }
  return { clusters, nextClusterId: counter.next, unseated: waiting.map((tab) => tab.id) };
}

interface Seating {
  /** Per tab, the live tabs it cannot reach. */
  partners: ReadonlyMap<string, ReadonlySet<string>>;
  size: number;
  cap: number;
  groupOf: (id: string) => string | undefined;
  chooseCluster: Parameters<typeof placeWith>[2];
  rttOf: (id: string) => number | undefined;
}

/**
 * Seats `queue` in order into `clusters` (modified in place): each tab in a cluster with a
 * vacancy its group may take (the strategy chooses which); in a new cluster when no cluster
 * has any vacancy and `counter.open`; else it waits. Tabs that waited are tried again after
 * the others, until a pass seats nobody (later tabs may have opened a cluster or filled the
 * last vacancy).
 */
function seatAll(
  seating: Seating,
  clusters: ClusterSeats[],
  queue: readonly PlacementTab[],
  counter: { next: number; open: boolean },
): { waiting: PlacementTab[] } {
  const { size, cap, groupOf } = seating;
  const groupCount = (cluster: ClusterSeats, group: string): number => {
    let n = 0;
    for (const id of cluster.seats) if (id !== undefined && groupOf(id) === group) n++;
    return n;
  };
  let pending = [...queue];
  for (;;) {
    const waiting: PlacementTab[] = [];
    for (const tab of pending) {
      const open = clusters.filter((c) => occupancy(c) < size);
      const group = tab.group;
      const allowed = group === undefined ? open : open.filter((c) => groupCount(c, group) < cap);
      // a cluster without a tab this one cannot reach, when there is one
      const reachable = allowed.filter((c) => !hasPartner(seating, c, tab.id));
      const candidates = reachable.length > 0 ? reachable : allowed;
      let target: ClusterSeats;
      if (candidates.length > 0) {
        target = seating.chooseCluster(tab, candidates, seating.rttOf);
      } else if (open.length === 0 && counter.open) {
        target = { id: counter.next++, seats: new Array<string | undefined>(size).fill(undefined) };
        clusters.push(target);
      } else {
        waiting.push(tab);
        continue;
      }
      const slot = target.seats.indexOf(undefined);
      target.seats[slot] = tab.id;
    }
    if (waiting.length === 0 || waiting.length === pending.length) return { waiting };
    pending = waiting;
  }
}

export function occupancy(cluster: ClusterSeats): number {
  let n = 0;
  for (const seat of cluster.seats) if (seat !== undefined) n++;
  return n;
}

/** `apart` as a symmetric map over live tabs (pairs with a tab that is gone are dropped). */
function partnerMap(
  apart: readonly (readonly [string, string])[],
  live: ReadonlyMap<string, PlacementTab>,
): Map<string, Set<string>> {
  const partners = new Map<string, Set<string>>();
  const add = (a: string, b: string) => {
    let set = partners.get(a);
    if (!set) partners.set(a, (set = new Set()));
    set.add(b);
  };
  for (const [a, b] of apart) {
    if (a === b || !live.has(a) || !live.has(b)) continue;
    add(a, b);
    add(b, a);
  }
  return partners;
}

/** Whether a seat of `cluster` other than `except` holds a tab `tabId` cannot reach. */
function hasPartner(seating: Seating, cluster: ClusterSeats, tabId: string, except?: string) {
  const partners = seating.partners.get(tabId);
  if (!partners) return false;
  return cluster.seats.some((id) => id !== undefined && id !== except && partners.has(id));
}

/**
 * Parts the pairs of tabs that cannot reach each other and sit in one cluster (`clusters` is
 * modified in place), first pair first (cluster id, then slots): the pair's later joiner moves
 * to another cluster's vacancy, else swaps with a member of another cluster, when that puts
 * neither tab beside one it cannot reach and keeps both clusters' groups under the cap. Every
 * move lowers the number of such pairs seated together, so the loop ends.
 */
function part(
  seating: Seating,
  clusters: ClusterSeats[],
  liveById: ReadonlyMap<string, PlacementTab>,
): void {
  const { size, cap, groupOf } = seating;
  const unpartable = new Set<string>();
  const fitsGroup = (cluster: ClusterSeats, incoming: string, leaving?: string): boolean => {
    const group = groupOf(incoming);
    if (group === undefined || (leaving !== undefined && groupOf(leaving) === group)) return true;
    let held = 0;
    for (const id of cluster.seats)
      if (id !== undefined && id !== leaving && groupOf(id) === group) held++;
    return held < cap;
  };
  for (;;) {
    const found = firstTogether(seating, clusters, liveById, unpartable);
    if (found === undefined) return;
    const { home, mover, key } = found;
    const moverSlot = home.seats.indexOf(mover);
    let moved = false;
    for (const other of clusters) {
      if (other === home || occupancy(other) >= size) continue;
      if (hasPartner(seating, other, mover) || !fitsGroup(other, mover)) continue;
      home.seats[moverSlot] = undefined;
      other.seats[other.seats.indexOf(undefined)] = mover;
      moved = true;
      break;
    }
    for (const other of moved ? [] : clusters) {
      if (other === home) continue;
      const slot = other.seats.findIndex(
        (x) =>
          x !== undefined &&
          !hasPartner(seating, home, x, mover) &&
          !hasPartner(seating, other, mover, x) &&
          fitsGroup(home, x, mover) &&
          fitsGroup(other, mover, x),
      );
      if (slot < 0) continue;
      home.seats[moverSlot] = other.seats[slot];
      other.seats[slot] = mover;
      moved = true;
      break;
    }
    // a move changes what other pairs could do: each is tried again
    if (moved) unpartable.clear();
    else unpartable.add(key);
  }
}

/** The first pair seated together that cannot reach each other and was not found unpartable. */
function firstTogether(
  seating: Seating,
  clusters: readonly ClusterSeats[],
  liveById: ReadonlyMap<string, PlacementTab>,
  unpartable: ReadonlySet<string>,
): { home: ClusterSeats; mover: string; key: string } | undefined {
  for (const home of clusters) {
    for (const a of home.seats) {
      const partners = a === undefined ? undefined : seating.partners.get(a);
      if (a === undefined || !partners) continue;
      for (const b of home.seats) {
        if (b === undefined || a >= b || !partners.has(b)) continue;
        const key = `${a}|${b}`;
        if (unpartable.has(key)) continue;
        const later = liveById.get(a)!.joinSeq > liveById.get(b)!.joinSeq ? a : b;
        return { home, mover: later, key };
      }
    }
  }
  return undefined;
}
