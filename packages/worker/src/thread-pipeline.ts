/**
 * The page's side of a pipelined tab's training thread (training-thread.ts): starts the thread
 * on the backend the page's trial chose, hands it each placement's partitions and, whenever it
 * changes, what the loop steps on; passes the thread's steps and registers back.
 *
 * Messages cross as structured clones: a base (d floats) once per iteration, the partitions
 * once per placement, a register's updates moved (transferred) once per register.
 */
import type { ModelSpec } from '@swarmgrad/model';
import type { BackendName } from './backend.ts';
import type { PipelineRegister } from './pipeline-loop.ts';
import {
  SHARED_BYTES,
  SHARED_COUNTS_OFFSET,
  type FromTrainingThread,
  type ToTrainingThread,
} from './training-thread.ts';
import type { LocalPartition, LocalWorkSettings } from './trainer.ts';

/** A dedicated worker as the page sees it (the DOM's Worker; typed here: no DOM lib). */
export interface TrainingThreadHandle {
  postMessage(message: ToTrainingThread): void;
  addEventListener(type: 'message', listener: (event: { data: FromTrainingThread }) => void): void;
  addEventListener(type: 'error', listener: (event: { message?: string }) => void): void;
  terminate(): void;
}

export interface TrainingThreadEvents {
  /** Steps the thread took (one, or `steps` collected from shared memory), time, examples. */
  step(ms: number, examples: number, steps?: number): void;
  register(register: PipelineRegister): void;
  staleDropped(): void;
  /** A step threw; the thread waits for the next placement. */
  error(message: string): void;
}

export interface ThreadNow {
  /** The page's placement and identity: a new key is a new loop on the thread. */
  key: string;
  partitions: readonly LocalPartition[];
  base: Float32Array;
  iteration: number;
  settings: LocalWorkSettings;
  stalenessLimit: number;
  active: boolean;
  throttle: number;
}

export class TrainingThread {
  private readonly handle: TrainingThreadHandle;
  private epoch = 0;
  private epochKey: string | undefined;
  private sentIteration = -1;
  private sent = '';
  /** The last `now` sent (without its base), to pause the loop it started. */
  private lastNow: Extract<ToTrainingThread, { kind: 'now' }> | undefined;
  private busyValue = false;
  /** [messages posted]: the thread yields only while one is unhandled (training-thread.ts). */
  private readonly posted: Int32Array | undefined;
  /** [steps, µs in steps, examples] as the thread counts them, and as last read here. */
  private readonly counts: BigInt64Array | undefined;
  private readonly countsRead = [0n, 0n, 0n];
  /** Settles once the thread started its backend and model (true) or could not (false). */
  readonly ready: Promise<boolean>;

  constructor(
    create: () => TrainingThreadHandle,
    setup: { model: ModelSpec; seed: number; backend: BackendName; wasmPath: string },
    private readonly momentum: boolean,
    private readonly events: TrainingThreadEvents,
  ) {
    this.handle = create();
    let settle: (ok: boolean | PromiseLike<boolean>) => void = () => undefined;
    this.ready = new Promise<boolean>((resolve) => (settle = resolve));
    let failure: string | undefined;
    this.handle.addEventListener('error', (event) => {
      failure = event.message ?? 'the training thread failed';
      settle(false);
    });
    this.handle.addEventListener('message', ({ data: message }) => {
      switch (message.kind) {
        case 'ready':
          settle(true);
          break;
        case 'failed':
          failure = message.error;
          settle(false);
          break;
        case 'step':
          if (message.epoch !== this.epoch) break;
          this.busyValue = true;
          this.events.step(message.ms, message.examples);
          break;
        case 'register':
          if (message.epoch === this.epoch) this.events.register(message.register);
          break;
        case 'stale-dropped':
          if (message.epoch === this.epoch) this.events.staleDropped();
          break;
        case 'idle':
          if (message.epoch === this.epoch) this.busyValue = false;
          break;
        case 'error':
          if (message.epoch === this.epoch) this.events.error(message.error);
          break;
      }
    });
    this.failure = () => failure;
    // shared memory needs cross-origin isolation (the page has it: COOP/COEP)
    const shared =
      typeof SharedArrayBuffer === 'function' &&
      (globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated === true
        ? new SharedArrayBuffer(SHARED_BYTES)
        : undefined;
    this.posted = shared === undefined ? undefined : new Int32Array(shared, 0, 1);
    this.counts =
      shared === undefined ? undefined : new BigInt64Array(shared, SHARED_COUNTS_OFFSET, 3);
    this.post({ kind: 'setup', ...setup, ...(shared === undefined ? {} : { shared }) });
  }

  private post(message: ToTrainingThread): void {
    // counted before it is sent: the thread then waits for it rather than missing it
    if (this.posted !== undefined) Atomics.add(this.posted, 0, 1);
    this.handle.postMessage(message);
  }

  /** Why the thread could not start (after `ready` settled false). */
  readonly failure: () => string | undefined;

  /**
   * Hands the steps the thread counted in shared memory since the last call to `events.step`
   * (as one entry: steps, their time, their examples); a no-op when it reports by message.
   */
  collectSteps(): void {
    const counts = this.counts;
    if (counts === undefined) return;
    const now = [0, 1, 2].map((i) => Atomics.load(counts, i));
    const steps = Number(now[0]! - this.countsRead[0]!);
    if (steps === 0) return;
    const ms = Number(now[1]! - this.countsRead[1]!) / 1000;
    const examples = Number(now[2]! - this.countsRead[2]!);
    for (let i = 0; i < 3; i++) this.countsRead[i] = now[i]!;
    this.busyValue = true;
    this.events.step(ms, examples, steps);
  }

  /** Whether the thread is stepping (from its first step after a `now` to its idle). */
  get busy(): boolean {
    return this.busyValue;
  }

  /** Tells the thread what to step on; sends only what changed. */
  update(now: ThreadNow): void {
    if (now.key !== this.epochKey) {
      // the placement changed but its data is not here yet: the old loop stops meanwhile
      if (!now.active) {
        this.pause();
        return;
      }
      this.epoch++;
      this.epochKey = now.key;
      this.sentIteration = -1;
      this.sent = '';
      this.busyValue = false;
      this.post({
        kind: 'epoch',
        epoch: this.epoch,
        partitions: [...now.partitions],
        momentum: this.momentum,
      });
    }
    const summary = JSON.stringify([
      now.iteration,
      now.settings,
      now.stalenessLimit,
      now.active,
      now.throttle,
    ]);
    if (summary === this.sent) return;
    this.sent = summary;
    const newBase = now.iteration !== this.sentIteration;
    this.sentIteration = now.iteration;
    this.lastNow = {
      kind: 'now',
      epoch: this.epoch,
      iteration: now.iteration,
      settings: now.settings,
      stalenessLimit: now.stalenessLimit,
      active: now.active,
      throttle: now.throttle,
    };
    this.post({ ...this.lastNow, ...(newBase ? { base: now.base } : {}) });
  }

  private pause(): void {
    if (this.lastNow === undefined || !this.lastNow.active) return;
    this.lastNow = { ...this.lastNow, active: false };
    this.sent = '';
    this.post(this.lastNow);
  }

  terminate(): void {
    this.post({ kind: 'stop' });
    this.handle.terminate();
  }
}
