/**
 * Binds the volunteer page to packages/worker's browser `createWorker`: the one file that
 * knows the worker's API. Loaded on Donate (a dynamic import), so TF.js, its backends and
 * simple-peer are fetched only when the volunteer says so. simple-peer's prebuilt browser
 * bundle is the PeerCtor (its package entry needs Node's streams); TF.js finds its .wasm
 * files at /tfjs-wasm/, which the Vite build copies there (vite.config.ts).
 */
import type { SwarmWorker, WorkerStatus } from '@swarmgrad/worker';
import { faultModeSchema, faultModes, type FaultMode } from '@swarmgrad/protocol';
import type { LoadVolunteerWorker, VolunteerStatus, VolunteerWorker } from './adapter.ts';
import { attachDebugWorker, debugEnabled } from './debug.ts';
import { withRetries } from './retry.ts';

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

/**
 * `?fault=<mode>` (sign-flip, scale, random, stale, nan): the tab runs that fault-injection mode
 * (packages/worker faults.ts) and announces it in hello; a coordinator started without
 * `--allow-fault-injection` refuses such a tab. For `swarmgrad swarm --byzantine`.
 */
function faultFromUrl():
  { ok: true; fault: FaultMode | undefined } | { ok: false; reason: string } {
  const value = new URLSearchParams(window.location.search).get('fault');
  if (value === null) return { ok: true, fault: undefined };
  const parsed = faultModeSchema.safeParse(value);
  return parsed.success
    ? { ok: true, fault: parsed.data }
    : { ok: false, reason: `Unknown fault mode "${value}" (one of ${faultModes.join(', ')})` };
}

const BACKENDS = ['webgpu', 'webgl', 'wasm', 'cpu'] as const;
type ForcedBackend = (typeof BACKENDS)[number];

/**
 * `?backend=<name>` (webgpu, webgl, wasm, cpu): use that TF.js backend instead of measuring
 * each one (still checked by the worker; it measures when the backend cannot run the model).
 * Swarms of many tabs on one machine start faster without every tab timing every backend.
 */
function backendFromUrl():
  { ok: true; backend: ForcedBackend | undefined } | { ok: false; reason: string } {
  const value = new URLSearchParams(window.location.search).get('backend');
  if (value === null) return { ok: true, backend: undefined };
  return (BACKENDS as readonly string[]).includes(value)
    ? { ok: true, backend: value as ForcedBackend }
    : { ok: false, reason: `Unknown backend "${value}" (one of ${BACKENDS.join(', ')})` };
}

/** Local steps on a training thread (see loadVolunteerWorker) unless `?thread=off`. */
function threadFromUrl(): boolean {
  return new URLSearchParams(window.location.search).get('thread') !== 'off';
}

export const loadVolunteerWorker: LoadVolunteerWorker = async () => {
  const fault = faultFromUrl();
  if (!fault.ok) return fault;
  const backend = backendFromUrl();
  if (!backend.ok) return backend;
  try {
    // a chunk lost on a lossy link is fetched again (retry.ts), not left failed for good
    const [{ createWorker }, { default: Peer }] = await withRetries(
      () => Promise.all([import('@swarmgrad/worker'), import('simple-peer/simplepeer.min.js')]),
      { onRetry: (error) => console.warn('loading the training code failed; retrying', error) },
    );
    return {
      ok: true,
      create: (options) => {
        const worker = createWorker({
          url: options.url,
          PeerCtor: Peer,
          wasmPath: '/tfjs-wasm/',
          // a pipelined job's local steps run on their own thread (packages/worker
          // training-thread.ts), so the page's work between them does not stop them;
          // `?thread=off` keeps them on the page (docs/architecture.md, _The training thread_)
          ...(threadFromUrl()
            ? {
                trainingThread: () =>
                  new Worker(new URL('./training-thread.ts', import.meta.url), {
                    type: 'module',
                    name: 'swarmgrad-training',
                  }),
              }
            : {}),
          ...(options.throttle !== undefined ? { throttle: options.throttle } : {}),
          ...(fault.fault !== undefined ? { fault: fault.fault } : {}),
          ...(backend.backend !== undefined ? { backend: backend.backend } : {}),
        });
        if (debugEnabled()) attachDebugWorker(worker);
        return adapt(worker);
      },
    };
  } catch (error) {
    return { ok: false, reason: `The training code did not load: ${(error as Error).message}` };
  }
};
