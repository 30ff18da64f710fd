/**
 * A pool of worker threads running ContentEngine jobs (content.ts) for the simulator, so the
 * per-worker arithmetic of a large swarm (gradients, codec, decoding) uses every core while the
 * event loop stays in the main thread.
 *
 * Guarantee: results are identical to running the same jobs inline — every cluster's jobs go to
 * one thread (cluster id mod threads) and run there in submission order, and a job's result
 * depends only on its cluster's history (content.ts) — and are returned in submission order.
 * `flush` is synchronous (Atomics.wait on a shared counter, then receiveMessageOnPort), so the
 * simulator stays a plain synchronous function.
 *
 * Parameters: thread count. Each thread builds its own model (loading MNIST) from the scenario.
 * Threads load the TypeScript sources through tsx's ESM API (`tsImport`), as the main process
 * does under `tsx`/vitest; a thread that does not answer within 10 minutes is an error.
 */
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import {
  MessageChannel,
  Worker,
  receiveMessageOnPort,
  type MessagePort,
} from 'node:worker_threads';
import type { ContentJob, ContentResult, ContentSetup } from './content.ts';
import type { Scenario } from './scenario.ts';

export type ThreadRequest =
  | { type: 'base'; iteration: number; params: Float32Array }
  | { type: 'drop'; before: number }
  | { type: 'jobs'; jobs: ContentJob[] };

export type ThreadReply =
  { type: 'results'; results: ContentResult[] } | { type: 'error'; message: string };

export interface ThreadInit {
  scenario: Scenario;
  setup: ContentSetup;
  port: MessagePort;
  signal: SharedArrayBuffer;
  index: number;
}

/** Code of an eval'd worker: load thread-main.ts through tsx's ESM API. */
function bootstrap(): string {
  const cjs = createRequire(import.meta.url).resolve('tsx/esm/api');
  const api = pathToFileURL(cjs.replace(/index\.cjs$/, 'index.mjs')).href;
  const entry = new URL('./thread-main.ts', import.meta.url).href;
  return `import(${JSON.stringify(api)}).then(({ tsImport }) => tsImport(${JSON.stringify(entry)}, ${JSON.stringify(entry)}));`;
}

export class ContentPool {
  readonly size: number;
  private readonly workers: Worker[] = [];
  private readonly ports: MessagePort[] = [];
  private readonly signal: Int32Array;
  private readonly queued: ContentJob[][];
  private readonly order: { thread: number; index: number }[] = [];

  constructor(scenario: Scenario, setup: ContentSetup, threads: number) {
    this.size = threads;
    const shared = new SharedArrayBuffer(4 * threads);
    this.signal = new Int32Array(shared);
    this.queued = Array.from({ length: threads }, () => []);
    for (let t = 0; t < threads; t++) {
      const { port1, port2 } = new MessageChannel();
      const worker = new Worker(bootstrap(), {
        eval: true,
        workerData: { scenario, setup, port: port2, signal: shared, index: t } satisfies ThreadInit,
        transferList: [port2],
      });
      worker.unref();
      this.workers.push(worker);
      this.ports.push(port1);
    }
  }

  setBase(iteration: number, params: Float32Array): void {
    for (const port of this.ports)
      port.postMessage({ type: 'base', iteration, params } satisfies ThreadRequest);
  }

  dropBasesBefore(before: number): void {
    for (const port of this.ports)
      port.postMessage({ type: 'drop', before } satisfies ThreadRequest);
  }

  submit(job: ContentJob): void {
    const thread = job.cluster % this.size;
    this.order.push({ thread, index: this.queued[thread]!.length });
    this.queued[thread]!.push(job);
  }

  get pending(): number {
    return this.order.length;
  }

  /** Runs every submitted job and returns their results in submission order. */
  flush(): ContentResult[] {
    if (this.order.length === 0) return [];
    const expected: number[] = [];
    for (let t = 0; t < this.size; t++) {
      const jobs = this.queued[t]!;
      expected.push(Atomics.load(this.signal, t) + (jobs.length > 0 ? 1 : 0));
      if (jobs.length > 0)
        this.ports[t]!.postMessage({ type: 'jobs', jobs } satisfies ThreadRequest);
    }
    const replies: ContentResult[][] = [];
    for (let t = 0; t < this.size; t++) {
      if (this.queued[t]!.length === 0) {
        replies.push([]);
        continue;
      }
      const deadline = performance.now() + 600_000;
      for (
        let v = Atomics.load(this.signal, t);
        v < expected[t]!;
        v = Atomics.load(this.signal, t)
      ) {
        if (performance.now() > deadline) throw new Error(`content thread ${t} did not answer`);
        Atomics.wait(this.signal, t, v, 1000);
      }
      const message = receiveMessageOnPort(this.ports[t]!);
      const reply = message?.message as ThreadReply | undefined;
      if (reply === undefined) throw new Error(`content thread ${t} signalled without a reply`);
      if (reply.type === 'error') throw new Error(`content thread ${t}: ${reply.message}`);
      replies.push(reply.results);
    }
    const results = this.order.map(({ thread, index }) => replies[thread]![index]!);
    this.order.length = 0;
    for (const q of this.queued) q.length = 0;
    return results;
  }

  close(): void {
    for (const port of this.ports) port.close();
    for (const w of this.workers) void w.terminate();
  }
}
