/**
 * Binds the volunteer page to packages/worker's browser `createWorker`: the one file that
 * knows the worker's API. Loaded on Donate (a dynamic import), so TF.js, its backends and
 * simple-peer are fetched only when the volunteer says so. simple-peer's prebuilt browser
 * bundle is the PeerCtor (its package entry needs Node's streams); TF.js finds its .wasm
 * files at /tfjs-wasm/, which the Vite build copies there (vite.config.ts).
 */
import type { SwarmWorker, WorkerStatus } from '@swarmgrad/worker';
import type { LoadVolunteerWorker, VolunteerStatus, VolunteerWorker } from './adapter.ts';
import { attachDebugWorker, debugEnabled } from './debug.ts';

const STATE_LABEL: Record<string, string> = {
  idle: 'starting',
  'selecting-backend': 'testing backends',
  connecting: 'connecting',
  loading: 'loading data',
  computing: 'computing',
  waiting: 'waiting for peers',
  paused: 'paused',
  left: 'left',
  error: 'error',
};

function toVolunteerStatus(s: WorkerStatus): VolunteerStatus {
  const reason =
    s.backend?.reason ??
    (s.state === 'selecting-backend' ? 'Measuring WebGPU, WebGL, WebAssembly and CPU…' : '');
  return {
    backend: s.backend?.backend ?? 'none',
    backendReason: s.error ? `${reason}${reason ? ' · ' : ''}${s.error}` : reason,
    // the WebGPU adapter's software fallback matters only when WebGPU is the backend
    fallbackAdapter: s.backend?.backend === 'webgpu' ? (s.backend.fallbackAdapter ?? null) : null,
    steps: s.steps,
    examplesPerSecond: s.examplesPerSecond,
    peerBytesSent: s.wire.peerBytesSent,
    peerFp32Bytes: s.wire.peerFp32Bytes,
    peers: s.cluster?.peers.filter((p) => p.link === 'connected').length ?? 0,
    iteration: s.iteration ?? 0,
    accuracy: s.accuracy,
    phase:
      s.phase !== undefined && s.phase !== 'training'
        ? s.phase === 'quorum-lost'
          ? 'waiting for clusters'
          : s.phase
        : (STATE_LABEL[s.state] ?? s.state),
  };
}

function adapt(worker: SwarmWorker): VolunteerWorker {
  return {
    start: () => worker.start(),
    pause: () => worker.pause(),
    resume: () => worker.resume(),
    setThrottle: (share) => worker.setThrottle(share),
    leave: () => worker.leave(),
    status: () => toVolunteerStatus(worker.status()),
    on: (_event, callback) => worker.on('status', (s) => callback(toVolunteerStatus(s))),
  };
}

export const loadVolunteerWorker: LoadVolunteerWorker = async () => {
  try {
    const [{ createWorker }, { default: Peer }, tf] = await Promise.all([
      import('@swarmgrad/worker'),
      import('simple-peer/simplepeer.min.js'),
      import('@tensorflow/tfjs-core'),
    ]);
    // TF.js's threaded WASM build starts its pthread workers from the source text of its
    // Emscripten factory, which no longer stands alone once bundled and minified (the workers
    // die with "ReferenceError: e is not defined"): use the single-threaded SIMD build.
    // (the flag is registered when the worker module imports the WASM backend)
    try {
      tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false);
    } catch {
      // no WASM backend in this build: nothing to configure
    }
    return {
      ok: true,
      create: (options) => {
        const worker = createWorker({
          url: options.url,
          PeerCtor: Peer,
          wasmPath: '/tfjs-wasm/',
          ...(options.throttle !== undefined ? { throttle: options.throttle } : {}),
        });
        if (debugEnabled()) attachDebugWorker(worker);
        return adapt(worker);
      },
    };
  } catch (error) {
    return { ok: false, reason: `The training code did not load: ${(error as Error).message}` };
  }
};
