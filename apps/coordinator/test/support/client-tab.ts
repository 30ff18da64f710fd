/**
 * A test tab built on the real tab's connection (packages/worker CoordinatorClient: several
 * coordinator URLs, reconnection, failover to the next URL, resume token, base kept in step
 * by the delta frames) with the fake worker's softmax-regression gradient instead of TF.js and
 * WebRTC: each tab proposes for its cluster on its own (cluster redundancy 0).
 */
import { encodeToFrame, frameDigest, getCodec, type CodecEncoder } from '@swarmgrad/core';
import type { Phase, Placement } from '@swarmgrad/protocol';
import { CoordinatorClient, silentLogger, systemClock } from '@swarmgrad/worker';
import { loadPlacementData, softmaxUpdate } from '@swarmgrad/test-support/softmax-data';
import { proposalBoard } from '@swarmgrad/test-support/proposal-board';

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
  xs: Float32Array = new Float32Array(0);
  labels: Uint8Array = new Uint8Array(0);
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
    // an honest member: confirms what the proposer recorded (@swarmgrad/test-support/proposal-board)
    this.client.on('confirm', (request) => {
      const digest = proposalBoard.lookup(request);
      const about = {
        clusterId: request.clusterId,
        iteration: request.iteration,
        proposer: request.proposer,
      };
      this.client.confirm(
        digest === undefined
          ? { verdict: 'abstain', ...about, reason: 'missing-register' }
          : { verdict: 'computed', ...about, digest },
      );
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
    const { xs, labels } = await loadPlacementData(placement, '/data/manifest.json', (path) =>
      this.client.get(path),
    );
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
    const frame = encodeToFrame(this.encoder, softmaxUpdate(base, this, 0.5, 64), {
      jobId: this.client.welcome!.jobId,
      iteration,
      round: 0,
      senderSlot: placement.slot,
    });
    proposalBoard.record(placement.clusterId, this.client.welcome!.tabId, frame);
    void this.client
      .propose(
        {
          clusterId: placement.clusterId,
          contributors: [placement.slot],
          inputs: [{ slot: placement.slot, digest: frameDigest(frame) }],
          rejected: [],
        },
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
