/**
 * Entry point of a content thread (threads.ts): builds the model and a ContentEngine from the
 * scenario, then runs the job batches it receives, replying on its port and signalling the
 * shared counter so the main thread's synchronous flush wakes up.
 */
import { workerData } from 'node:worker_threads';
import { ContentEngine } from './content.ts';
import { createModel } from './models/index.ts';
import type { ThreadInit, ThreadReply, ThreadRequest } from './threads.ts';

const init = workerData as ThreadInit;
const signal = new Int32Array(init.signal);
let engine: ContentEngine | undefined;
let failure: string | undefined;
try {
  engine = new ContentEngine(init.scenario, createModel(init.scenario), init.setup);
} catch (error) {
  failure = error instanceof Error ? error.message : String(error);
}

init.port.on('message', (request: ThreadRequest) => {
  if (request.type === 'base') {
    engine?.setBase(request.iteration, request.params);
    return;
  }
  if (request.type === 'drop') {
    engine?.dropBasesBefore(request.before);
    return;
  }
  let reply: ThreadReply;
  try {
    if (engine === undefined) throw new Error(`thread setup failed: ${failure}`);
    const e = engine;
    reply = { type: 'results', results: request.jobs.map((job) => e.run(job)) };
  } catch (error) {
    reply = { type: 'error', message: error instanceof Error ? error.message : String(error) };
  }
  init.port.postMessage(reply);
  Atomics.add(signal, init.index, 1);
  Atomics.notify(signal, init.index);
});
