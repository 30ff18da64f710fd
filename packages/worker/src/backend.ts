/**
 * Picking the tab's TF.js backend by measurement.
 *
 * Guarantee: among the candidates that are available here (browser: webgpu, webgl, wasm, cpu;
 * Node: wasm, cpu), `selectBackend` times a few training steps of the job's own model
 * (model.ts computeGradientAsync on a synthetic batch, one warm-up step then `steps` timed
 * ones, scored by the fastest of them) on each and keeps the fastest. A backend is never picked
 * when it lacks a kernel the model's training needs — checked up front from the model's layers
 * (e.g. wasm has no DepthwiseConv2dNativeBackpropFilter; its missing Conv2DBackpropFilter this
 * package supplies, wasm-conv-filter.ts) and again by the trial itself (a missing kernel
 * throws, a non-finite gradient or a zero loss disqualifies). The result says which backend,
 * why, every candidate's time or failure, whether wasm runs threaded (the page is cross-origin
 * isolated and SharedArrayBuffer exists) and WebGPU's adapter.isFallbackAdapter (a software
 * adapter), which the tab reports to the coordinator in its hello.
 *
 * A GPU backend that runs on a software renderer (WebGPU's fallback adapter; WebGL on
 * SwiftShader, llvmpipe and the like) is timed only when neither wasm nor a hardware GPU can
 * run the job: the trial is listed as skipped, with the renderer's name. Measured on a machine
 * without a GPU (docs/benchmarks.md), these were 4–20× slower per step than threaded wasm on the
 * default job, and their trials took up to 18 s of a tab's start where several tabs share a
 * browser's GPU process.
 *
 * Parameters: the job's model spec, the candidates (default by platform), a forced backend
 * (still checked, else auto), steps per trial (default 3), batch size (default 32), wasmPath
 * (browser: where the .wasm files are served, default '/tfjs-wasm/').
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-webgl';
import '@tensorflow/tfjs-backend-webgpu';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import type * as tfl from '@tensorflow/tfjs-layers';
import { createRng } from '@swarmgrad/core';
import { buildModel, computeGradientAsync, type ModelSpec } from '@swarmgrad/model';
import type { Logger } from './runtime.ts';
import { registerWasmConvFilterGradient } from './wasm-conv-filter.ts';

// wasm lacks the filter gradient of Conv2D: ours lets convolutional models train on it
registerWasmConvFilterGradient();

export type BackendName = 'webgpu' | 'webgl' | 'wasm' | 'cpu';
export const backendOrder: readonly BackendName[] = ['webgpu', 'webgl', 'wasm', 'cpu'];

export interface BackendTrial {
  backend: BackendName;
  /** Milliseconds of the fastest timed training step, when the trial ran. */
  msPerStep?: number;
  /** Why the backend was not usable. */
  error?: string;
  /** Why it was not timed (a software renderer while wasm or a hardware GPU runs the job). */
  skipped?: string;
}

export interface BackendChoice {
  backend: BackendName;
  /** One line for the volunteer: why this backend. */
  reason: string;
  /** WebGPU adapter's isFallbackAdapter (undefined when WebGPU is absent). */
  fallbackAdapter?: boolean;
  /** wasm with threads (cross-origin isolated page). */
  threaded: boolean;
  trials: BackendTrial[];
}

export interface SelectBackendOptions {
  model: ModelSpec;
  candidates?: readonly BackendName[];
  /** Use this backend if it works (still checked for kernels); otherwise select as usual. */
  force?: BackendName;
  steps?: number;
  batchSize?: number;
  /** Browser: URL prefix of the tfjs wasm binaries (default '/tfjs-wasm/'). */
  wasmPath?: string;
  logger?: Logger;
}

/** Kernels the training of a layer class needs beyond the ones every model uses. */
const TRAINING_KERNELS: Record<string, string[]> = {
  Conv1D: ['Conv2D', 'Conv2DBackpropFilter', 'Conv2DBackpropInput'],
  Conv2D: ['Conv2D', 'Conv2DBackpropFilter', 'Conv2DBackpropInput'],
  Conv2DTranspose: ['Conv2DBackpropInput', 'Conv2D', 'Conv2DBackpropFilter'],
  SeparableConv2D: [
    'DepthwiseConv2dNative',
    'DepthwiseConv2dNativeBackpropFilter',
    'DepthwiseConv2dNativeBackpropInput',
    'Conv2DBackpropFilter',
  ],
  DepthwiseConv2D: [
    'DepthwiseConv2dNative',
    'DepthwiseConv2dNativeBackpropFilter',
    'DepthwiseConv2dNativeBackpropInput',
  ],
  MaxPooling2D: ['MaxPool', 'MaxPoolGrad'],
  AveragePooling2D: ['AvgPool', 'AvgPoolGrad'],
  MaxPooling1D: ['MaxPool', 'MaxPoolGrad'],
  AveragePooling1D: ['AvgPool', 'AvgPoolGrad'],
};

export function isNode(): boolean {
  const p = (globalThis as { process?: { versions?: { node?: string } } }).process;
  return (
    typeof p?.versions?.node === 'string' &&
    (globalThis as { window?: unknown }).window === undefined
  );
}

export function defaultCandidates(): BackendName[] {
  return isNode() ? ['wasm', 'cpu'] : [...backendOrder];
}

/** Kernels `model` needs for training that `backend` has not registered. */
export function missingKernels(model: tfl.LayersModel, backend: BackendName): string[] {
  const missing = new Set<string>();
  for (const layer of model.layers) {
    for (const kernel of TRAINING_KERNELS[layer.getClassName()] ?? []) {
      if (tf.getKernel(kernel, backend) === undefined) missing.add(kernel);
    }
  }
  return [...missing];
}

/** Whether the wasm backend can run threaded here (browser, cross-origin isolated). */
export function wasmThreaded(): boolean {
  const g = globalThis as { crossOriginIsolated?: boolean; SharedArrayBuffer?: unknown };
  return !isNode() && g.crossOriginIsolated === true && g.SharedArrayBuffer !== undefined;
}

interface GpuAdapterLike {
  isFallbackAdapter?: boolean;
  info?: { isFallbackAdapter?: boolean };
}

/** The WebGPU adapter's isFallbackAdapter, or undefined without WebGPU. */
export async function webgpuFallbackAdapter(): Promise<boolean | undefined> {
  const gpu = (
    globalThis as {
      navigator?: { gpu?: { requestAdapter(): Promise<GpuAdapterLike | null> } };
    }
  ).navigator?.gpu;
  if (!gpu) return undefined;
  try {
    const adapter = await gpu.requestAdapter();
    if (!adapter) return undefined;
    return adapter.isFallbackAdapter ?? adapter.info?.isFallbackAdapter ?? false;
  } catch {
    return undefined;
  }
}

/** Renderer names of software WebGL implementations (what UNMASKED_RENDERER_WEBGL says). */
const SOFTWARE_RENDERER = /swiftshader|llvmpipe|softpipe|software rasterizer|basic render driver/i;

/**
 * WebGL's renderer when it is a software rasterizer (e.g. "ANGLE (…SwiftShader…)"), else
 * undefined (a hardware GPU, no WebGL, or a renderer this page may not read).
 */
export function webglSoftwareRenderer(): string | undefined {
  const g = globalThis as {
    document?: { createElement(tag: 'canvas'): { getContext(kind: string): unknown } };
    OffscreenCanvas?: new (w: number, h: number) => { getContext(kind: string): unknown };
  };
  try {
    const canvas =
      g.OffscreenCanvas !== undefined
        ? new g.OffscreenCanvas(1, 1)
        : g.document?.createElement('canvas');
    const gl = (canvas?.getContext('webgl2') ?? canvas?.getContext('webgl')) as
      | {
          RENDERER: number;
          getExtension(name: string): { UNMASKED_RENDERER_WEBGL?: number; loseContext?(): void };
          getParameter(parameter: number): unknown;
        }
      | null
      | undefined;
    if (!gl) return undefined;
    const info = gl.getExtension('WEBGL_debug_renderer_info');
    const renderer = String(gl.getParameter(info?.UNMASKED_RENDERER_WEBGL ?? gl.RENDERER) ?? '');
    // the probe's context is not the one TF.js makes: free it now
    gl.getExtension('WEBGL_lose_context')?.loseContext?.();
    return SOFTWARE_RENDERER.test(renderer) ? renderer : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Runs `trial` on the candidates in order, except that the ones in `software` (backend → its
 * renderer) are tried only when no other candidate but cpu proved usable; a software one not
 * timed is listed as skipped, with why. Trials come back in the candidates' order.
 */
export async function trialCandidates(
  candidates: readonly BackendName[],
  software: ReadonlyMap<BackendName, string>,
  trial: (backend: BackendName) => Promise<BackendTrial>,
): Promise<BackendTrial[]> {
  const byBackend = new Map<BackendName, BackendTrial>();
  for (const backend of candidates) {
    if (!software.has(backend)) byBackend.set(backend, await trial(backend));
  }
  const runsTheJob = [...byBackend.values()].find(
    (t) => t.msPerStep !== undefined && t.backend !== 'cpu',
  );
  for (const backend of candidates) {
    const renderer = software.get(backend);
    if (renderer === undefined) continue;
    byBackend.set(
      backend,
      runsTheJob === undefined
        ? await trial(backend)
        : {
            backend,
            skipped: `software renderer (${renderer}), not timed: ${runsTheJob.backend} runs this job`,
          },
    );
  }
  return candidates.map((b) => byBackend.get(b)!);
}

let wasmPathSet = false;

/** Times `steps` training steps of `spec` on `backend` (tf's active backend afterwards). */
export async function trialBackend(
  spec: ModelSpec,
  backend: BackendName,
  steps = 3,
  batchSize = 32,
): Promise<BackendTrial> {
  try {
    if (tf.findBackendFactory(backend) === null) {
      return { backend, error: 'not registered in this build' };
    }
    const ok = await tf.setBackend(backend);
    if (!ok) return { backend, error: 'failed to initialise' };
    await tf.ready();
  } catch (error) {
    return { backend, error: `failed to initialise: ${messageOf(error)}` };
  }
  const model = buildModel(spec, 0);
  try {
    const missing = missingKernels(model, backend);
    if (missing.length > 0) return { backend, error: `lacks kernel ${missing.join(', ')}` };
    const inputShape = model.inputs[0]!.shape.slice(1) as number[];
    const inputSize = inputShape.reduce((a, b) => a * b, 1);
    const outputShape = model.outputs[0]!.shape;
    const classes = outputShape[outputShape.length - 1] as number;
    const rng = createRng(0x5eed);
    const xs = new Float32Array(batchSize * inputSize);
    for (let i = 0; i < xs.length; i++) xs[i] = rng.next();
    const labels = new Uint8Array(batchSize);
    for (let i = 0; i < batchSize; i++) labels[i] = Math.floor(rng.next() * classes);
    const first = await computeGradientAsync(model, xs, labels, batchSize);
    if (!Number.isFinite(first.loss)) return { backend, error: 'non-finite loss' };
    // cross-entropy on random labels is well above 0: a zero loss is a backend reading back zeros
    if (!(first.loss > 0)) return { backend, error: `implausible loss ${first.loss}` };
    // the fastest step, not the mean: a tab that shares its cores with other tabs is descheduled
    // at random, which only ever adds time (the mean once picked cpu over a 5× faster wasm)
    let fastest = Infinity;
    for (let s = 0; s < steps; s++) {
      const started = performance.now();
      const { gradient } = await computeGradientAsync(model, xs, labels, batchSize);
      fastest = Math.min(fastest, performance.now() - started);
      for (let i = 0; i < gradient.length; i++) {
        if (!Number.isFinite(gradient[i]!)) return { backend, error: 'non-finite gradient' };
      }
    }
    return { backend, msPerStep: fastest };
  } catch (error) {
    return { backend, error: messageOf(error) };
  } finally {
    model.dispose();
  }
}

/**
 * Makes `backend` TF.js's active backend in this context (a training thread takes the one the
 * page's trial chose: training-thread.ts), without measuring; throws when it cannot start.
 */
export async function activateBackend(backend: BackendName, wasmPath: string): Promise<void> {
  if (backend === 'wasm' && !isNode() && !wasmPathSet) {
    setWasmPaths(wasmPath);
    wasmPathSet = true;
  }
  if (!(await tf.setBackend(backend))) throw new Error(`${backend} failed to initialise`);
  await tf.ready();
}

/** One selection at a time per process (TF.js's backend is global), and one per setting. */
let selectionLock: Promise<unknown> = Promise.resolve();
const selections = new Map<string, BackendChoice>();

/**
 * Times the candidates, activates the fastest usable one and says why. TF.js's backend is
 * process-wide: concurrent calls run one after the other, and a repeated call with the same
 * settings reuses the measured choice (several workers in one process).
 */
export async function selectBackend(options: SelectBackendOptions): Promise<BackendChoice> {
  const key = JSON.stringify([options.model, options.candidates, options.force, options.steps]);
  const run = selectionLock.then(async () => {
    const known = selections.get(key);
    if (known !== undefined && (await tf.setBackend(known.backend))) return known;
    const choice = await measureAndSelect(options);
    selections.set(key, choice);
    return choice;
  });
  selectionLock = run.catch(() => undefined);
  return run;
}

async function measureAndSelect(options: SelectBackendOptions): Promise<BackendChoice> {
  const steps = options.steps ?? 3;
  const batchSize = options.batchSize ?? 32;
  const candidates = options.candidates ?? defaultCandidates();
  if (!isNode() && !wasmPathSet && candidates.includes('wasm')) {
    // must happen before the wasm backend initialises; the page serves the binaries
    setWasmPaths(options.wasmPath ?? '/tfjs-wasm/');
    wasmPathSet = true;
  }
  let threaded = candidates.includes('wasm') && wasmThreaded();
  if (threaded) {
    // what tfjs-backend-wasm itself checks before loading its threaded binary
    threaded = await tf
      .env()
      .getAsync('WASM_HAS_MULTITHREAD_SUPPORT')
      .then(Boolean, () => false);
  }
  const fallbackAdapter = candidates.includes('webgpu') ? await webgpuFallbackAdapter() : undefined;
  const trials: BackendTrial[] = [];

  if (options.force !== undefined) {
    const trial = await trialBackend(options.model, options.force, 1, batchSize);
    trials.push(trial);
    if (trial.error === undefined) {
      return {
        backend: options.force,
        reason: `${options.force}: chosen by option (${format(trial)})`,
        ...(fallbackAdapter === undefined ? {} : { fallbackAdapter }),
        threaded: options.force === 'wasm' && threaded,
        trials,
      };
    }
    options.logger?.warn({ backend: options.force, error: trial.error }, 'forced backend unusable');
  }

  const software = new Map<BackendName, string>();
  if (fallbackAdapter === true) software.set('webgpu', 'WebGPU fallback adapter');
  const webglRenderer = candidates.includes('webgl') ? webglSoftwareRenderer() : undefined;
  if (webglRenderer !== undefined) software.set('webgl', webglRenderer);
  const timed = await trialCandidates(
    candidates.filter((b) => b !== options.force),
    software,
    async (backend) => {
      if (backend === 'webgpu' && fallbackAdapter === undefined && !isNode()) {
        const g = globalThis as { navigator?: { gpu?: unknown } };
        if (g.navigator?.gpu === undefined) return { backend, error: 'no WebGPU in this browser' };
      }
      return trialBackend(options.model, backend, steps, batchSize);
    },
  );
  trials.push(...timed);
  const usable = trials.filter(
    (t): t is BackendTrial & { msPerStep: number } => t.msPerStep !== undefined,
  );
  if (usable.length === 0) {
    throw new Error(
      `no usable TF.js backend: ${trials.map((t) => `${t.backend} ${t.error}`).join('; ')}`,
    );
  }
  usable.sort((a, b) => a.msPerStep - b.msPerStep);
  const best = usable[0]!;
  await tf.setBackend(best.backend);
  await tf.ready();
  const others = trials.filter((t) => t !== best).map(format);
  const reason =
    `${best.backend}: fastest, ${best.msPerStep.toFixed(1)} ms/step` +
    (others.length > 0 ? ` (${others.join('; ')})` : '') +
    (best.backend === 'webgpu' && fallbackAdapter ? ' — software (fallback) adapter' : '') +
    (best.backend === 'wasm' ? (threaded ? ', threaded' : ', single-threaded') : '');
  options.logger?.info({ backend: best.backend, trials }, 'backend selected');
  return {
    backend: best.backend,
    reason,
    ...(fallbackAdapter === undefined ? {} : { fallbackAdapter }),
    threaded: best.backend === 'wasm' && threaded,
    trials,
  };
}

function format(trial: BackendTrial): string {
  if (trial.msPerStep !== undefined)
    return `${trial.backend} ${trial.msPerStep.toFixed(1)} ms/step`;
  return `${trial.backend}: ${trial.error ?? trial.skipped}`;
}

function messageOf(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  return text.length > 160 ? `${text.slice(0, 157)}...` : text;
}
