/**
 * A worker for the coordinator's integration tests: a real socket.io client in Node that
 * speaks the protocol, keeps the agreed base from the coordinator's delta frames, fetches and
 * hash-checks its data partitions over HTTP, and proposes updates computed from a real
 * softmax-regression gradient on them (or crafted ones, to test rejections). No WebRTC: each
 * fake worker proposes for its cluster on its own, with its own register as the only input.
 *
 * Confirmations: fake workers hold no peer registers, so they cannot recompute a peer's
 * proposal (core's ClusterRound.recompute does that, tested there and end to end).
 * Here a proposer records the digest of what it sent on a board shared by the fake workers of
 * this process, and a member answers a confirm request as configured: 'honest' (the digest the
 * proposer recorded, as an honest member computing the same update would), 'contradict' (the
 * digest of another update), 'abstain', or 'silent' (no answer).
 */
import { io, type Socket } from 'socket.io-client';
import { tabParser, WORKER_NAMESPACE } from '@swarmgrad/protocol/socket-parser';
import {
  decodeFrameInto,
  encodeToFrame,
  frameDigest,
  getCodec,
  signVoucher,
  type CodecEncoder,
} from '@swarmgrad/core';
import {
  alignedBytes,
  PROTOCOL_VERSION,
  maxUpdateFrameBytes,
  parseIterationFrame,
  type CodecName,
  type ConfirmRequest,
  type IterationStart,
  type Placement,
  type TabReport,
  type Unseated,
  type Welcome,
  type WireError,
  type WorkerClientToServer,
  type WorkerServerToClient,
} from '@swarmgrad/protocol';
import { waitFor } from './harness.ts';
import { proposalBoard } from './proposal-board.ts';
import {
  loadPlacementData,
  softmaxLoss,
  softmaxUpdate,
  type TrainingData,
} from './softmax-data.ts';

type ClientSocket = Socket<WorkerServerToClient, WorkerClientToServer>;

export interface FakeWorkerOptions {
  url: string;
  /** Propose automatically at every iteration start (default true). */
  autoPropose?: boolean;
  /** Delay before proposing, ms. */
  delayMs?: number;
  codec?: CodecName;
  learningRate?: number;
  batchSize?: number;
  hello?: Record<string, unknown>;
  /** How this worker answers confirm requests for its peers' proposals (default 'honest'). */
  confirm?: 'honest' | 'contradict' | 'abstain' | 'silent';
  /** HTTP headers of the connection (a trusted proxy's X-Forwarded-For, in address tests). */
  headers?: Record<string, string>;
  /** The register staleness its frames declare (a pipelined tab's header field). */
  staleness?: number;
}

export class FakeWorker {
  readonly socket: ClientSocket;
  welcome!: Welcome;
  placement: Placement | undefined;
  base!: Float32Array;
  iteration = 0;
  readonly rejections: WireError[] = [];
  readonly acks: { ok: boolean; code?: string }[] = [];
  readonly phases: string[] = [];
  readonly confirmRequests: ConfirmRequest[] = [];
  /** `unseated` notices: the tab waits without a seat (address-group cap). */
  readonly unseated: Unseated[] = [];
  private encoder!: CodecEncoder;
  private readonly data: TrainingData = {
    xs: new Float32Array(0),
    labels: new Uint8Array(0),
    cursor: 0,
  };
  private readonly options: Required<Omit<FakeWorkerOptions, 'hello' | 'confirm' | 'headers'>> & {
    confirm: NonNullable<FakeWorkerOptions['confirm']>;
    hello?: Record<string, unknown>;
  };
  private pendingDeltas: IterationStart[] = [];
  private markWelcomed!: () => void;
  /** Placement can arrive before the hello's ack has been handled. */
  private readonly welcomed = new Promise<void>((resolve) => (this.markWelcomed = resolve));
  private ready = false;

  private constructor(options: FakeWorkerOptions) {
    this.options = {
      autoPropose: true,
      delayMs: 0,
      codec: 'one-bit',
      learningRate: 0.5,
      batchSize: 64,
      confirm: 'honest',
      staleness: 0,
      ...options,
    };
    this.socket = io(`${options.url}${WORKER_NAMESPACE}`, {
      transports: ['websocket'],
      parser: tabParser,
      reconnection: false,
      forceNew: true,
      ...(options.headers === undefined ? {} : { extraHeaders: options.headers }),
    });
    this.socket.on('ping', (ack) => ack());
    this.socket.on('rejected', (error) => this.rejections.push(error));
    this.socket.on('phase', (phase) => this.phases.push(phase));
    this.socket.on('unseated', (info) => this.unseated.push(info));
    this.socket.on('placement', (placement) => {
      const wasProposer = this.placement?.proposer === true;
      this.placement = placement;
      this.loadData()
        .then(() => {
          // took over as proposer mid-iteration (the previous one left): propose now
          if (placement.proposer && !wasProposer && this.ready && this.options.autoPropose) {
            void this.propose().catch(() => undefined);
          }
        })
        .catch(() => undefined); // the coordinator went away while downloading
    });
    this.socket.on('iteration', (frame) => {
      // the welcome (and its dimension) may still be on its way: bound by the largest frame then
      const dimension = (this.welcome as Welcome | undefined)?.dimension;
      const parsed = parseIterationFrame(
        frame,
        dimension === undefined ? {} : { maxDeltaBytes: maxUpdateFrameBytes(dimension) },
      );
      if (!parsed.ok) throw new Error(`iteration frame: ${parsed.error.code}`);
      this.onIteration(parsed.value);
    });
    this.socket.on('confirm', (request) => this.onConfirm(request));
  }

  private onConfirm(request: ConfirmRequest): void {
    this.confirmRequests.push(request);
    const mode = this.options.confirm;
    if (mode === 'silent') return;
    const about = {
      clusterId: request.clusterId,
      iteration: request.iteration,
      proposer: request.proposer,
    };
    const recorded = proposalBoard.lookup(request);
    if (mode === 'abstain' || (mode === 'honest' && recorded === undefined)) {
      this.socket.emit('confirmation', {
        verdict: 'abstain',
        ...about,
        reason: 'missing-register',
      });
      return;
    }
    this.socket.emit('confirmation', {
      verdict: 'computed',
      ...about,
      digest: mode === 'honest' ? recorded! : proposalBoard.contradiction,
    });
  }

  static async connect(options: FakeWorkerOptions): Promise<FakeWorker> {
    const worker = new FakeWorker(options);
    await new Promise<void>((resolve, reject) => {
      worker.socket.once('connect', () => resolve());
      worker.socket.once('connect_error', reject);
    });
    const answer = await worker.socket.emitWithAck('hello', {
      protocolVersion: PROTOCOL_VERSION,
      kind: 'node',
      backend: 'cpu',
      ...options.hello,
    });
    if (!answer.ok)
      throw Object.assign(new Error(answer.error.message), { code: answer.error.code });
    worker.welcome = answer.value;
    worker.markWelcomed();
    const codec = getCodec(worker.options.codec);
    worker.encoder = codec.createEncoder(answer.value.dimension, {
      ...(codec.defaultBlockSize > 0 ? { blockSize: 1024 } : {}),
    });
    await worker.fetchParams();
    return worker;
  }

  get id(): string {
    return this.welcome.tabId;
  }

  private async fetchParams(): Promise<void> {
    const response = await fetch(`${this.options.url}${this.welcome.paramsUrl}`);
    const bytes = new Uint8Array(await response.arrayBuffer());
    const base = new Float32Array(this.welcome.dimension);
    const parsed = decodeFrameInto(bytes, base, {
      dimension: this.welcome.dimension,
      jobId: this.welcome.jobId,
    });
    if (!parsed.ok) throw new Error(`params: ${parsed.error.code}`);
    this.base = base;
    this.iteration = parsed.value.iteration;
    this.ready = true;
    // deltas that arrived while downloading
    for (const start of this.pendingDeltas) this.onIteration(start);
    this.pendingDeltas = [];
  }

  private async loadData(): Promise<void> {
    await this.welcomed;
    const placement = this.placement;
    if (!placement) return;
    const { xs, labels } = await loadPlacementData(placement, this.welcome.manifestUrl, (path) =>
      fetch(`${this.options.url}${path}`),
    );
    this.data.xs = xs;
    this.data.labels = labels;
  }

  private onIteration(start: IterationStart): void {
    if (!this.ready) {
      this.pendingDeltas.push(start);
      return;
    }
    if (start.iteration <= this.iteration) return;
    if (start.iteration !== this.iteration + 1 || start.delta === undefined) {
      // missed one: resynchronise from the full parameters
      this.ready = false;
      this.fetchParams().catch(() => undefined);
      return;
    }
    const delta = start.delta;
    const aligned = alignedBytes(delta)!;
    const result = decodeFrameInto(aligned, this.base, {
      dimension: this.base.length,
      jobId: this.welcome.jobId,
    });
    if (!result.ok) throw new Error(`delta: ${result.error.code}`);
    this.iteration = start.iteration;
    if (this.options.autoPropose && this.placement?.proposer) {
      setTimeout(() => void this.propose().catch(() => undefined), this.options.delayMs);
    }
  }

  /**
   * Stops (false) or resumes (true) proposing by itself; resuming as the proposer proposes at
   * once. Held, a single cluster's iteration stays open, so placement (between iterations)
   * waits too.
   */
  setAutoPropose(on: boolean): void {
    this.options.autoPropose = on;
    if (on && this.ready && this.placement?.proposer) void this.propose().catch(() => undefined);
  }

  /** Softmax-regression gradient step on the next batch of this worker's data: the update. */
  computeUpdate(): Float32Array {
    return softmaxUpdate(this.base, this.data, this.options.learningRate, this.options.batchSize);
  }

  /** Mean cross-entropy at the current base on up to 64 of this worker's samples; null before
   * its data is loaded. */
  trainingLoss(): number | null {
    // the base arrives with the welcome's parameters, after connect() returned
    const base = this.base as Float32Array | undefined;
    return base === undefined ? null : softmaxLoss(base, this.data);
  }

  encode(update: Float32Array, iteration = this.iteration): Uint8Array {
    return encodeToFrame(this.encoder, update, {
      jobId: this.welcome.jobId,
      iteration,
      round: 0,
      senderSlot: this.placement?.slot ?? 0,
      staleness: this.options.staleness,
    });
  }

  async propose(
    update = this.computeUpdate(),
    iteration = this.iteration,
  ): Promise<{ ok: boolean; code?: string }> {
    const frame = this.encode(update, iteration);
    const slot = this.placement?.slot ?? 0;
    return this.sendProposal(
      {
        clusterId: this.placement?.clusterId ?? -1,
        contributors: [slot],
        inputs: [{ slot, digest: frameDigest(frame) }],
      },
      frame,
    );
  }

  /**
   * Proposes with vouchers of `members` (each signed with that member's own voucher key, as its
   * tab would after recomputing the proposal); `signedBy`: the worker whose key signs them all
   * instead (a proposer forging its members' vouchers).
   */
  async proposeVouched(
    members: readonly FakeWorker[],
    options: { signedBy?: FakeWorker; update?: Float32Array } = {},
  ): Promise<{ ok: boolean; code?: string }> {
    const iteration = this.iteration;
    const frame = this.encode(options.update ?? this.computeUpdate(), iteration);
    const slot = this.placement?.slot ?? 0;
    const clusterId = this.placement?.clusterId ?? -1;
    const digest = frameDigest(frame);
    const fields = { jobId: this.welcome.jobId, clusterId, iteration, proposer: this.id, digest };
    const vouchers = members.map((m) => ({
      tabId: m.id,
      digest,
      mac: signVoucher((options.signedBy ?? m).welcome.vouchKey!, fields),
    }));
    return this.sendProposal(
      { clusterId, contributors: [slot], inputs: [{ slot, digest }], vouchers },
      frame,
    );
  }

  /**
   * Sends a proposal as is. When the meta and frame are well formed, the digest of the frame
   * goes on the board first, so that honest fake members confirm it.
   */
  async sendProposal(meta: unknown, frame: unknown): Promise<{ ok: boolean; code?: string }> {
    const clusterId = (meta as { clusterId?: unknown } | null)?.clusterId;
    if (frame instanceof Uint8Array && typeof clusterId === 'number')
      proposalBoard.record(clusterId, this.id, frame);
    const answer = await this.socket.timeout(10_000).emitWithAck('proposal', meta, frame);
    const result = answer.ok ? { ok: true } : { ok: false, code: answer.error.code };
    this.acks.push(result);
    return result;
  }

  /** Sends a report naming the peers this tab's robust filter quarantined (the rest typical). */
  reportQuarantined(quarantinedPeers: string[]): void {
    const report: TabReport = {
      state: 'computing',
      steps: 1,
      examplesPerSecond: 10,
      computeMs: 1,
      wallMs: 100,
      peerBytesSent: 0,
      peerFp32Bytes: 0,
      trainingLoss: null,
      throttle: 1,
      quarantinedPeers,
    };
    this.socket.emit('report', report);
  }

  close(): void {
    this.socket.disconnect();
  }
}

/**
 * Connects one fake worker per URL, one after the other (seats go by join order), adding each to
 * `into` (the test's list to close) as soon as it is connected; then waits until every one has
 * its placement. Returns them in URL order.
 */
export async function connectPlaced(
  urls: string[],
  options: Omit<FakeWorkerOptions, 'url'>,
  into: FakeWorker[],
): Promise<FakeWorker[]> {
  const workers: FakeWorker[] = [];
  for (const url of urls) {
    const worker = await FakeWorker.connect({ ...options, url });
    into.push(worker);
    workers.push(worker);
  }
  await waitFor(() => workers.every((w) => w.placement !== undefined), 'placements');
  return workers;
}
