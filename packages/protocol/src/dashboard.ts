/**
 * What the coordinator tells the operator: the JSON of `GET /api/status` and the events of the
 * read-only `/dashboard` socket.io namespace. Server-to-client only (the dashboard sends
 * nothing on the socket; control goes through the token-protected `POST /api/control`), so
 * these are plain types, not schemas: the coordinator's `status()` is declared with them and
 * the web app reads them, so both sides change together.
 */
import type { Backend, Phase } from './events.ts';
import type { JobSpec } from './job.ts';

/** A seat's state: the tab's own report, `idle` before its first report, `closed` once gone. */

/** Where the bytes on the wire went (DashboardStatus.wire.byPath). */
export const wirePaths = ['peer', 'proposal', 'broadcast', 'relay'] as const;
export type WirePath = (typeof wirePaths)[number];
export type WireBytesByPath = Record<WirePath, number>;

export type TabStateView = 'computing' | 'waiting' | 'idle' | 'paused' | 'quarantined' | 'closed';

export interface DashboardTab {
  tabId: string;
  slot: number;
  live: boolean;
  backend: Backend;
  fallbackAdapter: boolean | null;
  state: TabStateView;
  examplesPerSecond: number;
  /** examplesPerSecond / batchSize */
  stepsPerSecond: number;
  /** Round trip to the coordinator measured at join, ms (null until measured). */
  rttMs: number | null;
  steps: number;
}

export interface QuarantinedTab {
  tabId: string;
  /** The cluster it sat in when it was quarantined. */
  clusterId: number;
  /** The peers whose reports (or refutations of its proposals) made the majority. */
  reportedBy: string[];
  /** The coordinator's iteration at that moment. */
  iteration: number;
  /**
   * Why: `filter` (its peers' robust filters), `refuted` (its proposals contradicted by the
   * majority of its cluster twice), `not-proposer` (it kept proposing without being proposer).
   */
  reason?: 'filter' | 'refuted' | 'not-proposer';
}

/** What happened to the proposals the coordinator received (core swarm/proposal.ts). */
export interface ProposalVerdicts {
  /** Confirmed by a majority of the cluster's live members and counted. */
  confirmed: number;
  /** Contradicted by more than half of the other live members: the proposer was demoted. */
  refuted: number;
  /** Neither (members abstained or did not answer in time): the proposer role moved on. */
  unconfirmed: number;
  /** Sent by a tab that was not its cluster's proposer: refused. */
  notProposer: number;
  /** Proposers that had not proposed after the coordinator's patience: the role moved on. */
  silent: number;
}

export interface DashboardCluster {
  id: number;
  /** Has at least one connected tab. */
  live: boolean;
  /** Its proposal for the current iteration is held. */
  proposed: boolean;
  members: DashboardTab[];
}

/** Seed 001's staleness analysis as the coordinator runs it on measured delays. */
export interface StalenessSummary {
  /** Proposals measured, counted or dropped as stale (the most recent ones, bounded). */
  samples: number;
  /**
   * Their delays in iterations (iteration − base iteration, plus the staleness of the stalest
   * register each aggregates: pipelined tabs), as counts.
   */
  histogram: { age: number; count: number }[];
  meanAge: number;
  /** Proposals dropped because they were older than the threshold S (all time). */
  dropped: number;
  /** E[T]: mean wall time of recent iterations, seconds. */
  meanTaskSeconds: number;
  /** h: the curvature estimate the analysis uses, and how it was obtained. */
  curvature: number;
  curvatureSource: string;
  learningRate: number;
  /** n0 and S now. */
  activeTabs: number;
  threshold: number;
  /** The rightmost root at (n0, S): stable when re < 0; margin = −re per second. */
  current: {
    re: number;
    im: number;
    stable: boolean;
    margin: number;
    acceptance: number;
    /** a·τ̄: stable below π/2 for a fixed delay. */
    aTau: number;
  };
  /** The (n, S) the analysis picks, and why. */
  recommended: {
    workers: number;
    threshold: number;
    rate: number;
    stable: boolean;
    reason: string;
  };
  /** Convergence rate −Re(root) per candidate tab count at threshold S. */
  byWorkers: { workers: number; rate: number; stable: boolean }[];
  /** Server time (ms) of the analysis. */
  computedAt: number;
}

/** A `staleness: "auto"` decision (core staleness-policy.ts). */
export interface StalenessChoice {
  threshold: number;
  /** The tab count the analysis found fastest (reported; every tab stays active). */
  workers: number;
  reason: string;
  /** The iteration it was made at. */
  iteration: number;
}

export interface DashboardData {
  /** The dataset's name (a pack's, or the job's for the built-in preset). */
  name: string;
  /** Samples in the training partitions, and in the held-out split. */
  train: number;
  heldOut: number;
  partitions: number;
  features: number;
  classes: number;
  /** Where the samples came from, when the manifest says (file names). */
  source: string | null;
}

export interface DashboardStatus {
  job: Pick<
    JobSpec,
    | 'name'
    | 'model'
    | 'dataset'
    | 'cluster'
    | 'aggregator'
    | 'agreement'
    | 'codec'
    | 'localSteps'
    | 'pipeline'
    | 'staleness'
    | 'targetAccuracy'
    | 'batchSize'
  >;
  dimension: number;
  /** The data the job trains on, as loaded (its manifest), for the pages to describe. */
  data: DashboardData;
  iteration: number;
  phase: Phase;
  learningRate: number;
  /** Agreement rounds the last iteration took. */
  agreementRounds: number;
  tabs: number;
  clusters: DashboardCluster[];
  quorum: {
    clusters: number;
    live: number;
    majority: number;
    /** Clusters whose proposal for the current iteration is held. */
    proposed: number[];
    /** Clusters whose proposals made the last closed iteration (its majority). */
    lastMajority: number[];
  };
  /** Held-out loss and accuracy of the last evaluation, and its iteration. */
  loss: number | null;
  accuracy: number | null;
  evaluatedAt: number | null;
  /** Mean of the connected tabs' last reported training loss. */
  trainingLoss: number | null;
  wire: {
    bytesSent: number;
    fp32EquivalentBytes: number;
    compression: number | null;
    /** bytesSent by path: `peer` the tabs' data channels (what they report), `proposal` the
     * cluster updates proposed to the coordinator, `broadcast` its iteration frames, `relay`
     * the frames it carried between tabs whose link does not connect. */
    byPath: WireBytesByPath;
  };
  staleDropped: number;
  /**
   * The threshold S enforced now (the job's, an operator's `set-staleness`, or the auto mode's
   * choice), and, with `staleness: "auto"`, the last choice and why (null before the first).
   */
  stalenessThreshold: number;
  stalenessAuto: StalenessChoice | null;
  /**
   * Proposals counted with a shrunk step (seed 001: an update d iterations stale moves the
   * model by min(1, 1/(e·η·h·d)) of its size), and the smallest factor used.
   */
  stepScaled: { proposals: number; minScale: number | null };
  rejected: Record<string, number>;
  uptimeSeconds: number;
  /**
   * Tabs quarantined by their clusters: a majority of the other live members of the tab's
   * cluster reported that their robust filter quarantined it. Such a tab is unseated at the
   * next iteration and never seated again.
   */
  quarantined: QuarantinedTab[];
  proposals: ProposalVerdicts;
  /**
   * Connected tabs waiting without a seat because their network address group already holds
   * the most seats it may in every cluster with a vacancy (placement's address-group cap).
   */
  unseated: number;
  /**
   * Register frames this coordinator carried between two tabs of a cluster whose WebRTC link
   * failed (issue 14, item 3: `link` reports, `relay-frame`), their bytes, and the pairs of tabs
   * whose link it relays now.
   */
  relayedFrames: number;
  relay: { bytes: number; pairs: number };
  /**
   * Iteration frames this coordinator wrote (issue 17, item 2), by recipient: `relay`, one tab
   * per cluster that forwards it to its peers over the data channels; `direct`, tabs no relay
   * covers (or every tab with `--dissemination direct`); `request`, tabs that asked for a frame
   * they missed.
   */
  iterationFrames: IterationFrameCounts;
  /** Server clock (ms since the epoch) when this status was taken. */
  serverTime: number;
  /** Null until proposals and a closed iteration have been measured. */
  staleness: StalenessSummary | null;
}

export interface IterationFrameCounts {
  relay: number;
  direct: number;
  request: number;
}

export interface DashboardEvaluation {
  iteration: number;
  loss: number;
  accuracy: number;
  /** ms since the epoch */
  at: number;
}

export type DashboardEventKind =
  | 'tab-joined'
  | 'tab-left'
  | 'tab-left-mid-round'
  | 'cluster-lost'
  | 'quorum-lost'
  | 'quorum-restored'
  | 'update-rejected'
  | 'tab-quarantined'
  | 'proposal-refuted'
  | 'proposal-unconfirmed'
  | 'proposer-silent'
  /** A pair of tabs whose link failed now exchanges frames through the coordinator, or no more. */
  | 'link-relayed'
  | 'link-direct'
  /** Tabs that cannot reach each other were seated in different clusters. */
  | 'tabs-parted'
  | 'checkpoint'
  | 'control'
  | 'staleness'
  | 'iteration'
  /** Multi-node coordinator: Redis lost or back, the lease moved, a node down. */
  | 'node';

export interface DashboardEvent {
  at: number;
  kind: DashboardEventKind;
  message: string;
}

/** One closed iteration, for the curves over iterations and wall time and the CSV. */
export interface IterationPoint {
  iteration: number;
  /** ms since the epoch */
  at: number;
  trainingLoss: number | null;
  bytesSent: number;
  fp32EquivalentBytes: number;
}

export interface DashboardHistory {
  evaluations: DashboardEvaluation[];
  events: DashboardEvent[];
  /** Closed iterations, thinned to at most a few thousand points. */
  iterations: IterationPoint[];
}

export interface DashboardServerToClient {
  status: (status: DashboardStatus) => void;
  history: (history: DashboardHistory) => void;
  evaluation: (point: DashboardEvaluation) => void;
  event: (event: DashboardEvent) => void;
}
