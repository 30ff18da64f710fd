/**
 * A training thread in one process: a page-side handle and a thread-side scope
 * (training-thread.ts's serveTrainingThread) joined by a pair of message ports that clone what
 * they carry, as a Web Worker's postMessage does, and deliver it in a later task.
 */
import type { TrainingThreadHandle } from '../../src/thread-pipeline.ts';
import {
  serveTrainingThread,
  type FromTrainingThread,
  type ToTrainingThread,
  type TrainingThreadScope,
} from '../../src/training-thread.ts';

export function threadPair(): { create: () => TrainingThreadHandle; terminated: () => boolean } {
  type Listener<T> = (event: { data: T }) => void;
  const toThread: Listener<ToTrainingThread>[] = [];
  const toPage: Listener<FromTrainingThread>[] = [];
  let terminated = false;
  const deliver = <T>(listeners: Listener<T>[], message: T, transfer: ArrayBuffer[] = []) => {
    const data = structuredClone(message, { transfer });
    setTimeout(() => {
      if (!terminated) for (const listener of listeners) listener({ data });
    }, 0);
  };
  const scope: TrainingThreadScope = {
    postMessage: (message, transfer) => deliver(toPage, message, transfer),
    addEventListener: (_type, listener) => void toThread.push(listener),
  };
  return {
    create: () => {
      serveTrainingThread(scope);
      return {
        postMessage: (message) => deliver(toThread, message),
        addEventListener: (type: 'message' | 'error', listener: Listener<never>) => {
          if (type === 'message') toPage.push(listener as Listener<FromTrainingThread>);
        },
        terminate: () => void (terminated = true),
      } as TrainingThreadHandle;
    },
    terminated: () => terminated,
  };
}
