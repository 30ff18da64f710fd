/**
 * The training thread of a pipelined browser tab (issue 16): the tab's local steps run here, in
 * a dedicated Web Worker with its own TF.js backend, while the page's thread keeps the
 * coordinator's socket, the data channels, the cluster round, the quarantine and the proposal.
 * The page's per-iteration work (decoding and aggregating its peers' registers, the robust
 * filter's statistics, relaying iteration frames) then no longer stops the steps: on a machine
 * with a core to spare both go on at once.
 *
 * The thread runs the same step loop as a tab without one (pipeline-loop.ts): the page sends
 * the placement's partitions (`epoch`: a new placement or identity is a new loop) and, when it
 * changes, what the loop steps on (`now`: the newest base and its iteration, the settings, the
 * staleness limit, whether to compute and the throttle); the thread answers each step
 * (`step`: its time and examples, which the page counts as its own) and each register
 * (`register`, tagged with its epoch, so the page drops one of a placement it left).
 *
 * This file is the thread's side; thread-pipeline.ts is the page's. The thread is started by
 * the app (its bundler builds the worker script: apps/web training-thread.ts calls
 * `serveTrainingThread`).
 */
import type { ModelSpec } from '@swarmgrad/model';
import { buildModel, parameterCount } from '@swarmgrad/model';
import { activateBackend, type BackendName } from './backend.ts';
import { PipelineLoop, type PipelineNow, type PipelineRegister } from './pipeline-loop.ts';
import { yieldToEventLoop } from './runtime.ts';
import { Trainer, type LocalPartition, type LocalWorkSettings } from './trainer.ts';

export type ToTrainingThread =
  | {
      kind: 'setup';
      model: ModelSpec;
      seed: number;
      backend: BackendName;
      wasmPath: string;
      /**
       * Shared counters (absent without cross-origin isolation: then the thread yields after
       * every step and reports each step in a message). Int32 at 0: messages the page posted —
       * the loop yields to its event loop only while one is not handled yet; BigInt64 from
       * byte 8: steps, microseconds in steps, examples — what the page counts as its work.
       * Both spare a message per step: on a busy machine each message wakes the other thread,
       * and the sender then waits for a core (~4 ms a step in the swarm bench).
       */
      shared?: SharedArrayBuffer;
    }
  | { kind: 'epoch'; epoch: number; partitions: LocalPartition[]; momentum: boolean }
  | {
      kind: 'now';
      epoch: number;
      /** The newest base, sent only when its iteration changed. */
      base?: Float32Array;
      iteration: number;
      settings: LocalWorkSettings;
      stalenessLimit: number;
      active: boolean;
      throttle: number;
    }
  | { kind: 'stop' };

export type FromTrainingThread =
  | { kind: 'ready' }
  | { kind: 'failed'; error: string }
  | { kind: 'step'; epoch: number; ms: number; examples: number }
  | { kind: 'register'; epoch: number; register: PipelineRegister }
  | { kind: 'stale-dropped'; epoch: number }
  /** The loop stopped stepping (nothing to do until the page says more). */
  | { kind: 'idle'; epoch: number }
  | { kind: 'error'; epoch: number; error: string };

/** What a dedicated worker's global scope offers (typed here: this package has no DOM lib). */
export interface TrainingThreadScope {
  postMessage(message: FromTrainingThread, transfer?: ArrayBuffer[]): void;
  addEventListener(type: 'message', listener: (event: { data: ToTrainingThread }) => void): void;
}

/** Where the step counters start in the shared buffer, and its size. */
export const SHARED_COUNTS_OFFSET = 8;
export const SHARED_BYTES = SHARED_COUNTS_OFFSET + 3 * 8;

interface Epoch {
  epoch: number;
  loop: PipelineLoop;
  running: Promise<void> | undefined;
}

/** Serves the page's messages on this thread until `stop`. */
export function serveTrainingThread(scope: TrainingThreadScope): void {
  let trainer: Trainer | undefined;
  let dimension = 0;
  let current: Epoch | undefined;
  let now: Extract<ToTrainingThread, { kind: 'now' }> | undefined;
  let base: Float32Array | undefined;
  let setup: Promise<void> | undefined;
  let posted: Int32Array | undefined;
  let counts: BigInt64Array | undefined;
  let handled = 0;

  /**
   * Lets the page's messages in between two steps. Yielding costs a trip through the thread's
   * task queue, and on a busy machine a wait for a core each time: with the page's counter of
   * posted messages it yields only while one is pending (it may still be in flight: bounded).
   */
  const letMessagesIn = async () => {
    if (posted === undefined) return yieldToEventLoop();
    for (let spins = 0; Atomics.load(posted, 0) > handled && spins < 1000; spins++) {
      await yieldToEventLoop();
    }
  };

  const send = (message: FromTrainingThread, transfer: ArrayBuffer[] = []) =>
    scope.postMessage(message, transfer);

  const nowFor = (epoch: number): PipelineNow | undefined => {
    if (now === undefined || base === undefined || now.epoch !== epoch || !now.active) {
      return undefined;
    }
    return {
      base,
      iteration: now.iteration,
      settings: now.settings,
      stalenessLimit: now.stalenessLimit,
    };
  };

  const kick = () => {
    const held = current;
    if (held === undefined || held.running || trainer === undefined) return;
    if (nowFor(held.epoch) === undefined) return;
    held.running = held.loop
      .run()
      .catch((error: unknown) => {
        send({ kind: 'error', epoch: held.epoch, error: messageOf(error) });
      })
      .finally(() => {
        held.running = undefined;
        if (current === held) send({ kind: 'idle', epoch: held.epoch });
      });
  };

  const startEpoch = (epoch: number, partitions: LocalPartition[], momentum: boolean) => {
    current?.loop.stop();
    const trainerNow = trainer!;
    const loop = new PipelineLoop(
      partitions,
      {
        current: () => nowFor(epoch),
        step: (x, origin, velocity, partition, settings) =>
          trainerNow.step(x, origin, velocity, partition, settings),
        pace: async (ms, examples) => {
          if (counts === undefined) send({ kind: 'step', epoch, ms, examples });
          else {
            Atomics.add(counts, 0, 1n);
            Atomics.add(counts, 1, BigInt(Math.round(ms * 1000)));
            Atomics.add(counts, 2, BigInt(examples));
          }
          const throttle = now?.throttle ?? 1;
          if (throttle < 1 && throttle > 0) {
            await new Promise((resolve) => setTimeout(resolve, (ms * (1 - throttle)) / throttle));
          } else {
            // a new base or a pause between any two steps
            await letMessagesIn();
          }
        },
        publish: (register) => {
          send(
            { kind: 'register', epoch, register },
            register.updates.map((u) => u.buffer as ArrayBuffer),
          );
        },
        staleDropped: () => send({ kind: 'stale-dropped', epoch }),
      },
      { dimension, momentum },
    );
    current = { epoch, loop, running: undefined };
  };

  scope.addEventListener('message', ({ data: message }) => {
    handled++;
    switch (message.kind) {
      case 'setup':
        if (message.shared !== undefined) {
          posted = new Int32Array(message.shared, 0, 1);
          counts = new BigInt64Array(message.shared, SHARED_COUNTS_OFFSET, 3);
        }
        setup = (async () => {
          await activateBackend(message.backend, message.wasmPath);
          const model = buildModel(message.model, 0);
          const inputShape = model.inputs[0]!.shape.slice(1) as number[];
          const inputSize = inputShape.reduce((a, b) => a * b, 1);
          dimension = parameterCount(model);
          trainer = new Trainer(model, { inputSize, seed: message.seed });
        })().then(
          () => send({ kind: 'ready' }),
          (error: unknown) => send({ kind: 'failed', error: messageOf(error) }),
        );
        break;
      case 'epoch':
        void setup?.then(() => {
          if (trainer === undefined) return;
          startEpoch(message.epoch, message.partitions, message.momentum);
          kick();
        });
        break;
      case 'now':
        if (message.base !== undefined) base = message.base;
        now = message;
        void setup?.then(kick);
        break;
      case 'stop':
        current?.loop.stop();
        current = undefined;
        break;
    }
  });
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
