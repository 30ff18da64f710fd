/**
 * Where the coordinator's shared state lives: the round engine (base, iteration, held
 * proposals), the tab registry (tabs, clusters, seats) and the operator's settings.
 *
 * The coordinator changes that state only through commands (`Command`): a node turns what its
 * tabs and timers ask for into a command and appends it; every node applies every command, in
 * one order, with the same deterministic code (Coordinator.apply). Where the log lives is the
 * adapter:
 *
 * - `MemoryState` (the default, one process): append applies the command at once, in the
 *   caller's stack. Nothing is stored elsewhere and no Redis is needed; the coordinator behaves
 *   exactly as a single process always did.
 * - `RedisState` (redis-state.ts, `swarmgrad serve --redis <url>`): the log is a Redis stream.
 *   XADD orders commands atomically; each node reads the stream and applies the commands to its
 *   replica. A command whose precondition no longer holds where it lands in the log (a second
 *   `close` of an iteration, a `leave` of a socket that was replaced, a proposal from a tab that
 *   moved) changes nothing on every node alike, so two nodes never close one iteration with
 *   contradictory results.
 *
 * Commands carry everything that is not a pure function of the log: ids and tokens drawn by the
 * submitting node, and its clock (`at`) wherever placement reads the time.
 */
import type { ClosedIteration } from '@swarmgrad/core';
import type { Backend, ControlCommand, FaultMode, TabReport } from '@swarmgrad/protocol';

export interface CommandHeader {
  /** Unique per command: `<node>:<sequence>`. */
  id: string;
  /** The node that appended it. */
  node: string;
  /** The appending node's clock (ms since the epoch). */
  at: number;
}

export interface EvaluationRecord {
  iteration: number;
  loss: number;
  accuracy: number;
  at: number;
}

export type Command = CommandHeader &
  (
    | {
        kind: 'join';
        tabId: string;
        resumeToken: string;
        helloKind: 'browser' | 'node';
        backend: Backend;
        fallbackAdapter: boolean | undefined;
        fault: FaultMode | undefined;
        socketId: string;
        /** The tab's address group (addresses.ts), so every node places it alike. */
        addressGroup?: string | undefined;
      }
    | { kind: 'leave'; tabId: string; socketId: string }
    | { kind: 'rtt'; tabId: string; rttMs: number }
    | {
        kind: 'proposal';
        tabId: string;
        clusterId: number;
        baseIteration: number;
        /** The validated update frame as the tab sent it. */
        frame: Uint8Array;
        /** Decoded by the submitting node (MemoryState only: never serialised). */
        update?: Float32Array;
        /** Its header's register staleness, read by the submitting node. */
        staleness: number;
        /** Its header's mean step delay (absent in logs written before it: the staleness). */
        stepDelay?: number;
        /** SHA-256 of the frame (core frameDigest), computed by the submitting node. */
        digest: string;
        inputs: { slot: number; digest: string }[];
        rejected: { slot: number; reason: string }[];
        /** Members' vouchers whose MACs the submitting node checked: (tab id, digest). */
        vouched?: [string, string][];
      }
    /** A member's answer to a confirm request for its cluster's pending proposal. */
    | {
        kind: 'confirmation';
        tabId: string;
        clusterId: number;
        iteration: number;
        proposer: string;
        answer: { kind: 'computed'; digest: string } | { kind: 'abstain'; reason: string };
      }
    /** A pending proposal's confirmations are no longer waited for. */
    | { kind: 'confirm-timeout'; clusterId: number; proposalId: string }
    /** The cluster's proposer had not proposed the iteration after the coordinator's patience. */
    | { kind: 'proposer-silent'; clusterId: number; iteration: number; tabId: string }
    /**
     * The lease holder closed the current iteration: every node adopts this result (the
     * agreed delta frame) without recomputing it (issue 17 item 4).
     */
    | ({ kind: 'closed' } & Omit<ClosedIteration, 'deltaNorm'>)
    | { kind: 'control'; command: ControlCommand }
    | { kind: 'evaluated'; point: EvaluationRecord }
    /** A node stopped heartbeating: the tabs it held are gone. */
    | { kind: 'node-down'; down: string }
    /** The peers a tab's robust filter quarantined (its report), for quarantine by majority. */
    | { kind: 'suspects'; tabId: string; peers: string[] }
    /** Two tabs' direct link does not connect (`apart`), or connected after all. */
    | { kind: 'apart'; a: string; b: string; apart: boolean }
  );

/** The part of a tab's report the status shows (node-share.ts). */
export type SharedReport = Pick<
  TabReport,
  'state' | 'steps' | 'examplesPerSecond' | 'trainingLoss'
>;

/**
 * What only one node knows, shared with the others every heartbeat so that each node's status
 * shows the whole swarm (node-share.ts): its tabs' reports and its counters.
 */
export interface NodeShare {
  /** The last report of each connected tab this node holds. */
  reports: [tabId: string, report: SharedReport][];
  bytesSent: number;
  fp32EquivalentBytes: number;
  byPath: Record<string, number>;
  relayedFrames: number;
  relayedBytes: number;
  iterationFrames: Record<string, number>;
  rejected: Record<string, number>;
}

/** What a node reports about the shared state (multi-node mode only). */
export interface NodeStatus {
  id: string;
  /** Redis reachable. */
  redis: 'up' | 'down';
  /** This node holds the lease (it closes iterations, evaluates and checkpoints). */
  leaseHolder: boolean;
  /** Live nodes (by heartbeat) as last seen. */
  nodes: string[];
  /** Id of the last log entry applied here. */
  applied: string;
}

export interface SharedStateHooks {
  /** Applies one command to this node's replica (synchronous, deterministic). */
  apply(command: Command): void;
  /** The replica as plain data, taken between two commands. */
  exportReplica(): unknown;
  importReplica(state: unknown): void;
  /** Shared storage became unreachable or reachable again. */
  availability(up: boolean): void;
  /** This node gained or lost the evaluation/checkpoint lease. */
  lease(held: boolean): void;
}

export interface SharedState {
  readonly nodeId: string;
  /** Appends a command; `failed` runs when it cannot be appended (it then changes nothing). */
  append(command: Command, failed: (error: Error) => void): void;
  /** Whether this node evaluates and checkpoints now (always, in memory). */
  holdsLease(): boolean;
  /** Whether commands can be appended now. */
  available(): boolean;
  /** Stores the replica (taken now) for nodes that join later; lease holder only. */
  saveSnapshot(): void;
  /** What this node alone knows (node-share.ts), shared with the others from now on. */
  share(own: NodeShare): void;
  /** The other live nodes' shares as last read (none with one process). */
  sharedByOthers(): readonly NodeShare[];
  status(): NodeStatus | undefined;
  close(): Promise<void>;
}

const NO_SHARES: readonly NodeShare[] = Object.freeze([]);

/** One process: commands apply at once. */
export class MemoryState implements SharedState {
  readonly nodeId = 'local';
  constructor(private readonly apply: (command: Command) => void) {}
  append(command: Command): void {
    this.apply(command);
  }
  holdsLease(): boolean {
    return true;
  }
  available(): boolean {
    return true;
  }
  saveSnapshot(): void {}
  share(): void {}
  sharedByOthers(): readonly NodeShare[] {
    // one array for good: SwarmView indexes the others' reports once per array it is given
    return NO_SHARES;
  }
  status(): undefined {
    return undefined;
  }
  async close(): Promise<void> {}
}
