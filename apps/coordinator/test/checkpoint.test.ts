import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import * as tfl from '@tensorflow/tfjs-layers';
import {
  buildModel,
  getFlatParameters,
  modelTopologyJSON,
  setFlatParameters,
  weightSpecs,
} from '@swarmgrad/model';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { CheckpointStore, type Checkpoint } from '../src/checkpoint.ts';

let dir: string;
let model: tfl.LayersModel;

beforeAll(async () => {
  await tf.setBackend('cpu');
  model = buildModel({ preset: 'mlp-784-32-10' }, 4);
});
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'swarmgrad-ckpt-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

function checkpoint(iteration: number, fill?: number): Checkpoint {
  const params = getFlatParameters(model);
  if (fill !== undefined) params.fill(fill);
  return {
    iteration,
    params,
    state: { iteration, clusters: [[1, 2]], loss: 0.5, note: `iter ${iteration}` },
    modelTopology: modelTopologyJSON(model),
    weightSpecs: weightSpecs(model),
  };
}

const same = (a: Float32Array, b: Float32Array) =>
  Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(
    Buffer.from(b.buffer, b.byteOffset, b.byteLength),
  );

describe('CheckpointStore', () => {
  it('round-trips parameters and state through the files', async () => {
    const store = new CheckpointStore(dir);
    expect(await store.latest()).toBeUndefined();
    const cp = checkpoint(123);
    const path = await store.save(cp);
    expect(path).toBe(join(dir, 'checkpoints', 'iter-000000123'));
    expect((await readdir(path)).sort()).toEqual(['model.json', 'state.json', 'weights.bin']);
    expect(await readFile(join(dir, 'checkpoints', 'LATEST'), 'utf8')).toBe('iter-000000123\n');
    expect((await readFile(join(path, 'weights.bin'))).byteLength).toBe(cp.params.length * 4);

    const loaded = await new CheckpointStore(dir).latest();
    expect(loaded?.iteration).toBe(123);
    expect(same(loaded!.params, cp.params)).toBe(true);
    expect(loaded?.state).toEqual(cp.state);
    expect(loaded?.weightSpecs).toEqual(cp.weightSpecs);
    // no temp leftovers after a successful save
    expect((await readdir(join(dir, 'checkpoints'))).filter((e) => e.startsWith('.tmp'))).toEqual(
      [],
    );
  });

  it('captures the parameters at the call, even if the caller mutates them while queued', async () => {
    const store = new CheckpointStore(dir);
    const cp = checkpoint(1);
    const original = cp.params.slice();
    const saving = store.save(cp);
    cp.params.fill(7);
    await saving;
    expect(same((await store.latest())!.params, original)).toBe(true);
  });

  it('ignores a .tmp leftover of a crashed save and a LATEST naming a broken checkpoint', async () => {
    const store = new CheckpointStore(dir);
    await store.save(checkpoint(10, 0.25));
    const root = join(dir, 'checkpoints');

    // crash after writing files, before the rename: a complete-looking .tmp dir, newer
    const crashed = join(root, '.tmp-crashed');
    await mkdir(crashed);
    await writeFile(
      join(crashed, 'model.json'),
      await readFile(join(root, 'iter-000000010', 'model.json')),
    );
    await writeFile(join(crashed, 'weights.bin'), Buffer.alloc(4 * checkpoint(0).params.length));
    await writeFile(join(crashed, 'state.json'), JSON.stringify({ iteration: 99, state: {} }));
    expect((await store.latest())?.iteration).toBe(10);

    // a newer checkpoint whose weights.bin is short (torn copy), and LATEST pointing at it
    await store.save(checkpoint(20, 0.5));
    const weights = join(root, 'iter-000000020', 'weights.bin');
    await writeFile(weights, (await readFile(weights)).subarray(0, 100));
    let latest = await store.latest();
    expect(latest?.iteration).toBe(10);
    expect(latest?.params[0]).toBe(0.25);

    // LATEST naming a directory that does not exist, or garbage
    await writeFile(join(root, 'LATEST'), 'iter-000000777\n');
    expect((await store.latest())?.iteration).toBe(10);
    await writeFile(join(root, 'LATEST'), '../../etc\n');
    expect((await store.latest())?.iteration).toBe(10);

    // a corrupt model.json is as bad as short weights
    await store.save(checkpoint(30, 0.75));
    await writeFile(join(root, 'iter-000000030', 'model.json'), '{"format":');
    latest = await store.latest();
    expect(latest?.iteration).toBe(10);

    // the next save cleans the leftovers
    await store.save(checkpoint(31, 1));
    expect((await readdir(root)).some((e) => e.startsWith('.tmp'))).toBe(false);
    expect((await store.latest())?.iteration).toBe(31);
  });

  it('writes a model.json + weights.bin that tf.loadLayersModel loads to the same predictions', async () => {
    const store = new CheckpointStore(dir);
    const params = getFlatParameters(model).map((v, i) => v + ((i % 7) - 3) * 0.01);
    setFlatParameters(model, params);
    const path = await store.save({ ...checkpoint(5), params });

    // a file-reading IO handler that follows the manifest's paths, like the browser loader
    const handler: tf.io.IOHandler = {
      load: async () => {
        const json = JSON.parse(
          await readFile(join(path, 'model.json'), 'utf8'),
        ) as tf.io.ModelJSON;
        const group = json.weightsManifest[0]!;
        const chunks = await Promise.all(group.paths.map((p) => readFile(join(path, p))));
        const weightData = new Uint8Array(Buffer.concat(chunks)).buffer;
        return {
          modelTopology: json.modelTopology,
          weightSpecs: group.weights,
          weightData,
          format: json.format,
          generatedBy: json.generatedBy,
          convertedBy: json.convertedBy,
        };
      },
    };
    const loaded = await tfl.loadLayersModel(handler);

    // and over HTTP with tfjs' own http loader (what a browser downloading /api/model/ does)
    const server = createServer((req, res) => {
      readFile(join(path, (req.url ?? '/').slice(1)))
        .then((body) => res.end(body))
        .catch(() => res.writeHead(404).end());
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    let overHttp: tfl.LayersModel;
    try {
      overHttp = await tfl.loadLayersModel(`http://127.0.0.1:${port}/model.json`);
    } finally {
      server.close();
    }

    const input = tf.randomUniform([6, 784], 0, 1, 'float32', 3);
    const expected = (model.predict(input) as tf.Tensor).dataSync();
    const fromFiles = (loaded.predict(input) as tf.Tensor).dataSync();
    const fromHttp = (overHttp.predict(input) as tf.Tensor).dataSync();
    expect(Array.from(fromFiles)).toEqual(Array.from(expected));
    expect(Array.from(fromHttp)).toEqual(Array.from(expected));
    expect(same(getFlatParameters(loaded), params)).toBe(true);
    loaded.dispose();
    overHttp.dispose();
    input.dispose();
  });

  it('keeps the newest 3 and serialises concurrent saves', async () => {
    const store = new CheckpointStore(dir);
    await Promise.all([1, 2, 3, 4, 5].map((i) => store.save(checkpoint(i * 10, i))));
    expect(await store.iterations()).toEqual([50, 40, 30]);
    const latest = await store.latest();
    expect(latest?.iteration).toBe(50);
    expect(latest?.params[0]).toBe(5);
    const entries = await readdir(join(dir, 'checkpoints'));
    expect(entries.sort()).toEqual([
      'LATEST',
      'iter-000000030',
      'iter-000000040',
      'iter-000000050',
    ]);

    // re-saving an iteration replaces it
    await store.save(checkpoint(50, 9));
    expect((await store.latest())?.params[0]).toBe(9);
    expect(await store.iterations()).toEqual([50, 40, 30]);

    const keepOne = new CheckpointStore(dir, { keep: 1 });
    await keepOne.save(checkpoint(60, 6));
    expect(await keepOne.iterations()).toEqual([60]);
  });

  it('rejects parameters that do not match the weight specs', async () => {
    const store = new CheckpointStore(dir);
    const cp = checkpoint(1);
    await expect(store.save({ ...cp, params: cp.params.subarray(1) })).rejects.toThrow(RangeError);
    await expect(store.save({ ...cp, iteration: -1 })).rejects.toThrow(RangeError);
    expect(await store.latest()).toBeUndefined();
  });
});
