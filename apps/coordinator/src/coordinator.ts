/**
 * The coordinator: every tab and the dashboard talk to it. It seats tabs in clusters, relays
 * their WebRTC signaling inside a cluster, drives the iterations (RoundEngine), evaluates and
 * checkpoints the agreed model, and serves the HTTP API.
 *
 * Every inbound event is untrusted: checked against packages/protocol's schemas, bounded in
 * size and rate, and refused with a typed error code. Nothing a tab sends can stop the
 * server or change the model except through a validated, finite, correctly-sized proposal.
 */
import type { Server as HttpServer } from 'node:http';
import { generateKeyPairSync, randomBytes, randomUUID, sign, timingSafeEqual } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { Server, type Namespace, type Socket } from 'socket.io';
import { coordinatorParser, WORKER_NAMESPACE } from '@swarmgrad/protocol/socket-parser';
import { RateLimiterMemory } from 'rate-limiter-flexible';
import pino, { type Logger } from 'pino';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import {
  RoundEngine,
  TabRegistry,
  allFinite,
  decideAutoStaleness,
  decodeFrameInto,
  estimateCurvature,
  frameDigest,
  DEFAULT_STRIKES,
  ProposalDesk,
  planDissemination,
  stalenessStepScale,
  type ClosedIteration,
  type DeskEffect,
  type PendingProposalState,
  type RegistryState,
  type TabRecord,
} from '@swarmgrad/core';
import {
  alignedBytes,
  allocateFrame,
  confirmationSchema,
  controlSchema,
  encodeIterationFrame,
  helloSchema,
  initialStaleness,
  iterationRequestSchema,
  KEPT_ITERATION_FRAMES,
  setIterationSignature,
  signedBytes,
  jobIdOf,
  limits,
  linkReportSchema,
  type MessageSchema,
  maxUpdateFrameBytes,
  parseFrame,
  relayFrameSchema,
  proposalMetaSchema,
  reportSchema,
  sealFrame,
  signalSchema,
  wirePaths,
  type ControlCommand,
  type DashboardEvent,
  type DashboardServerToClient,
  type DashboardStatus,
  type ErrorCode,
  type IterationFrameCounts,
  type QuarantinedTab,
  type JobSpec,
  type StalenessChoice,
  type Phase,
  type ProposalVerdicts,
  type WireBytesByPath,
  type WireError,
  type WirePath,
  type WorkerClientToServer,
  type WorkerServerToClient,
} from '@swarmgrad/protocol';
import {
  buildModel,
  initialParameters,
  modelTopologyJSON,
  parameterCount,
  weightSpecs,
} from '@swarmgrad/model';

import { LinkRelays } from './relay.ts';
import { PairMap } from './pairs.ts';
import { AddressGate, type AddressOptions } from './addresses.ts';
import { createMetrics, type Metrics } from './metrics.ts';
import { DeltaJournal } from './journal.ts';
import { CheckpointStore } from './checkpoint.ts';
import { loadDataset, type Dataset } from './dataset.ts';
import { Evaluator } from './evaluator.ts';
import { createHttpApp } from './http.ts';
import { createHttpServer, type TlsOptions } from './tls.ts';
import { iceRefreshMs, iceServersFor, welcomeIce, type IceOptions } from './ice.ts';
import { DashboardMetrics } from './dashboard.ts';
import { MemoryState, type Command, type NodeStatus, type SharedState } from './shared-state.ts';
import type { RedisState } from './redis-state.ts';
import type { RoundEngineState } from '@swarmgrad/core';

export interface CoordinatorOptions {
  job: JobSpec;
  port?: number;
  host?: string;
  dataDir: string;
  adminToken?: string;
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
   * How iteration frames reach the tabs: `direct` (default) writes it to every tab; `cluster`
   * sends one frame per cluster to a relay tab that forwards it over the data channels (core
   * swarm/dissemination.ts; opt-in for now, see docs/architecture.md). Several nodes (`redis`)
   * always send directly.
   */
  dissemination?: Dissemination;
}

export type Dissemination = 'cluster' | 'direct';

/**
 * A relay whose member had to ask for the frame it was sent to forward (it left, is slow, or
 * withholds) relays for nobody during this many iterations; another member does.
 */
const RELAY_PASSED_OVER_ITERATIONS = 50;

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

type WorkerSocket = Socket<WorkerClientToServer, WorkerServerToClient>;
/** What the handlers need of a protocol (zod) schema. */
const HELLO_TIMEOUT_MS = 10_000;
/** How long a proposal waits for its cluster's confirmations (below the tabs' 10 s ack timeout). */
const CONFIRM_TIMEOUT_MS = 5_000;
/**
 * A live cluster whose proposer has neither proposed nor had a proposal pending this long into
 * an iteration loses the role to its next member (the silent tab is demoted): the larger of
 * SILENT_PROPOSER_MIN_MS and SILENT_PROPOSER_FACTOR × the median duration of the last
 * ITERATION_HISTORY iterations. Without it one tab holding the role and never proposing stalls
 * its cluster forever, and the swarm with it when that cluster is needed for the majority.
 */
const SILENT_PROPOSER_MIN_MS = 10_000;
const SILENT_PROPOSER_FACTOR = 5;
const ITERATION_HISTORY = 21;
export class Coordinator {
  readonly job: JobSpec;
  readonly jobId: number;
  readonly dimension: number;
  readonly adminToken: string;
  readonly metrics: Metrics;
  readonly logger: Logger;
  readonly dataset: Dataset;
  readonly registry: TabRegistry;
  readonly startedAt = Date.now();
  private readonly engine: RoundEngine;
  private readonly options: CoordinatorOptions;
  private readonly topology: object;
  private readonly specs: ReturnType<typeof weightSpecs>;
  private readonly checkpoints: CheckpointStore;
  private readonly journal: DeltaJournal;
  private evaluator: Evaluator | undefined;
  private io: Server | undefined;
  private workers: Namespace<WorkerClientToServer, WorkerServerToClient> | undefined;
  private dashboard: Namespace<Record<string, never>, DashboardServerToClient> | undefined;
  private http: HttpServer | undefined;
  private readonly sockets = new Map<string, WorkerSocket>();
  private readonly limiter: RateLimiterMemory;
  /** Per tab: link reports, and frames to relay (limits in packages/protocol events.ts). */
  private readonly linkLimiter: RateLimiterMemory;
  private readonly relayLimiter: RateLimiterMemory;
  /** Pairs of tabs whose link does not connect: their frames go through here (relay.ts). */
  readonly relays = new LinkRelays();
  private relayedFrames = 0;
  private relayedBytes = 0;
  /** Client address → address group (capped per cluster by placement), joins per group. */
  private readonly addresses: AddressGate;
  private phaseValue: Phase = 'waiting';
  private paused = false;
  private learningRateValue: number;
  /** `staleness: "auto"`: the last choice and why (it also moved the engine's threshold). */
  private stalenessAuto: StalenessChoice | null = null;
  private closeTimer: NodeJS.Timeout | undefined;
  private closeImmediate: NodeJS.Immediate | undefined;
  private iterationStartedAt = Date.now();
  private lastRounds = 0;
  private lastEvaluation: EvaluationPoint | undefined;
  readonly history: EvaluationPoint[] = [];
  readonly events: LogEvent[] = [];
  readonly rejectedByCode = new Map<ErrorCode, number>();
  private bytesSent = 0;
  private fp32EquivalentBytes = 0;
  private bytesByPath: WireBytesByPath = { peer: 0, proposal: 0, broadcast: 0, relay: 0 };
  private closing = false;
  private checkpointInFlight: Promise<void> | undefined;
  private evaluationInFlight = false;
  private lastCheckpointIteration = 0;
  /** The operator changed what placements carry: resend them all at the next iteration. */
  private placementsDirty = false;
  private started = false;
  /** Where the shared state lives: this process (default) or Redis (several nodes). */
  private shared: SharedState;
  /** Local continuations of this node's commands, by command id (see submit). */
  private readonly pending = new Map<string, (result: unknown) => void>();
  private commandSeq = 0;
  /** Multi-node: the frame behind each held proposal (snapshots carry frames, not updates). */
  private readonly heldFrames = new Map<number, Uint8Array>();
  private checkpointsWritten = 0;
  /** Multi-node: the iteration this node already asked to close. */
  private closeRequestedFor = -1;
  private closeDecidedAt: number | undefined;
  /** Per-iteration series and the staleness analysis for the dashboard (dashboard.ts). */
  readonly dashboardMetrics: DashboardMetrics;
  /** Tabs their clusters quarantined (reviewQuarantine), in order; kept after they leave. */
  private readonly quarantinedTabs: QuarantinedTab[] = [];
  /** Who may propose, confirmations, strikes (core swarm/proposal-desk.ts). */
  private readonly desk: ProposalDesk;
  /** Signs iteration frames; its public key goes to every tab in the welcome. */
  private readonly frameSigner = generateKeyPairSync('ed25519');
  /** The public key, raw, base64url (the welcome's `iterationKey`). */
  readonly iterationKey: string;
  /** The last iteration frames (plain, signed), oldest first, for `iteration-request`. */
  private readonly recentFrames: { iteration: number; frame: Buffer }[] = [];
  private readonly iterationFramesSent: IterationFrameCounts = { relay: 0, direct: 0, request: 0 };
  /** Pairs of tabs whose WebRTC link an end reported connected, and not failed since. */
  private readonly linksUp = new PairMap<true>();
  /** Relay tab → the iteration until which it is passed over (RELAY_PASSED_OVER_ITERATIONS). */
  private readonly relaysPassedOver = new Map<string, number>();
  /** Relay tab → its cluster, for the last iteration frame sent. */
  private lastRelays = new Map<string, number>();
  /** Per proposal this node received: the bound on its wait for confirmations. */
  private readonly confirmTimers = new Map<string, NodeJS.Timeout>();
  /** Fires when a cluster's proposer has been silent too long (armSilenceWatch). */
  private silenceTimer: NodeJS.Timeout | undefined;
  /** Durations (ms) of the last ITERATION_HISTORY iterations, oldest first. */
  private readonly recentIterationMs: number[] = [];
  /** The rule before the operator's last change and the iteration of the change. */
  private previousAggregator:
    { name: JobSpec['aggregator']['name']; f: number; until: number } | undefined;

  private constructor(
    options: CoordinatorOptions,
    init: {
      dataset: Dataset;
      initial: Float32Array;
      iteration: number;
      topology: object;
      specs: ReturnType<typeof weightSpecs>;
      checkpoints: CheckpointStore;
      journal: DeltaJournal;
      learningRate: number;
      lastCheckpointIteration: number;
    },
  ) {
    this.options = options;
    this.job = options.job;
    this.jobId = jobIdOf(this.job.name);
    this.dimension = init.initial.length;
    this.adminToken = options.adminToken ?? randomBytes(18).toString('base64url');
    this.logger = options.logger ?? pino({ name: 'swarmgrad' });
    this.metrics = createMetrics();
    this.dataset = init.dataset;
    this.topology = init.topology;
    this.specs = init.specs;
    this.checkpoints = init.checkpoints;
    this.journal = init.journal;
    this.learningRateValue = init.learningRate;
    this.lastCheckpointIteration = init.lastCheckpointIteration;
    this.registry = new TabRegistry(this.job);
    this.dashboardMetrics = new DashboardMetrics(
      estimateCurvature(
        init.dataset.heldOut.xs,
        init.dataset.heldOut.count,
        'classes' in this.job.model ? this.job.model.classes : 10,
      ),
      'softmax-regression Hessian at uniform predictions on the held-out inputs: (1/K)·λmax(E[x̃x̃ᵀ])',
    );
    this.engine = new RoundEngine({
      dimension: this.dimension,
      jobId: this.jobId,
      codec: this.job.codec.name,
      blockSize: this.job.codec.blockSize,
      mode: this.job.agreement.mode,
      epsilon: this.job.agreement.epsilon,
      staleness: initialStaleness(this.job),
      graceMs: this.job.agreement.graceMs,
      trim: this.job.agreement.trim,
      clip: this.job.agreement.clip,
      estimator: this.job.agreement.estimator,
      initial: init.initial,
      iteration: init.iteration,
    });
    this.iterationKey = this.frameSigner.publicKey.export({ format: 'jwk' }).x!;
    this.desk = new ProposalDesk(this.registry, this.engine, {
      ...DEFAULT_STRIKES,
      decode: (frame) => this.decodeUpdate(frame),
      now: () => performance.now(),
      stepScale: this.stepScale(),
    });
    if (this.job.staleness === 'auto') {
      this.dashboardMetrics.onAnalysed = (points, activeTabs) => {
        // one node decides for all (the lease holder), through the command log
        if (!this.shared.holdsLease() || !this.shared.available()) return;
        const decision = decideAutoStaleness(points, activeTabs, this.engine.staleness);
        const last = this.stalenessAuto;
        if (!decision.changed && last !== null && last.workers === decision.workers) return;
        this.submit(
          this.command({
            kind: 'control',
            command: {
              action: 'set-staleness',
              threshold: decision.threshold,
              reason: decision.reason.slice(0, 2000),
              workers: decision.workers,
            },
          }),
        );
      };
    }
    this.shared = new MemoryState((command) => this.apply(command));
    this.limiter = new RateLimiterMemory({
      points: limits.eventBurst,
      duration: limits.eventBurst / limits.eventsPerSecond,
    });
    this.linkLimiter = new RateLimiterMemory({
      points: limits.linkReportBurst,
      duration: limits.linkReportBurst / limits.linkReportsPerSecond,
    });
    this.relayLimiter = new RateLimiterMemory({
      points: limits.relayFrameBurst,
      duration: limits.relayFrameBurst / limits.relayFramesPerSecond,
    });
    this.addresses = new AddressGate(options.addresses, () =>
      this.logger.warn(
        'a tab connected with a client-address header from a proxy that is not trusted: ' +
          'behind a reverse proxy, pass --trust-proxy <its address> or tabs are grouped by the proxy address',
      ),
    );
    this.metrics.iteration.set(init.iteration);
  }

  /** Loads data and model, resumes from the latest checkpoint + journal, and listens. */
  static async start(options: CoordinatorOptions): Promise<Coordinator> {
    const job = options.job;
    await mkdir(options.dataDir, { recursive: true });
    // the main thread only builds the model once for its topology and initial weights
    await tf.setBackend('cpu');
    const dataset = await loadDataset(job, { baseDir: options.jobDir });
    const model = buildModel(job.model);
    const topology = modelTopologyJSON(model);
    const specs = weightSpecs(model);
    const dimension = parameterCount(model);
    model.dispose();
    const checkpoints = new CheckpointStore(options.dataDir);
    const latest = await checkpoints.latest();
    let initial: Float32Array;
    let iteration = 0;
    let learningRate = job.optimizer.learningRate;
    let state: PersistedState | undefined;
    if (
      latest !== undefined &&
      latest.params.length === dimension &&
      isPersistedState(latest.state, job)
    ) {
      initial = latest.params;
      iteration = latest.iteration;
      state = latest.state;
      learningRate = latest.state.learningRate;
    } else {
      initial = initialParameters(job.model, jobIdOf(job.name));
    }
    const journal = new DeltaJournal(options.dataDir, iteration);
    const coordinator = new Coordinator(options, {
      dataset,
      initial,
      iteration,
      topology,
      specs,
      checkpoints,
      journal,
      learningRate,
      lastCheckpointIteration: iteration,
    });
    if (state) coordinator.restoreState(state);
    const replayed = journal.read(iteration);
    for (const record of replayed) coordinator.engine.replay(record.frame, record.iteration);
    if (latest === undefined) await coordinator.writeCheckpoint();
    if (replayed.length > 0) {
      coordinator.logger.info(
        {
          checkpoint: iteration,
          replayed: replayed.length,
          iteration: coordinator.engine.iteration,
        },
        'resumed from checkpoint and journal',
      );
    } else if (latest !== undefined) {
      coordinator.logger.info({ iteration }, 'resumed from checkpoint');
    }
    coordinator.metrics.iteration.set(coordinator.engine.iteration);
    if (job.maxIterations !== undefined && coordinator.engine.iteration >= job.maxIterations) {
      coordinator.phaseValue = 'done';
    }
    let adapter: ReturnType<RedisState['adapter']> | undefined;
    if (options.redis !== undefined) {
      // one node of several: the shared state in Redis replaces this process's own from here on
      const { RedisState } = await import('./redis-state.ts');
      const shared = await RedisState.connect({
        url: options.redis,
        job: job.name,
        logger: coordinator.logger,
        ...(options.leaseMs === undefined
          ? {}
          : { leaseMs: options.leaseMs, heartbeatMs: options.leaseMs }),
      });
      coordinator.shared = shared;
      adapter = shared.adapter();
      await shared.start({
        apply: (command) => coordinator.apply(command),
        exportReplica: () => coordinator.exportReplica(),
        importReplica: (state) => coordinator.importReplica(state as ReplicaState),
        availability: (up) => coordinator.onAvailability(up),
        lease: (held) =>
          coordinator.logEvent(
            'node',
            held
              ? `${shared.nodeId} holds the evaluation/checkpoint lease`
              : `${shared.nodeId} lost the evaluation/checkpoint lease`,
          ),
      });
      coordinator.logger.info(
        { node: shared.nodeId, iteration: coordinator.engine.iteration },
        'joined the multi-node coordinator',
      );
    }
    if (options.evaluate !== false) {
      coordinator.evaluator = await Evaluator.start(job, dataset.heldOut);
    }
    await coordinator.listen(options.port ?? 8080, options.host ?? '0.0.0.0', adapter);
    return coordinator;
  }

  /** This node's id (`local` with one process). */
  get nodeId(): string {
    return this.shared.nodeId;
  }

  /** Whether this process is one node of several (`--redis`). */
  get multiNode(): boolean {
    return this.options.redis !== undefined;
  }

  /** Multi-node state of this node; undefined with one process. */
  nodeStatus(): NodeStatus | undefined {
    return this.shared.status();
  }

  get url(): string {
    const address = this.http?.address() as AddressInfo | null;
    const host =
      this.options.host && this.options.host !== '0.0.0.0' ? this.options.host : '127.0.0.1';
    return `${this.options.tls ? 'https' : 'http'}://${host}:${address?.port ?? 0}`;
  }

  get port(): number {
    return (this.http?.address() as AddressInfo | null)?.port ?? 0;
  }

  get phase(): Phase {
    return this.effectivePhase();
  }

  /** The phase tabs are told: `paused` while this node cannot reach the shared state. */
  private effectivePhase(): Phase {
    return this.shared.available() ? this.phaseValue : 'paused';
  }

  get iteration(): number {
    return this.engine.iteration;
  }

  get learningRate(): number {
    return this.learningRateValue;
  }

  get base(): Float32Array {
    return this.engine.base;
  }

  get modelTopology(): object {
    return this.topology;
  }

  get modelWeightSpecs(): ReturnType<typeof weightSpecs> {
    return this.specs;
  }

  private async listen(
    port: number,
    host: string,
    adapter?: ReturnType<RedisState['adapter']>,
  ): Promise<void> {
    const app = createHttpApp(this, this.options.webRoot);
    this.http = createHttpServer(app, this.options.tls);
    this.io = new Server(this.http, {
      // WebSocket only: no sticky sessions needed behind a load balancer
      transports: ['websocket'],
      maxHttpBufferSize: Math.max(1 << 20, maxUpdateFrameBytes(this.dimension) + (64 << 10)),
      ...HEARTBEAT,
      ...this.options.heartbeat,
      serveClient: false,
      // the iteration frame goes out as one binary message, encoded once per broadcast
      parser: coordinatorParser,
      ...(adapter === undefined ? {} : { adapter }),
    });
    this.workers = this.io.of(WORKER_NAMESPACE) as Namespace<
      WorkerClientToServer,
      WorkerServerToClient
    >;
    this.workers.on('connection', (socket) => this.onWorker(socket));
    this.dashboard = this.io.of('/dashboard');
    this.dashboard.on('connection', (socket) => {
      socket.emit('status', this.status());
      socket.emit('history', {
        evaluations: this.history,
        events: this.events.slice(-200),
        iterations: this.dashboardMetrics.thinnedSeries(),
      });
    });
    await new Promise<void>((resolve, reject) => {
      this.http!.once('error', reject);
      this.http!.listen(port, host, () => resolve());
    });
    this.statusTimer = setInterval(() => {
      this.pruneRelays();
      this.publishStatus();
    }, 1000);
    this.statusTimer.unref();
  }

  private statusTimer: NodeJS.Timeout | undefined;

  // ------------------------------------------------------------------ tabs

  private onWorker(socket: WorkerSocket): void {
    let tab: TabRecord | undefined;
    /** A hello whose join command is on its way through the shared log (multi-node). */
    let joining = false;
    const helloTimer = setTimeout(() => {
      if (!tab) socket.disconnect(true);
    }, HELLO_TIMEOUT_MS);

    const refuse = (event: string, code: ErrorCode, message: string): WireError => {
      this.countRejected(code);
      const error = { code, message, event };
      this.logger.debug({ tab: tab?.id, ...error }, 'refused');
      return error;
    };
    const reject = (event: string, code: ErrorCode, message: string): void => {
      socket.emit('rejected', refuse(event, code, message));
    };

    /** A rate limiter's budget for `key`; refused as rate-limited when it is spent. */
    const withinBudget = async (
      event: string,
      limiter: RateLimiterMemory,
      key: string,
      message: string,
    ): Promise<boolean> => {
      try {
        await limiter.consume(key);
        return true;
      } catch {
        reject(event, 'rate-limited', message);
        return false;
      }
    };
    /** The socket's budget for any event; links and relayed frames have their own on top. */
    const allowed = (event: string): Promise<boolean> =>
      withinBudget(event, this.limiter, socket.id, 'too many events');
    /** `raw` as `schema` reads it, or undefined after refusing it as invalid-message. */
    const parse = <T>(event: string, schema: MessageSchema<T>, raw: unknown, fallback: string) => {
      const parsed = schema.safeParse(raw);
      if (parsed.success) return parsed.data;
      reject(event, 'invalid-message', parsed.error.issues[0]?.message ?? fallback);
      return undefined;
    };

    socket.on('hello', async (raw, ack) => {
      if (typeof ack !== 'function') return;
      if (!(await allowed('hello'))) return;
      if (tab || joining)
        return ack({ ok: false, error: refuse('hello', 'invalid-message', 'already said hello') });
      const parsed = helloSchema.safeParse(raw);
      if (!parsed.success) {
        return ack({
          ok: false,
          error: refuse('hello', 'invalid-message', parsed.error.issues[0]?.message ?? 'bad hello'),
        });
      }
      const hello = parsed.data;
      if (hello.fault !== undefined && this.options.allowFaultInjection !== true) {
        return ack({
          ok: false,
          error: refuse(
            'hello',
            'fault-injection-disabled',
            'this coordinator refuses fault-injection tabs',
          ),
        });
      }
      // one client address must not open tabs without bound (a resume opens none)
      const group = this.addresses.groupOf(
        this.addresses.clientAddress(socket.handshake.address, socket.handshake.headers),
      );
      const join = this.joinCommand(socket, hello, group);
      if (group !== undefined && !this.registry.tabs.has(join.tabId)) {
        joining = true;
        const admitted = await this.addresses.admitJoin(group);
        joining = false;
        if (!admitted.ok) {
          const seconds = Math.ceil(admitted.retryInMs / 1000);
          return ack({
            ok: false,
            error: refuse(
              'hello',
              'too-many-joins',
              `too many new tabs from ${group}: retry in ${seconds} s`,
            ),
          });
        }
        if (tab || !socket.connected) return;
      }
      clearTimeout(helloTimer);
      joining = true;
      // the join is applied by every node; here, at the point of applying it, the tab gets its
      // welcome (before any placement, which afterAdmit sends)
      this.submit(join, (result) => {
        joining = false;
        if (result instanceof Error) {
          // the shared state is out of reach: the tab retries (socket.io reconnects)
          socket.disconnect(true);
          return;
        }
        const admitted = result as TabRecord;
        if (!socket.connected) {
          // gone while its join travelled: it leaves again
          this.submit(this.command({ kind: 'leave', tabId: admitted.id, socketId: socket.id }));
          return;
        }
        tab = admitted;
        this.sockets.set(admitted.id, socket);
        void socket.join(WELCOMED_ROOM);
        if (this.shared.distributed) void socket.join(tabRoom(admitted.id));
        ack({
          ok: true,
          value: {
            tabId: admitted.id,
            resumeToken: admitted.resumeToken,
            job: this.job,
            jobId: this.jobId,
            dimension: this.dimension,
            iteration: this.engine.iteration,
            phase: this.effectivePhase(),
            learningRate: this.learningRateValue,
            paramsUrl: '/api/params',
            manifestUrl: '/data/manifest.json',
            ...welcomeIce(this.options.ice, admitted.id),
            iterationKey: this.iterationKey,
          },
        });
        void this.measureRtt(admitted, socket);
        this.refreshIceWhileConnected(socket, admitted.id);
        // a resumed tab gets back the list of peers whose frames the coordinator relays
        const relayed = this.relays.peersOf(admitted.id);
        if (relayed.length > 0) socket.emit('relay-peers', { peers: relayed });
      });
    });

    socket.on('signal', async (raw) => {
      if (!tab || !(await allowed('signal'))) return;
      const signal = parse('signal', signalSchema, raw, 'bad signal');
      if (signal === undefined) return;
      const from = this.registry.seatOf(tab.id);
      const to = this.registry.seatOf(signal.to);
      const target = this.sockets.get(signal.to);
      // multi-node: a peer held by another node is reached through socket.io's Redis adapter
      const remote =
        target === undefined &&
        this.shared.distributed &&
        this.registry.tabs.get(signal.to)?.connected === true;
      if (
        !from ||
        !to ||
        from.clusterId !== to.clusterId ||
        (!target && !remote) ||
        signal.to === tab.id
      ) {
        reject('signal', 'not-in-cluster', `${signal.to} is not a peer in your cluster`);
        return;
      }
      if (target) target.emit('signal', { from: tab.id, data: signal.data });
      else this.workers?.to(tabRoom(signal.to)).emit('signal', { from: tab.id, data: signal.data });
    });

    socket.on('report', async (raw) => {
      if (!tab || !(await allowed('report'))) return;
      const report = parse('report', reportSchema, raw, 'bad report');
      if (report === undefined) return;
      const previous = tab.report;
      tab.report = report;
      tab.lastSeenAt = Date.now();
      if (report.state === 'quarantined' && previous?.state !== 'quarantined')
        this.logEvent('tab-quarantined', `${tab.id} reports it is quarantined by its cluster`);
      if (!this.shared.distributed) {
        for (const suspect of report.quarantinedPeers ?? []) this.reviewQuarantine(suspect);
      } else {
        // several nodes: what a tab reports about its peers is shared state (quarantine moves
        // seats), so it goes through the log when it changes; every node reviews it alike
        const peers = [...new Set(report.quarantinedPeers ?? [])].sort();
        if (peers.join(',') !== (tab.suspects ?? []).join(',') && this.shared.available())
          this.submit(this.command({ kind: 'suspects', tabId: tab.id, peers }));
      }
      const newBytes = Math.max(0, report.peerBytesSent - (previous?.peerBytesSent ?? 0));
      const newFp32 = Math.max(0, report.peerFp32Bytes - (previous?.peerFp32Bytes ?? 0));
      this.countWire('peer', newBytes, newFp32);
    });

    socket.on('confirmation', async (raw) => {
      if (!tab || !(await allowed('confirmation'))) return;
      const c = parse('confirmation', confirmationSchema, raw, 'bad confirmation');
      if (c === undefined) return;
      const seat = this.registry.seatOf(tab.id);
      if (!seat || seat.clusterId !== c.clusterId) {
        reject('confirmation', 'not-in-cluster', `you are not in cluster ${c.clusterId}`);
        return;
      }
      this.submit(
        this.command({
          kind: 'confirmation',
          tabId: tab.id,
          clusterId: c.clusterId,
          iteration: c.iteration,
          proposer: c.proposer,
          answer:
            c.verdict === 'computed'
              ? { kind: 'computed', digest: c.digest }
              : { kind: 'abstain', reason: c.reason },
        }),
      );
    });

    socket.on('iteration-request', async (raw) => {
      if (!tab || !(await allowed('iteration-request'))) return;
      const request = parse('iteration-request', iterationRequestSchema, raw, 'bad request');
      if (request === undefined) return;
      // the member's relay had the newest frame to forward and it did not arrive
      const seat = this.registry.seatOf(tab.id);
      const newest = this.recentFrames.at(-1);
      if (seat !== undefined && newest !== undefined && request.after < newest.iteration) {
        for (const [relay, clusterId] of this.lastRelays) {
          if (clusterId !== seat.clusterId || relay === tab.id) continue;
          this.relaysPassedOver.set(relay, newest.iteration + RELAY_PASSED_OVER_ITERATIONS);
        }
      }
      // what is kept after the tab's iteration, in order; an older gap it fills by a resync
      for (const { iteration, frame } of this.recentFrames) {
        if (iteration <= request.after) continue;
        socket.emit('iteration', frame);
        this.countIterationFrame('request', frame.byteLength, 1);
      }
    });

    socket.on('link', async (raw) => {
      if (!tab || !(await allowed('link'))) return;
      const from = tab;
      if (!(await withinBudget('link', this.linkLimiter, from.id, 'too many link reports'))) return;
      const report = parse('link', linkReportSchema, raw, 'bad link report');
      if (report === undefined) return;
      if (!this.coSeated(from.id, report.peer)) {
        reject('link', 'not-in-cluster', `${report.peer} is not a peer in your cluster`);
        return;
      }
      if (report.state === 'connected') this.linksUp.set(from.id, report.peer, true);
      else this.linksUp.delete(from.id, report.peer);
      const change = this.relays.report(from.id, report.peer, report.state);
      // placement keeps tabs that cannot reach each other apart (every node alike: a command)
      const apart = report.state === 'failed' && change.relayed;
      if (apart !== this.registry.isApart(from.id, report.peer) && this.shared.available())
        this.submit(this.command({ kind: 'apart', a: from.id, b: report.peer, apart }));
      if (!change.changed) return;
      this.logEvent(
        change.relayed ? 'link-relayed' : 'link-direct',
        change.relayed
          ? `the link ${from.id} – ${report.peer} does not connect (${report.reason ?? report.state}, ${report.attempts} attempts): the coordinator relays its frames`
          : `the link ${from.id} – ${report.peer} connected: its frames go direct again`,
      );
      this.metrics.relayedPairs.set(this.relays.relayedPairs);
      this.sendRelayPeers([from.id, report.peer]);
    });

    socket.on('relay-frame', async (rawMeta, rawFrame) => {
      if (!tab || !(await allowed('relay-frame'))) return;
      const from = tab;
      if (
        !(await withinBudget('relay-frame', this.relayLimiter, from.id, 'too many relayed frames'))
      )
        return;
      const meta = parse('relay-frame', relayFrameSchema, rawMeta, 'bad meta');
      if (meta === undefined) return;
      const to = meta.to;
      if (!(rawFrame instanceof Uint8Array)) {
        reject('relay-frame', 'invalid-message', 'the frame is not binary');
        return;
      }
      // a register frame of this job, no larger than any codec makes; the receiving tab decodes it
      const maxFrameBytes = maxUpdateFrameBytes(this.dimension);
      if (rawFrame.byteLength > maxFrameBytes) {
        reject('relay-frame', 'payload-too-large', `frame of ${rawFrame.byteLength} bytes`);
        return;
      }
      const header = parseFrame(rawFrame, { maxFrameBytes });
      if (!header.ok || header.value.header.jobId !== this.jobId) {
        socket.emit(
          'rejected',
          header.ok
            ? refuse('relay-frame', 'wrong-job', 'a frame of another job')
            : refuse('relay-frame', header.error.code, header.error.message),
        );
        return;
      }
      if (!this.coSeated(from.id, to)) {
        reject('relay-frame', 'not-in-cluster', `${to} is not a peer in your cluster`);
        return;
      }
      if (!this.relays.isRelayed(from.id, to)) {
        reject('relay-frame', 'not-relayed', `the link to ${to} is not relayed`);
        return;
      }
      const frame = new Uint8Array(rawFrame);
      const target = this.sockets.get(to);
      if (target) target.emit('relayed-frame', { from: from.id, frame });
      else if (this.shared.distributed && this.registry.tabs.get(to)?.connected === true)
        this.workers?.to(tabRoom(to)).emit('relayed-frame', { from: from.id, frame });
      else return; // the peer is away (its resume grace): it asks again (resend-register) if needed
      this.relayedFrames++;
      this.relayedBytes += frame.byteLength;
      this.metrics.relayedFrames.inc();
      this.countWire('relay', frame.byteLength, 4 * header.value.header.dimension);
    });

    socket.on('proposal', async (rawMeta, rawFrame, ack) => {
      if (typeof ack !== 'function') return;
      if (!(await allowed('proposal'))) {
        return ack({
          ok: false,
          error: { code: 'rate-limited', message: 'too many events', event: 'proposal' },
        });
      }
      if (!tab)
        return ack({ ok: false, error: refuse('proposal', 'unknown-tab', 'say hello first') });
      const from = tab;
      const checked = this.checkProposal(from, rawMeta, rawFrame);
      const answer = (
        result: { ok: true; counted: boolean } | { ok: false; code: ErrorCode; message: string },
      ): void => {
        if (!result.ok) {
          this.logEvent(
            'update-rejected',
            `proposal from ${from.id} refused: ${result.code} (${result.message})`,
          );
          ack({ ok: false, error: refuse('proposal', result.code, result.message) });
          return;
        }
        ack({ ok: true, value: { counted: result.counted } });
        this.maybeClose();
      };
      if (!checked.ok) return answer(checked);
      this.submit(checked.command, (result) =>
        answer(
          result instanceof Error
            ? { ok: false, code: 'paused', message: 'the shared state is out of reach' }
            : (result as Parameters<typeof answer>[0]),
        ),
      );
    });

    socket.on('disconnect', () => {
      clearTimeout(helloTimer);
      if (tab) this.onLeave(tab, socket);
    });
  }

  /** Both tabs hold seats in one cluster. */
  /**
   * Fresh TURN credentials for a connected tab before its welcome's expire (ice.ts): without
   * them a tab that stays for longer than their lifetime could open no new TURN link.
   */
  private refreshIceWhileConnected(socket: WorkerSocket, tabId: string): void {
    const every = iceRefreshMs(this.options.ice);
    if (every === undefined) return;
    const timer = setInterval(() => {
      if (!socket.connected) return clearInterval(timer);
      socket.emit('ice-servers', iceServersFor(this.options.ice, tabId));
    }, every);
    timer.unref();
    socket.once('disconnect', () => clearInterval(timer));
  }

  private coSeated(a: string, b: string): boolean {
    if (a === b) return false;
    const x = this.registry.seatOf(a);
    const y = this.registry.seatOf(b);
    return x !== undefined && y !== undefined && x.clusterId === y.clusterId;
  }

  /** Tells these tabs (here or, with several nodes, on another node) their relayed peers. */
  private sendRelayPeers(tabIds: Iterable<string>): void {
    for (const id of tabIds) {
      const info = { peers: this.relays.peersOf(id) };
      const socket = this.sockets.get(id);
      if (socket) socket.emit('relay-peers', info);
      else if (this.shared.distributed) this.workers?.to(tabRoom(id)).emit('relay-peers', info);
    }
  }

  /**
   * Relay pairs of tabs the registry forgot (left for good), or that no longer share a cluster
   * (placement parted them), are dropped.
   */
  private pruneRelays(): void {
    let changed = false;
    for (const id of this.relays.tabs()) {
      if (!this.registry.tabs.has(id)) {
        this.sendRelayPeers(this.relays.forget(id));
        changed = true;
        continue;
      }
      for (const peer of this.relays.peersOf(id)) {
        if (this.coSeated(id, peer) || !this.relays.drop(id, peer)) continue;
        this.sendRelayPeers([id, peer]);
        changed = true;
      }
    }
    if (changed) this.metrics.relayedPairs.set(this.relays.relayedPairs);
  }

  /** A join for this hello: a new identity, or the one its resume token names. */
  private joinCommand(
    socket: WorkerSocket,
    hello: ReturnType<typeof helloSchema.parse>,
    addressGroup: string | undefined,
  ): Extract<Command, { kind: 'join' }> {
    const known = hello.resumeToken
      ? [...this.registry.tabs.values()].find((t) => safeEqual(t.resumeToken, hello.resumeToken!))
      : undefined;
    return this.command({
      kind: 'join',
      tabId: known?.id ?? `tab-${randomUUID().slice(0, 8)}`,
      resumeToken: known?.resumeToken ?? randomBytes(18).toString('base64url'),
      helloKind: hello.kind,
      backend: hello.backend,
      fallbackAdapter: hello.fallbackAdapter,
      fault: hello.fault,
      socketId: socket.id,
      ...(addressGroup === undefined ? {} : { addressGroup }),
    });
  }

  private applyJoin(command: Extract<Command, { kind: 'join' }>): void {
    const now = command.at;
    let tab = this.registry.tabs.get(command.tabId);
    if (tab && tab.connected) {
      // the old connection is a ghost (the tab reconnected before the server noticed); the
      // node holding it drops it
      const ghost = this.sockets.get(tab.id);
      if (ghost !== undefined && ghost.id === tab.socketId) ghost.disconnect(true);
    }
    if (!tab) {
      tab = {
        id: command.tabId,
        resumeToken: command.resumeToken,
        joinSeq: this.registry.nextJoinSeq(),
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
      this.registry.tabs.set(tab.id, tab);
    }
    this.registry.setConnected(tab, true);
    tab.socketId = command.socketId;
    tab.addressGroup = command.addressGroup;
    if (this.shared.distributed) tab.node = command.node;
    tab.backend = command.backend;
    tab.fallbackAdapter = command.fallbackAdapter;
    tab.lastSeenAt = now;
    this.metrics.tabs.set(this.registry.connected().length);
    this.logEvent('tab-joined', `${tab.id} joined (${command.helloKind}, ${command.backend})`);
    this.settle(command.id, tab);
    this.afterAdmit(tab, now);
  }

  private afterAdmit(tab: TabRecord, now: number): void {
    if (this.registry.seatOf(tab.id)) {
      // resumed into its old seat
      this.sendPlacements(this.clusterMembersOf(tab.id));
    } else if (this.registry.clusters.length === 0 || this.phaseValue === 'waiting') {
      this.startIterationIfReady(now);
    } else {
      const seat = this.registry.seatInVacancy(tab.id);
      if (seat) this.sendPlacements(this.clusterMembersOf(tab.id));
    }
    this.updateQuorum();
    this.maybeClose();
  }

  private async measureRtt(tab: TabRecord, socket: WorkerSocket): Promise<void> {
    const started = performance.now();
    try {
      await socket.timeout(5000).emitWithAck('ping');
      // the rtt placement strategy reads it: shared like every other placement input
      this.submit(this.command({ kind: 'rtt', tabId: tab.id, rttMs: performance.now() - started }));
    } catch {
      // no answer: leave unmeasured; rtt placement seats it last
    }
  }

  private onLeave(tab: TabRecord, socket: WorkerSocket): void {
    if (tab.socketId !== socket.id) return; // an older connection of a resumed tab
    this.submit(this.command({ kind: 'leave', tabId: tab.id, socketId: socket.id }));
  }

  private applyLeave(tab: TabRecord, now: number): void {
    // its links went with it; a resumed tab reports them again as they reconnect
    this.linksUp.deleteTab(tab.id);
    this.registry.setConnected(tab, false);
    if (this.sockets.get(tab.id)?.id === tab.socketId) this.sockets.delete(tab.id);
    tab.socketId = undefined;
    tab.lastSeenAt = now;
    this.metrics.tabs.set(this.registry.connected().length);
    const seat = this.registry.seatOf(tab.id);
    const midRound =
      seat !== undefined &&
      this.phaseValue === 'training' &&
      !this.engine.proposers().includes(seat.clusterId);
    this.logEvent(
      midRound ? 'tab-left-mid-round' : 'tab-left',
      `${tab.id} left${seat ? ` cluster ${seat.clusterId}` : ''}`,
    );
    if (seat) {
      if (!this.registry.liveClusters().has(seat.clusterId)) {
        this.logEvent('cluster-lost', `cluster ${seat.clusterId} has no live tab`);
      }
      // fewer live members: a pending proposal of the cluster may be decided now
      this.run(this.desk.reconsider(seat.clusterId));
      // the cluster's relay of the last iteration left: its members may not have the frame
      if (this.lastRelays.get(tab.id) === seat.clusterId) this.resendToCluster(seat.clusterId);
      this.sendPlacements(this.clusterMembersOf(tab.id));
    } else {
      this.registry.tabs.delete(tab.id);
    }
    this.updateQuorum();
    this.maybeClose();
  }

  /**
   * Quarantine by the cluster's majority (TabRegistry.majorityAgainst over what the members
   * report). The tab then leaves the placement at the next iteration (rebalance skips
   * quarantined tabs) and is never seated again under this identity.
   */
  private reviewQuarantine(suspectId: string): void {
    const verdict = this.registry.majorityAgainst(suspectId, (member) =>
      this.shared.distributed ? member.suspects : member.report?.quarantinedPeers,
    );
    if (verdict) this.quarantine(suspectId, verdict.clusterId, verdict.reportedBy, 'filter');
  }

  /** Quarantines a tab for good: unseated at the next iteration, never seated again. */
  private quarantine(
    tabId: string,
    clusterId: number,
    reportedBy: string[],
    reason: 'filter' | 'refuted' | 'not-proposer',
  ): void {
    const tab = this.registry.tabs.get(tabId);
    if (!tab || tab.quarantined) return;
    tab.quarantined = true;
    this.registry.invalidateLive();
    this.placementsDirty = true;
    this.quarantinedTabs.push({
      tabId,
      clusterId,
      reportedBy,
      iteration: this.engine.iteration,
      reason,
    });
    const why =
      reason === 'filter'
        ? `${reportedBy.length} peers: ${reportedBy.join(', ')}`
        : reason === 'refuted'
          ? `its proposal was refuted by ${reportedBy.join(', ')}`
          : `it proposed ${DEFAULT_STRIKES.racesToQuarantine} times without being the proposer`;
    this.logEvent('tab-quarantined', `${tabId} quarantined by cluster ${clusterId} (${why})`);
    // it no longer counts among the members that confirm: a pending proposal may be decided
    this.run(this.desk.reconsider(clusterId, tabId));
    // and it no longer proposes
    this.sendPlacements(this.registry.members(clusterId).map((m) => m.tabId));
  }

  /** The last iteration frame to every member of a cluster this node holds (they drop repeats). */
  private resendToCluster(clusterId: number): void {
    const last = this.recentFrames.at(-1);
    if (last === undefined) return;
    let sent = 0;
    for (const { tabId } of this.registry.members(clusterId)) {
      const socket = this.sockets.get(tabId);
      if (!socket) continue;
      socket.emit('iteration', last.frame);
      sent++;
    }
    this.countIterationFrame('direct', last.frame.byteLength, sent);
  }

  private clusterMembersOf(tabId: string): string[] {
    const seat = this.registry.seatOf(tabId);
    if (!seat) return [tabId];
    return this.registry.members(seat.clusterId).map((m) => m.tabId);
  }

  private sendPlacements(tabIds: Iterable<string>): void {
    for (const id of tabIds) {
      const placement = this.registry.placementOf(id);
      if (placement?.proposer) this.desk.noteProposer(id);
      const socket = this.sockets.get(id);
      if (placement && socket) socket.emit('placement', placement);
      const group = this.registry.tabs.get(id)?.addressGroup;
      if (!placement && socket && group !== undefined && this.registry.isWaiting(id))
        socket.emit('unseated', { reason: 'address-group-full', group });
    }
  }

  // ------------------------------------------------------------------ proposals

  /** Everything about a proposal this node can check alone; the offer is a shared command. */
  private checkProposal(
    tab: TabRecord,
    rawMeta: unknown,
    rawFrame: unknown,
  ):
    | { ok: true; command: Extract<Command, { kind: 'proposal' }> }
    | { ok: false; code: ErrorCode; message: string } {
    const meta = proposalMetaSchema.safeParse(rawMeta);
    if (!meta.success) {
      return {
        ok: false,
        code: 'invalid-message',
        message: meta.error.issues[0]?.message ?? 'bad proposal',
      };
    }
    if (!(rawFrame instanceof Uint8Array)) {
      return { ok: false, code: 'invalid-message', message: 'proposal frame must be binary' };
    }
    const maxFrameBytes = maxUpdateFrameBytes(this.dimension);
    if (rawFrame.byteLength > maxFrameBytes) {
      return {
        ok: false,
        code: 'payload-too-large',
        message: `frame of ${rawFrame.byteLength} bytes`,
      };
    }
    // while paused, proposals are held (the iteration closes on resume); after the last
    // iteration there is nothing to propose to
    if (this.phaseValue === 'done') {
      return { ok: false, code: 'paused', message: 'training is done' };
    }
    if (!this.shared.available()) {
      return { ok: false, code: 'paused', message: 'the shared state is out of reach' };
    }
    const seat = this.registry.seatOf(tab.id);
    if (!seat || seat.clusterId !== meta.data.clusterId) {
      return {
        ok: false,
        code: 'not-in-cluster',
        message: `you are not in cluster ${meta.data.clusterId}`,
      };
    }
    // socket.io hands Node Buffers that may sit at any offset of a shared pool: copy to an
    // aligned buffer so the codecs can read typed views
    const frame = alignedBytes(rawFrame)!;
    const update = new Float32Array(this.dimension);
    const decoded = decodeFrameInto(frame, update, {
      dimension: this.dimension,
      jobId: this.jobId,
      maxFrameBytes,
    });
    if (!decoded.ok) return { ok: false, code: decoded.error.code, message: decoded.error.message };
    if (!allFinite(update))
      return { ok: false, code: 'non-finite', message: 'update is not finite' };
    return {
      ok: true,
      command: this.command({
        kind: 'proposal',
        tabId: tab.id,
        clusterId: seat.clusterId,
        baseIteration: decoded.value.iteration,
        // other nodes decode the frame themselves; one process hands the decoded update on
        frame: this.shared.distributed ? Uint8Array.from(frame) : frame,
        ...(this.shared.distributed ? {} : { update, staleness: decoded.value.staleness ?? 0 }),
        digest: frameDigest(frame),
        inputs: meta.data.inputs,
        rejected: meta.data.rejected,
      }),
    };
  }

  /** A proposal frame of another node (or a snapshot's) decoded, or undefined when it is bad. */
  private decodeUpdate(frame: Uint8Array): { update: Float32Array; staleness: number } | undefined {
    const update = new Float32Array(this.dimension);
    const decoded = decodeFrameInto(frame, update, {
      dimension: this.dimension,
      jobId: this.jobId,
      maxFrameBytes: maxUpdateFrameBytes(this.dimension),
    });
    return decoded.ok && allFinite(update)
      ? { update, staleness: decoded.value.staleness ?? 0 }
      : undefined;
  }

  /** The rule the tabs ran for a proposal on `baseIteration` (the operator may have changed it). */
  private ruleFor(baseIteration: number): { name: JobSpec['aggregator']['name']; f: number } {
    const before = this.previousAggregator;
    if (before !== undefined && baseIteration < before.until)
      return { name: before.name, f: before.f };
    return { name: this.job.aggregator.name, f: this.job.aggregator.f };
  }

  /**
   * The latest SDDE analysis (dashboard.ts); asking may start the next one, whose
   * recommendation an auto job acts on (onAnalysed).
   */
  private stalenessAnalysis(): DashboardStatus['staleness'] {
    return this.dashboardMetrics.staleness({
      learningRate: this.learningRateValue,
      activeTabs: this.registry.connected().length,
      threshold: this.engine.staleness,
      dropped: this.engine.staleDropped,
      auto: this.job.staleness === 'auto',
      openIterationSeconds: (performance.now() - this.iterationStartedAt) / 1000,
      // the analysis predicts the swarm as it runs: stale steps shrunk as the desk shrinks them
      stepScale: this.stepScale(),
    });
  }

  /**
   * The factor a proposal `delay` iterations stale is counted with (job.stalenessStep); every
   * node reads η (control commands) and h (the held-out data) alike.
   */
  private stepScale(): ((delay: number) => number) | undefined {
    if (this.job.stalenessStep !== 'sdde') return undefined;
    return (delay) =>
      stalenessStepScale(delay, this.learningRateValue, this.dashboardMetrics.curvature);
  }

  /** Carries out what the proposal desk decided, in its order. */
  private run(effects: readonly DeskEffect[]): void {
    for (const effect of effects) {
      switch (effect.kind) {
        case 'ask-confirm': {
          const p = effect.proposal;
          const request = {
            clusterId: p.clusterId,
            iteration: p.baseIteration,
            proposer: p.tabId,
            inputs: p.inputs,
            aggregator: p.aggregator,
          };
          for (const id of effect.to) this.sockets.get(id)?.emit('confirm', request);
          // the node that received the proposal bounds the wait, for every node
          if (p.node === this.nodeId) {
            const timer = setTimeout(() => {
              this.confirmTimers.delete(p.id);
              this.submit(
                this.command({ kind: 'confirm-timeout', clusterId: p.clusterId, proposalId: p.id }),
              );
            }, CONFIRM_TIMEOUT_MS);
            timer.unref();
            this.confirmTimers.set(p.id, timer);
          }
          break;
        }
        case 'cancel-timeout':
          clearTimeout(this.confirmTimers.get(effect.proposalId));
          this.confirmTimers.delete(effect.proposalId);
          break;
        case 'settle':
          this.settle(effect.proposalId, effect.outcome);
          break;
        case 'received':
          if (effect.proposal.node === this.nodeId)
            this.countWire('proposal', effect.proposal.frame.byteLength, this.dimension * 4);
          break;
        case 'counted': {
          const p = effect.proposal;
          if (this.shared.distributed) this.heldFrames.set(p.clusterId, p.frame);
          this.dashboardMetrics.recordAge(effect.delay);
          this.dashboardMetrics.recordScale(effect.scale);
          for (const r of p.rejected) {
            this.logEvent(
              'update-rejected',
              `cluster ${p.clusterId}'s ${p.aggregator.name} filter rejected slot ${r.slot}: ${r.reason}`,
            );
          }
          break;
        }
        case 'stale':
          this.metrics.staleDropped.inc();
          this.dashboardMetrics.recordAge(effect.delay);
          // an auto threshold that drops everything must not wait for a close to move
          if (this.job.staleness === 'auto' && this.shared.holdsLease()) this.stalenessAnalysis();
          break;
        case 'verdict':
          this.metrics.proposalVerdicts.inc({
            verdict: effect.verdict === 'notProposer' ? 'not-proposer' : effect.verdict,
          });
          break;
        case 'event':
          this.logEvent(effect.event, effect.message);
          break;
        case 'quarantine':
          this.quarantine(effect.tabId, effect.clusterId, effect.by, effect.reason);
          break;
        case 'placements':
          this.sendPlacements(this.registry.members(effect.clusterId).map((m) => m.tabId));
          break;
        case 'maybe-close':
          this.maybeClose();
          break;
      }
    }
  }

  // ------------------------------------------------------------------ iterations

  /** `now`: the clock of the command that led here (placement keeps seats by time). */
  private startIterationIfReady(now = Date.now()): void {
    if (this.closing || this.paused || this.phaseValue === 'done') return;
    const together = this.registry.apartPairs().filter(([a, b]) => this.coSeated(a, b));
    const changed = this.registry.rebalance(now, this.options.resumeGraceMs ?? 10_000);
    for (const [a, b] of together) {
      const x = this.registry.seatOf(a);
      const y = this.registry.seatOf(b);
      if (x && y && x.clusterId !== y.clusterId)
        this.logEvent(
          'tabs-parted',
          `${a} and ${b} cannot reach each other: seated in clusters ${x.clusterId} and ${y.clusterId}`,
        );
    }
    this.sendPlacements(this.registry.takeNewlyWaiting()); // they learn they wait (`unseated`)
    if (this.placementsDirty) {
      for (const tab of this.registry.connected()) changed.add(tab.id);
      this.placementsDirty = false;
    }
    const clusterIds = this.registry.clusters.map((c) => c.id);
    const connected = this.registry.connected().length;
    // minTabs only holds back the first start; later departures never stop training here
    const needed = this.started ? 1 : (this.options.minTabs ?? 1);
    if (connected < needed || clusterIds.length === 0) {
      this.engine.setClusters(clusterIds);
      this.setPhase('waiting');
      return;
    }
    this.engine.setClusters(clusterIds);
    this.metrics.clusters.set(clusterIds.length);
    this.iterationStartedAt = performance.now();
    this.desk.startIteration(clusterIds);
    // every seated tab learns its (possibly new) place; cluster size or count changes move
    // partitions too, so send to all seated tabs when the cluster set changed
    this.sendPlacements(changed.size > 0 ? this.registry.connected().map((t) => t.id) : []);
    this.started = true;
    this.setPhase('training');
    this.updateQuorum();
    this.armSilenceWatch();
  }

  /** (Re)starts the patience a cluster's proposer gets in the current iteration. */
  private armSilenceWatch(): void {
    clearTimeout(this.silenceTimer);
    const iteration = this.engine.iteration;
    const sorted = [...this.recentIterationMs].sort((a, b) => a - b);
    const median = sorted.length === 0 ? 0 : sorted[sorted.length >> 1]!;
    const patience = Math.max(
      this.options.proposerPatienceMs ?? SILENT_PROPOSER_MIN_MS,
      SILENT_PROPOSER_FACTOR * median,
    );
    this.silenceTimer = setTimeout(() => this.checkSilentProposers(iteration), patience);
    this.silenceTimer.unref();
  }

  /**
   * Every live cluster that has neither a held nor a pending proposal for `iteration`: its
   * proposer is reported silent (any node may report; applying is idempotent).
   */
  private checkSilentProposers(iteration: number): void {
    if (this.closing || this.engine.iteration !== iteration) return;
    // paused, quorum lost or Redis away: nobody is expected to propose; patience starts over
    if (this.phaseValue !== 'training' || !this.shared.available()) {
      this.armSilenceWatch();
      return;
    }
    for (const { clusterId, tabId } of this.desk.silentProposers())
      this.submit(this.command({ kind: 'proposer-silent', clusterId, iteration, tabId }));
    // the next proposer gets the same patience
    this.armSilenceWatch();
  }

  private setPhase(phase: Phase): void {
    if (this.phaseValue === phase) return;
    const previous = this.phaseValue;
    this.phaseValue = phase;
    if (phase === 'quorum-lost')
      this.logEvent('quorum-lost', 'fewer than a majority of clusters have a live tab');
    if (previous === 'quorum-lost' && phase === 'training')
      this.logEvent('quorum-restored', 'a majority of clusters is live again');
    this.workers?.local.emit('phase', phase);
    this.publishStatus();
  }

  private updateQuorum(): void {
    if (this.phaseValue !== 'training' && this.phaseValue !== 'quorum-lost') return;
    const decision = this.engine.decide(this.registry.liveClusters(), performance.now());
    if (decision.action === 'quorum-lost') this.setPhase('quorum-lost');
    else if (this.phaseValue === 'quorum-lost') this.setPhase('training');
    this.metrics.liveClusters.set(this.registry.liveClusters().size);
  }

  private maybeClose(): void {
    if (this.closing || (this.phaseValue !== 'training' && this.phaseValue !== 'quorum-lost'))
      return;
    if (!this.shared.available()) return; // resumes when the shared state is back
    const now = performance.now();
    const decision = this.engine.decide(this.registry.liveClusters(), now);
    if (decision.action === 'close') {
      // Close in the check phase, not inside this I/O callback: closing broadcasts to every
      // tab, and at thousands of tabs a poll phase that keeps finding proposals and closing
      // rounds never let the timers run (engine.io heartbeats, grace deadlines), so every tab
      // was dropped with "ping timeout" (bench/coordinator.ts, 10,000 tabs).
      if (this.closeImmediate === undefined) {
        this.closeImmediate = setImmediate(() => {
          this.closeImmediate = undefined;
          if (this.closing || (this.phaseValue !== 'training' && this.phaseValue !== 'quorum-lost'))
            return;
          const still = this.engine.decide(this.registry.liveClusters(), performance.now());
          if (still.action === 'close') this.requestClose(now);
          else this.maybeClose();
        });
      }
      return;
    }
    this.updateQuorum();
    if (decision.action === 'wait' && decision.until !== undefined) {
      clearTimeout(this.closeTimer);
      this.closeTimer = setTimeout(() => this.maybeClose(), Math.max(0, decision.until - now) + 1);
    }
  }

  /**
   * Asks every node to close the current iteration. Several nodes may ask; the first `close`
   * in the log closes it and the others find the iteration moved on and change nothing.
   */
  private requestClose(decidedAt: number): void {
    const iteration = this.engine.iteration;
    if (this.shared.distributed) {
      if (this.closeRequestedFor === iteration) return;
      this.closeRequestedFor = iteration;
    }
    this.closeDecidedAt = decidedAt;
    this.submit(this.command({ kind: 'close', iteration }), (result) => {
      if (result instanceof Error && this.closeRequestedFor === iteration)
        this.closeRequestedFor = -1; // not appended: ask again when the shared state is back
    });
  }

  private applyClose(command: Extract<Command, { kind: 'close' }>): void {
    if (command.iteration !== this.engine.iteration || this.engine.proposers().length === 0) return;
    // a close asked for before a pause (or the last iteration) that lands after it: no effect
    if (this.phaseValue !== 'training' && this.phaseValue !== 'quorum-lost') return;
    // the close latency counts from this node's own decision, else from the command's arrival
    const decidedAt =
      command.node === this.nodeId ? (this.closeDecidedAt ?? performance.now()) : performance.now();
    this.closeIteration(decidedAt, command.at, command.node === this.nodeId);
  }

  /** `own`: this node decided the close (several nodes: only the decider times the close). */
  private closeIteration(decidedAt: number, at = Date.now(), own = true): void {
    clearTimeout(this.closeTimer);
    // taken now: startIterationIfReady below restarts the iteration clock
    const iterationSeconds = (performance.now() - this.iterationStartedAt) / 1000;
    let closed: ClosedIteration;
    try {
      closed = this.engine.close();
    } catch (error) {
      this.logger.error({ err: error }, 'closing the iteration failed; proposals dropped');
      this.engine.setClusters(this.registry.clusters.map((c) => c.id));
      return;
    }
    this.lastRounds = closed.rounds;
    this.recentIterationMs.push(iterationSeconds * 1000);
    if (this.recentIterationMs.length > ITERATION_HISTORY) this.recentIterationMs.shift();
    if (this.shared.distributed) this.heldFrames.clear(); // close() let go of every proposal
    // with several nodes the log in Redis is the journal (redis-state.ts)
    if (!this.shared.distributed) {
      try {
        this.journal.append({ iteration: closed.iteration, frame: closed.frame });
      } catch (error) {
        // the iteration still goes on; a restart would resume from the iteration before
        this.logger.error({ err: error }, 'journal append failed');
      }
    }
    const done = this.job.maxIterations !== undefined && closed.iteration >= this.job.maxIterations;
    // seats and placements for the new iteration go out before the iteration itself, so a
    // tab whose place changed never starts computing on its old partitions
    if (!done) this.startIterationIfReady(at);
    this.sendIteration(closed);
    if (own) this.metrics.roundClose.observe((performance.now() - decidedAt) / 1000);
    this.metrics.iterationSeconds.observe(iterationSeconds);
    this.dashboardMetrics.recordIteration(
      {
        iteration: closed.iteration,
        at: Date.now(),
        trainingLoss: this.trainingLoss(),
        bytesSent: this.bytesSent,
        fp32EquivalentBytes: this.fp32EquivalentBytes,
      },
      iterationSeconds,
      closed.contributors,
    );
    // an auto job's threshold follows the analysis whether or not a dashboard is watching
    if (this.job.staleness === 'auto' && this.shared.holdsLease()) this.stalenessAnalysis();
    this.metrics.iteration.set(closed.iteration);
    this.logger.debug(
      {
        iteration: closed.iteration,
        contributors: closed.contributors,
        rounds: closed.rounds,
        spread: closed.spread,
      },
      'iteration closed',
    );
    this.afterClose(closed.iteration);
    if (done) {
      this.setPhase('done');
      if (this.shared.holdsLease()) void this.writeCheckpoint();
    }
  }

  /**
   * The closed iteration to every tab this node holds: one signed buffer, written as one
   * WebSocket message per recipient (socket-parser.ts). `cluster` dissemination writes a
   * FORWARD-flagged copy to one relay per cluster and the plain frame only to the tabs no relay
   * covers (core planDissemination); `direct` writes the plain frame to all.
   */
  private sendIteration(closed: ClosedIteration): void {
    const header = {
      iteration: closed.iteration,
      learningRate: this.learningRateValue,
      phase: this.phaseValue,
    };
    const plain = this.signedIterationFrame(encodeIterationFrame(header, closed.frame));
    for (const [tabId, until] of this.relaysPassedOver)
      if (until < closed.iteration || !this.registry.tabs.has(tabId))
        this.relaysPassedOver.delete(tabId);
    this.recentFrames.push({ iteration: closed.iteration, frame: plain });
    if (this.recentFrames.length > KEPT_ITERATION_FRAMES) this.recentFrames.shift();
    if ((this.options.dissemination ?? 'direct') === 'direct' || this.shared.distributed) {
      // every node tells its own tabs — those it welcomed, not a socket still saying hello
      this.workers?.local.to(WELCOMED_ROOM).emit('iteration', plain);
      this.lastRelays = new Map();
      this.countIterationFrame('direct', plain.byteLength, this.sockets.size);
      return;
    }
    const plan = planDissemination({
      reachable: this.sockets.keys(),
      clusters: this.registry.clusters.map((c) => ({
        id: c.id,
        members: this.registry.members(c.id).map((m) => m.tabId),
      })),
      proposerOf: (clusterId) => this.registry.proposerOf(clusterId),
      mayRelay: (tabId) =>
        this.registry.tabs.get(tabId)?.quarantined !== true &&
        (this.relaysPassedOver.get(tabId) ?? -1) < closed.iteration,
      linkUp: (a, b) => this.linksUp.has(a, b) && !this.relays.isRelayed(a, b),
    });
    const forward = this.signedIterationFrame(
      encodeIterationFrame(header, closed.frame, { forward: true }),
    );
    this.lastRelays = new Map(plan.relays.map((r) => [r.relay, r.clusterId]));
    for (const { relay } of plan.relays) this.sockets.get(relay)?.emit('iteration', forward);
    for (const id of plan.direct) this.sockets.get(id)?.emit('iteration', plain);
    this.countIterationFrame('relay', forward.byteLength, plan.relays.length);
    this.countIterationFrame('direct', plain.byteLength, plan.direct.length);
  }

  private signedIterationFrame(frame: Uint8Array): Buffer {
    setIterationSignature(frame, sign(null, signedBytes(frame), this.frameSigner.privateKey));
    return Buffer.from(frame.buffer, frame.byteOffset, frame.byteLength);
  }

  private countIterationFrame(to: keyof IterationFrameCounts, bytes: number, count: number): void {
    if (count === 0) return;
    this.iterationFramesSent[to] += count;
    this.metrics.iterationFrames.inc({ to }, count);
    this.countWire('broadcast', bytes * count, this.dimension * 4 * count);
  }

  private afterClose(iteration: number): void {
    // with several nodes, the holder of the lease in Redis evaluates and checkpoints
    if (!this.shared.holdsLease()) return;
    if (this.evaluator && iteration % this.job.evaluateEvery === 0 && !this.evaluationInFlight) {
      this.evaluationInFlight = true;
      const params = Float32Array.from(this.engine.base);
      this.evaluator
        .evaluate(params, iteration)
        .then((result) => {
          if (!this.shared.distributed) return this.recordEvaluation(result);
          // every node records it (its dashboard and status show it)
          this.submit(this.command({ kind: 'evaluated', point: { ...result, at: Date.now() } }));
        })
        .catch((error: unknown) => this.logger.error({ err: error }, 'evaluation failed'))
        .finally(() => {
          this.evaluationInFlight = false;
        });
    }
    if (
      iteration - this.lastCheckpointIteration >= this.job.checkpointEvery &&
      !this.checkpointInFlight
    ) {
      void this.writeCheckpoint();
    }
  }

  private recordEvaluation(
    result: { iteration: number; loss: number; accuracy: number },
    at = Date.now(),
  ): void {
    const point = {
      iteration: result.iteration,
      loss: result.loss,
      accuracy: result.accuracy,
      at,
    };
    this.lastEvaluation = point;
    this.history.push(point);
    if (this.history.length > 10_000) this.history.splice(0, this.history.length - 10_000);
    this.metrics.accuracy.set(result.accuracy);
    this.metrics.loss.set(result.loss);
    this.dashboard?.local.emit('evaluation', point);
    this.logger.info(point, 'evaluated');
  }

  /** Evaluates the current base now (used by tests and the swarm command). */
  async evaluateNow(): Promise<EvaluationPoint | undefined> {
    if (!this.evaluator) return undefined;
    const iteration = this.engine.iteration;
    const result = await this.evaluator.evaluate(Float32Array.from(this.engine.base), iteration);
    this.recordEvaluation(result);
    return this.lastEvaluation;
  }

  /** Writes a full checkpoint of the current base and state; one at a time. */
  async writeCheckpoint(): Promise<void> {
    if (this.checkpointInFlight) await this.checkpointInFlight;
    // several nodes: the replica at this point of the log also goes to Redis (lease holder)
    // (after the command being applied, so the snapshot sits between two log entries)
    if (this.shared.distributed) queueMicrotask(() => this.shared.saveSnapshot());
    const iteration = this.engine.iteration;
    const params = Float32Array.from(this.engine.base);
    const state: PersistedState = {
      job: this.job.name,
      learningRate: this.learningRateValue,
      bytesSent: this.bytesSent,
      fp32EquivalentBytes: this.fp32EquivalentBytes,
      bytesByPath: { ...this.bytesByPath },
      history: this.history.slice(-2000),
    };
    const task = (async () => {
      await this.checkpoints.save({
        iteration,
        params,
        state,
        modelTopology: this.topology,
        weightSpecs: this.specs,
      });
      this.lastCheckpointIteration = iteration;
      if (!this.shared.distributed) this.journal.rotate(iteration);
      this.checkpointsWritten++;
      this.metrics.checkpoints.inc();
      this.logEvent('checkpoint', `checkpoint at iteration ${iteration}`);
    })();
    this.checkpointInFlight = task;
    try {
      await task;
    } catch (error) {
      this.logger.error({ err: error }, 'checkpoint failed');
    } finally {
      this.checkpointInFlight = undefined;
    }
  }

  private restoreState(state: PersistedState): void {
    this.bytesSent = state.bytesSent;
    this.fp32EquivalentBytes = state.fp32EquivalentBytes;
    // checkpoints written before the breakdown existed restore it as zeros
    if (state.bytesByPath) this.bytesByPath = { ...state.bytesByPath };
    this.history.push(...state.history);
    this.lastEvaluation = state.history.at(-1);
  }

  // ------------------------------------------------------------------ control

  /** Applies an operator command (already authenticated). */
  control(
    raw: unknown,
  ): { ok: true; phase: Phase } | { ok: false; code: ErrorCode; message: string } {
    const parsed = controlSchema.safeParse(raw);
    if (!parsed.success) {
      this.countRejected('invalid-message');
      return {
        ok: false,
        code: 'invalid-message',
        message: parsed.error.issues[0]?.message ?? 'bad command',
      };
    }
    if (!this.shared.available()) {
      return { ok: false, code: 'paused', message: 'the shared state is out of reach' };
    }
    // every node applies it (several nodes: through the log in Redis)
    this.submit(this.command({ kind: 'control', command: parsed.data }));
    return { ok: true, phase: this.effectivePhase() };
  }

  private applyControl(command: ControlCommand, at: number): void {
    switch (command.action) {
      case 'pause':
        this.paused = true;
        clearTimeout(this.closeTimer);
        if (this.phaseValue !== 'done') this.setPhase('paused');
        break;
      case 'resume':
        this.paused = false;
        if (this.phaseValue === 'paused') {
          if (this.engine.clusters.length === 0) {
            this.phaseValue = 'waiting';
            this.startIterationIfReady(at);
          } else {
            this.setPhase('training');
            this.updateQuorum();
          }
          this.maybeClose();
        }
        break;
      case 'set-learning-rate':
        this.learningRateValue = command.learningRate;
        break;
      case 'set-cluster-size':
        this.job.cluster.size = command.size;
        if (this.job.cluster.redundancy >= command.size)
          this.job.cluster.redundancy = command.size - 1;
        this.registry.setJob(this.job);
        this.placementsDirty = true;
        break;
      case 'set-aggregator':
        // proposals computed before the tabs switch (at the next iteration) used the old rule
        this.previousAggregator = {
          name: this.job.aggregator.name,
          f: this.job.aggregator.f,
          until: this.engine.iteration + 1,
        };
        this.job.aggregator.name = command.name;
        if (command.f !== undefined) this.job.aggregator.f = command.f;
        this.placementsDirty = true;
        break;
      case 'set-staleness':
        this.engine.setStaleness(command.threshold);
        this.run(this.desk.retryStale());
        if (command.reason !== undefined) {
          this.stalenessAuto = {
            threshold: command.threshold,
            workers: command.workers ?? this.registry.connected().length,
            reason: command.reason,
            iteration: this.engine.iteration,
          };
          // the auto mode's decisions are logged as such, not as an operator's
          this.logEvent('staleness', `auto: ${command.reason}`);
          return;
        }
        break;
    }
    this.logEvent('control', `operator: ${JSON.stringify(command)}`);
    this.workers?.local.emit('phase', this.effectivePhase());
  }

  // ------------------------------------------------------------------ shared state

  /** A command of this node, stamped with a fresh id and this node's clock. */
  private command<C extends DistributiveOmit<Command, 'id' | 'node' | 'at'>>(
    body: C,
  ): C & { id: string; node: string; at: number } {
    return {
      ...body,
      id: `${this.nodeId}:${++this.commandSeq}`,
      node: this.nodeId,
      at: Date.now(),
    };
  }

  /**
   * Appends a command to the shared state; every node applies it (apply). `done` runs on this
   * node when the command is applied here, with what applying it gave, or with an Error when it
   * could not be appended. One process: both happen at once, in this call.
   */
  private submit(command: Command, done?: (result: unknown) => void): void {
    if (done) this.pending.set(command.id, done);
    this.shared.append(command, (error) => this.settle(command.id, error));
  }

  private settle(id: string, result: unknown): void {
    const done = this.pending.get(id);
    if (done === undefined) return;
    this.pending.delete(id);
    done(result);
  }

  /** Applies one command of the shared log: the same on every node, in the same order. */
  private apply(command: Command): void {
    switch (command.kind) {
      case 'join':
        this.applyJoin(command);
        break;
      case 'leave': {
        const tab = this.registry.tabs.get(command.tabId);
        // a leave of a replaced connection (the tab resumed meanwhile) changes nothing
        if (tab && tab.connected && tab.socketId === command.socketId)
          this.applyLeave(tab, command.at);
        break;
      }
      case 'rtt': {
        const tab = this.registry.tabs.get(command.tabId);
        if (tab) tab.rttMs = command.rttMs;
        break;
      }
      case 'proposal': {
        const { outcome, effects } = this.desk.propose({
          ...command,
          aggregator: this.ruleFor(command.baseIteration),
        });
        this.run(effects);
        // waiting for confirmations: the ack goes out with the verdict (a later settle effect)
        if ('pending' in outcome) return;
        this.settle(command.id, outcome);
        // any node may close: the one that received the proposal, or another (grace timers)
        if (command.node !== this.nodeId) this.maybeClose();
        break;
      }
      case 'confirmation':
        this.run(this.desk.confirm(command));
        break;
      case 'proposer-silent':
        this.run(this.desk.proposerSilent(command));
        break;
      case 'confirm-timeout':
        this.run(this.desk.timeout(command.clusterId, command.proposalId));
        break;
      case 'close':
        this.applyClose(command);
        break;
      case 'control':
        this.applyControl(command.command, command.at);
        break;
      case 'evaluated':
        this.recordEvaluation(command.point, command.point.at);
        break;
      case 'node-down':
        this.applyNodeDown(command.down, command.at);
        break;
      case 'apart':
        this.registry.setApart(command.a, command.b, command.apart);
        break;
      case 'suspects': {
        const tab = this.registry.tabs.get(command.tabId);
        if (!tab) break;
        tab.suspects = command.peers;
        for (const suspect of command.peers) this.reviewQuarantine(suspect);
        break;
      }
    }
    this.settle(command.id, true);
  }

  /** A node stopped heartbeating: the tabs it held left (they may resume on another node). */
  private applyNodeDown(node: string, at: number): void {
    if (node === this.nodeId) {
      // declared dead while alive (a long pause): its tabs reconnect and resume by token
      this.logEvent('node', `${node} (this node) was declared down: reconnecting its tabs`);
      for (const socket of [...this.sockets.values()]) socket.disconnect(true);
    } else {
      this.logEvent('node', `node ${node} is down: its tabs left`);
    }
    for (const tab of [...this.registry.tabs.values()]) {
      if (tab.node === node && tab.connected) this.applyLeave(tab, at);
    }
  }

  /** Redis went away or came back (multi-node). */
  private onAvailability(up: boolean): void {
    if (!up) {
      this.logEvent('node', `${this.nodeId} lost Redis: paused until it is back`);
      clearTimeout(this.closeTimer);
      this.workers?.local.emit('phase', 'paused');
      this.publishStatus();
      return;
    }
    this.logEvent('node', `${this.nodeId} reached Redis again: resuming`);
    // connections that ended while Redis was away: their leave could not be appended
    for (const tab of this.registry.tabs.values()) {
      if (tab.node === this.nodeId && tab.connected && tab.socketId !== undefined) {
        const socket = this.sockets.get(tab.id);
        if (socket?.id !== tab.socketId || !socket.connected)
          this.submit(this.command({ kind: 'leave', tabId: tab.id, socketId: tab.socketId }));
      }
    }
    this.closeRequestedFor = -1;
    this.workers?.local.emit('phase', this.phaseValue);
    this.publishStatus();
    this.maybeClose();
  }

  /** The replicated state as plain data (a snapshot in Redis; redis-state.ts). */
  exportReplica(): ReplicaState {
    const engine = this.engine.exportState();
    const desk = this.desk.exportState();
    // held proposals travel as the frames the tabs sent (1-bit: ~d/8 bytes, not 4·d)
    const heldFrames = engine.held.flatMap((h) => {
      const frame = this.heldFrames.get(h.clusterId);
      return frame === undefined
        ? []
        : [{ clusterId: h.clusterId, baseIteration: h.baseIteration, frame }];
    });
    return {
      job: swarmIdentity(this.job),
      iteration: this.engine.iteration,
      engine: { ...engine, held: [] },
      heldFrames,
      registry: this.registry.exportState(),
      phase: this.phaseValue,
      paused: this.paused,
      started: this.started,
      placementsDirty: this.placementsDirty,
      learningRate: this.learningRateValue,
      cluster: { ...this.job.cluster },
      aggregator: { ...this.job.aggregator },
      history: this.history.slice(-200),
      pendingProposals: desk.pending,
      staleProposals: desk.droppedStale ?? [],
      verdicts: desk.verdicts,
      ...(this.previousAggregator ? { previousAggregator: { ...this.previousAggregator } } : {}),
      staleness: this.engine.staleness,
      stalenessAuto: this.stalenessAuto,
    };
  }

  importReplica(state: ReplicaState): void {
    if (state.job !== swarmIdentity(this.job)) {
      throw new Error(
        `this node's job differs from the swarm's in Redis (every node needs the same job file): ${state.job}`,
      );
    }
    const held = state.heldFrames.map((h) => {
      const update = new Float32Array(this.dimension);
      const decoded = decodeFrameInto(h.frame, update, {
        dimension: this.dimension,
        jobId: this.jobId,
      });
      if (!decoded.ok)
        throw new Error(`snapshot: undecodable held proposal of cluster ${h.clusterId}`);
      return { clusterId: h.clusterId, baseIteration: h.baseIteration, update };
    });
    this.heldFrames.clear();
    for (const h of state.heldFrames) this.heldFrames.set(h.clusterId, h.frame);
    this.engine.importState({ ...state.engine, held });
    this.registry.importState(state.registry);
    this.phaseValue = state.phase;
    this.paused = state.paused;
    this.started = state.started;
    this.placementsDirty = state.placementsDirty;
    this.learningRateValue = state.learningRate;
    Object.assign(this.job.cluster, state.cluster);
    Object.assign(this.job.aggregator, state.aggregator);
    this.registry.setJob(this.job);
    this.history.splice(0, this.history.length, ...state.history);
    this.lastEvaluation = this.history.at(-1);
    this.desk.importState({
      pending: state.pendingProposals ?? [],
      droppedStale: state.staleProposals ?? [],
      ...(state.verdicts ? { verdicts: state.verdicts } : {}),
    });
    this.previousAggregator = state.previousAggregator;
    if (state.staleness !== undefined) this.engine.setStaleness(state.staleness);
    this.stalenessAuto = state.stalenessAuto ?? null;
    this.metrics.iteration.set(this.engine.iteration);
    this.metrics.tabs.set(this.registry.connected().length);
  }

  checkToken(header: string | undefined): boolean {
    if (!header?.startsWith('Bearer ')) return false;
    return safeEqual(header.slice('Bearer '.length), this.adminToken);
  }

  // ------------------------------------------------------------------ reporting

  /** The agreed parameters as an fp32 frame stamped with their iteration. */
  paramsFrame(): Uint8Array {
    const { bytes, payload } = allocateFrame(
      {
        codec: 'fp32',
        jobId: this.jobId,
        iteration: this.engine.iteration,
        round: 0,
        senderSlot: 0,
        dimension: this.dimension,
        blockSize: 0,
      },
      this.dimension * 4,
    );
    payload.set(
      new Uint8Array(this.engine.base.buffer, this.engine.base.byteOffset, this.dimension * 4),
    );
    return sealFrame(bytes);
  }

  /** Mean of the connected tabs' last reported training loss. */
  trainingLoss(): number | null {
    let sum = 0;
    let n = 0;
    for (const tab of this.registry.connected()) {
      const loss = tab.report?.trainingLoss;
      if (loss !== null && loss !== undefined) {
        sum += loss;
        n++;
      }
    }
    return n > 0 ? sum / n : null;
  }

  private dataDescription(): DashboardStatus['data'] {
    const m = this.dataset.manifest;
    return {
      name: m.job,
      train: this.dataset.train.count,
      heldOut: this.dataset.heldOut.count,
      partitions: m.partitions.length,
      features: m.features,
      classes: m.classes,
      source: m.source ?? null,
    };
  }

  status(): DashboardStatus & {
    node?: NodeStatus & { checkpoints: number; lastCheckpoint: number; sockets: number };
  } {
    const live = this.registry.liveClusters();
    const proposers = new Set(this.engine.proposers());
    const clusters = this.registry.clusters.map((cluster) => ({
      id: cluster.id,
      live: live.has(cluster.id),
      proposed: proposers.has(cluster.id),
      members: cluster.seats.flatMap((id, slot) => {
        if (id === undefined) return [];
        const tab = this.registry.tabs.get(id);
        return [
          {
            tabId: id,
            slot,
            live: tab?.connected === true,
            backend: tab?.backend ?? 'none',
            fallbackAdapter: tab?.fallbackAdapter ?? null,
            state: !tab?.connected
              ? ('closed' as const)
              : tab.quarantined
                ? ('quarantined' as const)
                : (tab.report?.state ?? 'idle'),
            examplesPerSecond: tab?.report?.examplesPerSecond ?? 0,
            stepsPerSecond: (tab?.report?.examplesPerSecond ?? 0) / this.job.batchSize,
            rttMs: tab?.rttMs ?? null,
            steps: tab?.report?.steps ?? 0,
          },
        ];
      }),
    }));
    return {
      job: {
        name: this.job.name,
        model: this.job.model,
        dataset: this.job.dataset,
        cluster: this.job.cluster,
        aggregator: this.job.aggregator,
        agreement: this.job.agreement,
        codec: this.job.codec,
        localSteps: this.job.localSteps,
        staleness: this.job.staleness,
        targetAccuracy: this.job.targetAccuracy,
        batchSize: this.job.batchSize,
      },
      dimension: this.dimension,
      data: this.dataDescription(),
      iteration: this.engine.iteration,
      phase: this.effectivePhase(),
      learningRate: this.learningRateValue,
      agreementRounds: this.lastRounds,
      tabs: this.registry.connected().length,
      clusters,
      quorum: {
        clusters: this.engine.clusters.length,
        live: live.size,
        majority: this.engine.majority,
        proposed: [...proposers],
        lastMajority: this.dashboardMetrics.lastMajority,
      },
      loss: this.lastEvaluation?.loss ?? null,
      accuracy: this.lastEvaluation?.accuracy ?? null,
      evaluatedAt: this.lastEvaluation?.iteration ?? null,
      trainingLoss: this.trainingLoss(),
      wire: {
        bytesSent: this.bytesSent,
        fp32EquivalentBytes: this.fp32EquivalentBytes,
        compression: this.bytesSent > 0 ? this.fp32EquivalentBytes / this.bytesSent : null,
        byPath: { ...this.bytesByPath },
      },
      staleDropped: this.engine.staleDropped,
      stalenessThreshold: this.engine.staleness,
      stalenessAuto: this.stalenessAuto,
      stepScaled: { ...this.dashboardMetrics.stepScaled },
      rejected: Object.fromEntries(this.rejectedByCode),
      uptimeSeconds: (Date.now() - this.startedAt) / 1000,
      quarantined: this.quarantinedTabs.map((q) => ({ ...q, reportedBy: [...q.reportedBy] })),
      proposals: { ...this.desk.verdicts },
      unseated: this.registry.unseated().length,
      relayedFrames: this.relayedFrames,
      relay: { bytes: this.relayedBytes, pairs: this.relays.relayedPairs },
      iterationFrames: { ...this.iterationFramesSent },
      serverTime: Date.now(),
      staleness: this.stalenessAnalysis(),
      // several nodes: which node answered, Redis reachable, lease, live nodes
      ...(this.shared.distributed
        ? {
            node: {
              ...this.shared.status()!,
              checkpoints: this.checkpointsWritten,
              lastCheckpoint: this.lastCheckpointIteration,
              sockets: this.sockets.size,
            },
          }
        : {}),
    };
  }

  private publishStatus(): void {
    // status() walks every cluster and tab: only build it when a dashboard is watching
    if (!this.dashboard || this.dashboard.sockets.size === 0) return;
    this.dashboard.emit('status', this.status());
  }

  private countWire(path: WirePath, bytes: number, fp32Bytes: number): void {
    this.bytesSent += bytes;
    this.bytesByPath[path] += bytes;
    this.fp32EquivalentBytes += fp32Bytes;
    this.metrics.wireBytes.inc({ path }, bytes);
    this.metrics.fp32Bytes.inc(fp32Bytes);
  }

  countRejected(code: ErrorCode): void {
    this.rejectedByCode.set(code, (this.rejectedByCode.get(code) ?? 0) + 1);
    this.metrics.rejected.inc({ code });
  }

  logEvent(kind: LogEvent['kind'], message: string): void {
    const event = { at: Date.now(), kind, message };
    this.events.push(event);
    if (this.events.length > 5000) this.events.splice(0, this.events.length - 5000);
    this.dashboard?.local.emit('event', event);
    this.logger.info({ event: kind }, message);
  }

  // ------------------------------------------------------------------ shutdown

  /** Checkpoints (unless told not to), then closes sockets, HTTP and the evaluator. */
  async close(options: { checkpoint?: boolean } = {}): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    clearTimeout(this.closeTimer);
    clearTimeout(this.silenceTimer);
    clearImmediate(this.closeImmediate);
    clearInterval(this.statusTimer);
    if (options.checkpoint !== false && this.shared.holdsLease()) await this.writeCheckpoint();
    this.io?.local.disconnectSockets(true);
    await new Promise<void>((resolve) => (this.io ? this.io.close(() => resolve()) : resolve()));
    await this.shared.close();
    await this.evaluator?.close();
  }
}

/** What every node of a multi-node coordinator holds alike (Coordinator.exportReplica). */
export interface ReplicaState {
  /** The job's fixed part: nodes of one swarm must run the same job. */
  job: string;
  iteration: number;
  /** The engine's state without its held proposals, which travel as frames (heldFrames). */
  engine: RoundEngineState;
  heldFrames: { clusterId: number; baseIteration: number; frame: Uint8Array }[];
  registry: RegistryState;
  phase: Phase;
  paused: boolean;
  started: boolean;
  placementsDirty: boolean;
  learningRate: number;
  cluster: JobSpec['cluster'];
  aggregator: JobSpec['aggregator'];
  history: EvaluationPoint[];
  /** Proposals waiting for their clusters' confirmations (without their decoded updates). */
  pendingProposals?: PendingProposalState[];
  /** Proposals of this iteration dropped as stale, offered again if S is raised. */
  staleProposals?: PendingProposalState[];
  verdicts?: ProposalVerdicts;
  previousAggregator?: { name: JobSpec['aggregator']['name']; f: number; until: number };
  /** The threshold S enforced, and the auto mode's last choice. */
  staleness?: number;
  stalenessAuto?: StalenessChoice | null;
}

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

/** What every node of one swarm must agree on: the job without what the operator may change. */
function swarmIdentity(job: JobSpec): string {
  const { cluster: _cluster, aggregator: _aggregator, optimizer: _optimizer, ...fixed } = job;
  return JSON.stringify(fixed);
}

/** A pair of tabs, in either order. */
/** socket.io room of the sockets this node welcomed as tabs (the iteration broadcast's). */
const WELCOMED_ROOM = 'welcomed';

/** socket.io room of one tab, so a node can reach a tab another node holds. */
function tabRoom(tabId: string): string {
  return `tab:${tabId}`;
}

interface PersistedState {
  job: string;
  learningRate: number;
  bytesSent: number;
  fp32EquivalentBytes: number;
  bytesByPath?: WireBytesByPath;
  history: EvaluationPoint[];
}

function isPersistedState(value: unknown, job: JobSpec): value is PersistedState {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Partial<PersistedState>;
  return (
    v.job === job.name &&
    typeof v.learningRate === 'number' &&
    typeof v.bytesSent === 'number' &&
    typeof v.fp32EquivalentBytes === 'number' &&
    (v.bytesByPath === undefined || isBytesByPath(v.bytesByPath)) &&
    Array.isArray(v.history)
  );
}

function isBytesByPath(value: unknown): value is WireBytesByPath {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  return wirePaths.every((p) => typeof v[p] === 'number' && Number.isFinite(v[p]) && v[p] >= 0);
}

function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
