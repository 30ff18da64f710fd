/**
 * Held-out evaluation off the main event loop: a node:worker_threads thread
 * (evaluator-thread.ts) holds the job's model and the held-out set; `evaluate(params)` copies
 * the parameters to it and resolves with loss and accuracy. The coordinator's loop only posts
 * and receives messages, so it stays responsive for thousands of sockets.
 *
 * Guarantees: results resolve in request order; a bad request (wrong parameter count) rejects
 * that promise only; if the thread dies every pending and later call rejects. The caller's
 * parameter array is copied, never transferred. The thread does not keep the process alive
 * while no evaluation is pending. Compiled (apps/coordinator/build.mjs), the thread is the
 * build's `evaluator-thread.js` entry in dist/, next to the chunk holding this code; under tsx
 * and vitest the `.ts` thread file is started through a bootstrap that registers tsx in the
 * thread (see startThread).
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { JobSpec } from '@swarmgrad/protocol';
import type { Samples } from './dataset.ts';

export type EvaluatorBackend = 'wasm' | 'cpu';

export interface EvaluationResult {
  iteration: number;
  loss: number;
  accuracy: number;
  /** Time spent in the thread on this evaluation. */
  ms: number;
}

export interface EvaluatorOptions {
  /** 'auto' (default): wasm when it initialises, else cpu. */
  backend?: EvaluatorBackend | 'auto';
}

/** @internal messages between evaluator.ts and evaluator-thread.ts */
export interface EvaluatorThreadData {
  model: JobSpec['model'];
  heldOut: Samples;
  backend: EvaluatorBackend | 'auto';
}
/** @internal */
export type ToThread = { type: 'evaluate'; id: number; iteration: number; params: Float32Array };
/** @internal */
export type FromThread =
  | { type: 'ready'; backend: EvaluatorBackend; parameters: number }
  | { type: 'start-failed'; message: string }
  | ({ type: 'result'; id: number } & EvaluationResult)
  | { type: 'failed'; id: number; message: string };

interface Pending {
  resolve(result: EvaluationResult): void;
  reject(error: Error): void;
}

export class Evaluator {
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private failure: Error | undefined;

  private constructor(
    private readonly worker: Worker,
    /** The tfjs backend the thread runs on. */
    readonly backend: EvaluatorBackend,
    /** Parameter count of the job's model. */
    readonly parameters: number,
  ) {
    worker.on('message', (message: FromThread) => this.onMessage(message));
    worker.on('error', (error) => this.fail(error));
    worker.on('exit', (code) => this.fail(new Error(`evaluator thread exited (code ${code})`)));
    worker.unref();
  }

  static async start(
    job: JobSpec,
    heldOut: Samples,
    options: EvaluatorOptions = {},
  ): Promise<Evaluator> {
    const compiled = !import.meta.url.endsWith('.ts');
    const threadUrl = new URL(
      compiled ? './evaluator-thread.js' : './evaluator-thread.ts',
      import.meta.url,
    );
    const data: EvaluatorThreadData = {
      model: job.model,
      heldOut,
      backend: options.backend ?? 'auto',
    };
    const worker = startThread(threadUrl, data);
    let detach = () => {};
    const ready = await new Promise<Extract<FromThread, { type: 'ready' }>>((resolve, reject) => {
      const onMessage = (message: FromThread) => {
        if (message.type === 'ready') resolve(message);
        else if (message.type === 'start-failed') reject(new Error(message.message));
      };
      const onError = (error: Error) => reject(error);
      const onExit = (code: number) => reject(new Error(`evaluator thread exited (${code})`));
      worker.on('message', onMessage);
      worker.on('error', onError);
      worker.on('exit', onExit);
      // only our own listeners: Worker keeps internal ones (removeAllListeners breaks delivery)
      detach = () => {
        worker.off('message', onMessage);
        worker.off('error', onError);
        worker.off('exit', onExit);
      };
    })
      .catch(async (error: unknown) => {
        await worker.terminate();
        throw error;
      })
      .finally(() => detach());
    return new Evaluator(worker, ready.backend, ready.parameters);
  }

  /** Loss and accuracy of `params` on the held-out set. */
  evaluate(params: Float32Array, iteration: number): Promise<EvaluationResult> {
    if (this.failure) return Promise.reject(this.failure);
    if (params.length !== this.parameters) {
      return Promise.reject(
        new RangeError(`expected ${this.parameters} parameters, got ${params.length}`),
      );
    }
    const id = this.nextId++;
    return new Promise<EvaluationResult>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      if (this.pending.size === 1) this.worker.ref();
      const message: ToThread = { type: 'evaluate', id, iteration, params };
      this.worker.postMessage(message);
    });
  }

  /** Stops the thread; pending evaluations reject. */
  async close(): Promise<void> {
    if (!this.failure) this.failure = new Error('evaluator closed');
    this.rejectAll(this.failure);
    await this.worker.terminate();
  }

  private onMessage(message: FromThread): void {
    if (message.type !== 'result' && message.type !== 'failed') return;
    const pending = this.pending.get(message.id);
    if (!pending) return;
    this.pending.delete(message.id);
    if (this.pending.size === 0) this.worker.unref();
    if (message.type === 'failed') pending.reject(new Error(message.message));
    else {
      const { iteration, loss, accuracy, ms } = message;
      pending.resolve({ iteration, loss, accuracy, ms });
    }
  }

  private fail(error: Error): void {
    if (!this.failure) this.failure = error;
    this.rejectAll(this.failure);
  }

  private rejectAll(error: Error): void {
    const pending = [...this.pending.values()];
    this.pending.clear();
    this.worker.unref();
    for (const p of pending) p.reject(error);
  }
}

/**
 * Starts the thread. A `.ts` thread file needs a TypeScript loader inside the thread: on Node 20
 * neither the parent's tsx hooks nor `execArgv: ['--import', 'tsx']` reach a worker (tsx only
 * self-registers on the main thread), so a small bootstrap registers tsx's ESM API in the
 * thread, then imports the file. A compiled `.js` thread file starts directly.
 */
function startThread(threadUrl: URL, workerData: EvaluatorThreadData): Worker {
  if (!threadUrl.pathname.endsWith('.ts')) return new Worker(threadUrl, { workerData });
  const bootstrap =
    `import(${JSON.stringify(tsxEsmApiUrl())})` +
    `.then((tsx) => { tsx.register(); return import(${JSON.stringify(threadUrl.href)}); });`;
  return new Worker(bootstrap, { eval: true, workerData });
}

/** File URL of `tsx/esm/api` (its "import" export), resolved from this file, not the cwd. */
function tsxEsmApiUrl(): string {
  const require = createRequire(import.meta.url);
  const manifestPath = require.resolve('tsx/package.json');
  const manifest = JSON.parse(readFileSync(manifestPath, 'utf8')) as {
    exports?: Record<string, unknown>;
  };
  const entry = manifest.exports?.['./esm/api'] as
    { import?: string | { default?: string } } | undefined;
  const target = typeof entry?.import === 'string' ? entry.import : entry?.import?.default;
  if (!target) throw new Error('tsx/esm/api not found: cannot start a .ts worker thread');
  return pathToFileURL(join(dirname(manifestPath), target)).href;
}
