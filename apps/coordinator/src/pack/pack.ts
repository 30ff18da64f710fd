/**
 * Building a dataset pack (docs/datasets.md): a directory with `manifest.json` and one
 * `<sha256>.bin` file per training partition plus one for the held-out split, in the
 * partition layout of packages/worker/src/partition.ts, listed by a manifest that
 * `dataManifestSchema` (packages/protocol dataset.ts) accepts.
 *
 * Guarantees:
 * - Deterministic: the same inputs and seed give the same bytes and hashes.
 * - Training samples are shuffled with the seed (a CSV sorted by label would otherwise give
 *   one-class partitions) and cut into near-equal partitions (sizes differ by at most one);
 *   a `heldOut` cut takes its samples from the same shuffle, so they never overlap.
 * - CSV features are scaled to [0, 1] with the training split's per-feature min and max
 *   (recorded in the manifest's `normalization`; held-out values outside are clamped), then
 *   quantised to one byte like pixels.
 * - `writePack` writes everything into a temporary sibling directory and renames it into
 *   place at the end: a failure (bad data, a full disk) leaves no half-written pack, and an
 *   existing directory is replaced only with `force` (and only once the new pack is complete).
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { createRng } from '@swarmgrad/core';
import {
  DATA_MANIFEST_VERSION,
  dataManifestSchema,
  describeIssues,
  type DataManifest,
} from '@swarmgrad/protocol';
import { encodePartition } from '@swarmgrad/protocol';
import type { CsvTable } from './csv.ts';
import { DataError } from './errors.ts';

export interface ByteSamples {
  /** count × features bytes (value = round(x · 255)). */
  pixels: Uint8Array;
  labels: Uint8Array;
  count: number;
}

export interface PackInput {
  name: string;
  source: string;
  features: number;
  classes: number;
  inputShape?: number[];
  labelNames?: string[];
  normalization?: { min: number[]; max: number[] };
  train: ByteSamples;
  heldOut: ByteSamples;
  partitions: number;
}

export interface Pack {
  manifest: DataManifest;
  /** File name (relative to the pack directory) → bytes; manifest.json not included. */
  files: Map<string, Uint8Array>;
}

/** How many held-out samples: a count (≥ 1) or a fraction in (0, 1) of `total`. */
export function heldOutCount(spec: number, total: number): number {
  const n = spec > 0 && spec < 1 ? Math.round(spec * total) : spec;
  if (!Number.isInteger(n) || n < 1) {
    throw new RangeError(`--held-out must be a count ≥ 1 or a fraction in (0, 1), got ${spec}`);
  }
  return n;
}

/** A seeded Fisher–Yates permutation of 0..count−1. */
export function shuffledIndices(count: number, seed: number): Uint32Array {
  const order = new Uint32Array(count);
  for (let i = 0; i < count; i++) order[i] = i;
  const rng = createRng(seed);
  for (let i = count - 1; i > 0; i--) {
    const j = Math.floor(rng.next() * (i + 1));
    const tmp = order[i]!;
    order[i] = order[j]!;
    order[j] = tmp;
  }
  return order;
}

/** The samples at `indices`, in that order. */
export function gather(
  pixels: Uint8Array,
  labels: Uint8Array,
  features: number,
  indices: ArrayLike<number>,
): ByteSamples {
  const count = indices.length;
  const out = new Uint8Array(count * features);
  const outLabels = new Uint8Array(count);
  for (let k = 0; k < count; k++) {
    const i = indices[k]!;
    out.set(pixels.subarray(i * features, (i + 1) * features), k * features);
    outLabels[k] = labels[i]!;
  }
  return { pixels: out, labels: outLabels, count };
}

/**
 * A CSV table split (seeded shuffle, the last `heldOut` samples held out) and quantised with
 * the training split's per-feature min/max.
 */
export function quantizeCsv(
  table: CsvTable,
  heldOut: number,
  seed: number,
): { train: ByteSamples; heldOut: ByteSamples; normalization: { min: number[]; max: number[] } } {
  const { features, count } = table;
  const order = shuffledIndices(count, seed);
  const trainIdx = order.subarray(0, count - heldOut);
  const heldIdx = order.subarray(count - heldOut);
  const min = new Array<number>(features).fill(Infinity);
  const max = new Array<number>(features).fill(-Infinity);
  for (const r of trainIdx) {
    for (let f = 0; f < features; f++) {
      const v = table.values[r * features + f]!;
      if (v < min[f]!) min[f] = v;
      if (v > max[f]!) max[f] = v;
    }
  }
  const quantize = (indices: Uint32Array): ByteSamples => {
    const pixels = new Uint8Array(indices.length * features);
    const labels = new Uint8Array(indices.length);
    indices.forEach((r, k) => {
      for (let f = 0; f < features; f++) {
        const span = max[f]! - min[f]!;
        const x = span > 0 ? (table.values[r * features + f]! - min[f]!) / span : 0;
        pixels[k * features + f] = Math.round(Math.min(1, Math.max(0, x)) * 255);
      }
      labels[k] = table.labels[r]!;
    });
    return { pixels, labels, count: indices.length };
  };
  return { train: quantize(trainIdx), heldOut: quantize(heldIdx), normalization: { min, max } };
}

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

/** Partitions, held-out file and manifest of a pack (nothing written yet). */
export function buildPack(input: PackInput): Pack {
  const { train, features, classes } = input;
  if (!Number.isInteger(input.partitions) || input.partitions < 1) {
    throw new RangeError(`--partitions must be a positive integer, got ${input.partitions}`);
  }
  if (train.count < input.partitions) {
    throw new RangeError(
      `${train.count} training samples cannot fill ${input.partitions} partitions (lower --partitions or --held-out)`,
    );
  }
  const files = new Map<string, Uint8Array>();
  const partitions: DataManifest['partitions'] = [];
  for (let p = 0; p < input.partitions; p++) {
    const start = Math.floor((p * train.count) / input.partitions);
    const end = Math.floor(((p + 1) * train.count) / input.partitions);
    const bytes = encodePartition(
      train.pixels.subarray(start * features, end * features),
      train.labels.subarray(start, end),
      features,
      classes,
    );
    const hash = sha256(bytes);
    files.set(`${hash}.bin`, bytes);
    partitions.push({
      index: p,
      count: end - start,
      bytes: bytes.byteLength,
      sha256: hash,
      url: `${hash}.bin`,
    });
  }
  const held = encodePartition(input.heldOut.pixels, input.heldOut.labels, features, classes);
  const heldHash = sha256(held);
  files.set(`${heldHash}.bin`, held);
  const manifest: DataManifest = {
    version: DATA_MANIFEST_VERSION,
    job: input.name,
    features,
    classes,
    ...(input.inputShape ? { inputShape: input.inputShape } : {}),
    ...(input.labelNames ? { labels: input.labelNames } : {}),
    ...(input.normalization ? { normalization: input.normalization } : {}),
    source: input.source,
    partitions,
    heldOutCount: input.heldOut.count,
    heldOut: {
      count: input.heldOut.count,
      bytes: held.byteLength,
      sha256: heldHash,
      url: `${heldHash}.bin`,
    },
  };
  const checked = dataManifestSchema.safeParse(manifest);
  if (!checked.success) {
    // a bug here, not bad input: the inputs were checked above
    throw new Error(`built an invalid manifest: ${describeIssues(checked.error).join('; ')}`);
  }
  return { manifest, files };
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * Writes a pack into `dir` atomically (temporary sibling directory, then rename). Refuses an
 * existing `dir` unless `force`.
 */
export async function writePack(
  dir: string,
  pack: Pack,
  options: { force?: boolean } = {},
): Promise<void> {
  const target = resolve(dir);
  if ((await exists(target)) && !options.force) {
    throw new DataError(target, 'already exists (pass --force to replace it)');
  }
  await mkdir(dirname(target), { recursive: true });
  const tag = randomBytes(4).toString('hex');
  const temp = join(dirname(target), `.${basename(target)}.tmp-${tag}`);
  await mkdir(temp);
  try {
    for (const [name, bytes] of pack.files) await writeFile(join(temp, name), bytes);
    await writeFile(join(temp, 'manifest.json'), `${JSON.stringify(pack.manifest, null, 2)}\n`);
    if (await exists(target)) {
      const old = join(dirname(target), `.${basename(target)}.old-${tag}`);
      await rename(target, old);
      await rename(temp, target);
      await rm(old, { recursive: true, force: true });
    } else {
      await rename(temp, target);
    }
  } catch (error) {
    await rm(temp, { recursive: true, force: true });
    throw error;
  }
}
