/**
 * What the coordinator's parts share. The Coordinator (coordinator.ts) holds the state and
 * implements CoordinatorContext; each part gets it and reaches the others through it:
 *
 * - membership.ts: tabs join and leave, seats and placements, quarantine;
 * - iterations.ts: an iteration's start, quorum, close and the proposers' patience;
 * - proposals.ts: a proposal checked, offered to the proposal desk, the desk's effects;
 * - broadcast.ts: the closed iteration to the tabs (directly or through relay tabs);
 * - records.ts: evaluations and checkpoints;
 * - gateway.ts: the tabs' socket events, validated, turned into commands.
 *
 * State changes only by commands applied in one order (shared-state.ts); with several nodes
 * the same code applies them on every node. Parts import this file, never each other.
 */
import type { Logger } from 'pino';
import type {
  ClosedIteration,
  DeskEffect,
  ProposalDesk,
  RoundEngine,
  TabRecord,
  TabRegistry,
  VoucherFields,
} from '@swarmgrad/core';
import type {
  DashboardEvent,
  DashboardStatus,
  ErrorCode,
  JobSpec,
  Phase,
  QuarantinedTab,
  StalenessChoice,
} from '@swarmgrad/protocol';
import type { Command, CommandHeader, SharedState } from './shared-state.ts';
import type { CoordinatorOptions, EvaluationPoint, WorkerSocket } from './options.ts';
import type { Metrics } from './metrics.ts';
import type { WireCounters } from './wire.ts';
import type { TabSockets } from './tab-sockets.ts';
import type { LinkRelays } from './relay.ts';
import type { PairMap } from './pairs.ts';
import type { DashboardMetrics } from './dashboard.ts';

/** The aggregation rule the tabs ran: the job's, or the one before the operator's last change. */
export interface AggregationRule {
  name: JobSpec['aggregator']['name'];
  f: number;
}

/** The swarm's settings and lifecycle flags, replicated on every node (replica.ts). */
export interface SwarmFlags {
  phase: Phase;
  paused: boolean;
  /** The first iteration started (minTabs holds back only that one). */
  started: boolean;
  /** The operator changed what placements carry: resend them all at the next iteration. */
  placementsDirty: boolean;
  learningRate: number;
  /** `staleness: "auto"`: the last choice and why (it also moved the engine's threshold). */
  stalenessAuto: StalenessChoice | null;
  /** The rule before the operator's last change, and the iteration of the change. */
  previousAggregator: (AggregationRule & { until: number }) | undefined;
  /** This process is shutting down. */
  closing: boolean;
}

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
export type CommandBody = DistributiveOmit<Command, keyof CommandHeader>;

export interface Membership {
  readonly quarantined: readonly QuarantinedTab[];
  applyJoin(command: Extract<Command, { kind: 'join' }>): void;
  applyLeave(tab: TabRecord, now: number): void;
  applyNodeDown(node: string, at: number): void;
  reviewQuarantine(suspectId: string): void;
  quarantine(
    tabId: string,
    clusterId: number,
    reportedBy: string[],
    reason: NonNullable<QuarantinedTab['reason']>,
  ): void;
  sendPlacements(tabIds: Iterable<string>): void;
  coSeated(a: string, b: string): boolean;
  sendRelayPeers(tabIds: Iterable<string>): void;
  pruneRelays(): void;
}

export interface Iterations {
  /** The rounds of agreement the last close took. */
  readonly lastRounds: number;
  /** performance.now() when the current iteration opened. */
  readonly openedAt: number;
  startIfReady(now?: number): void;
  setPhase(phase: Phase): void;
  updateQuorum(): void;
  maybeClose(): void;
  applyClose(command: Extract<Command, { kind: 'closed' }>): void;
  /** No close timer runs while paused or cut off from the shared state. */
  holdClose(): void;
  /** A close asked for but never applied (the shared state was away) may be asked again. */
  forgetCloseRequest(): void;
  stop(): void;
}

export interface Proposals {
  check(
    tab: TabRecord,
    rawMeta: unknown,
    rawFrame: unknown,
  ):
    | { ok: true; command: Extract<Command, { kind: 'proposal' }> }
    | { ok: false; code: ErrorCode; message: string };
  decode(frame: Uint8Array): Float32Array | undefined;
  ruleFor(baseIteration: number): AggregationRule;
  run(effects: readonly DeskEffect[]): void;
  stalenessAnalysis(): DashboardStatus['staleness'];
  followAutoStaleness(): void;
  stepScale(): ((delay: number) => number) | undefined;
  /** The frame of each cluster's held proposal (replicas carry frames, not updates). */
  readonly heldFrames: Map<number, Uint8Array>;
  stop(): void;
}

export interface Vouchers {
  exportSecret(): string;
  importSecret(secretHex: string): void;
  keyHexFor(tabId: string): string;
  verify(tabId: string, fields: VoucherFields, mac: string): boolean;
}

export interface Broadcast {
  readonly iterationKey: string;
  exportSigningKey(): string;
  importSigningKey(pkcs8Base64: string): void;
  send(closed: ClosedIteration): void;
  resendToCluster(clusterId: number): void;
  /** The tab relayed the last iteration frame to this cluster. */
  relayedLastTo(tabId: string, clusterId: number): boolean;
  answerRequest(tabId: string, socket: WorkerSocket, after: number): void;
}

export interface Records {
  readonly history: EvaluationPoint[];
  readonly lastEvaluation: EvaluationPoint | undefined;
  readonly lastCheckpointIteration: number;
  readonly checkpointsWritten: number;
  /** The closed iteration's delta, durable before any tab hears of it. */
  journal(closed: ClosedIteration): void;
  afterClose(iteration: number): void;
  record(result: { iteration: number; loss: number; accuracy: number }, at?: number): void;
  writeCheckpoint(): Promise<void>;
}

export interface CoordinatorContext {
  readonly job: JobSpec;
  readonly jobId: number;
  readonly dimension: number;
  readonly options: CoordinatorOptions;
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly engine: RoundEngine;
  readonly registry: TabRegistry;
  readonly desk: ProposalDesk;
  readonly flags: SwarmFlags;
  readonly shared: SharedState;
  readonly nodeId: string;
  readonly wire: WireCounters;
  readonly tabs: TabSockets;
  readonly relays: LinkRelays;
  /** Pairs of tabs whose WebRTC link an end reported connected, and not failed since. */
  readonly linksUp: PairMap<true>;
  readonly dashboardMetrics: DashboardMetrics;
  readonly membership: Membership;
  readonly iterations: Iterations;
  readonly proposals: Proposals;
  readonly broadcast: Broadcast;
  readonly vouchers: Vouchers;
  readonly records: Records;
  /** A command of this node, stamped with a fresh id and this node's clock. */
  command<C extends CommandBody>(body: C): C & CommandHeader;
  /**
   * Appends a command to the shared state; every node applies it. `done` runs on this node
   * when it is applied here, with what applying it gave, or with an Error when it could not be
   * appended. One process: both happen at once, in this call.
   */
  submit(command: Command, done?: (result: unknown) => void): void;
  settle(id: string, result: unknown): void;
  logEvent(kind: DashboardEvent['kind'], message: string): void;
  countRejected(code: ErrorCode): void;
  /** Messages this node refused, by error code. */
  readonly rejectedByCode: ReadonlyMap<string, number>;
  /** The phase tabs are told: `paused` while this node cannot reach the shared state. */
  effectivePhase(): Phase;
  publishStatus(): void;
  /** An evaluation to the watching dashboards. */
  showEvaluation(point: EvaluationPoint): void;
}
