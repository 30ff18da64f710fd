/**
 * What a coordinator is started with (CoordinatorOptions), and the fixed bounds its parts share.
 */
import type { Socket } from 'socket.io';
import type { Logger } from 'pino';
import type {
  DashboardEvent,
  JobSpec,
  WorkerClientToServer,
  WorkerServerToClient,
} from '@swarmgrad/protocol';
import type { AddressOptions } from './addresses.ts';
import type { TlsOptions } from './tls.ts';
import type { IceOptions } from './ice.ts';

export interface CoordinatorOptions {
  job: JobSpec;
  port?: number;
  host?: string;
  dataDir: string;
  adminToken?: string;
  /**
   * The secret the tabs' voucher keys derive from (32 bytes in hex; SWARMGRAD_VOUCH_SECRET).
   * Absent: random per process (nodes of one swarm take the first node's, through Redis).
   */
  vouchSecret?: string;
  allowFaultInjection?: boolean;
  /** Directory of the built web app (apps/web/dist); a placeholder page when absent. */
  webRoot?: string;
  logger?: Logger;
  /** Evaluate the held-out set (off in benchmarks that only measure rounds). */
  evaluate?: boolean;
  /** Tabs needed before the first iteration starts. */
  minTabs?: number;
  /** How long a disconnected tab keeps its seat for a reconnect with its resume token. */
  resumeGraceMs?: number;
  /** The least patience (ms) a cluster's proposer gets before the role moves on (default 10 s). */
  proposerPatienceMs?: number;
  /**
   * Redis URL: this process is one node of a multi-node coordinator sharing its round,
   * cluster and placement state through Redis (redis-state.ts). Absent: one process, no Redis.
   */
  redis?: string;
  /** Multi-node: lease and heartbeat expiry in ms (default 3000). */
  leaseMs?: number;
  /** Client addresses, address groups and joins per group (addresses.ts). */
  addresses?: AddressOptions;
  /** Directory a relative dataset.manifestUrl is resolved against (the job file's). */
  jobDir?: string;
  /** Serve the pages, the API and socket.io over TLS (tls.ts). */
  tls?: TlsOptions;
  /** STUN/TURN servers handed to each tab in its welcome (ice.ts). */
  ice?: IceOptions;
  /** engine.io heartbeat (default HEARTBEAT; tests shorten the interval to see pings sooner). */
  heartbeat?: Partial<Heartbeat>;
  /**
   * How iteration frames reach the tabs: `cluster` (default) sends one frame per cluster to a
   * relay tab that forwards it over the data channels its tabs reported up (core
   * swarm/dissemination.ts; a tab no relay covers gets it directly); `direct` writes it to every
   * tab. Several nodes (`redis`) plan the same relays, each writing to the tabs it holds.
   */
  dissemination?: Dissemination;
}

export type Dissemination = 'cluster' | 'direct';

export interface Heartbeat {
  /** ms between two engine.io pings of a connection. */
  pingInterval: number;
  /** ms a ping waits for its pong before the connection is dropped. */
  pingTimeout: number;
}

/**
 * The engine.io heartbeat (docs/architecture.md, _Heartbeats that survive a busy coordinator_).
 * A connection is dropped only when the coordinator has not handled a tab's pong within
 * pingTimeout of sending the ping, or the tab has seen no ping for pingInterval + pingTimeout:
 * both are the coordinator's own delay when it is busy, so pingTimeout is the stall the
 * coordinator may have (blocked event loop, or pongs queued behind broadcasts) without losing a
 * tab. A tab that vanished without closing its connection is noticed within interval + timeout.
 */
export const HEARTBEAT: Heartbeat = { pingInterval: 25_000, pingTimeout: 30_000 };

export interface EvaluationPoint {
  iteration: number;
  loss: number;
  accuracy: number;
  at: number;
}

/** An entry of the coordinator's event log: the dashboard's event, defined once in the protocol. */
export type LogEvent = DashboardEvent;

export type WorkerSocket = Socket<WorkerClientToServer, WorkerServerToClient>;

/** A socket that has not said hello within this long is disconnected. */
export const HELLO_TIMEOUT_MS = 10_000;
/** How long a proposal waits for its cluster's confirmations (below the tabs' 10 s ack timeout). */
export const CONFIRM_TIMEOUT_MS = 5_000;
/**
 * A live cluster whose proposer has neither proposed nor had a proposal pending this long into
 * an iteration loses the role to its next member (the silent tab is demoted): the larger of
 * SILENT_PROPOSER_MIN_MS and SILENT_PROPOSER_FACTOR × the median duration of the last
 * ITERATION_HISTORY iterations. Without it one tab holding the role and never proposing stalls
 * its cluster forever, and the swarm with it when that cluster is needed for the majority.
 */
export const SILENT_PROPOSER_MIN_MS = 10_000;
export const SILENT_PROPOSER_FACTOR = 5;
export const ITERATION_HISTORY = 21;
/**
 * A relay whose member had to ask for the frame it was sent to forward (it left, is slow, or
 * withholds) relays for nobody during this many iterations; another member does.
 */
export const RELAY_PASSED_OVER_ITERATIONS = 50;
