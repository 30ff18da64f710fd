/**
 * What the volunteer page needs from a training worker. The page is built against this
 * interface only; `worker-factory.ts` is the one file that binds it to packages/worker's
 * `createWorker` (or reports that this build has none).
 */

export interface VolunteerStatus {
  /** 'webgpu' | 'webgl' | 'wasm' | 'cpu' | 'none' */
  backend: string;
  /** Why this backend: e.g. "WebGPU adapter found" or "no WebGPU adapter; WASM with SIMD". */
  backendReason: string;
  /** A software (fallback) WebGPU adapter. */
  fallbackAdapter: boolean | null;
  steps: number;
  examplesPerSecond: number;
  /** Bytes this tab sent to its peers, and what fp32 would have cost. */
  peerBytesSent: number;
  peerFp32Bytes: number;
  peers: number;
  iteration: number;
  accuracy: number | null;
  /** The worker's phase: e.g. 'connecting', 'training', 'paused', 'left', or the job phase. */
  phase: string;
}

export interface VolunteerWorker {
  start(): Promise<void>;
  pause(): void;
  resume(): void;
  /** Share of the tab's time spent computing, 0.1–1. */
  setThrottle(share: number): void;
  leave(): Promise<void> | void;
  status(): VolunteerStatus;
  /** Returns an unsubscribe function. */
  on(event: 'status', callback: (status: VolunteerStatus) => void): () => void;
}

export interface VolunteerWorkerOptions {
  /** The coordinator's origin, or several nodes' origins (the tab fails over between them). */
  url: string | string[];
  throttle?: number;
}

export type CreateVolunteerWorker = (options: VolunteerWorkerOptions) => VolunteerWorker;

/** Loads the worker code on demand (after Donate), so the page itself stays small. */
export type LoadVolunteerWorker = () => Promise<
  { ok: true; create: CreateVolunteerWorker } | { ok: false; reason: string }
>;
