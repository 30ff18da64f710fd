/**
 * Atomic checkpoints of the agreed parameters, in TF.js layers-model format, plus run state.
 *
 *   <dir>/checkpoints/iter-000000123/model.json   what tf.loadLayersModel expects
 *   <dir>/checkpoints/iter-000000123/weights.bin  the flat float32 parameters, little-endian
 *   <dir>/checkpoints/iter-000000123/state.json   { iteration, savedAt, state }
 *   <dir>/checkpoints/LATEST                      "iter-000000123\n"
 *
 * Guarantees: a checkpoint directory is complete or absent. Files are written and fsynced in
 * `.tmp-<random>/`, the directory is renamed to its final name (atomic on POSIX), the parent is
 * fsynced, then LATEST is replaced through a temp file and rename. A crash at any point leaves
 * either the previous checkpoint or the new one readable. `latest()` trusts LATEST only when
 * the directory it names validates (weights.bin holds 4·Σ shape products bytes, JSON parses,
 * iteration matches); otherwise it falls back to the newest valid `iter-*`, ignoring `.tmp-*`.
 * Saves of one store run one at a time, each on a copy of its input taken at the call; after a
 * save only the newest `keep` (default 3) checkpoints and the one just saved remain, and
 * `.tmp-*` leftovers are removed. One writer (store) per directory.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, rm } from 'node:fs/promises';
import { endianness } from 'node:os';
import { join } from 'node:path';

export interface WeightSpec {
  name: string;
  shape: number[];
  dtype: 'float32';
}

export interface Checkpoint {
  iteration: number;
  params: Float32Array;
  /** Run state, anything JSON-serialisable. */
  state: unknown;
  /** The model's `modelTopology` (see modelTopologyJSON in @swarmgrad/model). */
  modelTopology: object;
  /** Weight specs in flat-vector order (see weightSpecs in @swarmgrad/model). */
  weightSpecs: WeightSpec[];
}

export interface LoadedCheckpoint extends Checkpoint {
  /** Absolute path of the checkpoint directory. */
  dir: string;
}

export interface CheckpointStoreOptions {
  /** Checkpoints kept after a save (default 3, at least 1). */
  keep?: number;
}

export const LATEST_FILE = 'LATEST';
export const MODEL_FILE = 'model.json';
export const WEIGHTS_FILE = 'weights.bin';
export const STATE_FILE = 'state.json';
const MAX_ITERATION = 999_999_999;
const CHECKPOINT_NAME = /^iter-(\d{9})$/;

export function checkpointName(iteration: number): string {
  return `iter-${String(iteration).padStart(9, '0')}`;
}

export class CheckpointStore {
  /** `<dir>/checkpoints` */
  readonly root: string;
  private readonly keep: number;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(dir: string, options: CheckpointStoreOptions = {}) {
    if (endianness() !== 'LE') throw new Error('weights.bin is little-endian; big-endian host');
    this.root = join(dir, 'checkpoints');
    this.keep = Math.max(1, Math.floor(options.keep ?? 3));
  }

  /** Writes a checkpoint atomically and resolves with its directory. */
  save(cp: Checkpoint): Promise<string> {
    const { iteration, params, weightSpecs } = cp;
    if (!Number.isInteger(iteration) || iteration < 0 || iteration > MAX_ITERATION) {
      return Promise.reject(new RangeError(`iteration must be an integer in 0..${MAX_ITERATION}`));
    }
    const expected = expectedParameters(weightSpecs);
    if (expected === undefined) {
      return Promise.reject(new TypeError('weightSpecs must be float32 with integer shapes'));
    }
    if (expected !== params.length) {
      return Promise.reject(
        new RangeError(`weightSpecs describe ${expected} parameters, params has ${params.length}`),
      );
    }
    // everything is captured now: later changes by the caller do not reach the files
    const files = {
      model: JSON.stringify(modelJson(cp.modelTopology, weightSpecs)),
      weights: new Uint8Array(
        params.buffer.slice(params.byteOffset, params.byteOffset + params.byteLength),
      ),
      state: JSON.stringify({ iteration, savedAt: new Date().toISOString(), state: cp.state }),
    };
    const run = this.queue.then(() => this.write(iteration, files));
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** The checkpoint LATEST names if valid, else the newest valid one, else undefined. */
  async latest(): Promise<LoadedCheckpoint | undefined> {
    const pointer = await readFile(join(this.root, LATEST_FILE), 'utf8').catch(() => undefined);
    const named = pointer?.trim();
    if (named !== undefined && CHECKPOINT_NAME.test(named)) {
      const loaded = await this.load(named);
      if (loaded) return loaded;
    }
    for (const name of await this.checkpointNames()) {
      if (name === named) continue;
      const loaded = await this.load(name);
      if (loaded) return loaded;
    }
    return undefined;
  }

  /** Iterations of the checkpoint directories present (valid or not), newest first. */
  async iterations(): Promise<number[]> {
    return (await this.checkpointNames()).map((name) => Number(name.slice(5)));
  }

  private async write(
    iteration: number,
    files: { model: string; weights: Uint8Array; state: string },
  ): Promise<string> {
    await mkdir(this.root, { recursive: true });
    const name = checkpointName(iteration);
    const final = join(this.root, name);
    const tmp = join(this.root, `.tmp-${randomBytes(6).toString('hex')}`);
    await mkdir(tmp);
    try {
      await writeSynced(join(tmp, MODEL_FILE), files.model);
      await writeSynced(join(tmp, WEIGHTS_FILE), files.weights);
      await writeSynced(join(tmp, STATE_FILE), files.state);
      await syncDir(tmp);
      // re-saving an iteration: move the old one aside (ignored as .tmp-*) before the rename
      const displaced = join(this.root, `.tmp-${randomBytes(6).toString('hex')}`);
      const hadOld = await rename(final, displaced).then(
        () => true,
        () => false,
      );
      await rename(tmp, final);
      await syncDir(this.root);
      if (hadOld) await rm(displaced, { recursive: true, force: true });
    } catch (error) {
      await rm(tmp, { recursive: true, force: true });
      throw error;
    }
    const latestTmp = join(this.root, `.tmp-${randomBytes(6).toString('hex')}-${LATEST_FILE}`);
    await writeSynced(latestTmp, `${name}\n`);
    await rename(latestTmp, join(this.root, LATEST_FILE));
    await syncDir(this.root);
    await this.prune(name);
    return final;
  }

  private async prune(justSaved: string): Promise<void> {
    const entries = await readdir(this.root);
    const names = entries
      .filter((e) => CHECKPOINT_NAME.test(e))
      .sort()
      .reverse();
    const keep = new Set([justSaved, ...names.slice(0, this.keep)]);
    const doomed = [
      ...names.filter((n) => !keep.has(n)),
      ...entries.filter((e) => e.startsWith('.tmp-')),
    ];
    await Promise.all(doomed.map((e) => rm(join(this.root, e), { recursive: true, force: true })));
  }

  private async checkpointNames(): Promise<string[]> {
    const entries = await readdir(this.root).catch(() => [] as string[]);
    return entries
      .filter((e) => CHECKPOINT_NAME.test(e))
      .sort()
      .reverse();
  }

  private async load(name: string): Promise<LoadedCheckpoint | undefined> {
    const dir = join(this.root, name);
    const iteration = Number(CHECKPOINT_NAME.exec(name)?.[1]);
    try {
      const model = JSON.parse(await readFile(join(dir, MODEL_FILE), 'utf8')) as {
        format?: unknown;
        modelTopology?: unknown;
        weightsManifest?: { paths?: unknown; weights?: unknown }[];
      };
      if (model.format !== 'layers-model' || typeof model.modelTopology !== 'object') return;
      const group = model.weightsManifest?.[0];
      if (model.weightsManifest?.length !== 1 || !group) return;
      if (!Array.isArray(group.paths) || group.paths.join() !== WEIGHTS_FILE) return;
      const weightSpecs = group.weights as WeightSpec[];
      const expected = Array.isArray(weightSpecs) ? expectedParameters(weightSpecs) : undefined;
      if (expected === undefined) return;
      const bytes = await readFile(join(dir, WEIGHTS_FILE));
      if (bytes.byteLength !== expected * 4) return;
      const stateFile = JSON.parse(await readFile(join(dir, STATE_FILE), 'utf8')) as {
        iteration?: unknown;
        state?: unknown;
      };
      if (stateFile.iteration !== iteration) return;
      const params = new Float32Array(expected);
      new Uint8Array(params.buffer).set(bytes);
      return {
        iteration,
        params,
        state: stateFile.state,
        modelTopology: model.modelTopology as object,
        weightSpecs,
        dir,
      };
    } catch {
      return undefined;
    }
  }
}

/** The model.json of a TF.js layers model whose weights are in one weights.bin. */
export function modelJson(modelTopology: object, weightSpecs: WeightSpec[]): object {
  return {
    format: 'layers-model',
    generatedBy: 'swarmgrad',
    convertedBy: null,
    modelTopology,
    weightsManifest: [{ paths: [WEIGHTS_FILE], weights: weightSpecs }],
  };
}

/** Σ of shape products, or undefined when a spec is not float32 with a valid shape. */
function expectedParameters(specs: readonly WeightSpec[]): number | undefined {
  let total = 0;
  for (const spec of specs) {
    if (!spec || spec.dtype !== 'float32' || typeof spec.name !== 'string') return undefined;
    if (!Array.isArray(spec.shape)) return undefined;
    let size = 1;
    for (const d of spec.shape) {
      if (!Number.isInteger(d) || d < 0) return undefined;
      size *= d;
    }
    total += size;
  }
  return total;
}

async function writeSynced(path: string, data: string | Uint8Array): Promise<void> {
  const handle = await open(path, 'w');
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** fsync a directory so renames in it are durable (best effort where unsupported). */
async function syncDir(path: string): Promise<void> {
  let handle;
  try {
    handle = await open(path, 'r');
    await handle.sync();
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== 'EISDIR' && code !== 'EPERM' && code !== 'EINVAL') throw error;
  } finally {
    await handle?.close();
  }
}
