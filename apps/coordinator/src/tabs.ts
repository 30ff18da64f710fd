/**
 * The coordinator's view of the tabs and clusters: who is connected, who sits where, which
 * clusters still have a live tab, and what each tab is told about its place.
 * Placement itself is packages/core's strategy; this keeps the bookkeeping around it.
 */
import { createGradientCode, getPlacement, type ClusterSeats } from '@swarmgrad/core';
import type { Backend, FaultMode, Placement, TabReport } from '@swarmgrad/protocol';
import type { JobSpec } from '@swarmgrad/protocol';

export interface TabRecord {
  id: string;
  resumeToken: string;
  joinSeq: number;
  kind: 'browser' | 'node';
  backend: Backend;
  fallbackAdapter: boolean | undefined;
  fault: FaultMode | undefined;
  connected: boolean;
  rttMs: number | undefined;
  report: TabReport | undefined;
  joinedAt: number;
  lastSeenAt: number;
  quarantined: boolean;
  /** Socket id while connected. */
  socketId: string | undefined;
}

export interface Seat {
  clusterId: number;
  slot: number;
}

export class TabRegistry {
  readonly tabs = new Map<string, TabRecord>();
  private clusterSeats: ClusterSeats[] = [];
  private nextClusterId = 0;
  private joinSeq = 0;

  constructor(private job: JobSpec) {}

  setJob(job: JobSpec): void {
    this.job = job;
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
    for (const cluster of this.clusterSeats) {
      const slot = cluster.seats.indexOf(tabId);
      if (slot >= 0) return { clusterId: cluster.id, slot };
    }
    return undefined;
  }

  liveClusters(): Set<number> {
    const live = new Set<number>();
    for (const cluster of this.clusterSeats) {
      if (cluster.seats.some((id) => id !== undefined && this.tabs.get(id)?.connected === true)) {
        live.add(cluster.id);
      }
    }
    return live;
  }

  /** Re-places every connected tab (between iterations). Returns tabs whose seat changed. */
  rebalance(): Set<string> {
    const before = new Map<string, string>();
    for (const tab of this.tabs.values()) {
      const seat = this.seatOf(tab.id);
      if (seat) before.set(tab.id, `${seat.clusterId}:${seat.slot}`);
    }
    const live = this.connected()
      .filter((t) => !t.quarantined)
      .map((t) => ({
        id: t.id,
        joinSeq: t.joinSeq,
        ...(t.rttMs === undefined ? {} : { rttMs: t.rttMs }),
      }));
    const result = getPlacement(this.job.cluster.placement).place({
      clusters: this.clusterSeats,
      live,
      clusterSize: this.job.cluster.size,
      nextClusterId: this.nextClusterId,
    });
    this.clusterSeats = result.clusters;
    this.nextClusterId = result.nextClusterId;
    // forget tabs that left and no longer hold a seat
    for (const tab of [...this.tabs.values()]) {
      if (!tab.connected && this.seatOf(tab.id) === undefined) this.tabs.delete(tab.id);
    }
    const changed = new Set<string>();
    for (const tab of this.connected()) {
      const seat = this.seatOf(tab.id);
      const key = seat ? `${seat.clusterId}:${seat.slot}` : undefined;
      if (key !== before.get(tab.id)) changed.add(tab.id);
    }
    return changed;
  }

  /**
   * Seats a newcomer in a vacant seat now, mid-iteration, when there is one: clusters with
   * no live tab first (that is how a lost quorum comes back), then the lowest-numbered.
   * New clusters are only made between iterations, so the voting set stays fixed.
   */
  seatInVacancy(tabId: string): Seat | undefined {
    const live = this.liveClusters();
    const candidates = this.clusterSeats
      .filter((c) =>
        c.seats.some((id) => id === undefined || this.tabs.get(id)?.connected !== true),
      )
      .sort((a, b) => Number(live.has(a.id)) - Number(live.has(b.id)) || a.id - b.id);
    const target = candidates[0];
    if (target === undefined) return undefined;
    let slot = target.seats.indexOf(undefined);
    if (slot < 0) slot = target.seats.findIndex((id) => this.tabs.get(id!)?.connected !== true);
    const previous = target.seats[slot];
    if (previous !== undefined && previous !== tabId) this.tabs.delete(previous);
    target.seats[slot] = tabId;
    return { clusterId: target.id, slot };
  }

  /** Peers of a cluster (connected ones), and its proposer (lowest live slot). */
  members(clusterId: number): { tabId: string; slot: number; live: boolean }[] {
    const cluster = this.clusterSeats.find((c) => c.id === clusterId);
    if (!cluster) return [];
    return cluster.seats.flatMap((id, slot) =>
      id === undefined ? [] : [{ tabId: id, slot, live: this.tabs.get(id)?.connected === true }],
    );
  }

  placementOf(tabId: string): Placement | undefined {
    const seat = this.seatOf(tabId);
    if (!seat) return undefined;
    const { size, redundancy, scheme } = this.job.cluster;
    const members = this.members(seat.clusterId);
    const liveSlots = members.filter((m) => m.live).map((m) => m.slot);
    const rank = this.clusterSeats.findIndex((c) => c.id === seat.clusterId);
    const k = this.clusterSeats.length;
    const code = createGradientCode({ slots: size, redundancy, scheme, seed: seat.clusterId + 1 });
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
      partitions,
      clusterSize: size,
      redundancy,
      scheme,
      codeSeed: seat.clusterId + 1,
      proposer: liveSlots.length > 0 && Math.min(...liveSlots) === seat.slot,
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
