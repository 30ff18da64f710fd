/**
 * The coordinator's proposal desk (issue 13 item 0, moved out of the app for issue 15): who may
 * propose for a cluster, the wait for the other members' confirmations, the verdict on them,
 * strikes against proposers that lie or race, and the silent-proposer rule.
 *
 * Guarantee. Only the cluster's designated proposer (TabRegistry.proposerOf) gets a proposal
 * considered; it reaches the round engine only when judgeProposal confirms it (a majority of the
 * cluster's live members computed the same frame), or when the proposer is its cluster's only
 * live member and the cluster may vote alone. A refuted proposer is demoted and, after
 * `refutationsToQuarantine` refutations within `strikeWindow` iterations, quarantined; a tab
 * proposing without the role `racesToQuarantine` times in the window likewise (a race is counted
 * only when the tab never held the role in the iteration it proposed to, so a role that moved
 * while its proposal travelled is no strike). A silent proposer loses the role to the next member.
 *
 * Deterministic: no timers, sockets or wall clock. Every node of a multi-node coordinator applies
 * the same commands in the same order to the same registry and engine and gets the same state;
 * each call returns the effects (confirm requests, acks, quarantines, placements, log lines) that
 * the shell carries out, in order.
 *
 * Parameters: ProposalDeskOptions. Paper: none (the protocol of docs/architecture.md,
 * _Proposals no single tab controls_); the per-cluster aggregation it checks is seed 002's.
 */
import type {
  AggregatorName,
  ErrorCode,
  ProposalInput,
  ProposalVerdicts,
} from '@swarmgrad/protocol';
import type { RoundEngine, UpdateSource } from '../rounds.ts';
import { judgeProposal, type MemberAnswer } from './proposal.ts';
import type { TabRegistry } from './seat-registry.ts';

export interface ProposalDeskOptions {
  /** Refutations or races older than this many iterations are forgotten. */
  strikeWindow: number;
  /** Refutations within the window that quarantine a tab. */
  refutationsToQuarantine: number;
  /** Proposals without the role within the window that quarantine a tab. */
  racesToQuarantine: number;
  /**
   * Decodes a proposal's frame when the command carries no decoded update (another node's),
   * or undefined when it does not decode. Called only when the update is needed (a close, a
   * snapshot): a node that never closes never decodes the proposals it replicates.
   */
  decode: (frame: Uint8Array) => Float32Array | undefined;
  /**
   * The factor applied to a counted proposal that is `delay` iterations stale (its age plus its
   * registers' mean step delay; the drop rule reads their staleness instead): core's
   * stalenessStepScale. Absent: every proposal counts in full.
   */
  stepScale?: ((delay: number) => number) | undefined;
  /** Monotonic milliseconds, for the round engine's grace period. */
  now: () => number;
}

export const DEFAULT_STRIKES = {
  strikeWindow: 50,
  // One refutation suffices: it is not an opinion but a recomputation — more than half of the
  // other live members ran the same deterministic aggregation on the same registers (their
  // digests checked) and got one common frame that is not the proposer's. An honest proposer
  // cannot get there (an equivocating register shows as a digest mismatch of an input, and its
  // holders abstain). A race can be an accident, so races need three.
  refutationsToQuarantine: 1,
  racesToQuarantine: 3,
} as const;

export interface AggregatorRef {
  name: AggregatorName;
  f: number;
}

/** A proposal as the shared command log carries it. */
export interface DeskProposal {
  /** The proposal command's id (its ack waits on the node that received it). */
  id: string;
  /** The node that received it. */
  node: string;
  tabId: string;
  clusterId: number;
  baseIteration: number;
  frame: Uint8Array;
  /** Decoded already (by the node that received it), or undefined: decoded when needed. */
  update?: Float32Array | undefined;
  /** Its frame header's register staleness (pipelined tabs), read by the node that received it. */
  staleness: number;
  /**
   * Its frame header's mean step delay (≤ staleness; absent: the staleness): the delay the step
   * scale reads, while the drop rule reads the staleness.
   */
  stepDelay?: number | undefined;
  digest: string;
  inputs: ProposalInput[];
  rejected: { slot: number; reason: string }[];
  /** The rule the tabs ran for this base (the operator may have changed it since). */
  aggregator: AggregatorRef;
  /**
   * Members' vouchers the proposer brought, as (tab id, digest it computed): their MACs checked
   * by the node that received the proposal (swarm/voucher.ts). They count as those members'
   * answers; the desk asks only the members without one.
   */
  vouched?: readonly (readonly [string, string])[];
}

/** A proposal waiting for its cluster's confirmations. */
export interface PendingProposal extends Omit<DeskProposal, 'update'> {
  update: UpdateSource;
  answers: Map<string, MemberAnswer>;
}

export type ProposalOutcome =
  { ok: true; counted: boolean } | { ok: false; code: ErrorCode; message: string };

export type DeskEffect =
  /** Ask these members to recompute the proposal (and bound the wait: a timeout command). */
  | { kind: 'ask-confirm'; proposal: PendingProposal; to: string[] }
  /** The proposal no longer waits: its timeout is moot. */
  | { kind: 'cancel-timeout'; proposalId: string }
  /** The answer to the proposing tab. */
  | { kind: 'settle'; proposalId: string; outcome: ProposalOutcome }
  /** The proposer's frame was decoded and is being considered (wire accounting). */
  | { kind: 'received'; proposal: PendingProposal }
  /**
   * Counted by the round engine, `age` iterations after its base; `delay` adds its registers'
   * staleness, and `scale` is the step factor it was counted with.
   */
  | { kind: 'counted'; proposal: PendingProposal; age: number; delay: number; scale: number }
  /** Refused by the round engine as `delay` iterations stale, more than the threshold S. */
  | { kind: 'stale'; proposal: PendingProposal; delay: number }
  | { kind: 'verdict'; verdict: keyof ProposalVerdicts }
  | {
      kind: 'event';
      event: 'proposal-refuted' | 'proposal-unconfirmed' | 'proposer-silent';
      message: string;
    }
  | {
      kind: 'quarantine';
      tabId: string;
      clusterId: number;
      by: string[];
      reason: 'refuted' | 'not-proposer';
    }
  /** The proposer role of this cluster moved: its members learn their places again. */
  | { kind: 'placements'; clusterId: number }
  /** A proposal was decided: the iteration may close. */
  | { kind: 'maybe-close' };

/** A pending proposal as it travels between nodes (without its decoded update). */
export interface PendingProposalState extends Omit<
  PendingProposal,
  'update' | 'answers' | 'vouched'
> {
  answers: [string, MemberAnswer][];
}

export interface ProposalDeskState {
  pending: PendingProposalState[];
  verdicts: ProposalVerdicts;
  /** Confirmed proposals of this iteration the engine dropped as stale (retryStale). */
  droppedStale?: PendingProposalState[];
}

export function emptyVerdicts(): ProposalVerdicts {
  return { confirmed: 0, refuted: 0, unconfirmed: 0, notProposer: 0, silent: 0 };
}

export class ProposalDesk {
  private readonly pendingByCluster = new Map<number, PendingProposal>();
  /** Confirmed proposals of this iteration dropped as stale, by cluster (retryStale). */
  private readonly droppedStale = new Map<number, PendingProposal>();
  /** Tabs that held their cluster's proposer role at some point of the current iteration. */
  private proposersThisIteration = new Set<string>();
  private readonly counts: ProposalVerdicts = emptyVerdicts();

  constructor(
    private readonly registry: TabRegistry,
    private readonly engine: RoundEngine,
    private readonly options: ProposalDeskOptions,
  ) {}

  get verdicts(): Readonly<ProposalVerdicts> {
    return this.counts;
  }

  hasPending(clusterId: number): boolean {
    return this.pendingByCluster.has(clusterId);
  }

  /** A new iteration: the tabs that hold the proposer role now. */
  startIteration(clusterIds: Iterable<number>): void {
    this.proposersThisIteration = new Set();
    this.droppedStale.clear();
    for (const id of clusterIds) {
      const proposer = this.registry.proposerOf(id);
      if (proposer !== undefined) this.proposersThisIteration.add(proposer);
    }
  }

  /** A tab was told it is its cluster's proposer (so a proposal of it is no race). */
  noteProposer(tabId: string): void {
    this.proposersThisIteration.add(tabId);
  }

  /**
   * A proposal, where commands apply. `pending`: it waits for confirmations, and its ack goes
   * out with the verdict (a `settle` effect of a later call).
   */
  propose(command: DeskProposal): {
    outcome: ProposalOutcome | { pending: true };
    effects: DeskEffect[];
  } {
    const effects: DeskEffect[] = [];
    // the tab may have moved while its proposal travelled
    const seat = this.registry.seatOf(command.tabId);
    if (!seat || seat.clusterId !== command.clusterId) {
      return {
        outcome: {
          ok: false,
          code: 'not-in-cluster',
          message: `you are not in cluster ${command.clusterId}`,
        },
        effects,
      };
    }
    const proposer = this.registry.proposerOf(seat.clusterId);
    if (proposer !== command.tabId) {
      this.count('notProposer', effects);
      // a tab that held the role earlier in this iteration (it moved while its proposal
      // travelled), or whose proposal is for an older base, raced by accident, not on purpose
      if (
        command.baseIteration === this.engine.iteration &&
        !this.proposersThisIteration.has(command.tabId)
      )
        this.strike(command.tabId, seat.clusterId, 'not-proposer', [], effects);
      return {
        outcome: {
          ok: false,
          code: 'not-proposer',
          message: `${proposer ?? 'nobody'} proposes for cluster ${seat.clusterId}, not you`,
        },
        effects,
      };
    }
    // the node that received it checked that it decodes (proposals.ts)
    const { vouched, ...proposal } = command;
    const pending: PendingProposal = {
      ...proposal,
      update: command.update ?? this.lazyUpdate(command.frame),
      answers: new Map(),
    };
    effects.push({ kind: 'received', proposal: pending });
    const others = this.confirmingMembers(seat.clusterId).filter((id) => id !== command.tabId);
    const minimumLive = this.registry.minimumLive();
    if (others.length + 1 < minimumLive) {
      // too few members to confirm anything: a tab alone in its cluster does not move the model
      return {
        outcome: {
          ok: false,
          code: 'unconfirmed',
          message: `your cluster needs ${minimumLive} live members to confirm a proposal, it has ${others.length + 1}`,
        },
        effects,
      };
    }
    if (others.length === 0) return { outcome: this.offer(pending, effects), effects };
    const earlier = this.pendingByCluster.get(seat.clusterId);
    if (earlier !== undefined) this.drop(earlier, { ok: true, counted: false }, effects);
    this.pendingByCluster.set(seat.clusterId, pending);
    // a voucher of a tab that is not a confirming member now counts for nothing
    const confirming = new Set(others);
    for (const [tabId, digest] of vouched ?? []) {
      if (confirming.has(tabId)) pending.answers.set(tabId, { kind: 'computed', digest });
    }
    if (pending.answers.size > 0) {
      const decided = this.resolve(pending, false);
      if (decided.length > 0)
        return { outcome: { pending: true }, effects: [...effects, ...decided] };
    }
    const unasked = others.filter((id) => !pending.answers.has(id));
    effects.push({ kind: 'ask-confirm', proposal: pending, to: unasked });
    return { outcome: { pending: true }, effects };
  }

  /** A member's answer to a confirm request. */
  confirm(answer: {
    tabId: string;
    clusterId: number;
    iteration: number;
    proposer: string;
    answer: MemberAnswer;
  }): DeskEffect[] {
    const pending = this.pendingByCluster.get(answer.clusterId);
    if (
      pending === undefined ||
      pending.baseIteration !== answer.iteration ||
      pending.tabId !== answer.proposer ||
      answer.tabId === pending.tabId ||
      pending.answers.has(answer.tabId) ||
      this.registry.seatOf(answer.tabId)?.clusterId !== answer.clusterId
    )
      return [];
    pending.answers.set(
      answer.tabId,
      answer.answer.kind === 'computed'
        ? { kind: 'computed', digest: answer.answer.digest }
        : { kind: 'abstain' },
    );
    return this.resolve(pending, false);
  }

  /** The time for confirmations of this proposal is up: judge it on what came. */
  timeout(clusterId: number, proposalId: string): DeskEffect[] {
    const pending = this.pendingByCluster.get(clusterId);
    return pending?.id === proposalId ? this.resolve(pending, true) : [];
  }

  /**
   * After the threshold S was raised (an auto job, or the operator): the confirmed proposals of
   * this iteration that the old S dropped are offered again, so an iteration whose every
   * proposal was too stale for the old S can close under the new one.
   */
  retryStale(): DeskEffect[] {
    const effects: DeskEffect[] = [];
    let counted = false;
    for (const [clusterId, pending] of [...this.droppedStale]) {
      const delay = this.engine.iteration - pending.baseIteration + pending.staleness;
      if (delay > this.engine.enforcedStaleness) continue;
      this.droppedStale.delete(clusterId);
      const outcome = this.offer(pending, effects);
      if (outcome.ok && outcome.counted) counted = true;
    }
    if (counted) effects.push({ kind: 'maybe-close' });
    return effects;
  }

  /**
   * The cluster's live members changed (a tab left, or was quarantined): its pending proposal
   * may be decided now. `unless`: not when that tab is the proposer.
   */
  reconsider(clusterId: number, unless?: string): DeskEffect[] {
    const pending = this.pendingByCluster.get(clusterId);
    if (pending === undefined || pending.tabId === unless) return [];
    return this.resolve(pending, false);
  }

  /**
   * Live clusters of the current iteration whose proposer has neither a proposal held by the
   * engine nor one pending here: candidates for a `proposer-silent` report.
   */
  silentProposers(): { clusterId: number; tabId: string }[] {
    const held = new Set(this.engine.proposers());
    const silent: { clusterId: number; tabId: string }[] = [];
    for (const clusterId of this.registry.liveClusters()) {
      if (held.has(clusterId) || this.pendingByCluster.has(clusterId)) continue;
      const tabId = this.registry.proposerOf(clusterId);
      if (tabId !== undefined) silent.push({ clusterId, tabId });
    }
    return silent;
  }

  /** A report that `tabId` had not proposed `iteration`: the role moves on (idempotent). */
  proposerSilent(report: { clusterId: number; iteration: number; tabId: string }): DeskEffect[] {
    const { clusterId, iteration, tabId } = report;
    if (iteration !== this.engine.iteration) return [];
    if (this.engine.proposers().includes(clusterId) || this.pendingByCluster.has(clusterId))
      return [];
    // another node's report moved the role already
    if (this.registry.proposerOf(clusterId) !== tabId) return [];
    const tab = this.registry.tabs.get(tabId);
    if (tab) tab.demoted = true;
    this.registry.rotateProposer(clusterId);
    const next = this.registry.proposerOf(clusterId);
    if (next !== undefined) this.proposersThisIteration.add(next);
    const effects: DeskEffect[] = [];
    this.count('silent', effects);
    effects.push(
      {
        kind: 'event',
        event: 'proposer-silent',
        message: `${tabId}, cluster ${clusterId}'s proposer, had not proposed iteration ${iteration}: the role moves to ${next ?? 'nobody'}`,
      },
      { kind: 'placements', clusterId },
    );
    return effects;
  }

  exportState(): ProposalDeskState {
    const strip = ({ update: _update, answers, ...rest }: PendingProposal) => ({
      ...rest,
      answers: [...answers.entries()],
    });
    return {
      pending: [...this.pendingByCluster.values()].map(strip),
      verdicts: { ...this.counts },
      droppedStale: [...this.droppedStale.values()].map(strip),
    };
  }

  /** Replaces the desk's state (updates decoded from the frames when needed). */
  importState(state: Partial<ProposalDeskState>): void {
    const restore = (into: Map<number, PendingProposal>, list: PendingProposalState[]) => {
      into.clear();
      for (const p of list) {
        into.set(p.clusterId, {
          ...p,
          // snapshots written before the staleness travelled with the proposal
          staleness: p.staleness ?? 0,
          update: this.lazyUpdate(p.frame),
          answers: new Map(p.answers),
        });
      }
    };
    restore(this.pendingByCluster, state.pending ?? []);
    restore(this.droppedStale, state.droppedStale ?? []);
    if (state.verdicts) Object.assign(this.counts, state.verdicts);
  }

  /**
   * The live members of a cluster that count for confirmations: a quarantined tab is on its
   * way out of the cluster, it neither vouches nor is waited for.
   */
  private confirmingMembers(clusterId: number): string[] {
    return this.registry
      .members(clusterId)
      .filter((m) => m.live && this.registry.tabs.get(m.tabId)?.quarantined !== true)
      .map((m) => m.tabId);
  }

  /** Judges a pending proposal on the answers so far; `final`: no more are waited for. */
  private resolve(pending: PendingProposal, final: boolean): DeskEffect[] {
    if (this.pendingByCluster.get(pending.clusterId) !== pending) return [];
    const liveMembers = this.confirmingMembers(pending.clusterId);
    const verdict = judgeProposal({
      digest: pending.digest,
      proposer: pending.tabId,
      liveMembers,
      answers: pending.answers,
      final,
      minimumLive: this.registry.minimumLive(),
    });
    if (verdict.kind === 'waiting') return [];
    const effects: DeskEffect[] = [];
    this.pendingByCluster.delete(pending.clusterId);
    effects.push({ kind: 'cancel-timeout', proposalId: pending.id });
    if (verdict.kind === 'confirmed') {
      this.count('confirmed', effects);
      effects.push(
        { kind: 'settle', proposalId: pending.id, outcome: this.offer(pending, effects) },
        { kind: 'maybe-close' },
      );
      return effects;
    }
    if (verdict.kind === 'refuted') {
      this.count('refuted', effects);
      effects.push({
        kind: 'event',
        event: 'proposal-refuted',
        message: `cluster ${pending.clusterId} refuted ${pending.tabId}'s proposal for iteration ${pending.baseIteration} (${verdict.refutedBy.length} of ${liveMembers.length - 1} members computed another update: ${verdict.refutedBy.join(', ')})`,
      });
      this.strike(pending.tabId, pending.clusterId, 'refuted', verdict.refutedBy, effects);
      effects.push({
        kind: 'settle',
        proposalId: pending.id,
        outcome: {
          ok: false,
          code: 'refuted',
          message: 'the other members of your cluster computed another update',
        },
      });
    } else {
      this.count('unconfirmed', effects);
      effects.push({
        kind: 'event',
        event: 'proposal-unconfirmed',
        message: `${pending.tabId}'s proposal for cluster ${pending.clusterId} was not confirmed by a majority (${pending.answers.size} of ${liveMembers.length - 1} answered): the proposer role moves on`,
      });
      this.registry.rotateProposer(pending.clusterId);
      effects.push({
        kind: 'settle',
        proposalId: pending.id,
        outcome: {
          ok: false,
          code: 'unconfirmed',
          message: 'a majority of your cluster did not confirm the proposal',
        },
      });
    }
    // the role moved: the new proposer proposes what it aggregated
    effects.push({ kind: 'placements', clusterId: pending.clusterId }, { kind: 'maybe-close' });
    return effects;
  }

  private drop(pending: PendingProposal, outcome: ProposalOutcome, effects: DeskEffect[]): void {
    this.pendingByCluster.delete(pending.clusterId);
    effects.push(
      { kind: 'cancel-timeout', proposalId: pending.id },
      { kind: 'settle', proposalId: pending.id, outcome },
    );
  }

  /** A confirmed proposal (or one from a cluster's only live member) goes to the round engine. */
  private offer(pending: PendingProposal, effects: DeskEffect[]): ProposalOutcome {
    const age = this.engine.iteration - pending.baseIteration;
    const delay = age + pending.staleness;
    // the step scale reads the mean delay of the steps, not the oldest step's (seed 001: to first
    // order a mixture of delays acts as their mean)
    const meanDelay = age + Math.min(pending.staleness, pending.stepDelay ?? pending.staleness);
    const scale = meanDelay > 0 ? (this.options.stepScale?.(meanDelay) ?? 1) : 1;
    const update = pending.update;
    const offered = this.engine.offer(
      pending.clusterId,
      pending.baseIteration,
      scale >= 1
        ? update
        : typeof update === 'function'
          ? () => {
              const decoded = update();
              return decoded === undefined ? undefined : scaled(decoded, scale);
            }
          : scaled(update, scale),
      this.options.now(),
      pending.staleness,
      this.engine.signsOf(pending.frame, Math.min(1, scale)),
    );
    if (!offered.ok) {
      if (offered.code === 'stale') {
        effects.push({ kind: 'stale', proposal: pending, delay });
        if (pending.baseIteration <= this.engine.iteration)
          this.droppedStale.set(pending.clusterId, pending);
      }
      return offered;
    }
    if (offered.counted) effects.push({ kind: 'counted', proposal: pending, age, delay, scale });
    return { ok: true, counted: offered.counted };
  }

  /**
   * A proposal refuted (the tab is demoted: never proposer again while another member can be)
   * or sent without the role. Enough of either within the strike window quarantines it.
   */
  private strike(
    tabId: string,
    clusterId: number,
    reason: 'refuted' | 'not-proposer',
    by: readonly string[],
    effects: DeskEffect[],
  ): void {
    const tab = this.registry.tabs.get(tabId);
    if (!tab || tab.quarantined) return;
    const now = this.engine.iteration;
    const recent = (list: number[] | undefined) =>
      [...(list ?? []), now].filter((at) => now - at < this.options.strikeWindow);
    let count: number;
    let limit: number;
    if (reason === 'refuted') {
      tab.demoted = true;
      tab.refutedAt = recent(tab.refutedAt);
      count = tab.refutedAt.length;
      limit = this.options.refutationsToQuarantine;
    } else {
      tab.racedAt = recent(tab.racedAt);
      count = tab.racedAt.length;
      limit = this.options.racesToQuarantine;
    }
    if (count >= limit) effects.push({ kind: 'quarantine', tabId, clusterId, by: [...by], reason });
  }

  /** The update behind a frame, decoded once when first asked for. */
  private lazyUpdate(frame: Uint8Array): () => Float32Array | undefined {
    let decoded: Float32Array | undefined;
    return () => (decoded ??= this.options.decode(frame));
  }

  private count(verdict: keyof ProposalVerdicts, effects: DeskEffect[]): void {
    this.counts[verdict]++;
    effects.push({ kind: 'verdict', verdict });
  }
}

function scaled(update: Float32Array, factor: number): Float32Array {
  const out = new Float32Array(update.length);
  for (let i = 0; i < update.length; i++) out[i] = update[i]! * factor;
  return out;
}
