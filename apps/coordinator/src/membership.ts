/**
 * Tabs joining and leaving, their seats and placements, and quarantine: the part of the
 * coordinator's state machine that the registry (core TabRegistry) records. Applied from
 * commands only, alike on every node.
 */
import { DEFAULT_STRIKES, type TabRecord } from '@swarmgrad/core';
import type { QuarantinedTab } from '@swarmgrad/protocol';
import type { Command } from './shared-state.ts';
import type { CoordinatorContext, Membership } from './context.ts';

export class TabMembership implements Membership {
  /** Tabs their clusters quarantined, in order; kept after they leave. */
  readonly quarantined: QuarantinedTab[] = [];

  constructor(private readonly ctx: CoordinatorContext) {}

  applyJoin(command: Extract<Command, { kind: 'join' }>): void {
    const { registry, tabs, metrics } = this.ctx;
    const now = command.at;
    let tab = registry.tabs.get(command.tabId);
    if (tab && tab.resumeToken !== command.resumeToken) {
      // another tab's id, drawn again by chance (or by two nodes at once): a join never takes
      // over a tab it cannot resume; the new connection gets no welcome and says hello again
      this.ctx.settle(command.id, new Error(`tab id ${command.tabId} is in use`));
      return;
    }
    if (tab && tab.connected) {
      // the old connection is a ghost (the tab reconnected before the server noticed); the
      // node holding it drops it
      const ghost = tabs.get(tab.id);
      if (ghost !== undefined && ghost.id === tab.socketId) ghost.disconnect(true);
    }
    if (!tab) {
      tab = {
        id: command.tabId,
        resumeToken: command.resumeToken,
        joinSeq: registry.nextJoinSeq(),
        kind: command.helloKind,
        backend: command.backend,
        fallbackAdapter: command.fallbackAdapter,
        fault: command.fault,
        connected: true,
        rttMs: undefined,
        report: undefined,
        joinedAt: now,
        lastSeenAt: now,
        quarantined: false,
        socketId: command.socketId,
      };
      registry.tabs.set(tab.id, tab);
    }
    registry.setConnected(tab, true);
    tab.socketId = command.socketId;
    tab.addressGroup = command.addressGroup;
    tab.node = command.node;
    tab.backend = command.backend;
    tab.fallbackAdapter = command.fallbackAdapter;
    tab.lastSeenAt = now;
    metrics.tabs.set(registry.connected().length);
    this.ctx.logEvent('tab-joined', `${tab.id} joined (${command.helloKind}, ${command.backend})`);
    this.ctx.settle(command.id, tab);
    this.afterAdmit(tab, now);
  }

  private afterAdmit(tab: TabRecord, now: number): void {
    const { registry, iterations } = this.ctx;
    if (registry.seatOf(tab.id)) {
      // resumed into its old seat
      this.sendPlacements(this.clusterMembersOf(tab.id));
    } else if (registry.clusters.length === 0 || this.ctx.flags.phase === 'waiting') {
      iterations.startIfReady(now);
    } else {
      const seat = registry.seatInVacancy(tab.id);
      if (seat) this.sendPlacements(this.clusterMembersOf(tab.id));
    }
    iterations.updateQuorum();
    iterations.maybeClose();
  }

  applyLeave(tab: TabRecord, now: number): void {
    const { registry, engine, iterations } = this.ctx;
    // its links went with it; a resumed tab reports them again as they reconnect
    this.ctx.linksUp.deleteTab(tab.id);
    registry.setConnected(tab, false);
    this.ctx.tabs.release(tab.id, tab.socketId);
    tab.socketId = undefined;
    tab.lastSeenAt = now;
    this.ctx.metrics.tabs.set(registry.connected().length);
    const seat = registry.seatOf(tab.id);
    const midRound =
      seat !== undefined &&
      this.ctx.flags.phase === 'training' &&
      !engine.proposers().includes(seat.clusterId);
    this.ctx.logEvent(
      midRound ? 'tab-left-mid-round' : 'tab-left',
      `${tab.id} left${seat ? ` cluster ${seat.clusterId}` : ''}`,
    );
    if (seat) {
      if (!registry.liveClusters().has(seat.clusterId)) {
        this.ctx.logEvent('cluster-lost', `cluster ${seat.clusterId} has no live tab`);
      }
      // fewer live members: a pending proposal of the cluster may be decided now
      this.ctx.proposals.run(this.ctx.desk.reconsider(seat.clusterId));
      // the cluster's relay of the last iteration left: its members may not have the frame
      if (this.ctx.broadcast.relayedLastTo(tab.id, seat.clusterId))
        this.ctx.broadcast.resendToCluster(seat.clusterId);
      this.sendPlacements(this.clusterMembersOf(tab.id));
      // fewer members: reports already in may now be a majority against a peer
      for (const member of registry.members(seat.clusterId))
        for (const suspect of registry.tabs.get(member.tabId)?.suspects ?? [])
          this.reviewQuarantine(suspect);
    } else {
      registry.tabs.delete(tab.id);
    }
    iterations.updateQuorum();
    iterations.maybeClose();
  }

  /** A node stopped heartbeating: the tabs it held left (they may resume on another node). */
  applyNodeDown(node: string, at: number): void {
    if (node === this.ctx.nodeId) {
      // declared dead while alive (a long pause): its tabs reconnect and resume by token
      this.ctx.logEvent('node', `${node} (this node) was declared down: reconnecting its tabs`);
      for (const socket of this.ctx.tabs.all()) socket.disconnect(true);
    } else {
      this.ctx.logEvent('node', `node ${node} is down: its tabs left`);
    }
    for (const tab of [...this.ctx.registry.tabs.values()]) {
      if (tab.node === node && tab.connected) this.applyLeave(tab, at);
    }
  }

  /**
   * Quarantine by the cluster's majority (TabRegistry.majorityAgainst over the peers each
   * member's robust filter quarantined, as its reports said: `suspects` commands). The tab then
   * leaves the placement at the next iteration (rebalance skips quarantined tabs) and is never
   * seated again under this identity.
   */
  reviewQuarantine(suspectId: string): void {
    const verdict = this.ctx.registry.majorityAgainst(suspectId, (member) => member.suspects);
    if (verdict) this.quarantine(suspectId, verdict.clusterId, verdict.reportedBy, 'filter');
  }

  /** Quarantines a tab for good: unseated at the next iteration, never seated again. */
  quarantine(
    tabId: string,
    clusterId: number,
    reportedBy: string[],
    reason: 'filter' | 'refuted' | 'not-proposer',
  ): void {
    const { registry } = this.ctx;
    const tab = registry.tabs.get(tabId);
    if (!tab || tab.quarantined) return;
    tab.quarantined = true;
    registry.invalidateLive();
    this.ctx.flags.placementsDirty = true;
    this.quarantined.push({
      tabId,
      clusterId,
      reportedBy,
      iteration: this.ctx.engine.iteration,
      reason,
    });
    const why =
      reason === 'filter'
        ? `${reportedBy.length} peers: ${reportedBy.join(', ')}`
        : reason === 'refuted'
          ? `its proposal was refuted by ${reportedBy.join(', ')}`
          : `it proposed ${DEFAULT_STRIKES.racesToQuarantine} times without being the proposer`;
    this.ctx.logEvent('tab-quarantined', `${tabId} quarantined by cluster ${clusterId} (${why})`);
    // it no longer counts among the members that confirm: a pending proposal may be decided
    this.ctx.proposals.run(this.ctx.desk.reconsider(clusterId, tabId));
    // and it no longer proposes
    this.sendPlacements(registry.members(clusterId).map((m) => m.tabId));
  }

  private clusterMembersOf(tabId: string): string[] {
    const seat = this.ctx.registry.seatOf(tabId);
    if (!seat) return [tabId];
    return this.ctx.registry.members(seat.clusterId).map((m) => m.tabId);
  }

  /** Each tab (this node holds) its placement, or that it waits for a seat (`unseated`). */
  sendPlacements(tabIds: Iterable<string>): void {
    const { registry, tabs } = this.ctx;
    for (const id of tabIds) {
      const placement = registry.placementOf(id);
      if (placement?.proposer) this.ctx.desk.noteProposer(id);
      if (placement) tabs.send(id, 'placement', placement);
      const group = registry.tabs.get(id)?.addressGroup;
      if (!placement && group !== undefined && registry.isWaiting(id))
        tabs.send(id, 'unseated', { reason: 'address-group-full', group });
    }
  }

  /** Both tabs hold seats in one cluster. */
  coSeated(a: string, b: string): boolean {
    if (a === b) return false;
    const x = this.ctx.registry.seatOf(a);
    const y = this.ctx.registry.seatOf(b);
    return x !== undefined && y !== undefined && x.clusterId === y.clusterId;
  }

  /** Tells these tabs (wherever they are held) whose frames the coordinator relays for them. */
  sendRelayPeers(tabIds: Iterable<string>): void {
    for (const id of tabIds)
      this.ctx.tabs.deliver(id, 'relay-peers', { peers: this.ctx.relays.peersOf(id) });
  }

  /**
   * Relay pairs of tabs the registry forgot (left for good), or that no longer share a cluster
   * (placement parted them), are dropped.
   */
  pruneRelays(): void {
    const { relays, registry } = this.ctx;
    let changed = false;
    for (const id of relays.tabs()) {
      if (!registry.tabs.has(id)) {
        this.sendRelayPeers(relays.forget(id));
        changed = true;
        continue;
      }
      for (const peer of relays.peersOf(id)) {
        if (this.coSeated(id, peer) || !relays.drop(id, peer)) continue;
        this.sendRelayPeers([id, peer]);
        changed = true;
      }
    }
    if (changed) this.ctx.metrics.relayedPairs.set(relays.relayedPairs);
  }
}
