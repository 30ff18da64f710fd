/**
 * A test tab built on the real tab's connection (packages/worker CoordinatorClient: several
 * coordinator URLs, reconnection, failover to the next URL, resume token, base kept in step
 * by the delta frames) with the fake worker's softmax-regression gradient instead of TF.js and
 * WebRTC: each tab proposes for its cluster on its own (cluster redundancy 0).
 */
import { encodeToFrame, getCodec, type CodecEncoder } from '@swarmgrad/core';
import type { Phase, Placement } from '@swarmgrad/protocol';
import { verifyPartition, type DataManifest } from '@swarmgrad/worker/partition';
import { CoordinatorClient } from '../../../../packages/worker/src/client.ts';
import { silentLogger, systemClock } from '../../../../packages/worker/src/runtime.ts';

export class ClientTab {
  readonly client: CoordinatorClient;
  placement: Placement | undefined;
  /** Iterations this tab's base moved through, in order (resynced ones marked). */
  readonly moves: { iteration: number; resynced: boolean }[] = [];
  readonly phases: Phase[] = [];
  /** Coordinator URL of every welcome. */
  readonly welcomedBy: string[] = [];
  readonly signals: { from: string; data: unknown }[] = [];
  counted = 0;
  private encoder: CodecEncoder | undefined;
  /** This tab's training data (its placement's partitions) and where its next batch starts. */
  xs = new Float32Array(0);
  labels = new Uint8Array(0);
  cursor = 0;
  private proposedFor = -1;
  private proposing = false;
  private dataFor: Placement | undefined;

  constructor(urls: string[]) {
    this.client = new CoordinatorClient({
      urls,
      hello: () => ({ kind: 'node', backend: 'cpu' }),
      logger: silentLogger,
      clock: systemClock,
      attemptsPerUrl: 2,
    });
    this.client.on('welcome', (welcome) => {
      this.welcomedBy.push(this.client.url);
      const codec = getCodec(welcome.job.codec.name);
      this.encoder ??= codec.createEncoder(welcome.dimension, {
        ...(codec.defaultBlockSize > 0 ? { blockSize: welcome.job.codec.blockSize } : {}),
      });
    });
    this.client.on('placement', (placement) => {
      this.placement = placement;
      void this.loadData(placement)
        .then(() => this.maybePropose())
        .catch(() => undefined);
    });
    this.client.on('base', (moved) => {
      this.moves.push({ iteration: moved.iteration, resynced: moved.resynced });
      this.maybePropose();
    });
    this.client.on('phase', (phase) => {
      this.phases.push(phase);
      if (phase === 'training') this.maybePropose();
    });
    this.client.on('signal', (message) => this.signals.push(message));
  }

  static async start(urls: string[]): Promise<ClientTab> {
    const tab = new ClientTab(urls);
    await tab.client.start();
    return tab;
  }

  get id(): string {
    return this.client.welcome!.tabId;
  }

  close(): void {
    this.client.close();
  }

  private async loadData(placement: Placement): Promise<void> {
    const manifest = (await (await this.client.get('/data/manifest.json')).json()) as DataManifest;
    const wanted = [...new Set(placement.partitions.flatMap((p) => p.global))];
    const parts = await Promise.all(
      wanted.map(async (index) => {
        const entry = manifest.partitions[index]!;
        const bytes = new Uint8Array(await (await this.client.get(entry.url)).arrayBuffer());
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
    if (this.placement !== placement) return;
    this.xs = xs;
    this.labels = labels;
    this.cursor = 0;
    this.dataFor = placement;
  }

  /** Proposes for the current base when this tab is its cluster's proposer. */
  maybePropose(): void {
    const base = this.client.base;
    const placement = this.placement;
    const iteration = this.client.iteration;
    if (
      this.proposing ||
      !this.client.connected ||
      base === undefined ||
      placement === undefined ||
      !placement.proposer ||
      this.dataFor !== placement ||
      this.encoder === undefined ||
      this.proposedFor === iteration ||
      (this.client.phase !== 'training' && this.client.phase !== 'quorum-lost')
    )
      return;
    this.proposing = true;
    const frame = encodeToFrame(this.encoder, softmaxUpdate(base, this), {
      jobId: this.client.welcome!.jobId,
      iteration,
      round: 0,
      senderSlot: placement.slot,
    });
    void this.client
      .propose(
        { clusterId: placement.clusterId, contributors: [placement.slot], rejected: [] },
        frame,
      )
      .then((answer) => {
        if (answer.ok) {
          this.proposedFor = iteration;
          if (answer.counted) this.counted++;
        }
      })
      .finally(() => {
        this.proposing = false;
        // the base may have moved while the proposal was out
        if (this.client.iteration !== iteration) this.maybePropose();
      });
  }
}

/** One SGD step of softmax regression on the tab's next batch (learning rate 0.5, batch 64). */
function softmaxUpdate(
  base: Float32Array,
  data: { xs: Float32Array; labels: Uint8Array; cursor: number },
): Float32Array {
  const d = base.length;
  const update = new Float32Array(d);
  const n = data.labels.length;
  if (n === 0 || d !== 784 * 10 + 10) return update;
  const batch = Math.min(64, n);
  const logits = new Float64Array(10);
  for (let b = 0; b < batch; b++) {
    const row = (data.cursor + b) % n;
    const x = data.xs.subarray(row * 784, row * 784 + 784);
    for (let c = 0; c < 10; c++) logits[c] = base[7840 + c]!;
    for (let i = 0; i < 784; i++) {
      const xi = x[i]!;
      if (xi === 0) continue;
      for (let c = 0; c < 10; c++) logits[c]! += xi * base[i * 10 + c]!;
    }
    let max = -Infinity;
    for (let c = 0; c < 10; c++) max = Math.max(max, logits[c]!);
    let sum = 0;
    for (let c = 0; c < 10; c++) sum += logits[c] = Math.exp(logits[c]! - max);
    const label = data.labels[row]!;
    const scale = -0.5 / batch;
    for (let c = 0; c < 10; c++) {
      const g = logits[c]! / sum - (c === label ? 1 : 0);
      update[7840 + c]! += scale * g;
      for (let i = 0; i < 784; i++) if (x[i]! !== 0) update[i * 10 + c]! += scale * g * x[i]!;
    }
  }
  data.cursor = (data.cursor + batch) % n;
  return update;
}
