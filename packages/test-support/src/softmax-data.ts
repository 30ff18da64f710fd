/**
 * What the coordinator's test workers (fake-worker.ts, client-tab.ts) share: loading the
 * hash-checked data partitions of a placement, and one SGD step of softmax regression on them
 * (the stand-in for the real tab's TF.js model).
 */
import type { Placement } from '@swarmgrad/protocol';
import { verifyPartition, type DataManifest } from '@swarmgrad/protocol';

const PIXELS = 784;
const CLASSES = 10;

/** A worker's training data and where its next batch starts. */
export interface TrainingData {
  xs: Float32Array;
  labels: Uint8Array;
  cursor: number;
}

/**
 * Fetches the placement's partitions (each once) through `get` (a coordinator-relative path to
 * its response), checks each against the manifest's hash and concatenates them.
 */
export async function loadPlacementData(
  placement: Placement,
  manifestPath: string,
  get: (path: string) => Promise<Response>,
): Promise<{ xs: Float32Array; labels: Uint8Array }> {
  const manifest = (await (await get(manifestPath)).json()) as DataManifest;
  const wanted = [...new Set(placement.partitions.flatMap((p) => p.global))];
  const parts = await Promise.all(
    wanted.map(async (index) => {
      const entry = manifest.partitions[index]!;
      const bytes = new Uint8Array(await (await get(entry.url)).arrayBuffer());
      const parsed = await verifyPartition(bytes, entry.sha256);
      if (!parsed.ok) throw new Error(`partition ${index}: ${parsed.error.code}`);
      return parsed.value;
    }),
  );
  const count = parts.reduce((n, p) => n + p.count, 0);
  const xs = new Float32Array(count * PIXELS);
  const labels = new Uint8Array(count);
  let offset = 0;
  for (const part of parts) {
    xs.set(part.xs, offset * PIXELS);
    labels.set(part.labels, offset);
    offset += part.count;
  }
  return { xs, labels };
}

/**
 * One SGD step of softmax regression on the next batch of `data` (advancing its cursor): the
 * update to add to `base`. A zero update when there is no data or `base` is not 784×10+10.
 */
export function softmaxUpdate(
  base: Float32Array,
  data: TrainingData,
  learningRate: number,
  batchSize: number,
): Float32Array {
  const d = base.length;
  const update = new Float32Array(d);
  const n = data.labels.length;
  if (n === 0 || d !== PIXELS * CLASSES + CLASSES) return update;
  const bias = PIXELS * CLASSES;
  const batch = Math.min(batchSize, n);
  const logits = new Float64Array(CLASSES);
  for (let b = 0; b < batch; b++) {
    const row = (data.cursor + b) % n;
    const x = data.xs.subarray(row * PIXELS, row * PIXELS + PIXELS);
    logitsInto(base, x, logits);
    let max = -Infinity;
    for (let c = 0; c < CLASSES; c++) max = Math.max(max, logits[c]!);
    let sum = 0;
    for (let c = 0; c < CLASSES; c++) sum += logits[c] = Math.exp(logits[c]! - max);
    const label = data.labels[row]!;
    const scale = -learningRate / batch;
    for (let c = 0; c < CLASSES; c++) {
      const g = logits[c]! / sum - (c === label ? 1 : 0);
      update[bias + c]! += scale * g;
      for (let i = 0; i < PIXELS; i++) {
        if (x[i]! !== 0) update[i * CLASSES + c]! += scale * g * x[i]!;
      }
    }
  }
  data.cursor = (data.cursor + batch) % n;
  return update;
}

/**
 * Mean cross-entropy of softmax regression at `base` on the first `count` samples of `data` (a
 * tab's training loss report); null without data or when `base` is not 784×10+10.
 */
export function softmaxLoss(base: Float32Array, data: TrainingData, count = 64): number | null {
  const n = Math.min(count, data.labels.length);
  if (n === 0 || base.length !== PIXELS * CLASSES + CLASSES) return null;
  const logits = new Float64Array(CLASSES);
  let total = 0;
  for (let row = 0; row < n; row++) {
    logitsInto(base, data.xs.subarray(row * PIXELS, row * PIXELS + PIXELS), logits);
    let max = -Infinity;
    for (let c = 0; c < CLASSES; c++) max = Math.max(max, logits[c]!);
    let sum = 0;
    for (let c = 0; c < CLASSES; c++) sum += Math.exp(logits[c]! - max);
    total += Math.log(sum) + max - logits[data.labels[row]!]!;
  }
  return total / n;
}

/** logits = W·x + b of softmax regression, W and b laid out as the flat 784×10+10 vector. */
function logitsInto(base: Float32Array, x: Float32Array, logits: Float64Array): void {
  const bias = PIXELS * CLASSES;
  for (let c = 0; c < CLASSES; c++) logits[c] = base[bias + c]!;
  for (let i = 0; i < PIXELS; i++) {
    const xi = x[i]!;
    if (xi === 0) continue;
    for (let c = 0; c < CLASSES; c++) logits[c]! += xi * base[i * CLASSES + c]!;
  }
}
