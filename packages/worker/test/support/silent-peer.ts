/**
 * Peers for tests of links that cannot connect: simple-peer over wrtc, and one whose attempts
 * never signal and never connect — its end of every link stays silent, as behind a NAT no
 * candidate pair crosses — while a switch holds.
 */
import wrtc from '@roamhq/wrtc';
import Peer from 'simple-peer';
import type { PeerConstructor, PeerLike, PeerOptions } from '../../src/mesh.ts';
import { silentLogger } from '../../src/runtime.ts';
import { createWorker, type SwarmWorker } from '../../src/worker.ts';

/** A connection attempt that never signals and never connects (destroyed by the mesh). */
class SilentPeer implements PeerLike {
  readonly connected = false;
  on(): this {
    return this;
  }
  signal(): void {}
  send(): void {
    throw new Error('not connected');
  }
  destroy(): void {}
}

/** simple-peer (the worker's own peer class in Node tests). */
export const RealPeer = Peer as unknown as PeerConstructor;

/** simple-peer over wrtc, or SilentPeer while `blocked.value` holds. */
export function switchablePeer(blocked: { value: boolean }): PeerConstructor {
  return class {
    constructor(options: PeerOptions) {
      return (blocked.value ? new SilentPeer() : new RealPeer(options)) as never;
    }
  } as unknown as PeerConstructor;
}

/**
 * A worker (not started) whose links use `PeerCtor`, quick to give up on a link (1.5 s connect
 * timeout) and to aggregate (600 ms patience), on WASM.
 */
export function workerWithPeer(url: string, PeerCtor: PeerConstructor): SwarmWorker {
  return createWorker({
    url,
    kind: 'node',
    backends: ['wasm', 'cpu'],
    backend: 'wasm',
    wrtc,
    PeerCtor,
    logger: silentLogger,
    statusPollMs: 0,
    connectTimeoutMs: 1500,
    cluster: { minPatienceMs: 600 },
  });
}
