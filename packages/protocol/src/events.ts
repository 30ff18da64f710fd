/**
 * socket.io events between tabs, the coordinator and the dashboard. Every event a tab sends
 * has a zod schema here; the coordinator validates against it before anything else and
 * answers a failure with a typed error code. The TypeScript interfaces feed socket.io's typed
 * `Server<ClientToServer, ServerToClient>` on the server and the client in the worker.
 */
import { z } from 'zod';
import type { ErrorCode } from './errors.ts';
import { aggregatorNameSchema, type AggregatorName, type JobSpec } from './job.ts';

export const PROTOCOL_VERSION = 1;

/** Limits shared by both sides. */
export const limits = {
  /** Largest SDP or ICE candidate relayed. */
  maxSignalBytes: 16 * 1024,
  maxIdLength: 64,
  /** Events per second a connection may send on average, and its burst. */
  eventsPerSecond: 50,
  eventBurst: 200,
} as const;

const id = z.string().min(1).max(limits.maxIdLength);
const finite = z.number().finite();
const count = z.number().int().nonnegative().finite();

export const backendSchema = z.enum(['webgpu', 'webgl', 'wasm', 'cpu', 'none']);
export type Backend = z.infer<typeof backendSchema>;

/**
 * Test-only attacks a tab may run (packages/core/src/attacks, one file each; the tab's shell is
 * packages/worker faults.ts): the weak ones and those of the literature.
 */
export const faultModes = [
  'sign-flip',
  'scale',
  'nan',
  'random',
  'stale',
  'zero',
  'alie',
  'ipm',
  'min-max',
  'min-sum',
  'mimic',
  'sign-optimal',
  'drift',
] as const;
export const faultModeSchema = z.enum(faultModes);
export type FaultMode = z.infer<typeof faultModeSchema>;

export const helloSchema = z
  .object({
    protocolVersion: z.literal(PROTOCOL_VERSION),
    kind: z.enum(['browser', 'node']),
    backend: backendSchema.default('none'),
    fallbackAdapter: z.boolean().optional(),
    /** Token issued by an earlier welcome: a reconnecting tab gets its place back. */
    resumeToken: z.string().min(1).max(128).optional(),
    /** Test-only misbehaviour; refused unless the coordinator allows fault injection. */
    fault: faultModeSchema.optional(),
  })
  .strict();
export type Hello = z.infer<typeof helloSchema>;

export const signalSchema = z
  .object({
    to: id,
    /** simple-peer's signal object, relayed untouched; bounded in size by the server. */
    data: z.union([
      z.object({ type: z.enum(['offer', 'answer']), sdp: z.string().max(limits.maxSignalBytes) }),
      z.object({
        type: z.literal('candidate'),
        candidate: z.object({
          candidate: z.string().max(2048),
          sdpMLineIndex: z.number().int().nonnegative().nullable().optional(),
          sdpMid: z.string().max(64).nullable().optional(),
        }),
      }),
      z.object({ type: z.enum(['renegotiate', 'transceiverRequest']) }).passthrough(),
    ]),
  })
  .strict();
export type SignalMessage = z.infer<typeof signalSchema>;

export const tabStates = ['computing', 'waiting', 'idle', 'paused', 'quarantined'] as const;

export const reportSchema = z
  .object({
    state: z.enum(tabStates),
    steps: count,
    examplesPerSecond: finite.nonnegative(),
    computeMs: finite.nonnegative(),
    wallMs: finite.nonnegative(),
    /** Bytes this tab sent to its peers over WebRTC, and what fp32 would have cost. */
    peerBytesSent: count,
    peerFp32Bytes: count,
    trainingLoss: finite.nonnegative().nullable(),
    throttle: z.number().min(0).max(1),
    /**
     * Peers (tab ids) this tab's cluster filter has quarantined. The coordinator quarantines a
     * tab when a majority of the other live members of its cluster name it (one liar cannot).
     */
    quarantinedPeers: z.array(z.string().min(1).max(64)).max(64).optional(),
  })
  .strict();
export type TabReport = z.infer<typeof reportSchema>;

/** Metadata sent with a proposal; the binary frame travels beside it. */
export const proposalMetaSchema = z
  .object({
    clusterId: count,
    /** Tabs whose updates the proposal aggregates (slots), for the dashboard and the filter. */
    contributors: z.array(count).max(64),
    /** Updates the cluster's robust filter rejected, with the reason, for the event log. */
    rejected: z
      .array(z.object({ slot: count, reason: z.string().max(64) }))
      .max(64)
      .default([]),
  })
  .strict();
export type ProposalMeta = z.infer<typeof proposalMetaSchema>;

export const controlSchema = z.discriminatedUnion('action', [
  z.object({ action: z.literal('pause') }).strict(),
  z.object({ action: z.literal('resume') }).strict(),
  z
    .object({ action: z.literal('set-learning-rate'), learningRate: finite.positive().max(10) })
    .strict(),
  z
    .object({ action: z.literal('set-cluster-size'), size: z.number().int().min(1).max(32) })
    .strict(),
  z
    .object({
      action: z.literal('set-aggregator'),
      name: aggregatorNameSchema,
      f: z.number().int().min(0).max(15).optional(),
    })
    .strict(),
]);
export type ControlCommand = z.infer<typeof controlSchema>;

export const phases = ['waiting', 'training', 'paused', 'quorum-lost', 'done'] as const;
export type Phase = (typeof phases)[number];

export interface PeerInfo {
  tabId: string;
  slot: number;
}

export interface Placement {
  clusterId: number;
  slot: number;
  peers: PeerInfo[];
  /**
   * The cluster's gradient-code partitions this tab holds (s + 1 of them): for each, the global
   * data partitions it is made of and the coefficient of its gradient in the tab's message.
   */
  partitions: { local: number; global: number[]; coefficient: number }[];
  clusterSize: number;
  redundancy: number;
  scheme: 'cyclic' | 'fractional-repetition';
  /** Seed of the cluster's gradient code: every member builds the same code from it. */
  codeSeed: number;
  /** The cluster's aggregation rule for this iteration (the operator may change it). */
  aggregator: { name: AggregatorName; f: number };
  /** Whether this tab should send the cluster's proposal (the lowest live slot). */
  proposer: boolean;
  clusterCount: number;
}

export interface Welcome {
  tabId: string;
  resumeToken: string;
  job: JobSpec;
  jobId: number;
  dimension: number;
  iteration: number;
  phase: Phase;
  learningRate: number;
  /** Where to fetch the agreed parameters (an fp32 frame) and the data manifest. */
  paramsUrl: string;
  manifestUrl: string;
}

export interface IterationStart {
  iteration: number;
  /** The agreed base moved by this decoded frame; apply to reach `iteration`'s base. */
  delta: Uint8Array | undefined;
  learningRate: number;
  phase: Phase;
}

export interface WireError {
  code: ErrorCode;
  message: string;
  /** The event that was refused. */
  event: string;
}

export type Ack<T> = (response: { ok: true; value: T } | { ok: false; error: WireError }) => void;

export interface WorkerClientToServer {
  hello: (hello: unknown, ack: Ack<Welcome>) => void;
  signal: (message: unknown) => void;
  report: (report: unknown) => void;
  proposal: (meta: unknown, frame: unknown, ack: Ack<{ counted: boolean }>) => void;
}

export interface WorkerServerToClient {
  placement: (placement: Placement) => void;
  iteration: (start: IterationStart) => void;
  signal: (message: { from: string; data: unknown }) => void;
  phase: (phase: Phase) => void;
  rejected: (error: WireError) => void;
  /** Round-trip measurement: the tab acks at once. */
  ping: (ack: () => void) => void;
}
