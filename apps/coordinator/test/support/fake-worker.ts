/**
 * A worker for the coordinator's integration tests: a real socket.io client in Node that
 * speaks the protocol, keeps the agreed base from the coordinator's delta frames, fetches and
 * hash-checks its data partitions over HTTP, and proposes updates computed from a real
 * softmax-regression gradient on them (or crafted ones, to test rejections). No WebRTC: each
 * fake worker proposes for its cluster on its own.
 */
import { io, type Socket } from 'socket.io-client';
import { decodeFrameInto, encodeToFrame, getCodec, type CodecEncoder } from '@swarmgrad/core';
import {
  PROTOCOL_VERSION,
  type CodecName,
  type IterationStart,
  type Placement,
  type Welcome,
  type WireError,
  type WorkerClientToServer,
  type WorkerServerToClient,
} from '@swarmgrad/protocol';
import { verifyPartition, type DataManifest } from '@swarmgrad/worker/partition';

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
  private encoder!: CodecEncoder;
  private xs: Float32Array = new Float32Array(0);
  private labels: Uint8Array = new Uint8Array(0);
  private cursor = 0;
  private readonly options: Required<Omit<FakeWorkerOptions, 'hello'>> & {
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
      ...options,
    };
    this.socket = io(`${options.url}/worker`, {
      transports: ['websocket'],
      reconnection: false,
      forceNew: true,
    });
    this.socket.on('ping', (ack) => ack());
    this.socket.on('rejected', (error) => this.rejections.push(error));
    this.socket.on('phase', (phase) => this.phases.push(phase));
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
    this.socket.on('iteration', (start) => this.onIteration(start));
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
    const manifest = (await (
      await fetch(`${this.options.url}${this.welcome.manifestUrl}`)
    ).json()) as DataManifest;
    const wanted = [...new Set(placement.partitions.flatMap((p) => p.global))];
    const parts = await Promise.all(
      wanted.map(async (index) => {
        const entry = manifest.partitions[index]!;
        const bytes = new Uint8Array(
          await (await fetch(`${this.options.url}${entry.url}`)).arrayBuffer(),
        );
        const parsed = await verifyPartition(bytes, entry.sha256);
        if (!parsed.ok) throw new Error(`partition ${index}: ${parsed.error.code}`);
        return parsed.value;
      }),
    );
    const count = parts.reduce((n, p) => n + p.count, 0);
    const xs = new Float32Array(count * 784);
    const labels = new Uint8Array(count);
    let offset = 0;
    for (const part of parts) {
      xs.set(part.xs, offset * 784);
      labels.set(part.labels, offset);
      offset += part.count;
    }
    this.xs = xs;
    this.labels = labels;
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
    const delta =
      start.delta instanceof Uint8Array ? start.delta : new Uint8Array(start.delta as ArrayBuffer);
    const aligned = delta.byteOffset % 8 === 0 ? delta : new Uint8Array(delta);
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

  /** Softmax-regression gradient step on the next batch of this worker's data: the update. */
  computeUpdate(): Float32Array {
    const d = this.base.length;
    const update = new Float32Array(d);
    const n = this.labels.length;
    if (n === 0 || d !== 784 * 10 + 10) return update;
    const batch = Math.min(this.options.batchSize, n);
    const logits = new Float64Array(10);
    for (let b = 0; b < batch; b++) {
      const row = (this.cursor + b) % n;
      const x = this.xs.subarray(row * 784, row * 784 + 784);
      for (let c = 0; c < 10; c++) logits[c] = this.base[7840 + c]!;
      for (let i = 0; i < 784; i++) {
        const xi = x[i]!;
        if (xi === 0) continue;
        for (let c = 0; c < 10; c++) logits[c]! += xi * this.base[i * 10 + c]!;
      }
      let max = -Infinity;
      for (let c = 0; c < 10; c++) max = Math.max(max, logits[c]!);
      let sum = 0;
      for (let c = 0; c < 10; c++) sum += logits[c] = Math.exp(logits[c]! - max);
      const label = this.labels[row]!;
      const scale = -this.options.learningRate / batch;
      for (let c = 0; c < 10; c++) {
        const g = logits[c]! / sum - (c === label ? 1 : 0);
        update[7840 + c]! += scale * g;
        for (let i = 0; i < 784; i++) if (x[i]! !== 0) update[i * 10 + c]! += scale * g * x[i]!;
      }
    }
    this.cursor = (this.cursor + batch) % n;
    return update;
  }

  encode(update: Float32Array, iteration = this.iteration): Uint8Array {
    return encodeToFrame(this.encoder, update, {
      jobId: this.welcome.jobId,
      iteration,
      round: 0,
      senderSlot: this.placement?.slot ?? 0,
    });
  }

  async propose(
    update = this.computeUpdate(),
    iteration = this.iteration,
  ): Promise<{ ok: boolean; code?: string }> {
    return this.sendProposal(
      { clusterId: this.placement?.clusterId ?? -1, contributors: [this.placement?.slot ?? 0] },
      this.encode(update, iteration),
    );
  }

  async sendProposal(meta: unknown, frame: unknown): Promise<{ ok: boolean; code?: string }> {
    const answer = await this.socket.timeout(10_000).emitWithAck('proposal', meta, frame);
    const result = answer.ok ? { ok: true } : { ok: false, code: answer.error.code };
    this.acks.push(result);
    return result;
  }

  close(): void {
    this.socket.disconnect();
  }
}
