/**
 * Keyed seeds: every random choice of the simulator (a minibatch, a compute time, a noise
 * vector) draws from core's `createRng` seeded by a hash of the run seed and what the choice is
 * for (stream, worker, partition, iteration, step). Results then do not depend on the order in
 * which the simulator happens to evaluate things — the same partition at the same iteration
 * gets the same minibatch whoever computes it.
 */
import { createRng, type Rng } from '@swarmgrad/core';

/** murmur3's 32-bit finaliser over a running combination of the keys. */
export function mix(...keys: number[]): number {
  let h = 0x9e3779b9;
  for (const k of keys) {
    h = Math.imul(h ^ (k >>> 0), 0x85ebca6b);
    h ^= h >>> 13;
    h = Math.imul(h, 0xc2b2ae35);
    h ^= h >>> 16;
  }
  return h >>> 0;
}

export function keyedRng(...keys: number[]): Rng {
  return createRng(mix(...keys));
}

/** Stream ids, so different purposes never share a generator. */
export const Stream = {
  batch: 1,
  compute: 2,
  latency: 3,
  worker: 4,
  churn: 5,
  attack: 6,
  noise: 7,
  init: 8,
  straggler: 9,
  codec: 10,
  byzantine: 11,
  delivery: 12,
} as const;
