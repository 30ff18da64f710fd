/**
 * What a coordinator loads before it exists: the job's data and model, and the latest
 * checkpoint that fits them (a fresh start when none does).
 */
import { mkdir } from 'node:fs/promises';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { jobIdOf } from '@swarmgrad/protocol';
import {
  buildModel,
  initialParameters,
  modelTopologyJSON,
  parameterCount,
  weightSpecs,
} from '@swarmgrad/model';
import { CheckpointStore } from './checkpoint.ts';
import { loadDataset, type Dataset } from './dataset.ts';
import { isPersistedState, type PersistedState } from './records.ts';
import type { CoordinatorOptions } from './options.ts';

/** What start() loads before the coordinator exists: data, model, the checkpoint to resume. */
export interface Loaded {
  dataset: Dataset;
  initial: Float32Array;
  iteration: number;
  topology: object;
  specs: ReturnType<typeof weightSpecs>;
  checkpoints: CheckpointStore;
  learningRate: number;
  state: PersistedState | undefined;
  resumed: boolean;
}

/** Data, model and the latest checkpoint of this job (a fresh start when none fits). */
export async function load(options: CoordinatorOptions): Promise<Loaded> {
  const job = options.job;
  await mkdir(options.dataDir, { recursive: true });
  // the main thread only builds the model once for its topology and initial weights
  await tf.setBackend('cpu');
  const dataset = await loadDataset(job, { baseDir: options.jobDir });
  const model = buildModel(job.model);
  const topology = modelTopologyJSON(model);
  const specs = weightSpecs(model);
  const dimension = parameterCount(model);
  model.dispose();
  const checkpoints = new CheckpointStore(options.dataDir);
  const latest = await checkpoints.latest();
  const fits =
    latest !== undefined &&
    latest.params.length === dimension &&
    isPersistedState(latest.state, job.name);
  return {
    dataset,
    topology,
    specs,
    checkpoints,
    initial: fits ? latest.params : initialParameters(job.model, jobIdOf(job.name)),
    iteration: fits ? latest.iteration : 0,
    learningRate: fits ? (latest.state as PersistedState).learningRate : job.optimizer.learningRate,
    state: fits ? (latest.state as PersistedState) : undefined,
    resumed: latest !== undefined,
  };
}
