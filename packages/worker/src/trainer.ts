/**
 * A tab's local work for one iteration (DESIGN.md step 2: Parle / elastic SGD, seed
 * ../shared/seeds/parle-and-byzantine-filters.md; Chaudhari et al., "Parle").
 *
 * Guarantee: for every local gradient-code partition j the tab holds, starting from the agreed
 * parameters x̃, it takes L steps x ← x − η·(g(x) + γ·(x − x̃)) (heavy-ball momentum when the
 * job's optimizer is 'momentum'), g the mean cross-entropy gradient (model.ts computeGradientAsync) on
 * the next minibatch of partition j's data, and returns u_j = x − x̃. This is exactly
 * core/parle's runLocalSteps in 'sgd' / 'elastic-sgd' mode (same elasticStep, velocity kept over
 * the L steps; the unit test checks equality) with the loop unrolled here so the tab can yield,
 * throttle, pause or abandon the work between any two steps. Minibatches walk a seeded
 * permutation of the partition's samples, reshuffled every epoch.
 *
 * The tab's register message is then, per the cluster's aggregation mode (cluster-round.ts):
 * coded — Σ_j B[slot][j] · u_j, robust — (1/(s+1)) · Σ_j u_j (core's register-message.ts, which
 * the simulator uses too).
 *
 * Parameters: L (job.localSteps), batch size, η (the coordinator's current learning rate),
 * γ (job.elastic), momentum, seed.
 */
import type * as tfl from '@tensorflow/tfjs-layers';
import { createRng, elasticStep, type Rng } from '@swarmgrad/core';
import { computeGradientAsync, setFlatParameters } from '@swarmgrad/model';

export interface LocalPartition {
  /** Cluster-local partition index (gradient-code column). */
  local: number;
  /** This slot's coefficient B[slot][local]. */
  coefficient: number;
  /** The global data partitions behind it, for caching batch order. */
  global: readonly number[];
  xs: Float32Array;
  labels: Uint8Array;
  count: number;
}

export interface LocalWorkSettings {
  steps: number;
  batchSize: number;
  learningRate: number;
  elastic: number;
  momentum: number;
}

export interface LocalWorkControl {
  /** True once the work should be abandoned (the iteration moved on, the tab left). */
  cancelled(): boolean;
  /** Awaited after every step with its compute time and batch size: yields, throttles, pauses. */
  pace(computeMs: number, examples: number): Promise<void>;
}

export interface LocalWorkResult {
  /** u_j per local partition, in the order given. */
  updates: Float32Array[];
  /** Mean training loss over the steps. */
  loss: number;
  steps: number;
  examples: number;
  computeMs: number;
}

interface BatchOrder {
  order: Uint32Array;
  cursor: number;
  rng: Rng;
}

export class Trainer {
  private readonly model: tfl.LayersModel;
  private readonly inputSize: number;
  private readonly seed: number;
  private readonly orders = new Map<string, BatchOrder>();
  private batchXs = new Float32Array(0);
  private batchLabels = new Uint8Array(0);

  constructor(model: tfl.LayersModel, options: { inputSize: number; seed: number }) {
    this.model = model;
    this.inputSize = options.inputSize;
    this.seed = options.seed;
  }

  /** Runs L steps per partition from `anchor`; undefined when cancelled. */
  async run(
    anchor: Float32Array,
    partitions: readonly LocalPartition[],
    settings: LocalWorkSettings,
    control: LocalWorkControl,
  ): Promise<LocalWorkResult | undefined> {
    const d = anchor.length;
    const updates: Float32Array[] = [];
    let lossSum = 0;
    let steps = 0;
    let examples = 0;
    let computeMs = 0;
    for (const partition of partitions) {
      const x = Float32Array.from(anchor);
      const velocity = settings.momentum > 0 ? new Float32Array(d) : undefined;
      if (partition.count > 0) {
        for (let step = 0; step < settings.steps; step++) {
          if (control.cancelled()) return undefined;
          const taken = await this.step(x, anchor, velocity, partition, settings);
          computeMs += taken.ms;
          lossSum += taken.loss;
          steps++;
          examples += taken.examples;
          await control.pace(taken.ms, taken.examples);
        }
      }
      const u = new Float32Array(d);
      for (let i = 0; i < d; i++) u[i] = x[i]! - anchor[i]!;
      updates.push(u);
    }
    if (control.cancelled()) return undefined;
    return { updates, loss: steps > 0 ? lossSum / steps : Number.NaN, steps, examples, computeMs };
  }

  /**
   * One step x ← x − η·(g(x) + γ·(x − anchor)) (heavy-ball with `velocity`) on the partition's
   * next minibatch, in place. A pipelined tab (core pipeline.ts) drives this one step at a time.
   */
  async step(
    x: Float32Array,
    anchor: Float32Array,
    velocity: Float32Array | undefined,
    partition: LocalPartition,
    settings: Omit<LocalWorkSettings, 'steps'>,
  ): Promise<{ loss: number; examples: number; ms: number }> {
    const started = performance.now();
    const batch = this.nextBatch(partition, settings.batchSize);
    setFlatParameters(this.model, x);
    const { loss, gradient } = await computeGradientAsync(
      this.model,
      this.batchXs,
      this.batchLabels,
      batch,
    );
    elasticStep(x, gradient, anchor, {
      learningRate: settings.learningRate,
      elastic: settings.elastic,
      ...(velocity ? { momentum: settings.momentum, velocity } : {}),
    });
    return { loss, examples: batch, ms: performance.now() - started };
  }

  /** Copies the partition's next minibatch into the batch buffers; returns its size. */
  private nextBatch(partition: LocalPartition, batchSize: number): number {
    const key = partition.global.join(',');
    let order = this.orders.get(key);
    if (order === undefined || order.order.length !== partition.count) {
      const rng = createRng((this.seed ^ hashKey(key)) >>> 0);
      order = { order: shuffledRange(partition.count, rng), cursor: 0, rng };
      this.orders.set(key, order);
    }
    const batch = Math.min(batchSize, partition.count);
    const n = this.inputSize;
    if (this.batchXs.length < batch * n) this.batchXs = new Float32Array(batch * n);
    if (this.batchLabels.length < batch) this.batchLabels = new Uint8Array(batch);
    for (let b = 0; b < batch; b++) {
      if (order.cursor >= order.order.length) {
        shuffleInPlace(order.order, order.rng);
        order.cursor = 0;
      }
      const row = order.order[order.cursor++]!;
      this.batchXs.set(partition.xs.subarray(row * n, row * n + n), b * n);
      this.batchLabels[b] = partition.labels[row]!;
    }
    return batch;
  }
}

function shuffledRange(n: number, rng: Rng): Uint32Array {
  const order = new Uint32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  shuffleInPlace(order, rng);
  return order;
}

function shuffleInPlace(order: Uint32Array, rng: Rng): void {
  for (let i = order.length - 1; i > 0; i--) {
    const j = Math.floor(rng.next() * (i + 1));
    const t = order[i]!;
    order[i] = order[j]!;
    order[j] = t;
  }
}

function hashKey(key: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193);
  return h >>> 0;
}
