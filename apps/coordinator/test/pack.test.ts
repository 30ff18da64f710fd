/**
 * `swarmgrad dataset pack` and the coordinator's side of a pack (issue 18, item 1): packers on
 * real files in a temporary directory (IDX made from the `mnist` package's digits, CSVs
 * written here), bad data named by file and row or header field with nothing written, and
 * `loadDataset` reading a pack from a directory, a file: URL and an http origin.
 */
import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { gzipSync } from 'node:zlib';
import {
  dataManifestSchema,
  jobSpecSchema,
  type DashboardStatus,
  type DataManifest,
} from '@swarmgrad/protocol';
import { parsePartition } from '@swarmgrad/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DataError, loadDataset, manifestLocation } from '../src/dataset.ts';
import { packCsv, packDataset, packIdx, parseCsv, parseIdx, writePack } from '../src/pack/index.ts';
import { encodeIdx } from '../src/pack/idx.ts';
import { runCli, startCoordinator } from '@swarmgrad/test-support/harness';
import { writeMnistIdx, type MnistIdxFiles } from '@swarmgrad/test-support/mnist-idx';

let dir: string;
let train: MnistIdxFiles;
let test: MnistIdxFiles;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'swarmgrad-pack-'));
  train = await writeMnistIdx(dir, 30); // 300 digits
  test = await writeMnistIdx(dir, 8, { skip: 30, prefix: 't10k' }); // 80 other digits
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');
const readManifest = async (pack: string) =>
  dataManifestSchema.parse(JSON.parse(await readFile(join(pack, 'manifest.json'), 'utf8')));

/** Every sample of a pack's file, as one key per sample (pixels and label). */
async function samplesOf(pack: string, entry: { url: string; count: number }) {
  const bytes = await readFile(join(pack, entry.url));
  const parsed = parsePartition(bytes, { features: 784, count: entry.count });
  if (!parsed.ok) throw new Error(parsed.error.message);
  const keys: string[] = [];
  for (let i = 0; i < parsed.value.count; i++) {
    const pixels = bytes.subarray(16 + i * 784, 16 + (i + 1) * 784);
    keys.push(`${parsed.value.labels[i]}:${sha256(pixels)}`);
  }
  return keys;
}

async function expectNothingWritten(parent: string, name: string) {
  const left = (await readdir(parent)).filter((f) => f === name || f.startsWith(`.${name}.`));
  expect(left).toEqual([]);
}

describe('IDX packs', () => {
  it('cut a held-out split from the training files: every sample once, hashes right', async () => {
    const out = join(dir, 'idx-cut');
    await packDataset(out, {
      kind: 'idx',
      name: 'digits',
      images: train.images,
      labels: train.labels,
      heldOut: 60,
      partitions: 6,
      seed: 3,
    });
    const manifest = await readManifest(out);
    expect(manifest).toMatchObject({
      version: 1,
      job: 'digits',
      features: 784,
      classes: 10,
      inputShape: [28, 28, 1],
      heldOutCount: 60,
    });
    expect(manifest.partitions.map((p) => p.count)).toEqual([40, 40, 40, 40, 40, 40]);
    for (const file of [...manifest.partitions, manifest.heldOut!]) {
      const bytes = await readFile(join(out, file.url));
      expect(file.url).toBe(`${file.sha256}.bin`);
      expect(sha256(bytes)).toBe(file.sha256);
      expect(bytes.byteLength).toBe(file.bytes);
    }
    const trainKeys = (await Promise.all(manifest.partitions.map((p) => samplesOf(out, p)))).flat();
    const heldKeys = await samplesOf(out, manifest.heldOut!);
    const source = parseIdx(await readFile(train.images), train.images);
    const labels = parseIdx(await readFile(train.labels), train.labels);
    const all = Array.from(
      { length: 300 },
      (_, i) => `${labels.data[i]}:${sha256(source.data.subarray(i * 784, (i + 1) * 784))}`,
    );
    // the packed samples are exactly the source samples, each once
    expect([...trainKeys, ...heldKeys].sort()).toEqual([...all].sort());
    // shuffled: the first partition is not the first 40 of the file (digits 0..9 in turn)
    expect(trainKeys.slice(0, 40)).not.toEqual(all.slice(0, 40));
    // every class in the held-out split
    expect(new Set(heldKeys.map((k) => k.split(':')[0])).size).toBe(10);
    await expectNothingWritten(dir, 'idx-cut.tmp');
  });

  it('are deterministic in the seed', async () => {
    const options = { name: 'd', images: train.images, labels: train.labels, partitions: 4 };
    const a = await packIdx({ ...options, seed: 1 });
    const b = await packIdx({ ...options, seed: 1 });
    const c = await packIdx({ ...options, seed: 2 });
    expect(b.manifest).toEqual(a.manifest);
    expect(c.manifest.partitions[0]!.sha256).not.toBe(a.manifest.partitions[0]!.sha256);
    expect(a.manifest.heldOutCount).toBe(30); // the default 10 %
  });

  it('take the held-out split from test files, gzip-compressed or not', async () => {
    const gz = join(dir, 't10k-images-idx3-ubyte.gz');
    await writeFile(gz, gzipSync(await readFile(test.images)));
    const pack = await packIdx({
      name: 'd',
      images: train.images,
      labels: train.labels,
      testImages: gz,
      testLabels: test.labels,
      partitions: 3,
      seed: 1,
    });
    expect(pack.manifest.heldOutCount).toBe(80);
    expect(pack.manifest.partitions.reduce((n, p) => n + p.count, 0)).toBe(300);
    const held = pack.files.get(pack.manifest.heldOut!.url)!;
    // the test images in file order, byte for byte
    const source = parseIdx(await readFile(test.images), test.images);
    expect(Buffer.from(held.subarray(16, 16 + 80 * 784)).equals(Buffer.from(source.data))).toBe(
      true,
    );
  });

  it('name the file and the header field of a bad IDX file, and write nothing', async () => {
    const bytes = await readFile(train.images);
    const truncated = join(dir, 'truncated-images');
    await writeFile(truncated, bytes.subarray(0, bytes.byteLength - 1000));
    const out = join(dir, 'never');
    const attempt = (images: string, labels = train.labels) =>
      packDataset(out, { kind: 'idx', name: 'x', images, labels, partitions: 2, seed: 1 });
    await expect(attempt(truncated)).rejects.toThrow(DataError);
    await expect(attempt(truncated)).rejects.toThrow(
      `${truncated}: truncated: the IDX header (dimensions 300 × 28 × 28) promises ${bytes.byteLength} bytes, the file has ${bytes.byteLength - 1000}`,
    );

    const floats = join(dir, 'float-images');
    const copy = Uint8Array.from(bytes);
    copy[2] = 0x0d;
    await writeFile(floats, copy);
    await expect(attempt(floats)).rejects.toThrow(
      `${floats}: IDX header field data type (byte 2): 0x0d (float); only 0x08 (unsigned byte) is supported`,
    );

    const notIdx = join(dir, 'not-idx');
    await writeFile(notIdx, 'P5 28 28 255\n');
    await expect(attempt(notIdx)).rejects.toThrow(`${notIdx}: IDX header field magic`);

    const fewLabels = join(dir, 'few-labels');
    await writeFile(fewLabels, encodeIdx([299], new Uint8Array(299)));
    await expect(attempt(train.images, fewLabels)).rejects.toThrow(
      `${fewLabels}: IDX header field dimension 0: 299 labels, but ${train.images} holds 300 images`,
    );
    await expect(attempt(join(dir, 'missing'))).rejects.toThrow('cannot read the file');
    await expectNothingWritten(dir, 'never');
  });
});

describe('CSV packs', () => {
  const rows = (n: number) => {
    const lines = ['sepal length,sepal width,species'];
    for (let i = 0; i < n; i++) {
      const species = ['setosa', 'versicolor', 'virginica'][i % 3]!;
      lines.push(`${(4 + (i % 3) + i / 100).toFixed(2)},${(i % 7) - 3},"${species}"`);
    }
    return `${lines.join('\r\n')}\r\n`;
  };

  it('scale features with the training min/max, name classes, and cut a held-out split', async () => {
    const csv = join(dir, 'iris.csv');
    await writeFile(csv, rows(90));
    const out = join(dir, 'iris-pack');
    await packDataset(out, {
      kind: 'csv',
      name: 'iris',
      csv,
      heldOut: 0.2,
      partitions: 4,
      seed: 1,
    });
    const manifest = await readManifest(out);
    expect(manifest).toMatchObject({
      features: 2,
      classes: 3,
      inputShape: [2],
      labels: ['setosa', 'versicolor', 'virginica'],
      heldOutCount: 18,
      source: 'iris.csv',
    });
    expect(manifest.partitions.reduce((n, p) => n + p.count, 0)).toBe(72);
    const { min, max } = manifest.normalization!;
    expect(min[1]).toBe(-3);
    expect(max[1]).toBe(3);
    // the second feature takes the values -3..3 only: bytes round((v + 3) / 6 · 255)
    const allowed = new Set([-3, -2, -1, 0, 1, 2, 3].map((v) => Math.round(((v + 3) / 6) * 255)));
    for (const entry of manifest.partitions) {
      const parsed = parsePartition(await readFile(join(out, entry.url)), { features: 2 });
      if (!parsed.ok) throw new Error(parsed.error.message);
      for (let i = 0; i < parsed.value.count; i++) {
        expect(allowed.has(Math.round(parsed.value.xs[i * 2 + 1]! * 255))).toBe(true);
      }
    }
  });

  it('reads integer labels as classes and detects a missing header', () => {
    const table = parseCsv('0.5,1,0\n0.25,2,2\n1,3,1\n', 'x.csv');
    expect(table.count).toBe(3);
    expect(table.classes).toBe(3);
    expect(Array.from(table.labels)).toEqual([0, 2, 1]);
    expect(table.labelNames).toBeUndefined();
    expect(Array.from(table.lines)).toEqual([1, 2, 3]);
    const named = parseCsv('a,label,b\n1,cat,2\n3,dog,4\n', 'y.csv', { label: 'label' });
    expect(named.featureNames).toEqual(['a', 'b']);
    expect(Array.from(named.values)).toEqual([1, 2, 3, 4]);
    expect(named.labelNames).toEqual(['cat', 'dog']);
  });

  it('name the row (line) and column of malformed data, and write nothing', async () => {
    const good = rows(20).split('\r\n');
    const cases: [string, string[], string][] = [
      [
        'not-a-number',
        [...good.slice(0, 7), '5.1,abc,setosa', ...good.slice(7)],
        'line 8, column "sepal width" (1): "abc" is not a finite number',
      ],
      [
        'missing-field',
        [...good.slice(0, 12), '5.1,setosa', ...good.slice(12)],
        'line 13: 2 fields, expected 3 (as on line 1)',
      ],
      [
        'empty-value',
        [...good.slice(0, 4), ',1,setosa', ...good.slice(4)],
        'line 5, column "sepal length" (0): empty',
      ],
      [
        'infinite',
        [...good.slice(0, 3), 'Infinity,1,setosa', ...good.slice(3)],
        'line 4, column "sepal length" (0): "Infinity" is not a finite number',
      ],
      [
        'open-quote',
        [...good.slice(0, 9), '5.1,1,"setosa', ...good.slice(9)],
        'line 10: a quoted field is not closed',
      ],
      [
        'no-label',
        [...good.slice(0, 6), '5.1,1,', ...good.slice(6)],
        'line 7, label column "species" (2): empty',
      ],
    ];
    for (const [name, lines, message] of cases) {
      const csv = join(dir, `${name}.csv`);
      await writeFile(csv, lines.join('\n'));
      const out = join(dir, `${name}-pack`);
      const attempt = packDataset(out, { kind: 'csv', name, csv, partitions: 2, seed: 1 });
      await expect(attempt).rejects.toThrow(DataError);
      await expect(
        packDataset(out, { kind: 'csv', name, csv, partitions: 2, seed: 1 }),
      ).rejects.toThrow(`${csv}: ${message}`);
      await expectNothingWritten(dir, `${name}-pack`);
    }
  });

  it('refuse a label column that is not there and too few rows for the partitions', async () => {
    const csv = join(dir, 'small.csv');
    await writeFile(csv, rows(6));
    await expect(
      packCsv({ name: 's', csv, label: 'colour', partitions: 2, seed: 1 }),
    ).rejects.toThrow(`${csv}: line 1 (header): no column named "colour"`);
    await expect(packCsv({ name: 's', csv, partitions: 8, seed: 1 })).rejects.toThrow(
      '5 training samples cannot fill 8 partitions',
    );
  });
});

describe('writePack', () => {
  it('refuses an existing directory without force and replaces it whole with force', async () => {
    const out = join(dir, 'replace');
    const options = { name: 'r', images: train.images, labels: train.labels, seed: 1 };
    const first = await packIdx({ ...options, partitions: 2 });
    await writePack(out, first);
    const second = await packIdx({ ...options, partitions: 3 });
    await expect(writePack(out, second)).rejects.toThrow('already exists (pass --force');
    expect((await readManifest(out)).partitions).toHaveLength(2);
    await writePack(out, second, { force: true });
    expect((await readManifest(out)).partitions).toHaveLength(3);
    // only the new pack's files are left, and no temporary directory
    expect((await readdir(out)).sort()).toEqual(['manifest.json', ...second.files.keys()].sort());
    expect((await readdir(dir)).filter((f) => f.startsWith('.replace.'))).toEqual([]);
  });
});

describe('loadDataset (a job with manifestUrl)', () => {
  let pack: string;
  let manifest: DataManifest;
  let server: Server;
  let origin: string;
  const job = (manifestUrl: string, partitions = 4) =>
    jobSpecSchema.parse({ name: 'byod', dataset: { manifestUrl }, partitions });

  beforeAll(async () => {
    pack = join(dir, 'served');
    await packDataset(pack, {
      kind: 'idx',
      name: 'served',
      images: train.images,
      labels: train.labels,
      heldOut: 50,
      partitions: 4,
      seed: 1,
    });
    manifest = await readManifest(pack);
    server = createServer((req, res) => {
      readFile(join(pack, req.url!.replace(/^\/pack\//, '')))
        .then((bytes) => res.end(bytes))
        .catch(() => {
          res.statusCode = 404;
          res.end();
        });
    });
    await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
    origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(() => new Promise<void>((done) => server.close(() => done())));

  it('reads a pack by a path relative to the job file, a file: URL or an http origin', async () => {
    const byPath = await loadDataset(job('served'), { baseDir: dir });
    const byFile = await loadDataset(job(pathToFileURL(join(pack, 'manifest.json')).href));
    const byHttp = await loadDataset(job(`${origin}/pack/manifest.json`));
    for (const data of [byPath, byFile, byHttp]) {
      expect(data.heldOut.count).toBe(50);
      expect(data.train.count).toBe(250);
      expect(data.manifest.heldOut).toBeUndefined();
      expect(data.manifest.heldOutCount).toBe(50);
      expect(data.manifest.partitions.map((p) => p.url)).toEqual(
        manifest.partitions.map((p) => `/data/${p.sha256}.bin`),
      );
      const bytes = data.partitionBytes(2);
      expect(sha256(bytes)).toBe(manifest.partitions[2]!.sha256);
      expect(data.partitionBySha256(manifest.partitions[1]!.sha256)).toBe(data.partitionBytes(1));
    }
    // the evaluator's held-out samples are the pack's held-out file, decoded
    const held = parsePartition(await readFile(join(pack, manifest.heldOut!.url)));
    if (!held.ok) throw new Error(held.error.message);
    expect(Array.from(byHttp.heldOut.labels)).toEqual(Array.from(held.value.labels));
    expect(Buffer.from(byPath.heldOut.xs.buffer).equals(Buffer.from(held.value.xs.buffer))).toBe(
      true,
    );
    expect(manifestLocation('served', '/jobs').href).toBe('file:///jobs/served/manifest.json');
    expect(manifestLocation('../p/m.json', '/jobs/a').href).toBe('file:///jobs/p/m.json');
  });

  it('the status tells the pages what the pack is: name, split, shape, source', async () => {
    const coordinator = await startCoordinator(
      {
        name: 'byod',
        dataset: { manifestUrl: pathToFileURL(join(pack, 'manifest.json')).href },
        partitions: 4,
      },
      { evaluate: false },
    );
    try {
      const s = (await (await fetch(`${coordinator.url}/api/status`)).json()) as DashboardStatus;
      expect(s.data).toEqual({
        name: 'served',
        train: 250,
        heldOut: 50,
        partitions: 4,
        features: 784,
        classes: 10,
        source: manifest.source ?? null,
      });
    } finally {
      await coordinator.close({ checkpoint: false });
    }
  });

  it('refuses a pack that does not match its manifest or the job, naming the file', async () => {
    await expect(loadDataset(job('served', 8), { baseDir: dir })).rejects.toThrow(
      `${join(pack, 'manifest.json')}: 4 partitions, the job's "partitions" is 8`,
    );
    const cnn = jobSpecSchema.parse({
      name: 'byod',
      dataset: { manifestUrl: 'served' },
      partitions: 4,
      model: {
        topology: { class_name: 'Sequential', config: { name: 's', layers: [] } },
        inputShape: [10],
        classes: 10,
      },
    });
    await expect(loadDataset(cnn, { baseDir: dir })).rejects.toThrow(
      "features: 784 per sample, the job's model takes 10",
    );
    // a corrupted copy: one flipped byte in partition 1
    const bad = join(dir, 'corrupted');
    await packDataset(bad, {
      kind: 'idx',
      name: 'served',
      images: train.images,
      labels: train.labels,
      heldOut: 50,
      partitions: 4,
      seed: 1,
    });
    const file = join(bad, manifest.partitions[1]!.url);
    const bytes = await readFile(file);
    bytes[100]! ^= 0xff;
    await writeFile(file, bytes);
    await expect(loadDataset(job('corrupted'), { baseDir: dir })).rejects.toThrow(
      `${file}: partition 1: SHA-256 ${sha256(bytes)}, ${join(bad, 'manifest.json')} says ${manifest.partitions[1]!.sha256}`,
    );
    // a manifest that is not one names the field
    await writeFile(join(bad, 'manifest.json'), JSON.stringify({ ...manifest, features: 0 }));
    await expect(loadDataset(job('corrupted'), { baseDir: dir })).rejects.toThrow(
      /manifest\.json: not a dataset manifest \(docs\/datasets\.md\): features: /,
    );
    await expect(loadDataset(job(`${origin}/pack/nope.json`))).rejects.toThrow(
      `${origin}/pack/nope.json: HTTP 404`,
    );
  });

  it('job schema: manifestUrl takes http(s) and file URLs and paths, not other schemes', () => {
    for (const ok of [
      'https://data.example/p/manifest.json',
      'file:///srv/p',
      './p',
      'p',
      '/abs/p',
    ]) {
      expect(jobSpecSchema.safeParse({ name: 'j', dataset: { manifestUrl: ok } }).success).toBe(
        true,
      );
    }
    for (const bad of ['ftp://x/y', 'javascript:alert(1)', '', 'http://']) {
      expect(jobSpecSchema.safeParse({ name: 'j', dataset: { manifestUrl: bad } }).success).toBe(
        false,
      );
    }
  });
});

describe('dataManifestSchema', () => {
  it('refuses out-of-order indices, wrong sizes and a shape that does not hold the features', () => {
    const entry = { index: 0, count: 2, bytes: 16 + 2 * 5, sha256: 'a'.repeat(64), url: 'a.bin' };
    const base = { job: 'x', features: 4, classes: 2, partitions: [entry], heldOutCount: 0 };
    expect(dataManifestSchema.safeParse(base).success).toBe(true);
    const issues = (value: unknown) => {
      const r = dataManifestSchema.safeParse(value);
      return r.success ? [] : r.error.issues.map((i) => i.path.join('.'));
    };
    expect(issues({ ...base, partitions: [{ ...entry, index: 1 }] })).toEqual([
      'partitions.0.index',
    ]);
    expect(issues({ ...base, partitions: [{ ...entry, bytes: 20 }] })).toEqual([
      'partitions.0.bytes',
    ]);
    expect(issues({ ...base, inputShape: [3, 3] })).toEqual(['inputShape']);
    expect(issues({ ...base, partitions: [{ ...entry, sha256: 'A'.repeat(64) }] })).toEqual([
      'partitions.0.sha256',
    ]);
    expect(issues({ ...base, heldOut: { ...entry, index: undefined, count: 1 } })).toContain(
      'heldOut.count',
    );
  });
});

describe('the command line', () => {
  it('swarmgrad dataset pack builds a pack, and exits 2 naming the CSV row, writing nothing', async () => {
    const out = join(dir, 'cli-pack');
    const good = await runCli([
      'dataset',
      'pack',
      '--images',
      train.images,
      '--labels',
      train.labels,
      '--partitions',
      '4',
      '--out',
      out,
    ]);
    expect(good.stderr).toBe('');
    expect(good.code).toBe(0);
    expect(good.stdout).toContain('packed 270 training samples in 4 partitions and 30 held-out');
    expect((await readManifest(out)).partitions).toHaveLength(4);

    const csv = join(dir, 'cli-bad.csv');
    await writeFile(csv, 'a,b,label\n1,2,0\n3,4,1\n5,x,0\n');
    const bad = await runCli(['dataset', 'pack', '--csv', csv, '--out', join(dir, 'cli-bad')]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toBe(
      `swarmgrad dataset pack: ${csv}: line 4, column "b" (1): "x" is not a finite number\n`,
    );
    await expectNothingWritten(dir, 'cli-bad');
  });

  it('swarmgrad serve exits 2 with one line when the job names a pack that is not there', async () => {
    const jobFile = join(dir, 'missing-pack.json');
    await writeFile(jobFile, JSON.stringify({ name: 'x', dataset: { manifestUrl: 'no-pack' } }));
    const run = await runCli([
      'serve',
      '--port',
      '0',
      '--data-dir',
      join(dir, 'state'),
      '--config',
      jobFile,
    ]);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain(
      `swarmgrad: ${join(dir, 'no-pack', 'manifest.json')}: cannot read the file (ENOENT`,
    );
    expect(run.stderr).not.toMatch(/\n\s+at /); // no stack trace
  });
});
