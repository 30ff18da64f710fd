/**
 * A pool of worker threads running ContentEngine jobs (content.ts) for the simulator, so the
 * per-worker arithmetic of a large swarm (gradients, codec, decoding) uses every core while the
 * event loop stays in the main thread.
 *
 * Guarantee: results are identical to running the same jobs inline — every cluster's jobs go to
 * one thread (cluster id mod threads) and run there in submission order, and a job's result
 * depends only on its cluster's history (content.ts) — and are returned in submission order.
 * Jobs are posted in batches as they are submitted, so threads compute while the event loop
 * goes on; `flush` is synchronous (receiveMessageOnPort, Atomics.wait on a shared counter
 * between replies), so the simulator stays a plain synchronous function.
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

/** Jobs per batch posted to a thread before the flush. */
const CHUNK = 32;

export class ContentPool {
  readonly size: number;
  private readonly workers: Worker[] = [];
  private readonly ports: MessagePort[] = [];
  private readonly signal: Int32Array;
  private readonly queued: ContentJob[][];
  private readonly order: { thread: number; index: number }[] = [];
  /** Per thread since the last flush: jobs submitted, and job batches posted. */
  private readonly submitted: number[];
  private readonly posted: number[];
  /** Per thread: replies taken since the start (the shared counter counts replies sent). */
  private readonly replied: number[];

  constructor(scenario: Scenario, setup: ContentSetup, threads: number) {
    this.size = threads;
    const shared = new SharedArrayBuffer(4 * threads);
    this.signal = new Int32Array(shared);
    this.queued = Array.from({ length: threads }, () => []);
    this.submitted = new Array<number>(threads).fill(0);
    this.posted = new Array<number>(threads).fill(0);
    this.replied = new Array<number>(threads).fill(0);
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
    this.order.push({ thread, index: this.submitted[thread]!++ });
    const queue = this.queued[thread]!;
    queue.push(job);
    // post in chunks as jobs come, so threads compute while the event loop goes on
    if (queue.length >= CHUNK) this.post(thread);
  }

  get pending(): number {
    return this.order.length;
  }

  private post(thread: number): void {
    const jobs = this.queued[thread]!.splice(0);
    if (jobs.length === 0) return;
    this.posted[thread]!++;
    this.ports[thread]!.postMessage({ type: 'jobs', jobs } satisfies ThreadRequest);
  }

  /** Runs every submitted job and returns their results in submission order. */
  flush(): ContentResult[] {
    if (this.order.length === 0) return [];
    for (let t = 0; t < this.size; t++) this.post(t);
    const replies: ContentResult[][] = [];
    for (let t = 0; t < this.size; t++) {
      const results: ContentResult[] = [];
      const deadline = performance.now() + 600_000;
      for (let received = 0; received < this.posted[t]!;) {
        // the counter is read before polling: a reply posted after the poll bumps it, so the
        // wait returns at once; a counter ahead of the replies taken means one is on its way
        const sent = Atomics.load(this.signal, t);
        const message = receiveMessageOnPort(this.ports[t]!);
        if (message === undefined) {
          if (performance.now() > deadline) throw new Error(`content thread ${t} did not answer`);
          Atomics.wait(this.signal, t, sent, sent > this.replied[t]! ? 1 : 1000);
          continue;
        }
        this.replied[t]!++;
        const reply = message.message as ThreadReply;
        if (reply.type === 'error') throw new Error(`content thread ${t}: ${reply.message}`);
        for (const r of reply.results) results.push(r);
        received++;
      }
      replies.push(results);
    }
    const results = this.order.map(({ thread, index }) => replies[thread]![index]!);
    this.order.length = 0;
    this.posted.fill(0);
    this.submitted.fill(0);
    return results;
  }

  close(): void {
    for (const port of this.ports) port.close();
    for (const w of this.workers) void w.terminate();
  }
}
