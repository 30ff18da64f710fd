import { createHash } from 'node:crypto';
import { jobSpecSchema } from '@swarmgrad/protocol';
import {
  PARTITION_HEADER_BYTES,
  parsePartition,
  sha256Hex,
  verifyPartition,
} from '@swarmgrad/protocol';
import { describe, expect, it } from 'vitest';
import { buildDataset } from '../src/dataset.ts';

const job = (seed: number, partitions = 32) =>
  jobSpecSchema.parse({
    name: 'mnist-test',
    dataset: { preset: 'mnist', train: 8000, heldOut: 2000, seed },
    partitions,
  });

const digest = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

describe('buildDataset (mnist preset)', () => {
  const a = buildDataset(job(1));

  it('has 8000 training and 2000 held-out samples split into the job partitions', () => {
    expect(a.train.count).toBe(8000);
    expect(a.train.xs.length).toBe(8000 * 784);
    expect(a.heldOut.count).toBe(2000);
    expect(a.heldOut.xs.length).toBe(2000 * 784);
    expect(a.manifest.heldOutCount).toBe(2000);
    expect(a.manifest.features).toBe(784);
    expect(a.manifest.classes).toBe(10);
    expect(a.manifest.partitions).toHaveLength(32);
    const counts = a.manifest.partitions.map((p) => p.count);
    expect(counts.reduce((s, c) => s + c, 0)).toBe(8000);
    expect(Math.max(...counts) - Math.min(...counts)).toBeLessThanOrEqual(1);
    for (const [i, entry] of a.manifest.partitions.entries()) {
      const bytes = a.partitionBytes(i);
      expect(entry.index).toBe(i);
      expect(entry.bytes).toBe(bytes.byteLength);
      expect(entry.bytes).toBe(PARTITION_HEADER_BYTES + entry.count * 785);
      expect(entry.sha256).toBe(digest(bytes));
      expect(entry.url).toBe(`/data/${entry.sha256}.bin`);
      expect(a.partitionBySha256(entry.sha256)).toBe(bytes);
    }
    expect(() => a.partitionBytes(32)).toThrow(RangeError);
  });

  it('is deterministic in the seed', () => {
    const again = buildDataset(job(1));
    const other = buildDataset(job(2));
    expect(again.manifest).toEqual(a.manifest);
    expect(Buffer.from(again.partitionBytes(5)).equals(Buffer.from(a.partitionBytes(5)))).toBe(
      true,
    );
    expect(Buffer.from(again.heldOut.labels).equals(Buffer.from(a.heldOut.labels))).toBe(true);
    const shas = new Set(a.manifest.partitions.map((p) => p.sha256));
    expect(other.manifest.partitions.some((p) => shas.has(p.sha256))).toBe(false);
    expect(Buffer.from(other.heldOut.labels).equals(Buffer.from(a.heldOut.labels))).toBe(false);
  });

  it('has every digit in the held-out set, pixels in [0, 1] and no sample in both sets', () => {
    const perClass = new Array<number>(10).fill(0);
    for (const label of a.heldOut.labels) perClass[label]!++;
    expect(perClass.every((n) => n > 100)).toBe(true);
    expect(a.heldOut.xs.every((x) => x >= 0 && x <= 1)).toBe(true);
    // not blank: MNIST digits are ~19% ink
    const ink = a.train.xs.reduce((s, x) => s + (x > 0 ? 1 : 0), 0) / a.train.xs.length;
    expect(ink).toBeGreaterThan(0.1);
    expect(ink).toBeLessThan(0.3);

    const key = (xs: Float32Array, i: number) =>
      digest(new Uint8Array(xs.buffer, i * 784 * 4, 784 * 4));
    const heldOutKeys = new Set(Array.from({ length: 2000 }, (_, i) => key(a.heldOut.xs, i)));
    let overlap = 0;
    for (let i = 0; i < 8000; i++) if (heldOutKeys.has(key(a.train.xs, i))) overlap++;
    // the mnist package has a handful of exact duplicate images; a leaking split would not
    expect(overlap).toBeLessThan(5);
  });

  it('partitions parse back to the training pixels and labels, in order', async () => {
    let offset = 0;
    for (const entry of a.manifest.partitions) {
      const bytes = a.partitionBytes(entry.index);
      const parsed = await verifyPartition(bytes, entry.sha256, { features: 784, classes: 10 });
      if (!parsed.ok) throw new Error(parsed.error.message);
      expect(parsed.value.count).toBe(entry.count);
      expect(Buffer.from(parsed.value.labels)).toEqual(
        Buffer.from(a.train.labels.subarray(offset, offset + entry.count)),
      );
      const expected = a.train.xs.subarray(offset * 784, (offset + entry.count) * 784);
      expect(Buffer.from(parsed.value.xs.buffer).equals(Buffer.from(expected.slice().buffer))).toBe(
        true,
      );
      offset += entry.count;
    }
    expect(offset).toBe(8000);
    expect(await sha256Hex(a.partitionBytes(0))).toBe(a.manifest.partitions[0]!.sha256);
  });

  it('rejects tampered, truncated and foreign partitions with typed errors', async () => {
    const entry = a.manifest.partitions[3]!;
    const tampered = a.partitionBytes(3).slice();
    tampered[PARTITION_HEADER_BYTES + 400]! ^= 0x01;
    expect(parsePartition(tampered).ok).toBe(true);
    const r1 = await verifyPartition(tampered, entry.sha256);
    expect(r1.ok ? undefined : r1.error.code).toBe('checksum-mismatch');

    const truncated = a.partitionBytes(3).subarray(0, entry.bytes - 10);
    const r2 = await verifyPartition(truncated, entry.sha256);
    expect(r2.ok ? undefined : r2.error.code).toBe('truncated');
    const r3 = parsePartition(a.partitionBytes(3).subarray(0, 10));
    expect(r3.ok ? undefined : r3.error.code).toBe('truncated');

    const foreign = a.partitionBytes(3).slice();
    foreign[0] = 0x58;
    const r4 = parsePartition(foreign);
    expect(r4.ok ? undefined : r4.error.code).toBe('bad-magic');

    const badLabel = a.partitionBytes(3).slice();
    badLabel[badLabel.length - 1] = 10;
    const r5 = parsePartition(badLabel);
    expect(r5.ok ? undefined : r5.error.code).toBe('invalid-message');

    const r6 = parsePartition(a.partitionBytes(3), { features: 100 });
    expect(r6.ok ? undefined : r6.error.code).toBe('dimension-mismatch');

    // the untouched file still verifies
    expect((await verifyPartition(a.partitionBytes(3), entry.sha256)).ok).toBe(true);
  });

  it('refuses impossible sizes', () => {
    expect(() =>
      buildDataset(
        jobSpecSchema.parse({
          name: 'too-big',
          dataset: { preset: 'mnist', train: 9000, heldOut: 2000, seed: 1 },
        }),
      ),
    ).toThrow(RangeError);
  });
});
