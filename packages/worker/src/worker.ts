/**
 * The tab's worker runtime: everything between "Donate" and "Leave". It wires the coordinator
 * client (client.ts), the backend choice (backend.ts), the data partitions (protocol's partition.ts), the
 * local training (trainer.ts), the cluster mesh (mesh.ts) and the cluster's round state machine
 * (core's swarm/cluster-round.ts) into one object with a small API for the page:
 *
 *   const worker = createWorker({ url: location.origin, PeerCtor, wasmPath: '/tfjs-wasm/' });
 *   worker.on('status', render);
 *   await worker.start();
 *   worker.setThrottle(0.5); worker.pause(); worker.resume(); await worker.leave();
 *
 * One iteration, as run here: the coordinator's `iteration` event moves the agreed base; the
 * tab takes L local steps per local gradient-code partition from it (its data downloaded and
 * SHA-256 checked), forms its register message (coded: Σ_j B[slot][j]·u_j; robust: the mean
 * of its u_j — see cluster-round.ts for why both have the same magnitude), codes it with the
 * job's codec (1-bit with error feedback by default, one encoder per tab), frames it
 * (round 0, senderSlot = slot, iteration = base iteration) and publishes it to every peer over
 * the mesh. Peers' frames pass the door (decodeRegister) into the ClusterRound, which decides
 * when to aggregate; the proposer codes the cluster update deterministically (core's
 * encodeProposal), asks the other members over the mesh to recompute it from the same
 * registers (a `confirm` peer message), and sends it to the coordinator (`proposal`, meta
 * {clusterId, contributors, inputs, rejected, vouchers}) with the vouchers they sign for the
 * digest they get (core's swarm/voucher.ts); members it brings no voucher of are asked by the
 * coordinator (`confirm`) and answer it directly, so no single tab decides what its cluster
 * proposes. The coordinator runs the majority-cluster agreement
 * over the confirmed proposals and broadcasts the next delta. A tab that joins mid-training downloads the current parameters and starts at
 * the current iteration; a dropped coordinator connection is re-established by the client and
 * the tab keeps its seat (resume token); its WebRTC links survive the coordinator outage.
 */
import type * as tfl from '@tensorflow/tfjs-layers';
import {
  ClusterRound,
  REGISTERS_AHEAD,
  allFinite,
  codedMessage,
  decodeFrameInto,
  decodeRegister,
  encodeProposal,
  encodeToFrame,
  frameDigest,
  getCodec,
  majorityOf,
  signVoucher,
  robustMessage,
  type AggregateResult,
  type AggregationMode,
  type RegisterAge,
  type ClusterProposal,
  type ClusterRoundOptions,
  type RecomputeResult,
  type CodecEncoder,
  type WindowReport,
} from '@swarmgrad/core';
import {
  decodePeerMessage,
  encodePeerMessage,
  hasIterationMagic,
  hasPeerMessageMagic,
  parseFrame,
  stalenessLimit,
  verifyPartition,
  type DataManifest,
  type PartitionData,
  type Confirmation,
  type ConfirmRequest,
  type Backend,
  type FaultMode,
  type JobSpec,
  type Phase,
  type Placement,
  type ProposalInput,
  type PeerMessage,
  type ProposalMeta,
  type TabReport,
  type Welcome,
} from '@swarmgrad/protocol';
import { selectBackend, isNode, type BackendChoice, type BackendName } from './backend.ts';
import { CoordinatorClient, type BaseMoved, type IterationFrameStats } from './client.ts';
import { FaultInjector } from './faults.ts';
import { Mesh, type LinkConnection, type LinkState, type PeerConstructor } from './mesh.ts';
import { buildModel, layerParameterCounts, parameterCount } from '@swarmgrad/model';
import {
  Emitter,
  consoleLogger,
  sleep,
  systemClock,
  yieldToEventLoop,
  type Clock,
  type Logger,
} from './runtime.ts';
import { Trainer, type LocalPartition, type LocalWorkSettings } from './trainer.ts';
import { PIPELINE_MAX_STEPS_FACTOR, PipelineLoop, type PipelineRegister } from './pipeline-loop.ts';
import { TrainingThread, type TrainingThreadHandle } from './thread-pipeline.ts';

export interface WorkerOptions {
  /** Coordinator URL(s) (origin, e.g. http://host:8080); several are tried round robin. */
  url: string | string[];
  /** Force a backend (still checked; falls back to measuring) or 'auto' (default). */
  backend?: BackendName | 'auto';
  /** Backends to consider (default: webgpu, webgl, wasm, cpu in a browser; wasm, cpu in Node). */
  backends?: BackendName[];
  /** Node WebRTC implementation handed to simple-peer (e.g. @roamhq/wrtc). */
  wrtc?: unknown;
  /** simple-peer's constructor (the web build passes simple-peer/simplepeer.min.js). */
  PeerCtor?: PeerConstructor;
  /** Browser: where the tfjs .wasm files are served (default '/tfjs-wasm/'). */
  wasmPath?: string;
  /** Test-only misbehaviour of this tab's outgoing register (see faults.ts). */
  fault?: FaultMode;
  /** Share of wall time spent computing, 0..1 (default 1). */
  throttle?: number;
  logger?: Logger;
  clock?: Clock;
  /** Reported in hello (default: 'node' in Node, else 'browser'). */
  kind?: 'browser' | 'node';
  /**
   * RTCIceServer list for the mesh; default: the welcome's (the coordinator's STUN/TURN servers,
   * fresh TURN credentials with every welcome), else [] — host candidates only.
   */
  iceServers?: unknown[];
  /** Interval of `report` events to the coordinator (default 2000 ms). */
  reportIntervalMs?: number;
  /** Interval of GET /api/status for accuracy and loss (default 5000 ms; 0 = never). */
  statusPollMs?: number;
  fetch?: typeof fetch;
  /** Tuning of the cluster round (backup window, patience, quarantine). */
  cluster?: Pick<
    ClusterRoundOptions,
    'backupWindow' | 'backupWarmup' | 'minPatienceMs' | 'patienceFactor' | 'quarantine'
  >;
  /** Mesh link connect timeout (default 10 s). */
  connectTimeoutMs?: number;
  /**
   * Starts a training thread (a dedicated Web Worker running training-thread.ts's
   * `serveTrainingThread`; the app's bundler builds it). A pipelined job then takes its local
   * steps there when the chosen backend is wasm or cpu; without it, or when the thread cannot start,
   * on the page's thread.
   */
  trainingThread?: () => TrainingThreadHandle;
}

export type WorkerState =
  | 'idle'
  | 'selecting-backend'
  | 'connecting'
  | 'loading'
  | 'computing'
  | 'waiting'
  | 'paused'
  | 'left'
  | 'error';

export interface PeerStatus {
  tabId: string;
  slot: number;
  link: LinkState | 'none';
  bytesSent: number;
  bytesReceived: number;
  /** Frames from this peer refused at the door or by the reassembler. */
  rejected: number;
  /** The coordinator relays this peer's frames (the link does not connect); frames each way. */
  relayed: boolean;
  relayedSent: number;
  relayedReceived: number;
}

export interface AggregateSummary {
  iteration: number;
  mode: AggregationMode;
  contributors: number[];
  rejected: { slot: number; reason: string }[];
  approximate: boolean;
  timedOut: boolean;
  waitedFor: number;
  live: number;
  elapsedMs: number;
}

export interface WorkerStatus {
  state: WorkerState;
  connected: boolean;
  url: string | undefined;
  tabId: string | undefined;
  kind: 'browser' | 'node';
  /** The backend in use and why, with every candidate's trial. */
  backend: BackendChoice | undefined;
  job:
    | {
        name: string;
        dimension: number;
        model: string;
        aggregator: string;
        f: number;
        mode: AggregationMode;
        codec: string;
        blockSize: number;
        localSteps: number;
        batchSize: number;
      }
    | undefined;
  phase: Phase | undefined;
  iteration: number | undefined;
  /** The last iteration this tab computed a register for (-1: none since its seat changed). */
  computedIteration: number;
  /** Pipelined work (job.pipeline): the last register's staleness and its steps a partition. */
  pipeline: {
    enabled: boolean;
    /** Where the steps run: a training thread, or the page's (or Node's) own thread. */
    thread: boolean;
    /** Why a training thread is not used (none asked, another backend, it failed to start). */
    threadNote: string | null;
    /** The thread in use was started while the backends were timed (the status said pipelined). */
    threadStartedEarly: boolean;
    lastStaleness: number | null;
    /** Its steps' mean delay (≤ lastStaleness; what the coordinator's step scale reads). */
    lastStepDelay: number | null;
    lastSteps: number | null;
    /** Progress thrown away as older than the job's staleness bound. */
    staleDropped: number;
  };
  learningRate: number | undefined;
  steps: number;
  examples: number;
  examplesPerSecond: number;
  computeMs: number;
  trainingLoss: number | null;
  throttle: number;
  paused: boolean;
  wire: {
    /** Bytes this tab wrote to its data channels (chunk and frame headers included). */
    peerBytesSent: number;
    /** What the same updates would have cost as fp32 (4 bytes per parameter per frame). */
    peerFp32Bytes: number;
    /** peerFp32Bytes / peerBytesSent. */
    compression: number | null;
    /** Bits per parameter per update sent on a link (≈ 1 + 32/B plus headers). */
    bitsPerParameter: number | null;
    /** Bytes of confirm requests and vouchers this tab wrote to its data channels. */
    controlBytesSent: number;
    framesSent: number;
    framesReceived: number;
    bytesReceived: number;
    proposalBytes: number;
    /** Frames sent to and received from peers through the coordinator (links that fail). */
    relayedFramesSent: number;
    relayedFramesReceived: number;
  };
  cluster:
    | {
        id: number;
        slot: number;
        size: number;
        redundancy: number;
        scheme: 'cyclic' | 'fractional-repetition';
        proposer: boolean;
        peers: PeerStatus[];
        /** Registers held for the current iteration, and how many the backup rule waits for. */
        held: number[];
        waitFor: number;
        lastAggregate: AggregateSummary | undefined;
        /**
         * Robust mode: the peers this tab's filter quarantined and its quarantine's last closed
         * window (distances to the reference, alignment with the others, strikes given).
         */
        quarantine: { quarantined: string[]; lastWindow: WindowReport | undefined };
      }
    | undefined;
  proposals: { sent: number; counted: number; refused: number; lastError: string | undefined };
  /**
   * Requests to recompute a peer's proposal (from the coordinator, or from the proposer over the
   * mesh): answered with a digest or an abstention, waiting for registers, and replaced before
   * their answer by a newer request of the same asker.
   */
  confirmations: { computed: number; abstain: number; waiting: number; superseded: number };
  /**
   * Iteration frames (issue 17, item 2): applied from the coordinator's socket and from a peer
   * (the cluster's relay), forwarded by this tab as its cluster's relay, peer frames refused
   * (unparsable or not signed by the coordinator), and requests for missed iterations.
   */
  iterationFrames: IterationFrameStats;
  rejected: { total: number; byCode: Record<string, number> };
  accuracy: number | null;
  loss: number | null;
  evaluatedAt: number | null;
  error: string | undefined;
}

export type WorkerEvents = {
  status: (status: WorkerStatus) => void;
  /** The base moved to this iteration. */
  iteration: (iteration: number) => void;
  aggregate: (summary: AggregateSummary) => void;
  proposal: (result: { iteration: number; ok: boolean; counted: boolean; code?: string }) => void;
  /**
   * The coordinator connection went down (false: socket.io's disconnect) or is up again (true:
   * welcomed, after the first connection or a reconnection). Not throttled, unlike `status`.
   */
  connection: (connected: boolean) => void;
  error: (error: Error) => void;
};

export interface SwarmWorker {
  /** Picks the backend, connects, joins a cluster and trains. Rejects if the hello is refused. */
  start(): Promise<void>;
  /** Stops computing (the cluster goes on without this tab's register). */
  pause(): void;
  resume(): void;
  /** Fraction of wall time spent computing, 0..1 (0 = no computing). */
  setThrottle(share: number): void;
  /** Leaves for good: closes the coordinator connection and every link, frees the model. */
  leave(): Promise<void>;
  status(): WorkerStatus;
  on<K extends keyof WorkerEvents>(event: K, listener: WorkerEvents[K]): () => void;
  off<K extends keyof WorkerEvents>(event: K, listener: WorkerEvents[K]): void;
  /** A copy of the agreed parameters and their iteration (tests, model download). */
  base(): { iteration: number; params: Float32Array } | undefined;
  /**
   * Debug and tests: the mesh's links with their frame counts and current RTCPeerConnection
   * (simple-peer's `_pc`), e.g. to read data-channel bytes from `getStats()`. Empty before the
   * job is set up.
   */
  links(): LinkConnection[];
}

export function createWorker(options: WorkerOptions): SwarmWorker {
  return new TabWorker(options);
}

interface JobRuntime {
  job: JobSpec;
  jobId: number;
  dimension: number;
  model: tfl.LayersModel;
  inputSize: number;
  trainer: Trainer;
  /** The trainer's batch-order seed (a training thread's trainer takes the same). */
  seed: number;
  registerEncoder: CodecEncoder;
  round: ClusterRound;
  mesh: Mesh;
}

interface PendingProposal {
  iteration: number;
  meta: ProposalMeta;
  frame: Uint8Array;
  /** frameDigest(frame): the digest the members' vouchers must name. */
  digest: string;
  /** Still collecting the members' vouchers: the proposal is sent when this ends. */
  vouching?: { expected: Set<string>; answered: Set<string>; needed: number };
}

const PARTITION_CACHE_LIMIT = 64;
export { PIPELINE_MAX_STEPS_FACTOR };
/** How long a confirm request waits for an input register still on its way. */
const CONFIRM_WAIT_MS = 3000;
/**
 * How long a proposer waits for its members' vouchers before it sends the proposal with those
 * it has (the coordinator asks the others): a member itself waits up to CONFIRM_WAIT_MS.
 */
const VOUCH_WAIT_MS = CONFIRM_WAIT_MS + 500;

class TabWorker extends Emitter<WorkerEvents> implements SwarmWorker {
  private readonly options: WorkerOptions;
  private readonly logger: Logger;
  private readonly clock: Clock;
  private readonly urls: string[];
  private readonly kind: 'browser' | 'node';
  private client: CoordinatorClient | undefined;
  /** Iteration frames this tab forwarded to its peers as its cluster's relay. */
  private forwardedFrames = 0;
  private runtime: JobRuntime | undefined;
  private backendChoice: BackendChoice | undefined;
  private PeerCtor: PeerConstructor | undefined;
  private placement: Placement | undefined;
  private placementKey = '';
  private data: { key: string; partitions: LocalPartition[] } | undefined;
  private loadingKey: string | undefined;
  private manifest: DataManifest | undefined;
  private readonly partitionCache = new Map<number, PartitionData>();
  private computing: Promise<void> | undefined;
  private computedIteration = -1;
  /** A pipelined tab's step loop on this thread (job.pipeline; pipeline-loop.ts). */
  private pipelined:
    { loop: PipelineLoop; runtime: JobRuntime; key: string; identity: number } | undefined;
  /** A pipelined tab's training thread (options.trainingThread; thread-pipeline.ts). */
  private thread:
    | { client: TrainingThread; runtime: JobRuntime; state: 'starting' | 'ready' | 'failed' }
    | undefined;
  private threadNote: string | null = null;
  /**
   * A training thread started while the backends are measured, when the coordinator's status
   * says the job is pipelined: its script (TF.js and the wasm glue) loads meanwhile instead of
   * after the tab is seated. Taken by the first TrainingThread, dropped when none will be.
   */
  private spareThread: { handle: TrainingThreadHandle; failed: boolean } | undefined;
  private threadStartedEarly = false;
  /** Pipelined progress thrown away as older than the job's staleness bound. */
  private staleProgressDropped = 0;
  private lastPipelined: { staleness: number; stepDelay: number; steps: number } | undefined;
  /** Bumped when the coordinator gives this tab a new identity (forgetIdentity). */
  private identity = 0;
  private fault: FaultInjector | undefined;
  private pendingProposal: PendingProposal | undefined;
  private pendingConfirms: {
    request: ConfirmRequest;
    until: number;
    asked?: boolean;
    /** Asked by the proposer over the mesh: the answer is a voucher to it. */
    replyTo?: string;
  }[] = [];
  /** proposal-race fault: this tab's own register of the iteration, as a proposal. */
  private raceProposal: Parameters<TabWorker['queueProposal']>[0] | undefined;
  private readonly confirmations = { computed: 0, abstain: 0, superseded: 0 };
  /** Writers asked to resend their register, by iteration (askForResends). */
  private readonly resendsAsked = new Map<number, Set<number>>();
  private sendingProposal = false;
  private started = false;
  private selecting = false;
  private left = false;
  private paused = false;
  private throttle: number;
  private resumeWaiters: (() => void)[] = [];
  private lastYield = 0;
  private startedAt = 0;
  private steps = 0;
  private examples = 0;
  private computeMs = 0;
  private trainingLoss: number | null = null;
  private readonly rate: { at: number; examples: number }[] = [];
  private readonly rejectedByCode: Record<string, number> = {};
  private readonly rejectedByPeer = new Map<string, number>();
  private proposals = {
    sent: 0,
    counted: 0,
    refused: 0,
    lastError: undefined as string | undefined,
  };
  private proposalBytes = 0;
  private lastAggregate: AggregateSummary | undefined;
  private evaluation = {
    accuracy: null as number | null,
    loss: null as number | null,
    at: null as number | null,
  };
  private errorMessage: string | undefined;
  private timers: unknown[] = [];
  private statusScheduled: unknown;
  /** Wire totals of meshes already closed (a job change makes a new one). */
  private wireCarry = {
    bytesSent: 0,
    controlBytesSent: 0,
    fp32Bytes: 0,
    framesSent: 0,
    framesReceived: 0,
    bytesReceived: 0,
    relayedFramesSent: 0,
    relayedFramesReceived: 0,
  };
  /** Peers whose link this tab reported failed and that have not connected since. */
  private readonly failedLinks = new Set<string>();

  constructor(options: WorkerOptions) {
    super();
    this.options = options;
    this.logger = options.logger ?? consoleLogger('warn');
    this.clock = options.clock ?? systemClock;
    this.urls = (Array.isArray(options.url) ? options.url : [options.url]).map((u) =>
      u.replace(/\/+$/, ''),
    );
    if (this.urls.length === 0) throw new RangeError('createWorker: at least one url');
    this.kind = options.kind ?? (isNode() ? 'node' : 'browser');
    this.throttle = clampShare(options.throttle ?? 1);
  }

  // ------------------------------------------------------------------ API

  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    this.startedAt = this.clock.now();
    try {
      this.PeerCtor = this.options.PeerCtor ?? (await loadSimplePeer());
      this.selecting = true;
      this.scheduleStatus();
      const probed = await this.probeJob();
      if (probed?.pipeline === true) this.startSpareThread();
      const model = probed?.model;
      if (model !== undefined) this.backendChoice = await this.chooseBackend(model);
      this.selecting = false;
      this.scheduleStatus();
      if (this.left) return;
      const client = new CoordinatorClient({
        urls: this.urls,
        hello: () => ({
          kind: this.kind,
          backend: (this.backendChoice?.backend ?? 'none') as Backend,
          ...(this.backendChoice?.fallbackAdapter === undefined
            ? {}
            : { fallbackAdapter: this.backendChoice.fallbackAdapter }),
          ...(this.options.fault === undefined ? {} : { fault: this.options.fault }),
        }),
        logger: this.logger,
        clock: this.clock,
        ...(this.options.fetch ? { fetch: this.options.fetch } : {}),
      });
      this.client = client;
      client.on('welcome', (welcome, info) => this.onWelcome(welcome, info));
      client.on('placement', (placement) => this.onPlacement(placement));
      client.on('confirm', (request) => this.onConfirmRequest(request));
      client.on('base', (moved) => this.onBase(moved));
      client.on('signal', ({ from, data }) => this.runtime?.mesh.handleSignal(from, data));
      client.on('relayPeers', (peers) => this.runtime?.mesh.setRelayed(peers));
      client.on('relayedFrame', (from, frame) => this.runtime?.mesh.receiveRelayed(from, frame));
      client.on('forward', (frame) => this.forwardIteration(frame));
      // new links use them; links already up keep the allocation they have
      client.on('iceServers', (servers) =>
        this.runtime?.mesh.setIceServers(this.options.iceServers ?? servers),
      );
      client.on('phase', () => {
        this.scheduleStatus();
        this.kick();
      });
      client.on('connection', (connected) => {
        this.emit('connection', connected);
        this.scheduleStatus();
      });
      client.on('fatal', (error) => {
        this.errorMessage = `${error.code}: ${error.message}`;
        this.scheduleStatus();
      });
      await client.start();
      if (this.backendChoice === undefined && this.runtime) {
        // the status probe failed: measure now on the welcome's model
        this.backendChoice = await this.chooseBackend(this.runtime.job.model);
      }
      const every = this.options.reportIntervalMs ?? 2000;
      this.every(every, () => this.sendReport());
      const poll = this.options.statusPollMs ?? 5000;
      if (poll > 0) this.every(poll, () => void this.pollStatus());
      this.scheduleStatus();
    } catch (error) {
      this.selecting = false;
      const err = error instanceof Error ? error : new Error(String(error));
      this.errorMessage = err.message;
      this.scheduleStatus();
      this.emit('error', err);
      throw err;
    }
  }

  pause(): void {
    if (this.paused) return;
    this.paused = true;
    this.runtime?.round.setSelfActive(false);
    // a training thread stops at its next step (this thread's loop waits in pace)
    this.kick();
    this.scheduleStatus();
  }

  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    this.runtime?.round.setSelfActive(this.throttle > 0);
    this.wake();
    this.kick();
    this.scheduleStatus();
  }

  setThrottle(share: number): void {
    this.throttle = clampShare(share);
    this.runtime?.round.setSelfActive(!this.paused && this.throttle > 0);
    this.wake();
    this.kick();
    this.scheduleStatus();
  }

  async leave(): Promise<void> {
    if (this.left) return;
    this.left = true;
    for (const timer of this.timers) clearInterval(timer as ReturnType<typeof setInterval>);
    this.timers = [];
    this.wake();
    this.client?.close();
    const runtime = this.runtime;
    if (runtime) {
      runtime.round.dispose();
      this.carryWire(runtime.mesh);
      runtime.mesh.close();
    }
    this.stopPipeline();
    await this.computing?.catch(() => undefined);
    runtime?.model.dispose();
    this.emit('status', this.status());
    this.removeAllListeners();
  }

  base(): { iteration: number; params: Float32Array } | undefined {
    const base = this.client?.base;
    if (!base) return undefined;
    return { iteration: this.client!.iteration, params: Float32Array.from(base) };
  }

  links(): LinkConnection[] {
    return this.runtime?.mesh.connections() ?? [];
  }

  status(): WorkerStatus {
    this.thread?.client.collectSteps();
    const runtime = this.runtime;
    const client = this.client;
    const mesh = runtime?.mesh;
    const bytesSent = this.wireCarry.bytesSent + (mesh?.bytesSent ?? 0);
    const fp32Bytes = this.wireCarry.fp32Bytes + (mesh?.fp32Bytes ?? 0);
    const placement = this.placement;
    const links = new Map((mesh?.linkInfo() ?? []).map((l) => [l.tabId, l]));
    const round = runtime?.round;
    const job = runtime?.job;
    return {
      state: this.state(),
      connected: client?.connected ?? false,
      url: client?.url,
      tabId: client?.welcome?.tabId,
      kind: this.kind,
      backend: this.backendChoice,
      job:
        job && runtime
          ? {
              name: job.name,
              dimension: runtime.dimension,
              model: 'preset' in job.model ? job.model.preset : 'custom',
              aggregator: runtime.round.aggregatorInUse.name,
              f: runtime.round.aggregatorInUse.f,
              mode: runtime.round.mode,
              codec: job.codec.name,
              blockSize: job.codec.blockSize,
              localSteps: job.localSteps,
              batchSize: job.batchSize,
            }
          : undefined,
      phase: client?.welcome ? client.phase : undefined,
      iteration: client?.base ? client.iteration : undefined,
      computedIteration: this.computedIteration,
      pipeline: {
        enabled: this.runtime?.job.pipeline ?? false,
        thread: this.thread?.state === 'ready',
        threadNote: this.threadNote,
        threadStartedEarly: this.thread !== undefined && this.threadStartedEarly,
        lastStaleness: this.lastPipelined?.staleness ?? null,
        lastStepDelay: this.lastPipelined?.stepDelay ?? null,
        lastSteps: this.lastPipelined?.steps ?? null,
        staleDropped: this.staleProgressDropped,
      },
      learningRate: client?.welcome ? client.learningRate : undefined,
      steps: this.steps,
      examples: this.examples,
      examplesPerSecond: this.examplesPerSecond(),
      computeMs: this.computeMs,
      trainingLoss: this.trainingLoss,
      throttle: this.throttle,
      paused: this.paused,
      wire: {
        peerBytesSent: bytesSent,
        peerFp32Bytes: fp32Bytes,
        compression: bytesSent > 0 ? fp32Bytes / bytesSent : null,
        bitsPerParameter: fp32Bytes > 0 ? (32 * bytesSent) / fp32Bytes : null,
        controlBytesSent: this.wireCarry.controlBytesSent + (mesh?.controlBytesSent ?? 0),
        framesSent: this.wireCarry.framesSent + (mesh?.framesSent ?? 0),
        framesReceived: this.wireCarry.framesReceived + (mesh?.framesReceived ?? 0),
        bytesReceived: this.wireCarry.bytesReceived + (mesh?.bytesReceived ?? 0),
        proposalBytes: this.proposalBytes,
        relayedFramesSent: this.wireCarry.relayedFramesSent + (mesh?.relayedFramesSent ?? 0),
        relayedFramesReceived:
          this.wireCarry.relayedFramesReceived + (mesh?.relayedFramesReceived ?? 0),
      },
      cluster:
        placement && round
          ? {
              id: placement.clusterId,
              slot: placement.slot,
              size: placement.clusterSize,
              redundancy: placement.redundancy,
              scheme: placement.scheme,
              proposer: placement.proposer,
              peers: placement.peers.map((peer) => {
                const link = links.get(peer.tabId);
                return {
                  tabId: peer.tabId,
                  slot: peer.slot,
                  link: link?.state ?? 'none',
                  bytesSent: link?.bytesSent ?? 0,
                  bytesReceived: link?.bytesReceived ?? 0,
                  rejected: this.rejectedByPeer.get(peer.tabId) ?? 0,
                  relayed: link?.relayed ?? false,
                  relayedSent: link?.relayedSent ?? 0,
                  relayedReceived: link?.relayedReceived ?? 0,
                };
              }),
              held: round.heldSlots(),
              waitFor: round.waitCount(),
              lastAggregate: this.lastAggregate,
              quarantine: {
                quarantined: runtime.round.quarantinedPeers(),
                lastWindow: runtime.round.quarantineWindow(),
              },
            }
          : undefined,
      proposals: { ...this.proposals },
      confirmations: { ...this.confirmations, waiting: this.pendingConfirms.length },
      iterationFrames: {
        ...(this.client?.iterationFrameStats ?? {
          fromCoordinator: 0,
          fromPeers: 0,
          refused: 0,
          requests: 0,
        }),
        forwarded: this.forwardedFrames,
      },
      rejected: {
        total: Object.values(this.rejectedByCode).reduce((a, b) => a + b, 0),
        byCode: { ...this.rejectedByCode },
      },
      accuracy: this.evaluation.accuracy,
      loss: this.evaluation.loss,
      evaluatedAt: this.evaluation.at,
      error: this.errorMessage,
    };
  }

  // ------------------------------------------------------------------ setup

  /**
   * The job's model and whether it is pipelined, from GET /api/status: to pick the backend
   * before saying hello, and to start the training thread meanwhile.
   */
  private async probeJob(): Promise<Pick<JobSpec, 'model' | 'pipeline'> | undefined> {
    const fetchImpl = this.options.fetch ?? ((input, init) => fetch(input, init));
    for (const url of this.urls) {
      try {
        const response = await fetchImpl(`${url}/api/status`);
        if (!response.ok) continue;
        const body = (await response.json()) as {
          job?: { model?: JobSpec['model']; pipeline?: boolean };
        };
        // a coordinator from before the status carried `pipeline` counts as not pipelined
        if (body.job?.model) return { model: body.job.model, pipeline: body.job.pipeline === true };
      } catch {
        // try the next URL, or measure after the welcome
      }
    }
    return undefined;
  }

  private async chooseBackend(model: JobSpec['model']): Promise<BackendChoice> {
    const force = this.options.backend;
    return selectBackend({
      model,
      ...(force && force !== 'auto' ? { force } : {}),
      ...(this.options.backends ? { candidates: this.options.backends } : {}),
      ...(this.options.wasmPath ? { wasmPath: this.options.wasmPath } : {}),
      logger: this.logger,
    });
  }

  private onWelcome(welcome: Welcome, info: { reconnect: boolean; newIdentity: boolean }): void {
    if (this.left) return;
    const runtime = this.runtime;
    if (runtime && runtime.jobId !== welcome.jobId) {
      this.logger.warn({ job: welcome.job.name }, 'the coordinator runs another job now');
      this.teardownJob();
    }
    if (!this.runtime) {
      try {
        this.setupJob(welcome);
      } catch (error) {
        const err = error instanceof Error ? error : new Error(String(error));
        this.errorMessage = err.message;
        this.logger.error({ error: err.message }, 'cannot run this job');
        this.emit('error', err);
        return;
      }
    } else if (info.newIdentity) {
      this.forgetIdentity(this.runtime, welcome.tabId);
    }
    this.runtime?.mesh.setIceServers(this.options.iceServers ?? welcome.iceServers ?? []);
    if (info.reconnect) void this.sendProposal();
    this.scheduleStatus();
  }

  /**
   * The coordinator forgot this tab (it restarted, or its seat expired) and welcomed it under a
   * new identity. Everything tied to the old one is void: its links, its seat, the register it
   * published and the registers it holds for the current iteration (slots of the old seat), the
   * proposal it may still be trying to send (for the old cluster), and the fact that it already
   * computed this iteration. A restarted coordinator resumes at the iteration the tabs hold
   * (its journal) but lost every proposal it held, so the tab computes that iteration again in
   * its new seat once the placement comes; before this, every tab that had finished it sat
   * "waiting for peers" with nobody left to write a register (issue 13).
   */
  private forgetIdentity(runtime: JobRuntime, tabId: string): void {
    this.identity++;
    runtime.mesh.setSelf(tabId);
    runtime.mesh.publish(undefined);
    runtime.round.leaveCluster();
    // the residual belongs to a message nobody will use
    runtime.registerEncoder.reset();
    this.placement = undefined;
    this.pendingProposal = undefined;
    this.computedIteration = -1;
  }

  private setupJob(welcome: Welcome): void {
    const job = welcome.job;
    const model = buildModel(job.model, 0);
    const dimension = parameterCount(model);
    if (dimension !== welcome.dimension) {
      model.dispose();
      throw new Error(
        `model has ${dimension} parameters, the coordinator says ${welcome.dimension}`,
      );
    }
    const inputShape = model.inputs[0]!.shape.slice(1) as number[];
    const inputSize = inputShape.reduce((a, b) => a * b, 1);
    const seed = hashString(welcome.tabId);
    const codec = getCodec(job.codec.name);
    const encoderOptions = (s: number) => ({
      ...(codec.defaultBlockSize > 0 ? { blockSize: job.codec.blockSize } : {}),
      seed: s,
    });
    const round = new ClusterRound({
      dimension,
      layers: layerParameterCounts(model),
      aggregator: { name: job.aggregator.name, f: job.aggregator.f },
      clock: this.clock,
      logger: this.logger,
      onPropose: (proposal) => this.onPropose(proposal),
      onAggregate: (result) => this.onAggregate(result),
      ...this.options.cluster,
    });
    round.setSelfActive(!this.paused && this.throttle > 0);
    const mesh = new Mesh({
      selfId: welcome.tabId,
      PeerCtor: this.PeerCtor!,
      ...(this.options.wrtc === undefined ? {} : { wrtc: this.options.wrtc }),
      iceServers: this.options.iceServers ?? welcome.iceServers ?? [],
      sendSignal: (to, data) => this.client?.signal(to, data),
      relaySend: (to, frame) => this.client?.relayFrame(to, frame),
      clock: this.clock,
      logger: this.logger,
      // registers, and the iteration frames this cluster's relay forwards
      maxFrameBytes: CoordinatorClient.maxIterationFrameBytes(dimension),
      ...(this.options.connectTimeoutMs ? { connectTimeoutMs: this.options.connectTimeoutMs } : {}),
    });
    mesh.on('frame', (from, frame) => this.onPeerFrame(from, frame));
    mesh.on('link', (peer, state) => {
      // every link that connects is reported: the coordinator sends iteration frames through a
      // cluster's relay only to the members whose link with it is up (and stops relaying a link
      // reported failed or relayed before)
      if (state === 'connected') {
        this.failedLinks.delete(peer);
        this.client?.linkReport({ peer, state: 'connected', attempts: 0 });
      }
      if (state === 'closed') this.failedLinks.delete(peer);
      this.scheduleStatus();
    });
    mesh.on('failed', (peer, { attempts, reason }) => {
      this.failedLinks.add(peer);
      this.client?.linkReport({ peer, state: 'failed', attempts, reason: reason.slice(0, 64) });
    });
    mesh.on('refused', (from, error) => this.countRejected(from, error.code));
    this.runtime = {
      job,
      jobId: welcome.jobId,
      dimension,
      model,
      inputSize,
      trainer: new Trainer(model, { inputSize, seed }),
      seed,
      registerEncoder: codec.createEncoder(dimension, encoderOptions(seed)),
      round,
      mesh,
    };
    if (this.options.fault) this.fault = new FaultInjector(this.options.fault, seed);
    this.logger.info(
      { job: job.name, dimension, mode: round.mode, tabId: welcome.tabId },
      'joined the job',
    );
  }

  private teardownJob(): void {
    const runtime = this.runtime;
    if (!runtime) return;
    runtime.round.dispose();
    this.carryWire(runtime.mesh);
    runtime.mesh.close();
    runtime.model.dispose();
    this.stopPipeline();
    this.runtime = undefined;
    this.placement = undefined;
    this.placementKey = '';
    this.data = undefined;
    this.manifest = undefined;
    this.partitionCache.clear();
    this.pendingProposal = undefined;
    this.computedIteration = -1;
  }

  private carryWire(mesh: Mesh): void {
    this.wireCarry.bytesSent += mesh.bytesSent;
    this.wireCarry.controlBytesSent += mesh.controlBytesSent;
    this.wireCarry.fp32Bytes += mesh.fp32Bytes;
    this.wireCarry.framesSent += mesh.framesSent;
    this.wireCarry.framesReceived += mesh.framesReceived;
    this.wireCarry.bytesReceived += mesh.bytesReceived;
    this.wireCarry.relayedFramesSent += mesh.relayedFramesSent;
    this.wireCarry.relayedFramesReceived += mesh.relayedFramesReceived;
    mesh.bytesSent = mesh.fp32Bytes = mesh.framesSent = mesh.framesReceived = 0;
    mesh.bytesReceived = mesh.relayedFramesSent = mesh.relayedFramesReceived = 0;
  }

  // ------------------------------------------------------------------ coordinator events

  private onPlacement(placement: Placement): void {
    const runtime = this.runtime;
    if (!runtime || this.left) return;
    const key = [
      placement.clusterId,
      placement.slot,
      placement.clusterSize,
      placement.redundancy,
      placement.scheme,
      placement.codeSeed,
      placement.partitions
        .map((p) => `${p.local}:${p.coefficient}:${p.global.join('.')}`)
        .join('|'),
    ].join('/');
    const before = this.placement;
    this.placement = placement;
    if (key !== this.placementKey) {
      if (before && (before.clusterId !== placement.clusterId || before.slot !== placement.slot)) {
        // the residual belongs to the old seat's message
        runtime.registerEncoder.reset();
      }
      this.placementKey = key;
      void this.loadData(placement, key);
    }
    runtime.round.setAggregator(placement.aggregator);
    runtime.round.setMembership({
      clusterId: placement.clusterId,
      slot: placement.slot,
      clusterSize: placement.clusterSize,
      redundancy: placement.redundancy,
      scheme: placement.scheme,
      codeSeed: placement.codeSeed,
      proposer: placement.proposer,
      peers: placement.peers,
    });
    // links to every seated peer, also one that is reconnecting to the coordinator (its seat is
    // kept for the resume grace): tearing them down made the cluster lose registers for longer
    // than the outage, and confirmations need them
    runtime.mesh.setPeers((placement.linked ?? placement.peers).map((p) => p.tabId));
    this.scheduleStatus();
    this.kick();
  }

  private onBase(moved: BaseMoved): void {
    const runtime = this.runtime;
    if (!runtime || this.left) return;
    runtime.round.startIteration(moved.iteration);
    runtime.mesh.publish(undefined);
    if (this.pendingProposal && this.pendingProposal.iteration < moved.iteration) {
      this.pendingProposal = undefined;
    }
    this.emit('iteration', moved.iteration);
    this.scheduleStatus();
    this.kick();
  }

  // ------------------------------------------------------------------ data

  private async loadData(placement: Placement, key: string): Promise<void> {
    const runtime = this.runtime!;
    this.loadingKey = key;
    this.scheduleStatus();
    let delay = 500;
    while (!this.left && this.placementKey === key && this.runtime === runtime) {
      try {
        if (!this.manifest) {
          const response = await this.client!.get(this.client!.welcome!.manifestUrl);
          this.manifest = (await response.json()) as DataManifest;
        }
        const manifest = this.manifest;
        if (manifest.features !== runtime.inputSize) {
          throw new Error(`data has ${manifest.features} features, the model ${runtime.inputSize}`);
        }
        const wanted = [...new Set(placement.partitions.flatMap((p) => p.global))];
        await Promise.all(
          wanted
            .filter((index) => !this.partitionCache.has(index))
            .map(async (index) => {
              const entry = manifest.partitions[index];
              if (!entry || entry.index !== index) throw new Error(`no partition ${index}`);
              const response = await this.client!.get(entry.url);
              const bytes = new Uint8Array(await response.arrayBuffer());
              const verified = await verifyPartition(bytes, entry.sha256, {
                features: manifest.features,
                classes: manifest.classes,
                count: entry.count,
              });
              if (!verified.ok) {
                throw new Error(
                  `partition ${index}: ${verified.error.code} ${verified.error.message}`,
                );
              }
              this.partitionCache.set(index, verified.value);
            }),
        );
        if (this.placementKey !== key || this.runtime !== runtime) return;
        const partitions: LocalPartition[] = placement.partitions.map((p) => {
          const parts = p.global.map((g) => this.partitionCache.get(g)!);
          const count = parts.reduce((n, part) => n + part.count, 0);
          const xs = new Float32Array(count * manifest.features);
          const labels = new Uint8Array(count);
          let offset = 0;
          for (const part of parts) {
            xs.set(part.xs, offset * manifest.features);
            labels.set(part.labels, offset);
            offset += part.count;
          }
          return {
            local: p.local,
            coefficient: p.coefficient,
            global: p.global,
            xs,
            labels,
            count,
          };
        });
        this.data = { key, partitions };
        this.trimPartitionCache(wanted);
        this.loadingKey = undefined;
        this.logger.info(
          { partitions: wanted, samples: partitions.reduce((n, p) => n + p.count, 0) },
          'data partitions ready',
        );
        this.scheduleStatus();
        this.kick();
        return;
      } catch (error) {
        this.logger.warn(
          { error: error instanceof Error ? error.message : String(error) },
          'loading data partitions failed; retrying',
        );
        await sleep(this.clock, delay);
        delay = Math.min(10_000, delay * 2);
      }
    }
  }

  private trimPartitionCache(keep: readonly number[]): void {
    if (this.partitionCache.size <= PARTITION_CACHE_LIMIT) return;
    for (const index of [...this.partitionCache.keys()]) {
      if (!keep.includes(index)) this.partitionCache.delete(index);
      if (this.partitionCache.size <= PARTITION_CACHE_LIMIT) break;
    }
  }

  // ------------------------------------------------------------------ training

  private canCompute(): boolean {
    const client = this.client;
    if (this.left || this.paused || this.throttle <= 0 || !client || !this.runtime) return false;
    if (!this.placement || this.data?.key !== this.placementKey) return false;
    if (client.base === undefined) return false;
    return client.phase === 'training' || client.phase === 'quorum-lost';
  }

  private kick(): void {
    if (this.runtime?.job.pipeline && this.threadWanted()) {
      this.syncThread();
      return;
    }
    // the job is known and its steps stay on this thread
    if (this.runtime) this.dropSpareThread();
    if (this.thread && this.thread.state !== 'failed') {
      // the backend changed: the steps move back to this thread
      this.thread.client.terminate();
      this.thread = undefined;
    }
    if (this.computing || !this.canCompute()) return;
    if (this.runtime!.job.pipeline) {
      // the loop follows new bases itself and returns only when it must wait (not computing,
      // or its step budget spent before the next iteration): the events that end the wait kick
      this.computing = this.computePipelined().finally(() => {
        this.computing = undefined;
        this.scheduleStatus();
        // the loop ended because the seat changed under it: the next one starts now
        if (this.pipelined && this.pipelineStale(this.pipelined.loop)) this.kick();
      });
      this.scheduleStatus();
      return;
    }
    const iteration = this.client!.iteration;
    if (this.computedIteration === iteration) return;
    this.computing = this.compute(iteration).finally(() => {
      this.computing = undefined;
      this.scheduleStatus();
      this.kick();
    });
    this.scheduleStatus();
  }

  private async compute(iteration: number): Promise<void> {
    const runtime = this.runtime!;
    const client = this.client!;
    const key = this.placementKey;
    const placement = this.placement!;
    const partitions = this.data!.partitions;
    const job = runtime.job;
    const anchor = Float32Array.from(client.base!);
    const identity = this.identity;
    const cancelled = () =>
      this.left ||
      this.runtime !== runtime ||
      this.identity !== identity ||
      this.placementKey !== key ||
      client.iteration !== iteration;
    let result;
    try {
      result = await runtime.trainer.run(
        anchor,
        partitions,
        {
          steps: job.localSteps,
          batchSize: job.batchSize,
          learningRate: client.learningRate,
          elastic: job.elastic,
          momentum: job.optimizer.kind === 'momentum' ? job.optimizer.momentum : 0,
        },
        { cancelled, pace: (ms, examples) => this.pace(ms, examples) },
      );
    } catch (error) {
      this.logger.error(
        { error: error instanceof Error ? error.message : String(error) },
        'local training failed',
      );
      this.computedIteration = iteration; // do not spin on a failing step
      return;
    }
    if (!result || cancelled()) return;
    this.computedIteration = iteration;
    this.noteLoss(result.loss);
    this.publishRegister(iteration, placement, result.updates);
  }

  /**
   * Pipelined local work (job.pipeline, issue 16) on this thread: the step loop of
   * pipeline-loop.ts, one per (job, placement, identity), stepping on the newest base held.
   */
  private async computePipelined(): Promise<void> {
    const runtime = this.runtime!;
    let held = this.pipelined;
    if (
      !held ||
      held.runtime !== runtime ||
      held.key !== this.placementKey ||
      held.identity !== this.identity
    ) {
      held?.loop.stop();
      const partitions = this.data!.partitions;
      const identity = this.identity;
      const key = this.placementKey;
      const loop = new PipelineLoop(
        partitions,
        {
          current: () => {
            // a new seat, identity or job ends this loop: its progress is of the old partitions
            if (!this.canCompute() || this.pipelined?.loop !== loop || this.pipelineStale(loop))
              return undefined;
            return this.pipelineNow(runtime);
          },
          step: (x, origin, velocity, partition, settings) =>
            runtime.trainer.step(x, origin, velocity, partition, settings),
          pace: (ms, examples) => this.pace(ms, examples),
          publish: (register) => this.publishPipelined(register),
          staleDropped: () => this.staleProgressDropped++,
        },
        { dimension: runtime.dimension, momentum: runtime.job.optimizer.kind === 'momentum' },
      );
      held = this.pipelined = { loop, runtime, key, identity };
    }
    try {
      await held.loop.run();
    } catch (error) {
      this.logger.error(
        { error: error instanceof Error ? error.message : String(error) },
        'local training failed',
      );
      held.loop.stop();
      if (this.pipelined === held) this.pipelined = undefined;
    }
  }

  /** Whether this thread's step loop belongs to another job, seat or identity than now. */
  private pipelineStale(loop: PipelineLoop): boolean {
    const held = this.pipelined;
    return (
      held === undefined ||
      held.loop !== loop ||
      held.runtime !== this.runtime ||
      held.key !== this.placementKey ||
      held.identity !== this.identity
    );
  }

  /** What a pipelined tab's loop steps on now (its base, settings and staleness limit). */
  private pipelineNow(runtime: JobRuntime): {
    base: Float32Array;
    iteration: number;
    settings: LocalWorkSettings;
    stalenessLimit: number;
  } {
    const client = this.client!;
    const job = runtime.job;
    return {
      base: client.base!,
      iteration: client.iteration,
      settings: {
        steps: job.localSteps,
        batchSize: job.batchSize,
        learningRate: client.learningRate,
        elastic: job.elastic,
        momentum: job.optimizer.kind === 'momentum' ? job.optimizer.momentum : 0,
      },
      stalenessLimit: this.registerStalenessLimit(job),
    };
  }

  /** A pipelined register (from this thread's loop or the training thread's) goes out. */
  private publishPipelined(register: PipelineRegister): void {
    const placement = this.placement;
    if (
      !placement ||
      this.left ||
      register.iteration !== this.client?.iteration ||
      this.computedIteration >= register.iteration
    ) {
      // taken for an iteration that closed while the register was on its way from the
      // training thread: its steps are lost, as a stale register's are
      this.staleProgressDropped++;
      return;
    }
    this.computedIteration = register.iteration;
    this.noteLoss(register.loss);
    this.lastPipelined = {
      staleness: register.staleness,
      stepDelay: register.stepDelay,
      steps: register.steps,
    };
    this.publishRegister(register.iteration, placement, register.updates, register);
  }

  private startSpareThread(): void {
    const create = this.options.trainingThread;
    if (create === undefined || this.spareThread !== undefined) return;
    try {
      const spare = { handle: create(), failed: false };
      // a script that fails to load says so before any TrainingThread listens
      spare.handle.addEventListener('error', () => (spare.failed = true));
      this.spareThread = spare;
    } catch (error) {
      this.logger.warn(
        { error: error instanceof Error ? error.message : String(error) },
        'no spare training thread',
      );
    }
  }

  /** The spare thread when it is usable, else a new one. */
  private takeTrainingThread(): TrainingThreadHandle {
    const spare = this.spareThread;
    this.spareThread = undefined;
    this.threadStartedEarly = spare !== undefined && !spare.failed;
    if (spare !== undefined && !spare.failed) return spare.handle;
    spare?.handle.terminate();
    return this.options.trainingThread!();
  }

  private dropSpareThread(): void {
    this.spareThread?.handle.terminate();
    this.spareThread = undefined;
  }

  /** Whether a pipelined job's steps go to a training thread (see WorkerOptions). */
  private threadWanted(): boolean {
    if (this.options.trainingThread === undefined) {
      this.threadNote = 'no training thread (the page: ?thread=off)';
      return false;
    }
    const backend = this.backendChoice?.backend;
    if (backend !== 'wasm' && backend !== 'cpu') {
      this.threadNote = `the training thread runs wasm and cpu only (backend ${backend ?? 'none'})`;
      return false;
    }
    if (this.thread?.state === 'failed') return false;
    return true;
  }

  /** Starts the training thread when needed and tells it what to step on now. */
  private syncThread(): void {
    const runtime = this.runtime!;
    let thread = this.thread;
    if (thread && thread.runtime !== runtime) {
      thread.client.terminate();
      thread = this.thread = undefined;
    }
    if (!thread) {
      const created = {
        client: new TrainingThread(
          () => this.takeTrainingThread(),
          {
            model: runtime.job.model,
            seed: runtime.seed,
            backend: this.backendChoice!.backend,
            wasmPath: this.options.wasmPath ?? '/tfjs-wasm/',
          },
          runtime.job.optimizer.kind === 'momentum',
          {
            step: (ms, examples, steps) => this.countStep(ms, examples, steps),
            register: (register) => this.publishPipelined(register),
            staleDropped: () => this.staleProgressDropped++,
            error: (message) => this.logger.error({ error: message }, 'local training failed'),
          },
        ),
        runtime,
        state: 'starting' as 'starting' | 'ready' | 'failed',
      };
      this.thread = created;
      void created.client.ready.then((ok) => {
        if (this.thread !== created) return;
        created.state = ok ? 'ready' : 'failed';
        this.threadNote = ok ? null : `the training thread failed: ${created.client.failure()}`;
        if (!ok) {
          this.logger.warn({ error: created.client.failure() }, 'training on the page instead');
          created.client.terminate();
        } else this.logger.info({}, 'training thread started');
        this.kick();
        this.scheduleStatus();
      });
      return;
    }
    if (thread.state !== 'ready') return;
    const active = this.canCompute();
    const now = active ? this.pipelineNow(runtime) : undefined;
    thread.client.update({
      key: `${this.identity}:${this.placementKey}`,
      partitions: this.data?.partitions ?? [],
      base: now?.base ?? new Float32Array(0),
      iteration: now?.iteration ?? -1,
      settings: now?.settings ?? {
        steps: 0,
        batchSize: 0,
        learningRate: 0,
        elastic: 0,
        momentum: 0,
      },
      stalenessLimit: now?.stalenessLimit ?? 0,
      active,
      throttle: this.throttle,
    });
  }

  /** Stops the step loop, on this thread or the training thread (the job or the tab ends). */
  private stopPipeline(): void {
    this.pipelined?.loop.stop();
    this.pipelined = undefined;
    this.thread?.client.terminate();
    this.thread = undefined;
    this.dropSpareThread();
  }

  private noteLoss(loss: number): void {
    if (!Number.isFinite(loss)) return;
    this.trainingLoss = this.trainingLoss === null ? loss : 0.8 * this.trainingLoss + 0.2 * loss;
  }

  /**
   * The oldest base a register may have been computed on and still be sent: the job's bound,
   * and the coordinator's current threshold S when its iteration frames state one. Under
   * `staleness: "auto"` S can sit below the job's bound; a register staler than S would make
   * any proposal that takes it refused as stale, and the cluster would offer nothing until
   * the silent-proposer timeout.
   */
  private registerStalenessLimit(job: JobSpec): number {
    return Math.min(stalenessLimit(job), this.client?.stalenessThreshold ?? Infinity);
  }

  /** Codes the tab's update(s) as its register of `iteration`, sends it, and writes it locally. */
  private publishRegister(
    iteration: number,
    placement: Placement,
    updates: Float32Array[],
    age: RegisterAge = { staleness: 0, stepDelay: 0 },
  ): void {
    const runtime = this.runtime!;
    const honest =
      runtime.round.mode === 'coded'
        ? codedMessage(placement.partitions, updates)
        : robustMessage(updates);
    const message = this.fault
      ? this.fault.corruptUpdate(honest, runtime.round.peerRegisters(), iteration)
      : honest;
    let frame: Uint8Array;
    try {
      frame = encodeToFrame(runtime.registerEncoder, message, {
        jobId: runtime.jobId,
        iteration,
        round: 0,
        senderSlot: placement.slot,
        staleness: age.staleness,
        stepDelay: age.stepDelay,
      });
    } catch (error) {
      this.logger.error({ error: String(error) }, 'could not code the update (not finite)');
      return;
    }
    if (this.fault) frame = this.fault.corruptFrame(frame);
    runtime.mesh.publish(frame);
    // this tab's register is what its peers decode, so every member aggregates the same values
    const own = new Float32Array(runtime.dimension);
    const decoded = decodeFrameInto(frame, own, {
      dimension: runtime.dimension,
      jobId: runtime.jobId,
    });
    const digest = frameDigest(frame);
    // (its age the round keeps as the frame carries it, ClusterRound ageOf)
    if (decoded.ok && allFinite(own)) runtime.round.writeOwn(iteration, own, digest, age);
    else runtime.round.rejectAtDoor(placement.slot, iteration, 'non-finite');
    if (this.fault?.races && decoded.ok) {
      // a racing tab proposes its own register at once, proposer or not (faults.ts), and again
      // whenever it would propose as the proposer
      this.raceProposal = {
        iteration,
        clusterId: placement.clusterId,
        update: own,
        contributors: [placement.slot],
        inputs: [{ slot: placement.slot, digest }],
        rejected: [],
      };
      this.queueProposal(this.raceProposal);
    }
  }

  /** After every step: count, then yield / throttle / wait while paused. */
  private async pace(ms: number, examples: number): Promise<void> {
    this.countStep(ms, examples);
    while ((this.paused || this.throttle <= 0) && !this.left) {
      await new Promise<void>((resolve) => this.resumeWaiters.push(resolve));
    }
    if (this.throttle < 1) {
      await sleep(this.clock, (ms * (1 - this.throttle)) / this.throttle);
      this.lastYield = this.clock.now();
    } else if (this.clock.now() - this.lastYield > 10) {
      // a pipelined tab steps back to back: a clamped timer would idle it ≥ 4 ms a step. The
      // lock-step tab keeps its timer yield: the chaos suite's timing was validated with it
      if (this.runtime?.job.pipeline) await yieldToEventLoop();
      else await sleep(this.clock, 0);
      this.lastYield = this.clock.now();
    }
  }

  /** Counts one training step (this thread's or the training thread's). */
  private countStep(ms: number, examples: number, steps = 1): void {
    this.steps += steps;
    this.examples += examples;
    this.computeMs += ms;
    const now = this.clock.now();
    this.rate.push({ at: now, examples });
    while (this.rate.length > 0 && now - this.rate[0]!.at > 10_000) this.rate.shift();
  }

  private wake(): void {
    const waiters = this.resumeWaiters;
    this.resumeWaiters = [];
    for (const resolve of waiters) resolve();
  }

  private examplesPerSecond(): number {
    if (this.rate.length === 0) return 0;
    const now = this.clock.now();
    const windowStart = Math.max(this.startedAt, now - 10_000);
    const span = (now - windowStart) / 1000;
    const total = this.rate.reduce((n, r) => n + r.examples, 0);
    return span > 0 ? total / span : 0;
  }

  // ------------------------------------------------------------------ the cluster

  private onPeerFrame(from: string, frame: Uint8Array): void {
    const runtime = this.runtime;
    const placement = this.placement;
    if (!runtime || !placement) return;
    const peer = placement.peers.find((p) => p.tabId === from);
    if (!peer) {
      this.countRejected(from, 'not-in-cluster');
      return;
    }
    if (hasIterationMagic(frame)) {
      // the cluster's relay forwarding the coordinator's (signed) iteration frame
      this.client?.acceptPeerIteration(from, frame);
      return;
    }
    if (hasPeerMessageMagic(frame)) {
      const message = decodePeerMessage(frame);
      if (!message.ok) this.countRejected(from, message.error.code);
      else if (message.value.type !== 'confirm') this.onVouch(from, message.value);
      // a tab asks for vouchers for its own proposals only, of iterations a proposal can be of
      else if (message.value.request.proposer !== from) this.countRejected(from, 'invalid-message');
      else if (!this.mayVouchFor(message.value.request.iteration))
        this.countRejected(from, 'wrong-iteration');
      else this.onConfirmRequest(message.value.request, from);
      return;
    }
    // before the first base (a joiner still downloading) there is nothing to compare with
    const current = runtime.round.iteration;
    if (current === undefined) return;
    const decoded = decodeRegister(frame, {
      jobId: runtime.jobId,
      dimension: runtime.dimension,
      minIteration: current - 1,
      maxIteration: current + REGISTERS_AHEAD,
      maxStaleness: stalenessLimit(runtime.job),
      senderSlot: peer.slot,
    });
    if (!decoded.ok) {
      this.countRejected(from, decoded.error.code);
      const header = parseFrame(frame, { maxFrameBytes: frame.byteLength });
      runtime.round.rejectAtDoor(
        peer.slot,
        header.ok ? header.value.header.iteration : undefined,
        decoded.error.code,
      );
      this.logger.debug({ peer: from, ...decoded.error }, 'peer register refused');
      return;
    }
    runtime.round.receive(
      peer.slot,
      decoded.value.iteration,
      decoded.value.vector,
      frameDigest(frame),
      decoded.value,
    );
    // a peer already computes on a newer base: its iteration frame did not reach this tab yet
    if (decoded.value.iteration > current) this.client?.expectIteration(decoded.value.iteration);
    this.retryConfirmations();
    this.scheduleStatus();
  }

  /**
   * This tab is its cluster's relay for an iteration frame (the coordinator flagged it FORWARD):
   * the same bytes to every peer over the data channels. Peers whose link the coordinator relays
   * get the frame from the coordinator instead.
   */
  private forwardIteration(frame: Uint8Array): void {
    const mesh = this.runtime?.mesh;
    const placement = this.placement;
    if (!mesh || !placement || this.fault?.withholdsIterations === true) return;
    const forwarded = this.fault?.forwardedIteration(frame) ?? frame;
    for (const peer of placement.peers) {
      if (!mesh.isRelayed(peer.tabId) && mesh.send(peer.tabId, forwarded)) this.forwardedFrames++;
    }
    this.scheduleStatus();
  }

  private countRejected(from: string, code: string): void {
    this.rejectedByCode[code] = (this.rejectedByCode[code] ?? 0) + 1;
    this.rejectedByPeer.set(from, (this.rejectedByPeer.get(from) ?? 0) + 1);
    this.scheduleStatus();
  }

  private onAggregate(result: AggregateResult): void {
    this.lastAggregate = {
      iteration: result.iteration,
      mode: result.mode,
      contributors: result.contributors,
      rejected: result.rejected,
      approximate: result.approximate,
      timedOut: result.timedOut,
      waitedFor: result.waitedFor,
      live: result.live,
      elapsedMs: result.elapsedMs,
    };
    this.emit('aggregate', this.lastAggregate);
    this.scheduleStatus();
  }

  private onPropose(proposal: ClusterProposal): void {
    const client = this.client;
    if (!client || this.left) return;
    if (proposal.iteration !== client.iteration) return;
    if (this.fault?.silent) return;
    // a racing tab sends its own register instead (faults.ts); a real proposer what it computed
    if (this.fault?.races) {
      if (this.raceProposal?.iteration === proposal.iteration)
        this.queueProposal(this.raceProposal);
      return;
    }
    const update = this.fault ? this.fault.corruptProposal(proposal.update) : proposal.update;
    this.queueProposal({ ...proposal, update });
  }

  private queueProposal(proposal: {
    iteration: number;
    clusterId: number;
    update: Float32Array;
    contributors: number[];
    inputs: ProposalInput[];
    rejected: { slot: number; reason: string }[];
  }): void {
    const runtime = this.runtime;
    if (!runtime || this.left || proposal.inputs.length === 0) return;
    let frame: Uint8Array;
    try {
      frame = encodeProposal(proposal.update, {
        codec: runtime.job.codec.name,
        blockSize: runtime.job.codec.blockSize,
        jobId: runtime.jobId,
        clusterId: proposal.clusterId,
        iteration: proposal.iteration,
        ...runtime.round.inputAge(proposal.iteration, proposal.inputs),
      });
    } catch (error) {
      this.logger.error({ error: String(error) }, 'could not code the cluster update');
      return;
    }
    const pending: PendingProposal = {
      iteration: proposal.iteration,
      meta: {
        clusterId: proposal.clusterId,
        contributors: proposal.contributors.slice(0, 64),
        inputs: proposal.inputs.slice(0, 64),
        rejected: proposal.rejected
          .slice(0, 64)
          .map((r) => ({ slot: r.slot, reason: r.reason.slice(0, 64) })),
      },
      frame,
      digest: frameDigest(frame),
    };
    this.pendingProposal = pending;
    this.askForVouchers(pending);
    void this.sendProposal();
  }

  /**
   * Asks the members this tab can reach to recompute its proposal and sign what they get
   * (docs/architecture.md, _Confirmations bundled by the proposer_): the proposal then waits
   * until a majority of the cluster vouched for it, every member asked answered, or
   * VOUCH_WAIT_MS passed, and carries the vouchers, so the coordinator need not ask anyone.
   */
  private askForVouchers(pending: PendingProposal): void {
    const runtime = this.runtime;
    const welcome = this.client?.welcome;
    const placement = this.placement;
    // a coordinator that hands out no voucher keys checks none
    if (!runtime || !welcome?.vouchKey || !placement) return;
    if (placement.clusterId !== pending.meta.clusterId) return;
    const mesh = runtime.mesh;
    const reachable = placement.peers
      .map((p) => p.tabId)
      .filter((id) => mesh.linkState(id) === 'connected' || mesh.isRelayed(id));
    const needed = majorityOf(placement.peers.length + 1) - 1;
    if (reachable.length === 0 || needed <= 0) return;
    const message = encodePeerMessage({
      type: 'confirm',
      request: {
        clusterId: pending.meta.clusterId,
        iteration: pending.iteration,
        proposer: welcome.tabId,
        inputs: pending.meta.inputs,
        aggregator: { ...runtime.round.aggregatorInUse },
      },
    });
    for (const id of reachable) mesh.send(id, message);
    pending.vouching = { expected: new Set(reachable), answered: new Set(), needed };
    this.clock.setTimeout(() => this.stopVouching(pending), VOUCH_WAIT_MS);
  }

  /** A member's voucher (or abstention) for this tab's pending proposal. */
  private onVouch(from: string, vouch: Extract<PeerMessage, { type: 'vouch' | 'abstain' }>): void {
    const pending = this.pendingProposal;
    const vouching = pending?.vouching;
    if (
      !pending ||
      !vouching ||
      vouch.clusterId !== pending.meta.clusterId ||
      vouch.iteration !== pending.iteration ||
      vouch.proposer !== this.client?.welcome?.tabId ||
      !vouching.expected.has(from) ||
      vouching.answered.has(from)
    )
      return;
    vouching.answered.add(from);
    // every voucher goes: one naming another digest is that member's word against this frame
    if (vouch.type === 'vouch') {
      pending.meta.vouchers = [
        ...(pending.meta.vouchers ?? []),
        { tabId: from, digest: vouch.digest, mac: vouch.mac },
      ];
    }
    const agreeing = (pending.meta.vouchers ?? []).filter((v) => v.digest === pending.digest);
    if (agreeing.length >= vouching.needed || vouching.answered.size === vouching.expected.size)
      this.stopVouching(pending);
  }

  private stopVouching(pending: PendingProposal): void {
    if (pending.vouching === undefined) return;
    pending.vouching = undefined;
    if (this.pendingProposal === pending) void this.sendProposal();
  }

  /**
   * Whether a proposal of `iteration` could still count: not older than the staleness bound
   * allows, not further ahead than registers are taken (this tab may not have the newest
   * iteration frame yet). Anything else would only wait for registers that never come.
   */
  private mayVouchFor(iteration: number): boolean {
    const runtime = this.runtime;
    const current = runtime?.round.iteration;
    if (!runtime || current === undefined) return false;
    return (
      iteration >= current - 1 - stalenessLimit(runtime.job) &&
      iteration <= current + REGISTERS_AHEAD
    );
  }

  /**
   * The coordinator asks this tab to recompute a peer's proposal: from the same registers with
   * the same rule, coded the same way, the digest must be the proposer's. A register not here
   * yet is waited for (it is on its way over the mesh) until CONFIRM_WAIT_MS, then this tab
   * abstains; a register held with another digest means someone equivocated: abstain at once.
   */
  private onConfirmRequest(request: ConfirmRequest, replyTo?: string): void {
    if (this.left || !this.runtime) return;
    // one request waits per asker: the coordinator's per (cluster, iteration), a peer's only
    // its newest — a peer naming many iterations that never come must not pile up work here
    const before = this.pendingConfirms.length;
    this.pendingConfirms = this.pendingConfirms.filter((p) =>
      replyTo === undefined
        ? p.replyTo !== undefined ||
          p.request.clusterId !== request.clusterId ||
          p.request.iteration !== request.iteration
        : p.replyTo !== replyTo,
    );
    this.confirmations.superseded += before - this.pendingConfirms.length;
    this.pendingConfirms.push({
      request,
      until: this.clock.now() + CONFIRM_WAIT_MS,
      ...(replyTo === undefined ? {} : { replyTo }),
    });
    this.retryConfirmations();
    this.clock.setTimeout(() => this.retryConfirmations(), CONFIRM_WAIT_MS + 10);
  }

  private retryConfirmations(): void {
    const runtime = this.runtime;
    const client = this.client;
    if (this.pendingConfirms.length === 0 || !runtime || !client) return;
    const now = this.clock.now();
    const still: typeof this.pendingConfirms = [];
    for (const pending of this.pendingConfirms) {
      const { request } = pending;
      const about = {
        clusterId: request.clusterId,
        iteration: request.iteration,
        proposer: request.proposer,
      };
      // a proposer names the rule itself: only the one this tab runs is vouched for
      const inUse = runtime.round.aggregatorInUse;
      const result: RecomputeResult =
        pending.replyTo !== undefined &&
        (request.aggregator.name !== inUse.name || request.aggregator.f !== inUse.f)
          ? { ok: false, reason: 'unknown-rule' }
          : runtime.round.recompute(
              request.clusterId,
              request.iteration,
              request.inputs,
              request.aggregator,
            );
      let answer: Confirmation;
      if (result.ok) {
        const frame = encodeProposal(result.update, {
          codec: runtime.job.codec.name,
          blockSize: runtime.job.codec.blockSize,
          jobId: runtime.jobId,
          clusterId: request.clusterId,
          iteration: request.iteration,
          staleness: result.staleness,
          stepDelay: result.stepDelay,
        });
        answer = { verdict: 'computed', ...about, digest: frameDigest(frame) };
      } else if (result.reason === 'missing-register' && now < pending.until) {
        // ask the writers once for their register again (it may have been dropped here)
        if (!pending.asked) {
          pending.asked = true;
          this.askForResends(request.iteration, result.slots ?? []);
        }
        still.push(pending);
        continue;
      } else {
        answer = {
          verdict: 'abstain',
          ...about,
          reason: result.reason,
          ...(result.slots ? { slots: result.slots.slice(0, 64) } : {}),
        };
      }
      this.confirmations[answer.verdict]++;
      if (pending.replyTo === undefined) client.confirm(answer);
      else this.vouch(pending.replyTo, answer);
    }
    this.pendingConfirms = still;
  }

  /**
   * Asks each writer for its register of `iteration` again, at most once per (iteration, slot)
   * and only near this tab's iteration: however many requests name them, a register costs one
   * signal through the coordinator.
   */
  private askForResends(iteration: number, slots: readonly number[]): void {
    const runtime = this.runtime;
    const current = runtime?.round.iteration;
    if (!runtime || current === undefined || iteration > current + 1) return;
    const oldest = current - 1 - stalenessLimit(runtime.job);
    for (const asked of this.resendsAsked.keys())
      if (asked < oldest) this.resendsAsked.delete(asked);
    if (iteration < oldest) return;
    const asked = this.resendsAsked.get(iteration) ?? new Set<number>();
    this.resendsAsked.set(iteration, asked);
    const peers = this.placement?.peers ?? [];
    for (const slot of slots) {
      const peer = peers.find((p) => p.slot === slot);
      if (!peer || asked.has(slot)) continue;
      asked.add(slot);
      this.client?.signal(peer.tabId, { type: 'resend-register' });
    }
  }

  /** The answer to a proposer's confirm request, over the mesh: signed when computed. */
  private vouch(proposer: string, answer: Confirmation): void {
    const runtime = this.runtime;
    const key = this.client?.welcome?.vouchKey;
    if (!runtime || key === undefined) return;
    const about = {
      clusterId: answer.clusterId,
      iteration: answer.iteration,
      proposer: answer.proposer,
    };
    const message: PeerMessage =
      answer.verdict === 'computed'
        ? {
            type: 'vouch',
            ...about,
            digest: answer.digest,
            mac: signVoucher(key, { jobId: runtime.jobId, ...about, digest: answer.digest }),
          }
        : { type: 'abstain', ...about, reason: answer.reason };
    runtime.mesh.send(proposer, encodePeerMessage(message));
  }

  private async sendProposal(): Promise<void> {
    const pending = this.pendingProposal;
    const client = this.client;
    if (!pending || !client || this.sendingProposal || this.left || pending.vouching) return;
    this.sendingProposal = true;
    const answer = await client.propose(pending.meta, pending.frame);
    this.sendingProposal = false;
    if (this.left) return;
    if (answer.ok) {
      this.proposals.sent++;
      if (answer.counted) this.proposals.counted++;
      this.proposalBytes += pending.frame.byteLength;
      if (this.pendingProposal === pending) this.pendingProposal = undefined;
      this.emit('proposal', { iteration: pending.iteration, ok: true, counted: answer.counted });
    } else if (answer.error.code === 'internal') {
      // not connected or no answer: kept, sent again after the reconnection's welcome — or now,
      // when the connection came back while this one was in flight (that welcome found it busy)
      this.logger.warn({ iteration: pending.iteration }, 'proposal not delivered; will retry');
      if (client.connected && this.pendingProposal === pending) {
        this.clock.setTimeout(() => void this.sendProposal(), 100);
      }
    } else {
      this.proposals.refused++;
      this.proposals.lastError = `${answer.error.code}: ${answer.error.message}`;
      if (this.pendingProposal === pending) this.pendingProposal = undefined;
      if (answer.error.code === 'unconfirmed')
        this.runtime?.round.allowRepropose(pending.iteration);
      this.logger.warn({ ...answer.error, iteration: pending.iteration }, 'proposal refused');
      this.emit('proposal', {
        iteration: pending.iteration,
        ok: false,
        counted: false,
        code: answer.error.code,
      });
    }
    this.scheduleStatus();
    if (this.pendingProposal && this.pendingProposal !== pending) void this.sendProposal();
  }

  // ------------------------------------------------------------------ reporting

  private state(): WorkerState {
    if (this.left) return 'left';
    if (this.errorMessage !== undefined && !this.client?.connected) return 'error';
    if (this.selecting) return 'selecting-backend';
    if (!this.started) return 'idle';
    if (!this.client?.connected) return 'connecting';
    if (this.paused || this.throttle <= 0) return 'paused';
    if (this.computing || (this.thread?.state === 'ready' && this.thread.client.busy)) {
      return 'computing';
    }
    if (this.loadingKey !== undefined || (this.placement && this.data?.key !== this.placementKey)) {
      return 'loading';
    }
    if (this.placement && this.computedIteration === this.client.iteration) return 'waiting';
    return 'idle';
  }

  private sendReport(): void {
    const client = this.client;
    if (!client?.connected || this.left) return;
    this.thread?.client.collectSteps();
    const state = this.state();
    const report: TabReport = {
      state: state === 'computing' || state === 'waiting' || state === 'paused' ? state : 'idle',
      steps: this.steps,
      examplesPerSecond: this.examplesPerSecond(),
      computeMs: this.computeMs,
      wallMs: Math.max(0, this.clock.now() - this.startedAt),
      peerBytesSent: this.wireCarry.bytesSent + (this.runtime?.mesh.bytesSent ?? 0),
      peerFp32Bytes: this.wireCarry.fp32Bytes + (this.runtime?.mesh.fp32Bytes ?? 0),
      trainingLoss:
        this.trainingLoss !== null && Number.isFinite(this.trainingLoss) && this.trainingLoss >= 0
          ? this.trainingLoss
          : null,
      throttle: this.throttle,
    };
    const quarantined = this.runtime?.round.quarantinedPeers() ?? [];
    if (quarantined.length > 0) report.quarantinedPeers = quarantined.slice(0, 64);
    client.report(report);
  }

  private async pollStatus(): Promise<void> {
    const client = this.client;
    if (!client || this.left) return;
    try {
      const response = await client.get('/api/status');
      const body = (await response.json()) as {
        accuracy?: number | null;
        loss?: number | null;
        evaluatedAt?: number | null;
      };
      this.evaluation = {
        accuracy: typeof body.accuracy === 'number' ? body.accuracy : null,
        loss: typeof body.loss === 'number' ? body.loss : null,
        at: typeof body.evaluatedAt === 'number' ? body.evaluatedAt : null,
      };
      this.scheduleStatus();
    } catch {
      // the next poll will tell
    }
  }

  private every(ms: number, action: () => void): void {
    const timer = setInterval(action, ms);
    (timer as { unref?: () => void }).unref?.();
    this.timers.push(timer);
  }

  private scheduleStatus(): void {
    if (this.statusScheduled !== undefined || this.left) return;
    this.statusScheduled = this.clock.setTimeout(() => {
      this.statusScheduled = undefined;
      if (!this.left) this.emit('status', this.status());
    }, 200);
  }
}

function clampShare(share: number): number {
  if (!Number.isFinite(share)) return 1;
  return Math.min(1, Math.max(0, share));
}

function hashString(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/** simple-peer's Node build, loaded only when no constructor was passed (never in the web build). */
async function loadSimplePeer(): Promise<PeerConstructor> {
  const name = 'simple-peer';
  const module = (await import(/* @vite-ignore */ name)) as { default?: unknown };
  return (module.default ?? module) as PeerConstructor;
}
