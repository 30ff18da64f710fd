/**
 * socket.io events between tabs, the coordinator and the dashboard. Every event a tab sends
 * has a zod schema here; the coordinator validates against it before anything else and
 * answers a failure with a typed error code. Every event the coordinator sends a tab has one
 * too (`serverMessageSchemas`, checked against its interface with `satisfies`): the tab
 * validates what it receives and drops what does not parse. The TypeScript interfaces feed
 * socket.io's typed `Server<ClientToServer, ServerToClient>` on the server and the client in
 * the worker.
 */
import { z } from 'zod';
import { errorCodes, type ErrorCode } from './errors.ts';
import { aggregatorNameSchema, jobSpecSchema, type AggregatorName, type JobSpec } from './job.ts';

export const PROTOCOL_VERSION = 1;

/** Limits shared by both sides. */
export const limits = {
  /** Largest SDP or ICE candidate relayed. */
  maxSignalBytes: 16 * 1024,
  maxIdLength: 64,
  /** Events per second a connection may send on average, and its burst. */
  eventsPerSecond: 50,
  eventBurst: 200,
  /** Link reports (`link`) a tab may send per second on average, and its burst. */
  linkReportsPerSecond: 1,
  linkReportBurst: 16,
  /** Frames a tab may have the coordinator relay (`relay-frame`) per second, and its burst. */
  relayFramesPerSecond: 20,
  relayFrameBurst: 64,
} as const;

const id = z.string().min(1).max(limits.maxIdLength);
const finite = z.number().finite();
const count = z.number().int().nonnegative().finite();

export const backendSchema = z.enum(['webgpu', 'webgl', 'wasm', 'cpu', 'none']);
export type Backend = z.infer<typeof backendSchema>;

/**
 * Test-only attacks a tab may run. The register attacks (packages/core/src/attacks, one file
 * each; the tab's shell is packages/worker faults.ts), weak ones and those of the literature,
 * corrupt the tab's own register. The `proposal-*` modes leave registers honest and attack the
 * cluster's proposal: `proposal-scale` and `proposal-flip` rewrite the proposal frame this tab
 * sends as its cluster's proposer (×100, and −4×), `proposal-race` sends a proposal for every
 * iteration whether it is the proposer or not, as early as it can (its own register as the
 * cluster update), `proposal-silent` never proposes. The `relay-*` modes attack cluster
 * dissemination: as its cluster's relay the tab never forwards iteration frames
 * (`relay-withhold`) or forwards them altered (`relay-forge`, one bit of the delta flipped, so
 * the coordinator's signature no longer verifies).
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
  'proposal-scale',
  'proposal-flip',
  'proposal-race',
  'proposal-silent',
  'relay-withhold',
  'relay-forge',
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
      // "send me your register again": a member that misses it to confirm a proposal
      z.object({ type: z.literal('resend-register') }).strict(),
    ]),
  })
  .strict();
export type SignalMessage = z.infer<typeof signalSchema>;

/**
 * A tab's word on one WebRTC link of its cluster (issue 14, item 3): `failed` when a connection
 * attempt to `peer` failed or did not connect in time, `connected` when a link it had reported
 * failed (or that was relayed) came up. The coordinator relays the register frames of a pair
 * whose link keeps failing (packages/protocol `relay-frame`, apps/coordinator relay.ts).
 */
export const linkReportSchema = z
  .object({
    peer: id,
    state: z.enum(['failed', 'connected']),
    /** Connection attempts since the link was last connected. */
    attempts: count.max(1_000_000),
    /** Why the attempt failed (simple-peer's error code, `timeout`, ...), for the event log. */
    reason: z.string().max(64).optional(),
  })
  .strict();
export type LinkReport = z.infer<typeof linkReportSchema>;

/** Metadata of a frame a tab asks the coordinator to relay; the binary frame travels beside. */
export const relayFrameSchema = z.object({ to: id }).strict();
export type RelayFrameMeta = z.infer<typeof relayFrameSchema>;

/** Coordinator → tab: the peers whose frames go through the coordinator (the whole list). */
export interface RelayPeers {
  peers: string[];
}

/** Coordinator → tab: a frame a peer sent through the coordinator (validated by the tab). */
export interface RelayedFrame {
  from: string;
  frame: Uint8Array;
}

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

/** SHA-256 of a frame, lower-case hex. */
export const digestSchema = z.string().regex(/^[0-9a-f]{64}$/, 'a SHA-256 digest in hex');

/**
 * One register a proposal's aggregation took as input: the slot that wrote it and the SHA-256
 * of the register frame as the proposer received it. The order is the order the aggregation
 * used (it matters to the gradient-code decoder), so any member can recompute the same update.
 */
export const proposalInputSchema = z.object({ slot: count, digest: digestSchema }).strict();
export type ProposalInput = z.infer<typeof proposalInputSchema>;

/** HMAC-SHA256, lower-case hex (a voucher's MAC, a tab's voucher key). */
export const macSchema = z.string().regex(/^[0-9a-f]{64}$/, 'an HMAC-SHA256 in hex');

/**
 * A member's signed confirmation of its cluster's proposal, collected by the proposer over the
 * mesh and sent with the proposal (docs/architecture.md, _Confirmations bundled by the
 * proposer_): the member computed the frame whose SHA-256 is `digest`. `mac` is
 * HMAC-SHA256(the member's voucher key, core's voucherMessage) — the coordinator gave each tab
 * its own key, so the proposer can carry a voucher but not forge or alter one.
 */
export const voucherSchema = z.object({ tabId: id, digest: digestSchema, mac: macSchema }).strict();
export type Voucher = z.infer<typeof voucherSchema>;

/** Metadata sent with a proposal; the binary frame travels beside it. */
export const proposalMetaSchema = z
  .object({
    clusterId: count,
    /** Tabs whose updates the proposal aggregates (slots), for the dashboard and the filter. */
    contributors: z.array(count).max(64),
    /** The registers the aggregation took, in its order (members recompute from them). */
    inputs: z.array(proposalInputSchema).min(1).max(64),
    /** Updates the cluster's robust filter rejected, with the reason, for the event log. */
    rejected: z
      .array(z.object({ slot: count, reason: z.string().max(64) }))
      .max(64)
      .default([]),
    /** The members' vouchers the proposer collected (absent: the coordinator asks them). */
    vouchers: z.array(voucherSchema).max(64).optional(),
  })
  .strict();
export type ProposalMeta = z.infer<typeof proposalMetaSchema>;

/**
 * Coordinator → the other live members of a cluster whose proposer proposed: recompute the
 * cluster update of `iteration` from these registers with this rule and say what you get.
 */
export interface ConfirmRequest {
  clusterId: number;
  /** The base iteration the proposal was computed on (its frame header's iteration). */
  iteration: number;
  proposer: string;
  inputs: ProposalInput[];
  aggregator: { name: AggregatorName; f: number };
}

/** Why a member could not judge a proposal (it counts neither for nor against it). */
export const abstainReasons = [
  'missing-register', // it does not hold one of the inputs (joined late, link down)
  'register-mismatch', // it holds an input with another digest (someone equivocated)
  'not-member', // it is not (or no longer) in that cluster
  'unknown-rule', // it cannot run that aggregation
  'too-few-inputs', // fewer inputs than the rule waits for, and it holds registers left out
] as const;

/** A member's answer to a ConfirmRequest: the SHA-256 of the proposal frame it computed. */
export const confirmationSchema = z.discriminatedUnion('verdict', [
  z
    .object({
      verdict: z.literal('computed'),
      clusterId: count,
      iteration: count,
      proposer: id,
      digest: digestSchema,
    })
    .strict(),
  z
    .object({
      verdict: z.literal('abstain'),
      clusterId: count,
      iteration: count,
      proposer: id,
      reason: z.enum(abstainReasons),
      slots: z.array(count).max(64).optional(),
    })
    .strict(),
]);
export type Confirmation = z.infer<typeof confirmationSchema>;

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
      action: z.literal('set-staleness'),
      threshold: z.number().int().min(0).max(1000),
      /** Set by the coordinator's auto mode: why (shown on the dashboard). */
      reason: z.string().max(2000).optional(),
      /** The tab count the auto mode's analysis found fastest. */
      workers: z.number().int().min(1).max(1_000_000).optional(),
    })
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
   * Every other tab holding a seat in the cluster, live or not (one that lost its coordinator
   * connection keeps its seat for the resume grace): the tab keeps its WebRTC links to them, so
   * a short coordinator outage of a peer does not tear down the cluster's links (absent: peers).
   */
  linked?: PeerInfo[];
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
  /** Whether this tab is the one that may send the cluster's proposal (TabRegistry.proposerOf). */
  proposer: boolean;
  clusterCount: number;
}

/**
 * One STUN or TURN server as RTCPeerConnection takes it (RTCIceServer). The coordinator sends a
 * tab its list in the welcome; TURN entries carry short-lived credentials derived from a shared
 * secret (TURN REST API: username `<expiry unix seconds>:<tabId>`, credential
 * base64(HMAC-SHA1(secret, username)), coturn's `use-auth-secret`), never a static password.
 */
export const iceServerSchema = z
  .object({
    urls: z.union([
      z
        .string()
        .regex(/^(stun|stuns|turn|turns):/, 'a stun:, stuns:, turn: or turns: URL')
        .max(512),
      z
        .array(
          z
            .string()
            .regex(/^(stun|stuns|turn|turns):/, 'a stun:, stuns:, turn: or turns: URL')
            .max(512),
        )
        .min(1)
        .max(8),
    ]),
    username: z.string().min(1).max(256).optional(),
    credential: z.string().min(1).max(256).optional(),
  })
  .strict();
export type IceServer = z.infer<typeof iceServerSchema>;
export const iceServersSchema = z.array(iceServerSchema).max(16);

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
  /**
   * STUN/TURN servers for this tab's WebRTC links (iceServerSchema; the tab validates them).
   * Absent: host candidates only (one LAN). TURN credentials expire: a welcome after a
   * reconnect brings fresh ones.
   */
  iceServers?: IceServer[];
  /**
   * The coordinator's Ed25519 public key for iteration frames (iteration-signature.ts): a frame
   * a peer forwards is applied only when it verifies. Absent: the tab accepts iteration frames
   * from the coordinator's socket only.
   */
  iterationKey?: string;
  /**
   * This tab's voucher key (HMAC-SHA256 key, hex): it signs the confirmations it gives its
   * cluster's proposer. Absent: the tab's confirmations go to the coordinator only.
   */
  vouchKey?: string;
}

/** An iteration frame decoded (iteration-frame.ts): the tab's view of one closed iteration. */
export interface IterationStart {
  iteration: number;
  /** The agreed base moved by this decoded frame; apply to reach `iteration`'s base. */
  delta: Uint8Array | undefined;
  learningRate: number;
  phase: Phase;
  /** The coordinator's staleness threshold S at the close (iteration-frame.ts), if stated. */
  staleness?: number;
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
  confirmation: (answer: unknown) => void;
  /** A link of the tab's cluster failed or came up (linkReportSchema). */
  link: (report: unknown) => void;
  /** A frame for a peer whose link the coordinator relays (relayFrameSchema + bytes). */
  'relay-frame': (meta: unknown, frame: unknown) => void;
  /**
   * The tab has not seen an iteration after `after` (iterationRequestSchema): the coordinator
   * sends it the iteration frames it still holds after that one, if any.
   */
  'iteration-request': (request: unknown) => void;
}

/** A tab asking for the iteration frames after the one it holds (its relay withheld them). */
export const iterationRequestSchema = z
  .object({ after: z.number().int().min(-1).max(0xffffffff) })
  .strict();
export type IterationRequest = z.infer<typeof iterationRequestSchema>;

/**
 * The last iteration frames a coordinator keeps to answer `iteration-request`s: a tab missing
 * more than this many behind the newest it holds downloads the parameters instead.
 */
export const KEPT_ITERATION_FRAMES = 16;

/**
 * Why a welcomed tab has no seat: its network address group already holds the most seats it
 * may in every cluster with a vacancy (no group makes a majority of a cluster). It waits,
 * connected, and gets a `placement` when a seat its group may take opens.
 */
export interface Unseated {
  reason: 'address-group-full';
  /** The tab's address group as the coordinator sees it (e.g. `203.0.113.7/32`). */
  group: string;
}

export interface WorkerServerToClient {
  placement: (placement: Placement) => void;
  /** The tab waits without a seat (see Unseated); sent when it loses or cannot get one. */
  unseated: (info: Unseated) => void;
  /** An iteration frame (iteration-frame.ts), one binary message (socket-parser.ts). */
  iteration: (frame: Uint8Array) => void;
  signal: (message: { from: string; data: unknown }) => void;
  phase: (phase: Phase) => void;
  confirm: (request: ConfirmRequest) => void;
  rejected: (error: WireError) => void;
  /** Round-trip measurement: the tab acks at once. */
  ping: (ack: () => void) => void;
  /** The peers whose frames now travel through the coordinator (sent when the list changes). */
  'relay-peers': (info: RelayPeers) => void;
  /** A relayed frame from a peer. */
  'relayed-frame': (message: RelayedFrame) => void;
  /** Fresh STUN/TURN servers (TURN credentials expire: sent before the welcome's do). */
  'ice-servers': (servers: IceServer[]) => void;
}

// ---------------------------------------------------------------------------------------------
// Coordinator → tab. Objects are not strict (a newer coordinator may add fields; the tab keeps
// what it knows), but every field the tab reads is checked: ids, counts, enums, finite numbers,
// bounded arrays.

/** Largest cluster a placement may describe (peers, partitions), and global partitions a tab holds. */
const maxClusterSize = 256;
const maxGlobalPartitions = 1 << 16;

export const phaseSchema = z.enum(phases);

export const peerInfoSchema = z.object({ tabId: id, slot: count }) satisfies z.ZodType<PeerInfo>;

const clusterRuleSchema = z.object({ name: aggregatorNameSchema, f: count });

export const placementSchema = z.object({
  clusterId: count,
  slot: count,
  peers: z.array(peerInfoSchema).max(maxClusterSize),
  linked: z.array(peerInfoSchema).max(maxClusterSize).optional(),
  partitions: z
    .array(
      z.object({
        local: count,
        global: z.array(count).max(maxGlobalPartitions),
        coefficient: finite,
      }),
    )
    .max(maxClusterSize),
  clusterSize: z.number().int().min(1).max(maxClusterSize),
  redundancy: count,
  scheme: z.enum(['cyclic', 'fractional-repetition']),
  codeSeed: z.number().int(),
  aggregator: clusterRuleSchema,
  proposer: z.boolean(),
  clusterCount: count,
}) satisfies z.ZodType<Placement>;

/** A raw Ed25519 public key (32 bytes) in base64url without padding. */
export const iterationKeySchema = z.string().regex(/^[A-Za-z0-9_-]{43}$/);

export const welcomeSchema = z.object({
  tabId: id,
  resumeToken: z.string().min(1).max(256),
  job: jobSpecSchema,
  jobId: z.number().int().nonnegative().max(0xffffffff),
  dimension: z
    .number()
    .int()
    .min(1)
    .max(64 * 1024 * 1024),
  iteration: count,
  phase: phaseSchema,
  learningRate: z.number().finite().positive(),
  paramsUrl: z.string().min(1).max(2048),
  manifestUrl: z.string().min(1).max(2048),
  iceServers: iceServersSchema.optional(),
  iterationKey: iterationKeySchema.optional(),
  vouchKey: macSchema.optional(),
}) satisfies z.ZodType<Welcome>;

export const unseatedSchema = z.object({
  reason: z.literal('address-group-full'),
  group: z.string().min(1).max(128),
}) satisfies z.ZodType<Unseated>;

export const confirmRequestSchema = z.object({
  clusterId: count,
  iteration: count,
  proposer: id,
  inputs: z.array(proposalInputSchema).max(maxClusterSize),
  aggregator: clusterRuleSchema,
}) satisfies z.ZodType<ConfirmRequest>;

export const relayPeersSchema = z.object({
  peers: z.array(id).max(maxClusterSize),
}) satisfies z.ZodType<RelayPeers>;

/**
 * Binary data as socket.io delivers it (a Uint8Array or a Buffer at any offset of Node's pool,
 * an ArrayBuffer in browsers) as a Uint8Array whose offset is a multiple of 8 (copied when not),
 * so a decoder may view its payload as floats; undefined for anything else.
 */
export function alignedBytes(data: unknown): Uint8Array | undefined {
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (!(data instanceof Uint8Array)) return undefined;
  return data.byteOffset % 8 === 0 ? data : new Uint8Array(data);
}

/** Binary data, aligned (alignedBytes). */
export const binarySchema = z
  .union([z.instanceof(Uint8Array), z.instanceof(ArrayBuffer)])
  .transform((bytes) => alignedBytes(bytes)!);

export const relayedFrameSchema = z.object({
  from: id,
  frame: binarySchema,
}) satisfies z.ZodType<RelayedFrame>;

/** A signal the coordinator forwards from a peer (its `data` is checked by the mesh). */
export const forwardedSignalSchema = z.object({
  from: id,
  data: z.unknown(),
});

export const wireErrorSchema = z.object({
  code: z.enum(errorCodes),
  message: z.string().max(4096),
  event: z.string().max(64),
}) satisfies z.ZodType<WireError>;

/**
 * What a receiver needs of a zod schema: `safeParse` (zod's, structurally, so a side that
 * validates need not depend on zod itself).
 */
export interface MessageSchema<T> {
  safeParse(
    raw: unknown,
  ):
    | { success: true; data: T }
    | { success: false; error: { issues: readonly { message: string; path: PropertyKey[] }[] } };
}

/** What the tab checks each coordinator event against, by event name. */
export const serverMessageSchemas = {
  welcome: welcomeSchema,
  placement: placementSchema,
  unseated: unseatedSchema,
  phase: phaseSchema,
  confirm: confirmRequestSchema,
  signal: forwardedSignalSchema,
  rejected: wireErrorSchema,
  'relay-peers': relayPeersSchema,
  'relayed-frame': relayedFrameSchema,
  'ice-servers': iceServersSchema,
} as const;
