/**
 * The seat registry: the coordinator's view of the tabs and clusters — who is connected, who
 * sits where, which clusters still have a live tab, what each tab is told about its place (its
 * slot, peers, proposer role and the partitions dealt to it), and the cluster-majority rule that
 * quarantines a tab on its peers' reports. Placement itself is a strategy (placement/); this
 * keeps the bookkeeping around it. Pure: no sockets, no timers; the time of a rebalance is
 * passed in.
 */
import type { Backend, FaultMode, JobSpec, Placement, TabReport } from '@swarmgrad/protocol';
import { createGradientCode, type GradientCode } from '../gradient-coding.ts';
import { getPlacement, groupSeatCap, type ClusterSeats } from '../placement/index.ts';

export interface TabRecord {
  id: string;
  resumeToken: string;
  joinSeq: number;
  kind: 'browser' | 'node';
  backend: Backend;
  fallbackAdapter: boolean | undefined;
  fault: FaultMode | undefined;
  /** Change through TabRegistry.setConnected (it keeps liveClusters() in step). */
  connected: boolean;
  rttMs: number | undefined;
  report: TabReport | undefined;
  joinedAt: number;
  lastSeenAt: number;
  quarantined: boolean;
  /** Socket id while connected. */
  socketId: string | undefined;
  /** The coordinator node holding its connection (multi-node mode; absent with one process). */
  node?: string | undefined;
  /** Multi-node: the peers it last reported quarantined (shared, unlike `report`). */
  suspects?: string[] | undefined;
  /** Its proposal was refuted by its cluster: it is not made proposer again (while others can be). */
  demoted?: boolean | undefined;
  /** Iterations at which its proposals were refuted. */
  refutedAt?: number[] | undefined;
  /** Iterations at which it proposed without being its cluster's proposer. */
  racedAt?: number[] | undefined;
  /**
   * Its network address group (addresses.ts); placement caps each group's seats per cluster.
   * Undefined: an exempt address, a group of its own.
   */
  addressGroup?: string | undefined;
}

/** What a node replicates of the registry (reports stay with the node that received them). */
export interface RegistryState {
  tabs: Omit<TabRecord, 'report'>[];
  clusters: { id: number; seats: (string | null)[] }[];
  nextClusterId: number;
  joinSeq: number;
  /**
   * Per cluster, how often the proposer role moved on after an unconfirmed proposal, and the
   * cluster's seats then (tab ids joined by commas; absent in older snapshots).
   */
  rotations?: [number, number, string?][];
  /** Pairs of tabs whose direct link does not connect (placement keeps them apart). */
  apart?: [string, string][];
}

export interface Seat {
  readonly clusterId: number;
  readonly slot: number;
}

/**
 * The registry's tabs by id, with an index by resume token: a resuming hello finds its tab in
 * O(1) instead of scanning every tab (a reconnect storm of n tabs cost n² comparisons). A
 * record's token never changes after it is set; the index follows every set, delete and clear.
 * The token is the key itself: 144 random bits (apps/coordinator gateway.ts), so a lookup's
 * timing tells an attacker nothing a guess would not.
 */
export class TabTable extends Map<string, TabRecord> {
  private readonly idByToken = new Map<string, string>();

  override set(id: string, tab: TabRecord): this {
    const previous = super.get(id);
    if (previous !== undefined && this.idByToken.get(previous.resumeToken) === id)
      this.idByToken.delete(previous.resumeToken);
    this.idByToken.set(tab.resumeToken, id);
    return super.set(id, tab);
  }

  override delete(id: string): boolean {
    const tab = super.get(id);
    if (tab !== undefined && this.idByToken.get(tab.resumeToken) === id)
      this.idByToken.delete(tab.resumeToken);
    return super.delete(id);
  }

  override clear(): void {
    this.idByToken.clear();
    super.clear();
  }

  /** The tab a resume token names, if the registry holds it. */
  withResumeToken(token: string): TabRecord | undefined {
    const id = this.idByToken.get(token);
    const tab = id === undefined ? undefined : super.get(id);
    return tab?.resumeToken === token ? tab : undefined;
  }
}

export class TabRegistry {
  readonly tabs = new TabTable();
  private clusterSeats: ClusterSeats[] = [];
  private nextClusterId = 0;
  private joinSeq = 0;
  /**
   * Indexes over clusterSeats, so that a proposal, a signal or a placement costs O(1) and not a
   * scan of every cluster (at 10,000 tabs those scans dominated): seat by tab, position by
   * cluster id. Rebuilt by reindex() whenever clusterSeats is replaced; seatInVacancy keeps
   * them in step with the one seat it changes.
   */
  private seatByTab = new Map<string, Seat>();
  private rankById = new Map<number, number>();
  /** Gradient codes by their parameters: pure, and costly to build (a matrix search). */
  private readonly codes = new Map<string, GradientCode>();
  /** liveClusters(), until a seat or a seated tab's connection changes (asked per proposal). */
  private live: ReadonlySet<number> | undefined;
  /**
   * Per cluster id: how many times the proposer role moved on (rotateProposer), and the seats
   * the count was taken over (seatKey).
   */
  private readonly rotations = new Map<number, { count: number; seats: string | undefined }>();
  /** Pairs of tabs whose direct link does not connect, as `a|b` with a < b (setApart). */
  private readonly apart = new Set<string>();
  /** Tabs the last placement left waiting under the address-group cap. */
  private waiting = new Set<string>();
  /** Of those, the ones that did not wait before it (takeNewlyWaiting). */
  private newlyWaiting: string[] = [];

  /**
   * The inputs of the last placement when it seated every tab where it already sat: the same
   * inputs again would change nothing.
   */
  private settledInputs: PlacementInputs | undefined;
  /** The cluster size of the placement in force (rebalance adopts the job's). */
  private formedSize: number;

  constructor(private job: JobSpec) {
    this.formedSize = job.cluster.size;
  }

  setJob(job: JobSpec): void {
    this.job = job;
    this.live = undefined;
  }

  /** The registry as plain data (multi-node snapshots, apps/coordinator/src/redis-state.ts). */
  exportState(): RegistryState {
    return {
      tabs: [...this.tabs.values()].map(({ report: _report, ...rest }) => ({ ...rest })),
      clusters: this.clusterSeats.map((c) => ({
        id: c.id,
        seats: c.seats.map((id) => id ?? null),
      })),
      nextClusterId: this.nextClusterId,
      joinSeq: this.joinSeq,
      apart: [...this.apart].map((key) => key.split('|') as [string, string]),
      rotations: [...this.rotations].map(([id, r]) =>
        r.seats === undefined ? [id, r.count] : [id, r.count, r.seats],
      ),
    };
  }

  /** Replaces the registry with an exported one. */
  importState(state: RegistryState): void {
    this.tabs.clear();
    for (const tab of state.tabs) this.tabs.set(tab.id, { ...tab, report: undefined });
    this.clusterSeats = state.clusters.map((c) => ({
      id: c.id,
      seats: c.seats.map((id) => id ?? undefined),
    }));
    this.nextClusterId = state.nextClusterId;
    this.joinSeq = state.joinSeq;
    this.rotations.clear();
    this.apart.clear();
    for (const [a, b] of state.apart ?? []) this.setApart(a, b, true);
    for (const [id, count, seats] of state.rotations ?? [])
      this.rotations.set(id, { count, seats });
    this.reindex();
  }

  nextJoinSeq(): number {
    return this.joinSeq++;
  }

  get clusters(): readonly ClusterSeats[] {
    return this.clusterSeats;
  }

  connected(): TabRecord[] {
    return [...this.tabs.values()].filter((t) => t.connected);
  }

  seatOf(tabId: string): Seat | undefined {
    return this.seatByTab.get(tabId);
  }

  private reindex(): void {
    this.live = undefined;
    this.seatByTab = new Map();
    this.rankById = new Map();
    this.clusterSeats.forEach((cluster, rank) => {
      this.rankById.set(cluster.id, rank);
      cluster.seats.forEach((id, slot) => {
        if (id !== undefined) this.seatByTab.set(id, { clusterId: cluster.id, slot });
      });
    });
    // codes of retired clusters
    if (this.codes.size > 2 * this.clusterSeats.length + 16) this.codes.clear();
  }

  private codeFor(seed: number): GradientCode {
    const { size, redundancy, scheme } = this.job.cluster;
    const key = `${size}:${redundancy}:${scheme}:${seed}`;
    let code = this.codes.get(key);
    if (code === undefined) {
      code = createGradientCode({ slots: size, redundancy, scheme, seed });
      this.codes.set(key, code);
    }
    return code;
  }

  /** Marks a tab connected or gone. */
  setConnected(tab: TabRecord, connected: boolean): void {
    if (tab.connected === connected) return;
    tab.connected = connected;
    this.live = undefined;
  }

  /**
   * Live tabs a cluster needs to vote: half its seats, rounded up (one for clusters of one or
   * two). A proposal must be confirmed by a majority of at least that many members, so a tab
   * left alone in a cluster of four cannot move the model by itself (issue 13).
   */
  minimumLive(): number {
    // of the size the clusters were formed with: an operator's new size applies at the next
    // placement (an iteration boundary), and raising it must not silence clusters before it
    return Math.max(1, Math.ceil(this.formedSize / 2));
  }

  /**
   * Clusters that can vote: at least minimumLive() connected, unquarantined tabs (do not
   * modify: it is cached).
   */
  liveClusters(): ReadonlySet<number> {
    if (this.live) return this.live;
    const live = new Set<number>();
    const needed = this.minimumLive();
    for (const cluster of this.clusterSeats) {
      let count = 0;
      for (const id of cluster.seats) {
        const tab = id === undefined ? undefined : this.tabs.get(id);
        if (tab?.connected === true && !tab.quarantined) count++;
      }
      if (count >= needed) live.add(cluster.id);
    }
    this.live = live;
    return live;
  }

  /** A tab's quarantine changed what counts as live. */
  invalidateLive(): void {
    this.live = undefined;
  }

  /**
   * Re-places every connected tab (between iterations). Returns the tabs whose placement changed:
   * their seat, or their cluster's proposer (a rotation started over).
   */
  rebalance(now: number, resumeGraceMs = 0): Set<string> {
    const before = this.seatByTab;
    const waitingBefore = this.waiting;
    // a tab that dropped out moments ago keeps its seat for resumeGraceMs: when it reconnects
    // with its resume token it gets its cluster, slot and links back (it does not count as
    // live for the quorum meanwhile)
    const holding: TabRecord[] = [];
    for (const t of this.tabs.values())
      if (t.connected || (this.seatOf(t.id) !== undefined && now - t.lastSeenAt < resumeGraceMs))
        holding.push(t);
    const placed = holding.filter((t) => !t.quarantined);
    const apart = this.apartPairs();
    // Placement is a pure function of these inputs. When they are the ones the last placement
    // got and it moved nobody, placing again would move nobody either: skip it (at 10,000 tabs
    // it was ~12 ms of every round close, docs/benchmarks.md; compared field by field, not as
    // one key string, which alone took ~10 ms of a close at 10,000 tabs).
    const inputs: PlacementInputs = {
      placement: this.job.cluster.placement,
      size: this.job.cluster.size,
      nextClusterId: this.nextClusterId,
      clusters: this.clusterSeats,
      placed,
      apart,
    };
    if (this.settledInputs !== undefined && samePlacementInputs(this.settledInputs, inputs)) {
      this.forgetDeparted();
      this.newlyWaiting = [];
      return new Set();
    }
    const live = placed.map((t) => ({
      id: t.id,
      joinSeq: t.joinSeq,
      ...(t.rttMs === undefined ? {} : { rttMs: t.rttMs }),
      ...(t.addressGroup === undefined ? {} : { group: t.addressGroup }),
    }));
    this.formedSize = this.job.cluster.size;
    this.live = undefined;
    const result = getPlacement(this.job.cluster.placement).place({
      clusters: this.clusterSeats,
      live,
      clusterSize: this.job.cluster.size,
      nextClusterId: this.nextClusterId,
      apart,
    });
    this.settledInputs =
      result.nextClusterId === this.nextClusterId && sameSeats(result.clusters, this.clusterSeats)
        ? snapshotPlacementInputs(inputs)
        : undefined;
    this.clusterSeats = result.clusters;
    this.nextClusterId = result.nextClusterId;
    this.waiting = new Set(result.unseated);
    this.reindex();
    // a rotation counts turns among the seats it was counted over: once they changed (here, or
    // a newcomer in a vacancy since), the count would point at an arbitrary member, so the role
    // starts over at the lowest trusted slot — which also hands a proposer whose proposal nobody
    // could judge (unconfirmed) the role again, now that other members may
    const restarted: number[] = [];
    for (const [id, rotation] of [...this.rotations]) {
      if (rotation.seats === this.seatKey(id)) continue;
      this.rotations.delete(id);
      restarted.push(id);
    }
    this.forgetDeparted();
    const changed = new Set<string>();
    for (const tab of this.connected()) {
      const seat = this.seatOf(tab.id);
      const old = before.get(tab.id);
      if (seat?.clusterId !== old?.clusterId || seat?.slot !== old?.slot) changed.add(tab.id);
    }
    // their proposer may have changed: every member learns it
    for (const id of restarted) for (const m of this.members(id)) changed.add(m.tabId);
    this.newlyWaiting = [...this.waiting].filter((id) => !waitingBefore.has(id));
    return changed;
  }

  /** Forgets tabs that left and hold no seat, and the apart pairs they were in. */
  private forgetDeparted(): void {
    // deleting the entry being visited is safe while iterating a Map
    for (const tab of this.tabs.values()) {
      if (!tab.connected && this.seatOf(tab.id) === undefined) this.tabs.delete(tab.id);
    }
    for (const [a, b] of this.apartPairs()) {
      if (!this.tabs.has(a) || !this.tabs.has(b)) this.setApart(a, b, false);
    }
  }

  /** Connected tabs the last placement left waiting under the address-group cap. */
  unseated(): TabRecord[] {
    return [...this.waiting].flatMap((id) => {
      const tab = this.tabs.get(id);
      return tab?.connected === true && this.seatOf(id) === undefined ? [tab] : [];
    });
  }

  /** Tabs the last rebalance newly left waiting under the address-group cap (once). */
  takeNewlyWaiting(): string[] {
    const ids = this.newlyWaiting;
    this.newlyWaiting = [];
    return ids;
  }

  /** Whether `tabId` waits under the address-group cap (it has no seat). */
  isWaiting(tabId: string): boolean {
    return this.waiting.has(tabId) && this.seatOf(tabId) === undefined;
  }

  /**
   * Seats a newcomer in a vacant seat now, mid-iteration, when there is one: clusters with
   * no live tab first (that is how a lost quorum comes back), then the lowest-numbered.
   * New clusters are only made between iterations, so the voting set stays fixed. Like
   * placement, it never gives an address group more than groupSeatCap seats of a cluster
   * (the seat it takes over from a gone tab does not count).
   */
  seatInVacancy(tabId: string): Seat | undefined {
    const live = this.liveClusters();
    const group = this.tabs.get(tabId)?.addressGroup;
    const cap = groupSeatCap(this.job.cluster.size);
    const freeSlot = (c: ClusterSeats): number => {
      const slot = c.seats.indexOf(undefined);
      return slot >= 0 ? slot : c.seats.findIndex((id) => this.tabs.get(id!)?.connected !== true);
    };
    const allowed = (c: ClusterSeats, slot: number): boolean => {
      if (group === undefined) return true;
      let held = 0;
      c.seats.forEach((id, s) => {
        if (s !== slot && id !== undefined && this.tabs.get(id)?.addressGroup === group) held++;
      });
      return held < cap;
    };
    const candidates = this.clusterSeats
      .filter((c) => {
        const slot = freeSlot(c);
        return slot >= 0 && allowed(c, slot);
      })
      .sort((a, b) => Number(live.has(a.id)) - Number(live.has(b.id)) || a.id - b.id);
    const target = candidates[0];
    if (target === undefined) return undefined;
    const slot = freeSlot(target);
    const previous = target.seats[slot];
    if (previous !== undefined && previous !== tabId) {
      this.tabs.delete(previous);
      this.seatByTab.delete(previous);
    }
    target.seats[slot] = tabId;
    this.live = undefined;
    const seat = { clusterId: target.id, slot };
    this.seatByTab.set(tabId, seat);
    this.waiting.delete(tabId);
    return seat;
  }

  /** Peers of a cluster (connected ones), and its proposer (lowest live slot). */
  members(clusterId: number): { tabId: string; slot: number; live: boolean }[] {
    const rank = this.rankById.get(clusterId);
    const cluster = rank === undefined ? undefined : this.clusterSeats[rank];
    if (!cluster) return [];
    return cluster.seats.flatMap((id, slot) =>
      id === undefined ? [] : [{ tabId: id, slot, live: this.tabs.get(id)?.connected === true }],
    );
  }

  /**
   * The tab that may propose for a cluster: among its live members that were never refuted
   * (all live ones when every one was), in slot order, the one the rotation count points at —
   * the lowest slot until an unconfirmed proposal moves the role on (rotateProposer), and
   * again from the lowest slot at the first placement after the cluster's seats changed.
   */
  proposerOf(clusterId: number): string | undefined {
    // asked per proposal and per cluster at every close: counted in place, nothing allocated
    const rank = this.rankById.get(clusterId);
    const seats = rank === undefined ? undefined : this.clusterSeats[rank]?.seats;
    if (!seats) return undefined;
    const liveTab = (id: string | undefined): TabRecord | undefined => {
      const tab = id === undefined ? undefined : this.tabs.get(id);
      return tab?.connected === true ? tab : undefined;
    };
    const isTrusted = (tab: TabRecord): boolean => tab.demoted !== true && tab.quarantined !== true;
    let live = 0;
    let trusted = 0;
    for (const id of seats) {
      const tab = liveTab(id);
      if (tab === undefined) continue;
      live++;
      if (isTrusted(tab)) trusted++;
    }
    if (live === 0) return undefined;
    const onlyTrusted = trusted > 0;
    let index = (this.rotations.get(clusterId)?.count ?? 0) % (onlyTrusted ? trusted : live);
    for (const id of seats) {
      const tab = liveTab(id);
      if (tab === undefined || (onlyTrusted && !isTrusted(tab))) continue;
      if (index === 0) return id;
      index--;
    }
    return undefined;
  }

  /**
   * Quarantine by the cluster's majority: the live members of `suspectId`'s cluster (itself
   * excluded) whose reports name it (`reportsOf`: the peers a member's robust filter
   * quarantined), when they are more than half of those members; undefined otherwise, and for a
   * tab not seated or already quarantined. A single tab (possibly the liar) cannot get a peer
   * banned.
   */
  majorityAgainst(
    suspectId: string,
    reportsOf: (member: TabRecord) => readonly string[] | undefined,
  ): { clusterId: number; reportedBy: string[] } | undefined {
    const suspect = this.tabs.get(suspectId);
    const seat = this.seatOf(suspectId);
    if (!suspect || suspect.quarantined || !seat) return undefined;
    const others = this.members(seat.clusterId).filter((m) => m.live && m.tabId !== suspectId);
    const reportedBy = others
      .filter((m) => {
        const member = this.tabs.get(m.tabId);
        return member !== undefined && reportsOf(member)?.includes(suspectId) === true;
      })
      .map((m) => m.tabId);
    if (2 * reportedBy.length <= others.length) return undefined;
    return { clusterId: seat.clusterId, reportedBy };
  }

  /**
   * Records that `a` and `b` cannot reach each other directly (`apart`), or can after all:
   * placement seats such tabs in different clusters when the seats allow (rebalance).
   */
  setApart(a: string, b: string, apart: boolean): void {
    if (a === b) return;
    const key = a < b ? `${a}|${b}` : `${b}|${a}`;
    if (apart) this.apart.add(key);
    else this.apart.delete(key);
  }

  isApart(a: string, b: string): boolean {
    return this.apart.has(a < b ? `${a}|${b}` : `${b}|${a}`);
  }

  apartPairs(): [string, string][] {
    return [...this.apart].map((key) => key.split('|') as [string, string]);
  }

  /** Moves a cluster's proposer role to its next candidate. */
  rotateProposer(clusterId: number): void {
    const count = (this.rotations.get(clusterId)?.count ?? 0) + 1;
    this.rotations.set(clusterId, { count, seats: this.seatKey(clusterId) });
  }

  /** A cluster's seats as one string (tab ids, empty for a vacancy), undefined when it is gone. */
  private seatKey(clusterId: number): string | undefined {
    const rank = this.rankById.get(clusterId);
    return rank === undefined ? undefined : this.clusterSeats[rank]?.seats.join(',');
  }

  placementOf(tabId: string): Placement | undefined {
    const seat = this.seatOf(tabId);
    if (!seat) return undefined;
    const { size, redundancy, scheme } = this.job.cluster;
    const members = this.members(seat.clusterId);
    const rank = this.rankById.get(seat.clusterId) ?? -1;
    const k = this.clusterSeats.length;
    const code = this.codeFor(seat.clusterId + 1);
    const coefficients = code.coefficients(seat.slot);
    const partitions = code.partitionsOf(seat.slot).map((local) => ({
      local,
      global: globalPartitions(rank, local, k, size, this.job.partitions),
      coefficient: coefficients[local]!,
    }));
    return {
      clusterId: seat.clusterId,
      slot: seat.slot,
      peers: members
        .filter((m) => m.live && m.tabId !== tabId)
        .map(({ tabId: id, slot }) => ({ tabId: id, slot })),
      linked: members
        .filter((m) => m.tabId !== tabId)
        .map(({ tabId: id, slot }) => ({ tabId: id, slot })),
      partitions,
      clusterSize: size,
      redundancy,
      scheme,
      codeSeed: seat.clusterId + 1,
      aggregator: { name: this.job.aggregator.name, f: this.job.aggregator.f },
      proposer: this.proposerOf(seat.clusterId) === tabId,
      clusterCount: k,
    };
  }
}

/**
 * Global data partitions behind local partition `local` of the cluster ranked `rank` of k:
 * the P global partitions are dealt round-robin over the k·m local partitions, so every
 * global partition is used when k·m ≤ P and each local partition gets an equal share.
 */
export function globalPartitions(
  rank: number,
  local: number,
  clusterCount: number,
  clusterSize: number,
  partitionCount: number,
): number[] {
  const lanes = clusterCount * clusterSize;
  const lane = rank * clusterSize + local;
  if (lanes > partitionCount) return [lane % partitionCount];
  const out: number[] = [];
  for (let g = lane; g < partitionCount; g += lanes) out.push(g);
  return out;
}

/** Everything a placement strategy reads (PlacementInput, and which strategy). */
interface PlacementInputs {
  placement: JobSpec['cluster']['placement'];
  size: number;
  nextClusterId: number;
  clusters: readonly ClusterSeats[];
  placed: readonly Pick<TabRecord, 'id' | 'joinSeq' | 'rttMs' | 'addressGroup'>[];
  apart: readonly (readonly [string, string])[];
}

/**
 * A copy that later changes to the registry's records and seats do not reach (records are
 * mutated in place: an rtt measured, a seat filled).
 */
function snapshotPlacementInputs(inputs: PlacementInputs): PlacementInputs {
  return {
    ...inputs,
    clusters: inputs.clusters.map((c) => ({ id: c.id, seats: [...c.seats] })),
    placed: inputs.placed.map(({ id, joinSeq, rttMs, addressGroup }) => ({
      id,
      joinSeq,
      rttMs,
      addressGroup,
    })),
    apart: inputs.apart.map(([a, b]) => [a, b] as const),
  };
}

function samePlacementInputs(a: PlacementInputs, b: PlacementInputs): boolean {
  if (a.placement !== b.placement || a.size !== b.size || a.nextClusterId !== b.nextClusterId)
    return false;
  if (!sameSeats(a.clusters, b.clusters)) return false;
  if (a.placed.length !== b.placed.length || a.apart.length !== b.apart.length) return false;
  for (let i = 0; i < a.placed.length; i++) {
    const x = a.placed[i]!;
    const y = b.placed[i]!;
    if (
      x.id !== y.id ||
      x.joinSeq !== y.joinSeq ||
      x.rttMs !== y.rttMs ||
      x.addressGroup !== y.addressGroup
    )
      return false;
  }
  for (let i = 0; i < a.apart.length; i++) {
    const [xa, xb] = a.apart[i]!;
    const [ya, yb] = b.apart[i]!;
    if (xa !== ya || xb !== yb) return false;
  }
  return true;
}

function sameSeats(a: readonly ClusterSeats[], b: readonly ClusterSeats[]): boolean {
  if (a.length !== b.length) return false;
  return a.every((cluster, i) => {
    const other = b[i]!;
    return (
      cluster.id === other.id &&
      cluster.seats.length === other.seats.length &&
      cluster.seats.every((id, slot) => id === other.seats[slot])
    );
  });
}
