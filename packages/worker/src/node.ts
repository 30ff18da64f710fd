/**
 * The worker in Node, so a server can donate compute too: the same worker code with TF.js on
 * WASM (CPU fallback, picked by measurement unless forced) and @roamhq/wrtc as simple-peer's
 * WebRTC implementation (real data channels, the same wire format as a browser tab).
 * `swarmgrad worker --url http://host:port [--backend wasm|cpu] [--throttle 1]` calls this.
 */
import wrtc from '@roamhq/wrtc';
import Peer from 'simple-peer';
import type { PeerConstructor } from './mesh.ts';
import { consoleLogger, type Logger } from './runtime.ts';
import { createWorker, type SwarmWorker, type WorkerOptions } from './worker.ts';

export interface NodeWorkerOptions extends Omit<
  WorkerOptions,
  'backend' | 'backends' | 'wrtc' | 'PeerCtor' | 'kind'
> {
  /** Force wasm or cpu (default: measure both, keep the faster). */
  backend?: 'wasm' | 'cpu' | 'auto';
}

/** A worker wired for Node (not started). */
export function createNodeWorker(options: NodeWorkerOptions): SwarmWorker {
  return createWorker({
    ...options,
    kind: 'node',
    backends: ['wasm', 'cpu'],
    backend: options.backend ?? 'auto',
    wrtc,
    PeerCtor: Peer as unknown as PeerConstructor,
  });
}

export interface RunNodeWorkerOptions extends NodeWorkerOptions {
  /** Print a status line this often (default 5000 ms; 0 = never). */
  printEveryMs?: number;
  print?: (line: string) => void;
  logger?: Logger;
}

/** Starts a Node worker, prints its progress, and leaves on SIGINT/SIGTERM. */
export async function runNodeWorker(options: RunNodeWorkerOptions): Promise<SwarmWorker> {
  const print = options.print ?? ((line: string) => process.stdout.write(`${line}\n`));
  const worker = createNodeWorker({ ...options, logger: options.logger ?? consoleLogger('warn') });
  await worker.start();
  const s = worker.status();
  print(
    `swarmgrad worker ${s.tabId ?? ''} on ${s.url ?? ''}: backend ${s.backend?.reason ?? 'none'}`,
  );
  const every = options.printEveryMs ?? 5000;
  if (every > 0) {
    const timer = setInterval(() => {
      const st = worker.status();
      const wire = st.wire.bitsPerParameter?.toFixed(2) ?? '-';
      print(
        `iteration ${st.iteration ?? '-'} ${st.state}: ${st.steps} steps, ` +
          `${st.examplesPerSecond.toFixed(0)} examples/s, cluster ${st.cluster?.id ?? '-'} ` +
          `slot ${st.cluster?.slot ?? '-'} (${st.cluster?.peers.filter((p) => p.link === 'connected').length ?? 0}/` +
          `${st.cluster?.peers.length ?? 0} links), ${wire} bits/param on the mesh` +
          (st.accuracy !== null ? `, accuracy ${st.accuracy.toFixed(3)}` : ''),
      );
    }, every);
    timer.unref();
    worker.on('status', (st) => {
      if (st.state === 'left') clearInterval(timer);
    });
  }
  let leaving = false;
  const leave = (signal: string) => {
    if (leaving) return;
    leaving = true;
    print(`${signal}: leaving the swarm`);
    void worker.leave().then(() => process.exit(0));
  };
  process.once('SIGINT', () => leave('SIGINT'));
  process.once('SIGTERM', () => leave('SIGTERM'));
  return worker;
}
