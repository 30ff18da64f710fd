/**
 * The coordinator: every tab and the dashboard talk to it. It seats tabs in clusters, relays
 * their WebRTC signaling inside a cluster, drives the iterations (RoundEngine), evaluates and
 * checkpoints the agreed model, and serves the HTTP API.
 *
 * Every inbound event is untrusted: checked against packages/protocol's schemas, bounded in
 * size and rate, and refused with a typed error code (gateway.ts). Nothing a tab sends can stop
 * the server or change the model except through a validated, finite, correctly-sized proposal.
 *
 * This class holds the state and wires the parts (context.ts); the state changes only by
 * commands (shared-state.ts), applied here in one order: at once with one process, from the log
 * in Redis with several nodes (the same code either way).
 */
import type { Server as HttpServer } from 'node:http';
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { Server, type Namespace } from 'socket.io';
import { coordinatorParser, WORKER_NAMESPACE } from '@swarmgrad/protocol/socket-parser';
import pino, { type Logger } from 'pino';
import {
  RoundEngine,
  TabRegistry,
  decideAutoStaleness,
  estimateCurvature,
  DEFAULT_STRIKES,
  ProposalDesk,
} from '@swarmgrad/core';
import {
  allocateFrame,
  controlSchema,
  initialStaleness,
  jobIdOf,
  maxUpdateFrameBytes,
  sealFrame,
  type DashboardServerToClient,
  type ErrorCode,
  type JobSpec,
  type Phase,
  type WorkerClientToServer,
  type WorkerServerToClient,
} from '@swarmgrad/protocol';
import type { weightSpecs } from '@swarmgrad/model';

import { LinkRelays } from './relay.ts';
import { PairMap } from './pairs.ts';
import { createMetrics, type Metrics } from './metrics.ts';
import { DeltaJournal, SharedLogJournal } from './journal.ts';

import type { Dataset } from './dataset.ts';
import { Evaluator } from './evaluator.ts';
import { createHttpApp } from './http.ts';
import { createHttpServer } from './tls.ts';
import { DashboardMetrics } from './dashboard.ts';
import {
  MemoryState,
  type Command,
  type CommandHeader,
  type NodeStatus,
  type SharedState,
} from './shared-state.ts';
import type { RedisState } from './redis-state.ts';
import type { CommandBody, CoordinatorContext, SwarmFlags } from './context.ts';
import {
  HEARTBEAT,
  type CoordinatorOptions,
  type EvaluationPoint,
  type LogEvent,
} from './options.ts';
import { WireCounters } from './wire.ts';
import { TabSockets } from './tab-sockets.ts';
import { TabMembership } from './membership.ts';
import { IterationCycle } from './iterations.ts';
import { ownShare, SwarmView } from './node-share.ts';
import { ProposalIntake } from './proposals.ts';
import { IterationBroadcast } from './broadcast.ts';
import { TrainingRecords } from './records.ts';
import { VoucherKeys } from './vouchers.ts';
import { exportReplica, importReplica, type ReplicaState } from './replica.ts';
import { applyCommand } from './apply.ts';
import { load, type Loaded } from './boot.ts';
import { buildStatus, type CoordinatorStatus } from './status.ts';
import { TabGateway, safeEqual } from './gateway.ts';

export {
  HEARTBEAT,
  type CoordinatorOptions,
  type Dissemination,
  type EvaluationPoint,
  type Heartbeat,
  type LogEvent,
} from './options.ts';
export type { ReplicaState } from './replica.ts';

export class Coordinator implements CoordinatorContext {
  readonly job: JobSpec;
  readonly jobId: number;
  readonly dimension: number;
  readonly adminToken: string;
  readonly options: CoordinatorOptions;
  readonly metrics: Metrics;
  readonly logger: Logger;
  readonly dataset: Dataset;
  readonly registry: TabRegistry;
  readonly startedAt = Date.now();
  readonly engine: RoundEngine;
  /** Who may propose, confirmations, strikes (core swarm/proposal-desk.ts). */
  readonly desk: ProposalDesk;
  readonly flags: SwarmFlags;
  /** Where the shared state lives: this process (default) or Redis (several nodes). */
  shared: SharedState;
  readonly wire: WireCounters;
  readonly tabs: TabSockets;
  /** Pairs of tabs whose link does not connect: their frames go through here (relay.ts). */
  readonly relays = new LinkRelays();
  readonly linksUp = new PairMap<true>();
  /** Per-iteration series and the staleness analysis for the dashboard (dashboard.ts). */
  readonly dashboardMetrics: DashboardMetrics;
  readonly membership: TabMembership;
  readonly iterations: IterationCycle;
  readonly proposals: ProposalIntake;
  readonly broadcast: IterationBroadcast;
  /** The tabs' voucher keys and the check of the vouchers proposers bring (vouchers.ts). */
  readonly vouchers: VoucherKeys;
  readonly records: TrainingRecords;
  readonly events: LogEvent[] = [];
  readonly rejectedByCode = new Map<ErrorCode, number>();
  private readonly gateway: TabGateway;
  private readonly topology: object;
  private readonly specs: ReturnType<typeof weightSpecs>;
  private io: Server | undefined;
  private dashboard: Namespace<Record<string, never>, DashboardServerToClient> | undefined;
  private http: HttpServer | undefined;
  private statusTimer: NodeJS.Timeout | undefined;
  /** Local continuations of this node's commands, by command id (see submit). */
  private readonly pending = new Map<string, (result: unknown) => void>();
  private commandSeq = 0;

  private constructor(options: CoordinatorOptions, loaded: Loaded) {
    this.options = options;
    this.job = options.job;
    this.jobId = jobIdOf(this.job.name);
    this.dimension = loaded.initial.length;
    this.adminToken = options.adminToken ?? randomBytes(18).toString('base64url');
    this.vouchers = new VoucherKeys(options.vouchSecret);
    this.logger = options.logger ?? pino({ name: 'swarmgrad' });
    this.metrics = createMetrics();
    this.dataset = loaded.dataset;
    this.topology = loaded.topology;
    this.specs = loaded.specs;
    this.flags = {
      phase: 'waiting',
      paused: false,
      started: false,
      placementsDirty: false,
      learningRate: loaded.learningRate,
      stalenessAuto: null,
      previousAggregator: undefined,
      closing: false,
    };
    this.registry = new TabRegistry(this.job);
    this.dashboardMetrics = new DashboardMetrics(
      estimateCurvature(
        loaded.dataset.heldOut.xs,
        loaded.dataset.heldOut.count,
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
      initial: loaded.initial,
      iteration: loaded.iteration,
    });
    this.shared = new MemoryState((command) => applyCommand(this, command));
    this.wire = new WireCounters(this.metrics, this.dimension);
    this.tabs = new TabSockets(this.registry);
    this.membership = new TabMembership(this);
    this.iterations = new IterationCycle(this);
    this.proposals = new ProposalIntake(this);
    this.broadcast = new IterationBroadcast(this, options.dissemination ?? 'cluster');
    this.records = new TrainingRecords(this, {
      checkpoints: loaded.checkpoints,
      // several nodes: the log in Redis is the journal
      journal:
        options.redis === undefined
          ? new DeltaJournal(options.dataDir, loaded.iteration)
          : new SharedLogJournal(),
      topology: loaded.topology,
      specs: loaded.specs,
      lastCheckpointIteration: loaded.iteration,
    });
    this.desk = new ProposalDesk(this.registry, this.engine, {
      ...DEFAULT_STRIKES,
      decode: (frame) => this.proposals.decode(frame),
      now: () => performance.now(),
      stepScale: this.proposals.stepScale(),
    });
    if (this.job.staleness === 'auto')
      this.dashboardMetrics.onAnalysed = (points, active) => this.decideStaleness(points, active);
    this.gateway = new TabGateway(this);
    this.metrics.iteration.set(loaded.iteration);
  }

  /** Loads data and model, resumes from the latest checkpoint + journal, and listens. */
  static async start(options: CoordinatorOptions): Promise<Coordinator> {
    const loaded = await load(options);
    const coordinator = new Coordinator(options, loaded);
    await coordinator.resume(loaded);
    let adapter: ReturnType<RedisState['adapter']> | undefined;
    if (options.redis !== undefined) adapter = await coordinator.joinNodes(options.redis);
    if (options.evaluate !== false)
      coordinator.records.evaluator = await Evaluator.start(options.job, loaded.dataset.heldOut);
    await coordinator.listen(options.port ?? 8080, options.host ?? '0.0.0.0', adapter);
    return coordinator;
  }

  /** The checkpoint's state and the journal's iterations after it, replayed. */
  private async resume(loaded: Loaded): Promise<void> {
    const checkpointed = loaded.iteration;
    if (loaded.state) this.records.restore(loaded.state);
    // what this data directory journaled after its checkpoint (several nodes journal in Redis,
    // whose snapshot then replaces this state; a directory a single process used still replays)
    const replayed = new DeltaJournal(this.options.dataDir, checkpointed).read(checkpointed);
    for (const record of replayed) this.engine.replay(record.frame, record.iteration);
    if (!loaded.resumed) await this.records.writeCheckpoint();
    if (replayed.length > 0) {
      this.logger.info(
        { checkpoint: checkpointed, replayed: replayed.length, iteration: this.engine.iteration },
        'resumed from checkpoint and journal',
      );
    } else if (loaded.resumed) {
      this.logger.info({ iteration: checkpointed }, 'resumed from checkpoint');
    }
    this.metrics.iteration.set(this.engine.iteration);
    if (this.job.maxIterations !== undefined && this.engine.iteration >= this.job.maxIterations)
      this.flags.phase = 'done';
  }

  /** One node of several: the shared state in Redis replaces this process's own from here on. */
  private async joinNodes(url: string): Promise<ReturnType<RedisState['adapter']>> {
    const { RedisState } = await import('./redis-state.ts');
    const shared = await RedisState.connect({
      url,
      job: this.job.name,
      logger: this.logger,
      ...(this.options.leaseMs === undefined
        ? {}
        : { leaseMs: this.options.leaseMs, heartbeatMs: this.options.leaseMs }),
    });
    this.shared = shared;
    const adapter = shared.adapter();
    await shared.start({
      apply: (command) => applyCommand(this, command),
      exportReplica: () => this.exportReplica(),
      importReplica: (state) => this.importReplica(state as ReplicaState),
      availability: (up) => this.onAvailability(up),
      lease: (held) => {
        this.logEvent(
          'node',
          held
            ? `${shared.nodeId} holds the lease: it closes iterations, evaluates and checkpoints`
            : `${shared.nodeId} lost the lease`,
        );
        if (!held) return;
        // the error feedback of closes other nodes encoded is not known here
        this.engine.resetResidual();
        this.iterations.maybeClose();
      },
    });
    this.logger.info(
      { node: shared.nodeId, iteration: this.engine.iteration },
      'joined the multi-node coordinator',
    );
    return adapter;
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

  effectivePhase(): Phase {
    return this.shared.available() ? this.flags.phase : 'paused';
  }

  get iteration(): number {
    return this.engine.iteration;
  }

  get learningRate(): number {
    return this.flags.learningRate;
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

  get history(): EvaluationPoint[] {
    return this.records.history;
  }

  get iterationKey(): string {
    return this.broadcast.iterationKey;
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
    const workers = this.io.of(WORKER_NAMESPACE) as Namespace<
      WorkerClientToServer,
      WorkerServerToClient
    >;
    this.tabs.namespace = workers;
    workers.on('connection', (socket) => this.gateway.connect(socket));
    this.dashboard = this.io.of('/dashboard');
    this.dashboard.on('connection', (socket) => {
      socket.emit('status', this.status());
      socket.emit('history', {
        evaluations: this.records.history,
        events: this.events.slice(-200),
        iterations: this.dashboardMetrics.thinnedSeries(),
      });
    });
    await new Promise<void>((resolve, reject) => {
      this.http!.once('error', reject);
      this.http!.listen(port, host, () => resolve());
    });
    this.statusTimer = setInterval(() => {
      this.membership.pruneRelays();
      // several nodes: what only this node knows, for the others' statuses (node-share.ts)
      if (this.shared.status() !== undefined) this.shared.share(ownShare(this));
      this.publishStatus();
    }, 1000);
    this.statusTimer.unref();
  }

  /**
   * `staleness: "auto"`: the analysis' recommendation becomes a set-staleness command when it
   * changes; one node decides for all (the lease holder).
   */
  private decideStaleness(
    ...[points, activeTabs]: Parameters<NonNullable<DashboardMetrics['onAnalysed']>>
  ): void {
    if (!this.shared.holdsLease() || !this.shared.available()) return;
    const decision = decideAutoStaleness(points, activeTabs, this.engine.staleness, {
      minThreshold: this.job.pipeline ? 1 : 0,
    });
    const last = this.flags.stalenessAuto;
    if (!decision.changed && last !== null && last.workers === decision.workers) return;
    const reason = decision.reason.slice(0, 2000);
    const { threshold, workers } = decision;
    this.submit(
      this.command({
        kind: 'control',
        command: { action: 'set-staleness', threshold, reason, workers },
      }),
    );
  }

  // ------------------------------------------------------------------ commands

  command<C extends CommandBody>(body: C): C & CommandHeader {
    return {
      ...body,
      id: `${this.nodeId}:${++this.commandSeq}`,
      node: this.nodeId,
      at: Date.now(),
    };
  }

  submit(command: Command, done?: (result: unknown) => void): void {
    if (done) this.pending.set(command.id, done);
    this.shared.append(command, (error) => this.settle(command.id, error));
  }

  settle(id: string, result: unknown): void {
    const done = this.pending.get(id);
    if (done === undefined) return;
    this.pending.delete(id);
    done(result);
  }

  /** Redis went away or came back (multi-node). */
  private onAvailability(up: boolean): void {
    if (!up) {
      this.logEvent('node', `${this.nodeId} lost Redis: paused until it is back`);
      this.iterations.holdClose();
      this.tabs.toAllHere('phase', 'paused');
      this.publishStatus();
      return;
    }
    this.logEvent('node', `${this.nodeId} reached Redis again: resuming`);
    // connections that ended while Redis was away: their leave could not be appended
    for (const tab of this.registry.tabs.values()) {
      if (tab.node === this.nodeId && tab.connected && tab.socketId !== undefined) {
        const socket = this.tabs.get(tab.id);
        if (socket?.id !== tab.socketId || !socket.connected)
          this.submit(this.command({ kind: 'leave', tabId: tab.id, socketId: tab.socketId }));
      }
    }
    this.iterations.forgetCloseRequest();
    this.tabs.toAllHere('phase', this.flags.phase);
    this.publishStatus();
    this.iterations.maybeClose();
  }

  /** Applies an operator command (already authenticated). */
  control(
    raw: unknown,
  ): { ok: true; phase: Phase } | { ok: false; code: ErrorCode; message: string } {
    const parsed = controlSchema.safeParse(raw);
    if (!parsed.success) {
      this.countRejected('invalid-message');
      const message = parsed.error.issues[0]?.message ?? 'bad command';
      return { ok: false, code: 'invalid-message', message };
    }
    if (!this.shared.available())
      return { ok: false, code: 'paused', message: 'the shared state is out of reach' };
    // every node applies it (several nodes: through the log in Redis)
    this.submit(this.command({ kind: 'control', command: parsed.data }));
    return { ok: true, phase: this.effectivePhase() };
  }

  /** The replicated state as plain data (a snapshot in Redis; redis-state.ts). */
  exportReplica(): ReplicaState {
    return exportReplica(this);
  }

  importReplica(state: ReplicaState): void {
    importReplica(this, state, (history) => this.records.replaceHistory(history));
  }

  checkToken(header: string | undefined): boolean {
    if (!header?.startsWith('Bearer ')) return false;
    return safeEqual(header.slice('Bearer '.length), this.adminToken);
  }

  // ------------------------------------------------------------------ reporting

  /** Evaluates the current base now (used by tests and the swarm command). */
  evaluateNow(): Promise<EvaluationPoint | undefined> {
    return this.records.evaluateNow();
  }

  /** Writes a full checkpoint of the current base and state; one at a time. */
  writeCheckpoint(): Promise<void> {
    return this.records.writeCheckpoint();
  }

  /** The agreed parameters as an fp32 frame stamped with their iteration. */
  paramsFrame(): Uint8Array {
    const { dimension, engine } = this;
    const header = { codec: 'fp32' as const, jobId: this.jobId, iteration: engine.iteration };
    const { bytes, payload } = allocateFrame(
      { ...header, round: 0, senderSlot: 0, dimension, blockSize: 0 },
      dimension * 4,
    );
    payload.set(new Uint8Array(engine.base.buffer, engine.base.byteOffset, dimension * 4));
    return sealFrame(bytes);
  }

  /** Mean of the connected tabs' last reported training loss. */
  trainingLoss(): number | null {
    return new SwarmView(this).trainingLoss();
  }

  status(): CoordinatorStatus {
    const { dataset, startedAt } = this;
    return buildStatus(this, { dataset, startedAt });
  }

  publishStatus(): void {
    // status() walks every cluster and tab: only build it when a dashboard is watching
    if (!this.dashboard || this.dashboard.sockets.size === 0) return;
    this.dashboard.emit('status', this.status());
  }

  showEvaluation(point: EvaluationPoint): void {
    this.dashboard?.local.emit('evaluation', point);
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

  /** Checkpoints (unless told not to), then closes sockets, HTTP and the evaluator. */
  async close(options: { checkpoint?: boolean } = {}): Promise<void> {
    if (this.flags.closing) return;
    this.flags.closing = true;
    this.iterations.stop();
    this.proposals.stop();
    clearInterval(this.statusTimer);
    if (options.checkpoint !== false && this.shared.holdsLease()) await this.writeCheckpoint();
    this.io?.local.disconnectSockets(true);
    await new Promise<void>((resolve) => (this.io ? this.io.close(() => resolve()) : resolve()));
    await this.shared.close();
    await this.records.evaluator?.close();
  }
}
