/**
 * The model of a job as a flat Float32Array of parameters, the same in a browser tab and in the
 * coordinator (no DOM, no Node APIs; the caller registers and picks the tfjs backend).
 *
 * Guarantees:
 * - `buildModel(spec, seed)` and `initialParameters(spec, seed)` give bit-identical initial
 *   weights in every process for the same spec and seed: kernels (rank >= 2) are Glorot-uniform
 *   from a per-weight seed derived from `seed`, biases and other rank-1 weights are zero
 *   (batch-norm gammas and moving variances one). tfjs draws seeded uniforms in JavaScript,
 *   so the values do not depend on the backend.
 * - The flat vector is the concatenation of `model.getWeights()` in order (trainable and
 *   non-trainable alike); `weightSpecs` lists the same weights in the same order with their
 *   TF.js names, so `weights.bin` of a TF.js model is this vector's bytes (little-endian).
 * - `computeGradient` returns d(mean cross-entropy)/d(flat) in that same layout; coordinates
 *   of non-trainable weights are zero. Models whose last layer applies softmax are read as
 *   probabilities, any other output as logits.
 * - Every function disposes the tensors it creates.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import type { JobSpec, ModelPreset } from '@swarmgrad/protocol';

export type ModelSpec = JobSpec['model'];

export interface WeightSpec {
  name: string;
  shape: number[];
  dtype: 'float32';
}

/** Probabilities are clipped to [EPSILON, 1] before the log (Keras' epsilon). */
const EPSILON = 1e-7;

/** Builds the model of a job with deterministic initial weights (see the file header). */
export function buildModel(spec: ModelSpec, seed = 0): tfl.LayersModel {
  const model = 'preset' in spec ? buildPreset(spec.preset) : fromTopology(spec.topology);
  if (!('preset' in spec)) {
    const { inputShape, classes } = describe(model);
    if (inputShape.join() !== spec.inputShape.join() || classes !== spec.classes) {
      model.dispose();
      throw new TypeError(
        `topology maps [${inputShape}] to ${classes} classes, the job says [${spec.inputShape}] to ${spec.classes}`,
      );
    }
  }
  initializeWeights(model, seed);
  return model;
}

/** The initial flat parameters every process agrees on for this spec and seed. */
export function initialParameters(spec: ModelSpec, seed: number): Float32Array {
  const model = buildModel(spec, seed);
  try {
    return getFlatParameters(model);
  } finally {
    model.dispose();
  }
}

export function parameterCount(model: tfl.LayersModel): number {
  let total = 0;
  for (const weight of model.weights) total += sizeOf(weight.shape);
  return total;
}

/**
 * Parameters per layer (its weights together), in flat-vector order; one entry for the whole
 * vector when the layers' weights are not contiguous in `model.weights`.
 */
export function layerParameterCounts(model: tfl.LayersModel): number[] {
  const order = model.weights.map((w) => w.name);
  const counts: number[] = [];
  let at = 0;
  for (const layer of model.layers) {
    if (layer.weights.length === 0) continue;
    let count = 0;
    for (const weight of layer.weights) {
      if (order[at++] !== weight.name) return [parameterCount(model)];
      count += sizeOf(weight.shape);
    }
    counts.push(count);
  }
  return at === order.length ? counts : [parameterCount(model)];
}

/** A copy of all weights, concatenated in `model.weights` order. */
export function getFlatParameters(model: tfl.LayersModel): Float32Array {
  const flat = new Float32Array(parameterCount(model));
  let offset = 0;
  for (const weight of model.weights) {
    assertFloat32(weight);
    // read() returns the variable itself (not a clone): read its data, never dispose it.
    const values = weight.read().dataSync() as Float32Array;
    flat.set(values, offset);
    offset += values.length;
  }
  return flat;
}

/** Overwrites all weights from a flat vector (copied: later changes to `flat` do not leak in). */
export function setFlatParameters(model: tfl.LayersModel, flat: Float32Array): void {
  const expected = parameterCount(model);
  if (flat.length !== expected) {
    throw new RangeError(`expected ${expected} parameters, got ${flat.length}`);
  }
  tf.tidy(() => {
    let offset = 0;
    const tensors = model.weights.map((weight) => {
      assertFloat32(weight);
      const size = sizeOf(weight.shape);
      // slice, not subarray: the cpu backend keeps the array it is given.
      const tensor = tf.tensor(flat.slice(offset, offset + size), concreteShape(weight.shape));
      offset += size;
      return tensor;
    });
    model.setWeights(tensors);
  });
}

/** The weights manifest entries of a TF.js model.json, in flat-vector order. */
export function weightSpecs(model: tfl.LayersModel): WeightSpec[] {
  return model.weights.map((weight) => {
    assertFloat32(weight);
    return { name: weight.originalName, shape: concreteShape(weight.shape), dtype: 'float32' };
  });
}

/** The `modelTopology` of a TF.js model.json (Keras-style JSON, snake_case keys). */
export function modelTopologyJSON(model: tfl.LayersModel): object {
  return model.toJSON(null, false) as object;
}

/**
 * Mean cross-entropy of the first `batch` samples and its gradient with respect to the flat
 * parameters. `xs` holds batch × (input size) features in row-major order. Reads the result
 * back synchronously: fine on cpu and wasm; on webgpu use `computeGradientAsync` (TF.js reads a
 * WebGPU buffer synchronously through a canvas, which returns zeros on some adapters).
 */
export function computeGradient(
  model: tfl.LayersModel,
  xs: Float32Array,
  labels: Uint8Array,
  batch: number,
): { loss: number; gradient: Float32Array } {
  const { loss, flat } = gradientTensors(model, xs, labels, batch);
  try {
    return { loss: loss.dataSync()[0]!, gradient: new Float32Array(flat.dataSync()) };
  } finally {
    loss.dispose();
    flat.dispose();
  }
}

/**
 * `computeGradient` with an asynchronous read-back (`tensor.data()`), the one every backend
 * supports well: WebGPU and WebGL download without blocking, and the tab's event loop runs
 * meanwhile. The values are the same as `computeGradient`'s.
 */
export async function computeGradientAsync(
  model: tfl.LayersModel,
  xs: Float32Array,
  labels: Uint8Array,
  batch: number,
): Promise<{ loss: number; gradient: Float32Array }> {
  const { loss, flat } = gradientTensors(model, xs, labels, batch);
  try {
    const [lossData, flatData] = await Promise.all([loss.data(), flat.data()]);
    return { loss: lossData[0]!, gradient: new Float32Array(flatData as Float32Array) };
  } finally {
    loss.dispose();
    flat.dispose();
  }
}

/** The loss and the flat gradient as tensors (the caller reads and disposes them). */
function gradientTensors(
  model: tfl.LayersModel,
  xs: Float32Array,
  labels: Uint8Array,
  batch: number,
): { loss: tf.Scalar; flat: tf.Tensor1D } {
  const { inputShape, inputSize, classes } = describe(model);
  checkBatch(xs, labels, batch, inputSize, classes);
  return tf.tidy(() => {
    const x = tf.tensor(xs.subarray(0, batch * inputSize), [batch, ...inputShape]);
    const y = tf.oneHot(tf.tensor1d(Int32Array.from(labels.subarray(0, batch)), 'int32'), classes);
    const variables = model.trainableWeights.map((weight) => weight.read() as tf.Variable);
    const { value, grads } = tf.variableGrads(
      () => crossEntropy(model, model.apply(x, { training: true }) as tf.Tensor, y),
      variables,
    );
    // one flat vector in model.weights order, zeros for non-trainable weights: one read-back
    const parts = model.weights.map((weight) => {
      const size = sizeOf(weight.shape);
      const grad = weight.trainable ? grads[(weight.read() as tf.Variable).name] : undefined;
      return grad ? tf.reshape(grad, [size]) : tf.zeros([size]);
    });
    const flat = (parts.length === 1 ? parts[0]! : tf.concat(parts)) as tf.Tensor1D;
    return { loss: value, flat };
  });
}

/** Mean cross-entropy and accuracy of the first `count` samples, in batches of `batchSize`. */
export function evaluate(
  model: tfl.LayersModel,
  xs: Float32Array,
  labels: Uint8Array,
  count: number,
  batchSize = 500,
): { loss: number; accuracy: number } {
  const { inputShape, inputSize, classes } = describe(model);
  checkBatch(xs, labels, count, inputSize, classes);
  if (count === 0) return { loss: Number.NaN, accuracy: Number.NaN };
  let lossSum = 0;
  let correct = 0;
  for (let start = 0; start < count; start += batchSize) {
    const n = Math.min(batchSize, count - start);
    const [batchLoss, batchCorrect] = tf.tidy(() => {
      const x = tf.tensor(xs.subarray(start * inputSize, (start + n) * inputSize), [
        n,
        ...inputShape,
      ]);
      const labelTensor = tf.tensor1d(Int32Array.from(labels.subarray(start, start + n)), 'int32');
      const output = model.apply(x, { training: false }) as tf.Tensor;
      const loss = crossEntropy(model, output, tf.oneHot(labelTensor, classes));
      const hits = tf.sum(tf.cast(tf.equal(tf.argMax(output, -1), labelTensor), 'int32'));
      return [loss.dataSync()[0]!, hits.dataSync()[0]!];
    });
    lossSum += batchLoss * n;
    correct += batchCorrect;
  }
  return { loss: lossSum / count, accuracy: correct / count };
}

function buildPreset(preset: ModelPreset): tfl.LayersModel {
  const hidden = preset === 'mlp-784-128-10' ? 128 : preset === 'mlp-784-32-10' ? 32 : 0;
  const layers: tfl.layers.Layer[] = [];
  if (hidden > 0) {
    layers.push(
      tfl.layers.dense({ name: 'hidden', units: hidden, activation: 'relu', inputShape: [784] }),
    );
  }
  layers.push(
    tfl.layers.dense({
      name: 'output',
      units: 10,
      activation: 'softmax',
      ...(hidden > 0 ? {} : { inputShape: [784] }),
    }),
  );
  return tfl.sequential({ name: preset, layers });
}

/**
 * Synchronous equivalent of `tf.models.modelFromJSON` without weights: converts the Keras-style
 * (snake_case) topology to tfjs config form and calls the registered class's `fromConfig`.
 */
function fromTopology(topology: Record<string, unknown>): tfl.LayersModel {
  const root = (topology['model_config'] ?? topology) as Record<string, unknown>;
  const config = pythonicToTs(root) as { className?: unknown; config?: unknown };
  if (typeof config.className !== 'string' || typeof config.config !== 'object' || !config.config) {
    throw new TypeError('model topology needs class_name and config');
  }
  const entry = tf.serialization.SerializationMap.getMap().classNameMap[config.className];
  if (!entry) throw new TypeError(`unknown model class ${config.className}`);
  const [cls, fromConfig] = entry;
  (config.config as Record<string, unknown>)['customObjects'] = {};
  const model = fromConfig(cls, config.config as tf.serialization.ConfigDict);
  if (!(model instanceof tfl.LayersModel)) {
    throw new TypeError(`${config.className} is not a layers model`);
  }
  return model;
}

/** tfjs-layers' convertPythonicToTs (not exported by the package), same rules. */
function pythonicToTs(value: unknown, key?: string): unknown {
  if (value === null || typeof value === 'number' || typeof value === 'boolean') return value;
  if (typeof value === 'string') return toCamelCase(value);
  if (Array.isArray(value)) {
    const nameKey = key === 'inboundNodes' || key === 'outputLayers' || key === 'inputLayers';
    return value.map((item, i) =>
      nameKey && i === 0 && typeof item === 'string' ? item : pythonicToTs(item, key),
    );
  }
  if (typeof value === 'object' && value !== undefined) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
      if (k === 'name' && typeof v === 'string') out[k] = v;
      else {
        const tsKey = toCamelCase(k);
        out[tsKey] = pythonicToTs(v, tsKey);
      }
    }
    return out;
  }
  return value;
}

function toCamelCase(identifier: string): string {
  if (identifier.length <= 1 || !identifier.includes('_')) return identifier;
  return identifier.replace(/[_]+(\w|$)/g, (_m, p1: string) => p1.toUpperCase());
}

function initializeWeights(model: tfl.LayersModel, seed: number): void {
  tf.tidy(() => {
    const values = model.weights.map((weight, i) => {
      assertFloat32(weight);
      const shape = concreteShape(weight.shape);
      if (shape.length >= 2) {
        return tfl.initializers.glorotUniform({ seed: deriveSeed(seed, i) }).apply(shape);
      }
      const name = weight.originalName;
      return /(gamma|moving_variance)$/.test(name) ? tf.ones(shape) : tf.zeros(shape);
    });
    model.setWeights(values);
  });
}

/** A distinct, stable seed per weight index (FNV-1a mix; never 0, which tfjs may read as "unseeded"). */
function deriveSeed(seed: number, index: number): number {
  let h = 0x811c9dc5;
  for (const v of [seed >>> 0, (seed / 2 ** 32) >>> 0, index]) {
    h = Math.imul(h ^ v, 0x01000193) >>> 0;
  }
  return h === 0 ? 1 : h;
}

function describe(model: tfl.LayersModel): {
  inputShape: number[];
  inputSize: number;
  classes: number;
} {
  if (model.inputs.length !== 1 || model.outputs.length !== 1) {
    throw new TypeError('expected a model with one input and one output');
  }
  const inputShape = concreteShape(model.inputs[0]!.shape.slice(1));
  const outputShape = model.outputs[0]!.shape;
  const classes = outputShape[outputShape.length - 1];
  if (outputShape.length !== 2 || typeof classes !== 'number') {
    throw new TypeError(`expected an output of shape [batch, classes], got [${outputShape}]`);
  }
  return { inputShape, inputSize: sizeOf(inputShape), classes };
}

function outputsProbabilities(model: tfl.LayersModel): boolean {
  const last = model.layers[model.layers.length - 1];
  if (!last) return false;
  if (last.getClassName() === 'Softmax') return true;
  return (last.getConfig() as { activation?: unknown }).activation === 'softmax';
}

/** Mean categorical cross-entropy of `output` (probabilities or logits) against one-hot `y`. */
function crossEntropy(model: tfl.LayersModel, output: tf.Tensor, y: tf.Tensor): tf.Scalar {
  const logProbs = outputsProbabilities(model)
    ? tf.log(tf.clipByValue(output, EPSILON, 1))
    : tf.logSoftmax(output);
  return tf.neg(tf.mean(tf.sum(tf.mul(y, logProbs), -1))) as tf.Scalar;
}

function checkBatch(
  xs: Float32Array,
  labels: Uint8Array,
  n: number,
  inputSize: number,
  classes: number,
): void {
  if (!Number.isInteger(n) || n < 0) throw new RangeError(`bad sample count ${n}`);
  if (xs.length < n * inputSize) {
    throw new RangeError(`xs holds ${xs.length} values, ${n} samples need ${n * inputSize}`);
  }
  if (labels.length < n) throw new RangeError(`labels hold ${labels.length}, need ${n}`);
  for (let i = 0; i < n; i++) {
    if (labels[i]! >= classes) throw new RangeError(`label ${labels[i]} at ${i} >= ${classes}`);
  }
}

function assertFloat32(weight: tfl.LayerVariable): void {
  if (weight.dtype !== 'float32') {
    throw new TypeError(
      `weight ${weight.originalName} is ${weight.dtype}, only float32 is supported`,
    );
  }
}

function concreteShape(shape: readonly (number | null)[]): number[] {
  return shape.map((d) => {
    if (d === null || !Number.isInteger(d) || d < 0) {
      throw new TypeError(`shape [${shape.join(', ')}] is not fully defined`);
    }
    return d;
  });
}

function sizeOf(shape: readonly (number | null)[]): number {
  return concreteShape(shape).reduce((a, b) => a * b, 1);
}
