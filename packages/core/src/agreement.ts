/**
 * Majority-cluster multidimensional approximate agreement (seed 000:
 * ../shared/seeds/fault-tolerant-async-sgd-cluster-model.md).
 *
 * Guarantee (crash faults, asynchronous delivery). k clusters each propose a vector. In round
 * r = 0 .. R−1 a cluster broadcasts its round-r value, waits until it holds round-r values from a
 * majority ⌊k/2⌋+1 of clusters (its own included) and moves to the coordinate-wise midpoint
 * (min + max)/2 of the values it holds. Any two majorities intersect, so after every round each
 * coordinate's spread over all clusters at most halves; every value stays inside the box spanned
 * by the initial proposals (validity); with R = agreementRounds(D, ε) rounds the outputs are within
 * ε of each other per coordinate (ε-agreement), as long as a majority of clusters never crashes.
 * If a majority crashes the survivors stall visibly at some round < R — they never output a
 * wrong value. Values are Float32Array: each midpoint is rounded once to float32, which can add at
 * most one float32 ulp (of the largest magnitude) to a round's spread — so the final spread is
 * ≤ ε + 2 ulp.
 *
 * Parameters: clusterCount k ≥ 1, rounds R ≥ 0 (from agreementRounds), the proposals' dimension.
 * Round numbering here is 0-based: round r carries the value after r midpoint steps; a cluster
 * whose `round` equals R is done and its `value` is the output.
 *
 * Also: `averageProposals` — the no-agreement mode for strongly convex jobs (seed 000 tolerates
 * any number of failures there): the output is the mean of whatever proposals have arrived.
 *
 * Pure and deterministic: no clock, no transport. `ClusterAgreement` is one cluster's
 * participant (messages relayed by anyone — the coordinator or a simulator);
 * `AgreementCoordinator` runs all k clusters' rounds centrally, as the coordinator server does.
 */
import { allFinite } from './vector.ts';

/** Number of halving rounds to bring an initial per-coordinate spread D down to ε. */
export function agreementRounds(initialSpread: number, epsilon: number): number {
  if (!(epsilon > 0) || !Number.isFinite(epsilon)) {
    throw new RangeError(`agreementRounds: epsilon must be finite and > 0, got ${epsilon}`);
  }
  if (!Number.isFinite(initialSpread)) {
    throw new RangeError(`agreementRounds: initial spread must be finite, got ${initialSpread}`);
  }
  if (initialSpread <= epsilon) return 0;
  let r = Math.max(0, Math.ceil(Math.log2(initialSpread / epsilon)));
  // log2 may round down by an ulp; make sure D / 2^R ≤ ε really holds.
  while (initialSpread / 2 ** r > epsilon) r++;
  return r;
}

/** Majority of k clusters: ⌊k/2⌋ + 1. */
export function majorityOf(clusterCount: number): number {
  return Math.floor(clusterCount / 2) + 1;
}

/** Mean of the proposals that arrived (no-agreement mode). Throws on none or mixed lengths. */
export function averageProposals(values: readonly Float32Array[]): Float32Array {
  const first = values[0];
  if (first === undefined) throw new RangeError('averageProposals: no proposals');
  const d = first.length;
  const sum = new Float64Array(d);
  for (const v of values) {
    if (v.length !== d) throw new RangeError('averageProposals: proposals differ in length');
    for (let i = 0; i < d; i++) sum[i]! += v[i]!;
  }
  const out = new Float32Array(d);
  for (let i = 0; i < d; i++) out[i] = sum[i]! / values.length;
  return out;
}

/** Which agreement a job runs between clusters (DESIGN step 5). */
export type AgreementMode = 'approximate-agreement' | 'average';

/** out[i] = (min_j v_j[i] + max_j v_j[i]) / 2, rounded once to float32. */
export function midpointInto(out: Float32Array, values: Iterable<Float32Array>): Float32Array {
  const lo = new Float64Array(out.length).fill(Infinity);
  const hi = new Float64Array(out.length).fill(-Infinity);
  let any = false;
  for (const v of values) {
    any = true;
    for (let i = 0; i < out.length; i++) {
      const x = v[i]!;
      if (x < lo[i]!) lo[i] = x;
      if (x > hi[i]!) hi[i] = x;
    }
  }
  if (!any) throw new RangeError('midpointInto: no values');
  // Sum of two float32 is exact in float64; halving is exact; one rounding on the store.
  for (let i = 0; i < out.length; i++) out[i] = (lo[i]! + hi[i]!) / 2;
  return out;
}

export interface AgreementMessage {
  round: number;
  value: Float32Array;
}

export interface IncomingAgreementMessage extends AgreementMessage {
  from: number;
}

export type AgreementRejectReason =
  | 'unknown-cluster' // `from` is not an integer in [0, k)
  | 'self' // a cluster's own message echoed back to it
  | 'invalid-round' // not an integer in [0, R)
  | 'stale-round' // for a round this cluster has already left
  | 'duplicate' // already holds a value from that cluster for that round
  | 'wrong-length'
  | 'non-finite';

export type ReceiveResult =
  | { accepted: true; round: number; done: boolean }
  | { accepted: false; reason: AgreementRejectReason };

export interface ClusterAgreementOptions {
  clusterId: number;
  clusterCount: number;
  rounds: number;
  initial: Float32Array;
}

function checkCount(name: string, n: number, min: number): void {
  if (!Number.isInteger(n) || n < min) {
    throw new RangeError(`${name} must be an integer ≥ ${min}, got ${n}`);
  }
}

/**
 * One cluster's participant for one iteration. Feed every relayed message to `receive`; after
 * construction and after every `receive`, broadcast everything `takeOutgoing()` returns.
 * Future-round messages are buffered, so one `receive` can complete several rounds at once; each
 * round's value must still be broadcast (`takeOutgoing` yields all of them, in round order):
 * broadcasting only the latest value could leave peers that still need an intermediate round's
 * value one short of a majority forever. `outgoing()` is the current round's value, for
 * re-sending. Past rounds keep only the ids of the clusters heard from.
 */
export class ClusterAgreement {
  readonly clusterId: number;
  readonly clusterCount: number;
  readonly rounds: number;
  readonly majority: number;
  private current: Float32Array;
  private currentRound = 0;
  /** Values held for rounds ≥ currentRound, by round then sender. */
  private readonly pending = new Map<number, Map<number, Float32Array>>();
  /** Sender ids for rounds already left, index = round. */
  private readonly pastHeld: number[][] = [];
  /** Round values entered but not yet handed to the transport. */
  private outbox: AgreementMessage[] = [];

  constructor(options: ClusterAgreementOptions) {
    const { clusterId, clusterCount, rounds, initial } = options;
    checkCount('clusterCount', clusterCount, 1);
    checkCount('rounds', rounds, 0);
    if (!Number.isInteger(clusterId) || clusterId < 0 || clusterId >= clusterCount) {
      throw new RangeError(
        `clusterId must be an integer in [0, ${clusterCount}), got ${clusterId}`,
      );
    }
    if (!allFinite(initial)) throw new RangeError('ClusterAgreement: initial value not finite');
    this.clusterId = clusterId;
    this.clusterCount = clusterCount;
    this.rounds = rounds;
    this.majority = majorityOf(clusterCount);
    this.current = Float32Array.from(initial);
    this.enterRound();
  }

  get round(): number {
    return this.currentRound;
  }

  get done(): boolean {
    return this.currentRound >= this.rounds;
  }

  /** Current value; after `done`, the output. A copy. */
  get value(): Float32Array {
    return Float32Array.from(this.current);
  }

  /** Sorted ids of the clusters whose round-`round` value this cluster holds (own included). */
  heldFrom(round: number): number[] {
    const past = this.pastHeld[round];
    if (past !== undefined) return [...past];
    const held = this.pending.get(round);
    return held === undefined ? [] : [...held.keys()].sort((a, b) => a - b);
  }

  /** The current round's value (to broadcast or re-send), or undefined once done. */
  outgoing(): AgreementMessage | undefined {
    if (this.done) return undefined;
    return { round: this.currentRound, value: Float32Array.from(this.current) };
  }

  /** Every round value entered since the last call (rounds < R only), oldest first. */
  takeOutgoing(): AgreementMessage[] {
    const out = this.outbox;
    this.outbox = [];
    return out;
  }

  receive(msg: IncomingAgreementMessage): ReceiveResult {
    const { from, round, value } = msg;
    if (!Number.isInteger(from) || from < 0 || from >= this.clusterCount) {
      return { accepted: false, reason: 'unknown-cluster' };
    }
    if (from === this.clusterId) return { accepted: false, reason: 'self' };
    if (!Number.isInteger(round) || round < 0) return { accepted: false, reason: 'invalid-round' };
    if (round < this.currentRound) return { accepted: false, reason: 'stale-round' };
    if (round >= this.rounds) return { accepted: false, reason: 'invalid-round' };
    if (value.length !== this.current.length) return { accepted: false, reason: 'wrong-length' };
    if (!allFinite(value)) return { accepted: false, reason: 'non-finite' };
    let held = this.pending.get(round);
    if (held === undefined) {
      held = new Map();
      this.pending.set(round, held);
    }
    if (held.has(from)) return { accepted: false, reason: 'duplicate' };
    held.set(from, Float32Array.from(value));
    this.progress();
    return { accepted: true, round: this.currentRound, done: this.done };
  }

  /** Hold the own value for the current round, queue it for broadcast, then try to advance. */
  private enterRound(): void {
    if (this.done) {
      this.pending.clear();
      return;
    }
    let held = this.pending.get(this.currentRound);
    if (held === undefined) {
      held = new Map();
      this.pending.set(this.currentRound, held);
    }
    held.set(this.clusterId, Float32Array.from(this.current));
    this.outbox.push({ round: this.currentRound, value: Float32Array.from(this.current) });
    this.progress();
  }

  /** Advance while the current round holds a majority (buffered messages may chain rounds). */
  private progress(): void {
    if (this.done) return;
    const held = this.pending.get(this.currentRound);
    if (held === undefined || held.size < this.majority) return;
    midpointInto(this.current, held.values());
    this.pastHeld[this.currentRound] = [...held.keys()].sort((a, b) => a - b);
    this.pending.delete(this.currentRound);
    this.currentRound++;
    this.enterRound();
  }
}

export type SubmitRejectReason =
  | 'unknown-cluster'
  | 'invalid-round' // not an integer in [0, R), or R = 0 and round ≠ 0
  | 'stale-round' // this cluster already submitted a later round
  | 'duplicate' // this cluster already submitted this round
  | 'out-of-order' // the cluster has not been handed this round's value yet
  | 'mismatch' // round > 0 but not the midpoint handed to this cluster
  | 'wrong-length'
  | 'non-finite';

export type SubmitResult = { accepted: true } | { accepted: false; reason: SubmitRejectReason };

export interface AgreementCoordinatorOptions {
  clusterCount: number;
  rounds: number;
  dimension: number;
}

/**
 * All k clusters' agreement, run centrally the way the coordinator server does. A cluster
 * `submit`s its proposal as its round-0 value; `next(c)` hands it its round-(r+1) value — the
 * midpoint of the round-r values that have arrived — as soon as round r holds values from a
 * majority of clusters; the cluster then submits that value for round r+1 (a different value is
 * rejected as 'mismatch'), and so on until `outputOf(c)` is defined.
 *
 * It never waits for a crashed cluster: a cluster that lost all its tabs simply never submits,
 * and `next` only ever needs round-r values from a majority, whichever clusters they come from.
 * Every round-r value set used for a midpoint is a majority subset of the round-r values that
 * arrived, so the seed's intersection argument holds unchanged. When fewer than a majority of
 * clusters are alive, `next` keeps returning undefined: the stall is visible via `heldFrom`.
 * The midpoint handed to a cluster is fixed at the first `next` call that can compute it.
 */
export class AgreementCoordinator {
  readonly clusterCount: number;
  readonly rounds: number;
  readonly dimension: number;
  readonly majority: number;
  /** submitted[r].get(c) = cluster c's round-r value. */
  private readonly submitted: Map<number, Float32Array>[] = [];
  /** Last round each cluster submitted, −1 if none. */
  private readonly lastSubmitted: number[];
  /** handed[c] = value (and round) handed out to cluster c for its next round. */
  private readonly handed: (AgreementMessage | undefined)[];

  constructor(options: AgreementCoordinatorOptions) {
    const { clusterCount, rounds, dimension } = options;
    checkCount('clusterCount', clusterCount, 1);
    checkCount('rounds', rounds, 0);
    checkCount('dimension', dimension, 0);
    this.clusterCount = clusterCount;
    this.rounds = rounds;
    this.dimension = dimension;
    this.majority = majorityOf(clusterCount);
    this.lastSubmitted = new Array<number>(clusterCount).fill(-1);
    this.handed = new Array<AgreementMessage | undefined>(clusterCount).fill(undefined);
    for (let r = 0; r < Math.max(1, rounds); r++) this.submitted.push(new Map());
  }

  submit(clusterId: number, round: number, value: Float32Array): SubmitResult {
    if (!Number.isInteger(clusterId) || clusterId < 0 || clusterId >= this.clusterCount) {
      return { accepted: false, reason: 'unknown-cluster' };
    }
    if (!Number.isInteger(round) || round < 0 || round >= Math.max(1, this.rounds)) {
      return { accepted: false, reason: 'invalid-round' };
    }
    const last = this.lastSubmitted[clusterId]!;
    if (round < last) return { accepted: false, reason: 'stale-round' };
    if (round === last) return { accepted: false, reason: 'duplicate' };
    if (value.length !== this.dimension) return { accepted: false, reason: 'wrong-length' };
    if (!allFinite(value)) return { accepted: false, reason: 'non-finite' };
    if (round > 0) {
      const handed = this.handed[clusterId];
      if (handed === undefined || handed.round !== round) {
        return { accepted: false, reason: 'out-of-order' };
      }
      for (let i = 0; i < value.length; i++) {
        if (!Object.is(value[i], handed.value[i])) return { accepted: false, reason: 'mismatch' };
      }
    } else if (last !== -1) {
      return { accepted: false, reason: 'stale-round' };
    }
    this.submitted[round]!.set(clusterId, Float32Array.from(value));
    this.lastSubmitted[clusterId] = round;
    return { accepted: true };
  }

  /**
   * The cluster's next-round value, once a majority of its current round's values have arrived;
   * undefined before that and before its first submission. Stable: repeated calls return the
   * same value. A round-R value is the cluster's output (also `outputOf`); with R = 0 there is
   * no next value and the proposal itself is the output.
   */
  next(clusterId: number): AgreementMessage | undefined {
    const last = this.lastSubmitted[clusterId];
    if (last === undefined || last < 0 || this.rounds === 0) return undefined;
    const handed = this.handed[clusterId];
    if (handed !== undefined && handed.round === last + 1) {
      return { round: handed.round, value: Float32Array.from(handed.value) };
    }
    const held = this.submitted[last]!;
    if (held.size < this.majority) return undefined;
    const value = midpointInto(new Float32Array(this.dimension), held.values());
    this.handed[clusterId] = { round: last + 1, value };
    return { round: last + 1, value: Float32Array.from(value) };
  }

  /** Round the cluster is in: its last submitted round, R if done, −1 before its proposal. */
  roundOf(clusterId: number): number {
    if (this.outputOf(clusterId) !== undefined) return this.rounds;
    return this.lastSubmitted[clusterId] ?? -1;
  }

  /** The agreed value for this cluster after R rounds (R = 0: its own proposal), else undefined. */
  outputOf(clusterId: number): Float32Array | undefined {
    if (this.rounds === 0) {
      const own = this.submitted[0]!.get(clusterId);
      return own === undefined ? undefined : Float32Array.from(own);
    }
    const handed = this.handed[clusterId];
    return handed !== undefined && handed.round === this.rounds
      ? Float32Array.from(handed.value)
      : undefined;
  }

  /** Sorted ids of the clusters whose round-`round` value has arrived. */
  heldFrom(round: number): number[] {
    const held = this.submitted[round];
    return held === undefined ? [] : [...held.keys()].sort((a, b) => a - b);
  }

  /** True when round `round` holds values from a majority of clusters. */
  hasQuorum(round: number): boolean {
    return (this.submitted[round]?.size ?? 0) >= this.majority;
  }

  /** No-agreement mode: mean of the proposals (round-0 values) that arrived, if any. */
  averageOfProposals(): Float32Array | undefined {
    const proposals = [...this.submitted[0]!.values()];
    return proposals.length === 0 ? undefined : averageProposals(proposals);
  }
}
