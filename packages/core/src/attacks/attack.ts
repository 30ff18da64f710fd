/**
 * The Byzantine attack strategy: what a misbehaving worker sends in place of its honest message.
 * One `Attack` interface, one file per attack, registered by name (like the aggregators); the
 * simulator (packages/sim) and the browser tab's fault injector (packages/worker faults.ts) are
 * thin shells over it, so an attack measured in Table 5 is the one a tab runs with `?fault=`.
 *
 * What an attacker is given (`AttackInput`), and nothing else:
 * - `honest`: its own honest message of this iteration (an attacker computes one like anybody);
 * - `peers`: the honest registers of its cluster it can see, each with the sender's id — a real
 *   tab holds its peers' registers of the current or the previous iteration; in the simulator
 *   colluding attackers see every other member's honest message of the round (omniscient
 *   collusion, the strongest setting of the papers). Possibly empty: then the attacks that need
 *   honest statistics fall back to the attacker's own message (one sample);
 * - `iteration` and `rng` (seeded by the caller). Per-attacker memory lives in the instance that
 *   `createAttack` returns (one instance per attacker).
 * `craft` returns a new array of `honest.length` and never writes to its inputs.
 *
 * Where an attack acts (`acts`): 'message' (the vector `craft` returns is sent), 'data'
 * (label-flip: the honest computation runs on poisoned labels; `craft` returns the honest
 * message), 'frame' (nan: `craft` returns the honest message and `corruptFrame` poisons the
 * sealed frame).
 *
 * The colluding attacks (alie, ipm, min-max, min-sum, sign-optimal, drift) compute statistics of
 * the honest pool {honest} ∪ peers, so colluders that see the same pool send the same vector.
 */
import { allFinite } from '../vector.ts';
import type { Rng } from '../random.ts';

export const attackNames = [
  'sign-flip',
  'scale',
  'random',
  'nan',
  'stale',
  'zero',
  'label-flip',
  'alie',
  'ipm',
  'min-max',
  'min-sum',
  'mimic',
  'sign-optimal',
  'drift',
] as const;
export type AttackName = (typeof attackNames)[number];

export interface PeerRegister {
  /** The sender (tab id, worker id): stable across iterations. */
  id: string;
  update: Float32Array;
}

export interface AttackInput {
  /** The attacker's own honest message of this iteration. */
  honest: Float32Array;
  /** Honest registers of its cluster the attacker can see (other senders; may be empty). */
  peers: readonly PeerRegister[];
  iteration: number;
  rng: Rng;
}

export type AttackSurface = 'message' | 'data' | 'frame';

export interface Attack {
  readonly name: AttackName;
  readonly acts: AttackSurface;
  /** The vector to send (a new array of honest.length, finite unless the attack is 'frame'). */
  craft(input: AttackInput): Float32Array;
  /** 'frame' attacks: the sealed frame to send instead (others return it unchanged). */
  corruptFrame(frame: Uint8Array): Uint8Array;
}

/** Construction parameters; each attack's file says which it reads and their defaults. */
export interface AttackParams {
  /**
   * The attack's strength: sign-flip, scale and random the factor k; alie z; ipm ε; drift c;
   * sign-optimal the share of coordinates flipped. Ignored by the others.
   */
  strength?: number;
  /** stale: iterations of lag. */
  lag?: number;
  /** min-max and min-sum: the perturbation direction. */
  perturbation?: Perturbation;
  /** drift: momentum β of the honest direction it pushes against. */
  momentum?: number;
}

/** min-max / min-sum perturbation: −σ (per-coordinate std), −μ/‖μ‖, or −sign(μ). */
export type Perturbation = 'std' | 'unit' | 'sign';

export type AttackFactory = (params?: AttackParams) => Attack;

const registry = new Map<AttackName, AttackFactory>();

export function registerAttack(name: AttackName, factory: AttackFactory): void {
  registry.set(name, factory);
}

/** A new attacker (its own memory) for `name`; import from './index.ts' so all are registered. */
export function createAttack(name: AttackName, params?: AttackParams): Attack {
  const factory = registry.get(name);
  if (factory === undefined) throw new Error(`createAttack: no attack registered under '${name}'`);
  return factory(params);
}

export function isAttackName(name: string): name is AttackName {
  return (attackNames as readonly string[]).includes(name);
}

/** Checks a numeric parameter; returns it or the default. */
export function param(
  attack: AttackName,
  key: string,
  value: number | undefined,
  fallback: number,
  ok: (v: number) => boolean,
): number {
  if (value === undefined) return fallback;
  if (!Number.isFinite(value) || !ok(value)) {
    throw new RangeError(`${attack}: invalid ${key} ${value}`);
  }
  return value;
}

/** Builds an Attack acting on the message from a craft function. */
export function messageAttack(
  name: AttackName,
  craft: (input: AttackInput) => Float32Array,
  acts: AttackSurface = 'message',
): Attack {
  return { name, acts, craft, corruptFrame: (frame) => frame };
}

/**
 * The honest pool an attacker can use: its own honest message followed by the peers' registers
 * of the right length whose coordinates are finite.
 */
export function honestPool(input: AttackInput): Float32Array[] {
  const d = input.honest.length;
  const pool = [input.honest];
  for (const p of input.peers) {
    if (p.update.length === d && allFinite(p.update)) pool.push(p.update);
  }
  return pool;
}

export interface PoolStatistics {
  /** Per-coordinate mean μ (float64). */
  mean: Float64Array;
  /** Per-coordinate population standard deviation σ (float64; 0 for a pool of one). */
  std: Float64Array;
}

/** μ and σ per coordinate over the pool (sums in float64, independent of the pool's order up to rounding). */
export function poolStatistics(pool: readonly Float32Array[]): PoolStatistics {
  const d = pool[0]!.length;
  const n = pool.length;
  const mean = new Float64Array(d);
  const std = new Float64Array(d);
  for (const v of pool) for (let j = 0; j < d; j++) mean[j]! += v[j]!;
  for (let j = 0; j < d; j++) mean[j]! /= n;
  for (const v of pool) {
    for (let j = 0; j < d; j++) {
      const e = v[j]! - mean[j]!;
      std[j]! += e * e;
    }
  }
  for (let j = 0; j < d; j++) std[j] = Math.sqrt(std[j]! / n);
  return { mean, std };
}

/** Float32 copy of a float64 vector. */
export function toFloat32(v: Float64Array): Float32Array {
  return Float32Array.from(v);
}
