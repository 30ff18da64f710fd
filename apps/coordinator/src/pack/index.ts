/**
 * `swarmgrad dataset pack`: a dataset pack from the files an operator has — IDX images and
 * labels (MNIST and its look-alikes; the held-out split from separate test files or cut from
 * the training files), or a CSV of numeric features and a label column (held-out split cut
 * from it). See docs/datasets.md for the format and pack.ts for the guarantees.
 */
import { basename } from 'node:path';
import { readCsv, type CsvOptions } from './csv.ts';
import { DataError } from './errors.ts';
import { idxSamples, readIdx } from './idx.ts';
import {
  buildPack,
  gather,
  heldOutCount,
  quantizeCsv,
  shuffledIndices,
  writePack,
  type Pack,
} from './pack.ts';

export { DataError } from './errors.ts';
export { parseCsv, readCsv, type CsvOptions, type CsvTable } from './csv.ts';
export { encodeIdx, parseIdx, readIdx } from './idx.ts';
export { buildPack, writePack, type Pack } from './pack.ts';

export interface PackCommon {
  /** Dataset name written into the manifest. */
  name: string;
  partitions: number;
  seed: number;
  /** Held-out samples to cut: a count, or a fraction in (0, 1). */
  heldOut?: number;
}

export interface IdxPackOptions extends PackCommon {
  images: string;
  labels: string;
  testImages?: string;
  testLabels?: string;
  /** Classes (default: the largest label + 1). */
  classes?: number;
}

export interface CsvPackOptions extends PackCommon, CsvOptions {
  csv: string;
}

/** Default held-out share when no test files are given. */
export const DEFAULT_HELD_OUT = 0.1;

export async function packIdx(options: IdxPackOptions): Promise<Pack> {
  if ((options.testImages === undefined) !== (options.testLabels === undefined)) {
    throw new RangeError('--test-images and --test-labels go together');
  }
  if (options.testImages !== undefined && options.heldOut !== undefined) {
    throw new RangeError('--held-out cuts the training files; with --test-images leave it out');
  }
  const train = idxSamples(
    await readIdx(options.images),
    options.images,
    await readIdx(options.labels),
    options.labels,
  );
  const features = train.shape.reduce((a, b) => a * b, 1);
  let test: typeof train | undefined;
  if (options.testImages !== undefined && options.testLabels !== undefined) {
    test = idxSamples(
      await readIdx(options.testImages),
      options.testImages,
      await readIdx(options.testLabels),
      options.testLabels,
    );
    if (test.shape.join() !== train.shape.join()) {
      throw new DataError(
        options.testImages,
        `IDX header dimensions: samples of ${test.shape.join(' × ')}, ${options.images} has ${train.shape.join(' × ')}`,
      );
    }
  }
  const maxLabel = (labels: Uint8Array) => labels.reduce((m, l) => Math.max(m, l), 0);
  const largest = Math.max(maxLabel(train.labels), test ? maxLabel(test.labels) : 0);
  const classes = options.classes ?? largest + 1;
  for (const [file, labels] of [
    [options.labels, train.labels],
    [options.testLabels, test?.labels],
  ] as const) {
    if (!labels || file === undefined) continue;
    const bad = labels.findIndex((l) => l >= classes);
    if (bad >= 0) {
      throw new DataError(
        file,
        `label ${labels[bad]} of item ${bad} is not below ${classes} classes`,
      );
    }
  }
  if (classes > 255 || classes < 2) {
    throw new DataError(options.labels, `${classes} classes; a pack holds 2 to 255`);
  }

  const order = shuffledIndices(train.count, options.seed);
  let heldOut;
  let trainOrder: Uint32Array;
  if (test) {
    heldOut = { pixels: test.pixels, labels: test.labels, count: test.count };
    trainOrder = order;
  } else {
    const n = heldOutCount(options.heldOut ?? DEFAULT_HELD_OUT, train.count);
    if (n >= train.count) {
      throw new RangeError(`--held-out ${n} leaves no training samples of ${train.count}`);
    }
    heldOut = gather(train.pixels, train.labels, features, order.subarray(train.count - n));
    trainOrder = order.subarray(0, train.count - n);
  }
  const inputShape = train.shape.length === 2 ? [...train.shape, 1] : train.shape;
  return buildPack({
    name: options.name,
    source: [options.images, options.labels, options.testImages, options.testLabels]
      .filter((f): f is string => f !== undefined)
      .map((f) => basename(f))
      .join(', '),
    features,
    classes,
    inputShape,
    train: gather(train.pixels, train.labels, features, trainOrder),
    heldOut,
    partitions: options.partitions,
  });
}

export async function packCsv(options: CsvPackOptions): Promise<Pack> {
  const table = await readCsv(options.csv, options);
  const n = heldOutCount(options.heldOut ?? DEFAULT_HELD_OUT, table.count);
  if (n >= table.count) {
    throw new RangeError(`--held-out ${n} leaves no training samples of ${table.count}`);
  }
  const split = quantizeCsv(table, n, options.seed);
  return buildPack({
    name: options.name,
    source: basename(options.csv),
    features: table.features,
    classes: table.classes,
    inputShape: [table.features],
    ...(table.labelNames ? { labelNames: table.labelNames } : {}),
    normalization: split.normalization,
    train: split.train,
    heldOut: split.heldOut,
    partitions: options.partitions,
  });
}

/** Builds and writes a pack; returns its manifest. */
export async function packDataset(
  out: string,
  options: (IdxPackOptions & { kind: 'idx' }) | (CsvPackOptions & { kind: 'csv' }),
  write: { force?: boolean } = {},
): Promise<Pack> {
  const pack = options.kind === 'idx' ? await packIdx(options) : await packCsv(options);
  await writePack(out, pack, write);
  return pack;
}
