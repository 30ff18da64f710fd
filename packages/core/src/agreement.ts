/**
 * Majority-cluster multidimensional approximate agreement (seed 000:
 * ../shared/seeds/fault-tolerant-async-sgd-cluster-model.md), with an estimator that scales with
 * the number of clusters and an optional Byzantine bound f (Dolev, Lynch, Pinter, Stark, Weihl,
 * "Reaching approximate agreement in the presence of faults", JACM 33(3), 1986).
 *
 * Protocol. k clusters each propose a vector. In round r = 0 .. R−1 a cluster broadcasts its
 * round-r value, waits until it holds round-r values from a quorum q of clusters (its own
 * included; q = majorityOf(k) = ⌊k/2⌋+1 when f = 0) and moves to the step of the values it holds:
 * per coordinate it drops the f lowest and the f highest (reduce^f), then
 *   - estimator 'trimmed-mean' (default), round 0: the mean of the rest — the estimate round;
 *   - every later round, and every round of estimator 'midpoint': the midpoint (min + max)/2 of
 *     the rest — the contraction rounds.
 * The midpoint of all held values (f = 0, 'midpoint') is seed 000's algorithm as written; it is a
 * poor estimator when many clusters propose: (min + max)/2 of a thousand noisy proposals is
 * decided by the two most extreme ones (0.697 accuracy against 0.887 for `average` at 1,250
 * clusters, issue 15). The mean of a majority's values is close to the mean of all, and the
 * contraction rounds that follow only move inside the hull of those means.
 *
 * Guarantee (crash faults, and up to f Byzantine clusters; asynchronous delivery). Quorum
 * q = quorumOf(k, f) = max(⌊k/2⌋+1, ⌈(k + 3f + 1)/2⌉), so any two quorums share ≥ 3f + 1
 * clusters, of which ≥ 2f + 1 are correct (q = majority when f = 0).
 * - Validity: a held set has ≤ f Byzantine values, so after reduce^f every remaining value lies
 *   between the lowest and highest correct value, and so do their mean and midpoint: every value
 *   a correct cluster ever takes lies in the per-coordinate box of the correct proposals.
 * - Contraction: let v be the median of the ≥ 2f + 1 correct values two held sets A, B share;
 *   each set keeps v inside its reduced range [lo, hi] (≥ f + 1 of its values are ≤ v and ≥ f + 1
 *   are ≥ v), and a midpoint of a range holding v is within half of the correct spread of v's
 *   either side, so two midpoint rounds' outputs differ by at most half the correct spread: every
 *   midpoint round at least halves each coordinate's spread over the correct clusters. The
 *   trimmed-mean estimate round does not contract (it only stays inside the box).
 * - ε-agreement: with R = agreementRoundsFor(estimator, D, ε) rounds (agreementRounds(D, ε)
 *   halving rounds, plus the estimate round for 'trimmed-mean'), where D bounds the initial
 *   per-coordinate spread of the correct proposals, the correct outputs are within ε of each
 *   other per coordinate.
 * - Majority: a round needs values from q clusters. If fewer than q stay alive (a majority
 *   crashed when f = 0) the survivors stall visibly at some round < R — they never output a wrong
 *   value. With f Byzantine clusters that stay silent, liveness needs k − f ≥ q (k ≥ 5f + 1,
 *   Dolev et al.'s asynchronous bound).
 * Values are Float32Array: each step is computed in float64, rounded once to float32 and clamped
 * to the reduced range (so validity is exact); rounding can add at most one float32 ulp (of the
 * largest magnitude) to a round's spread — so the final spread is ≤ ε + 2 ulp.
 *
 * Parameters: clusterCount k ≥ 1, rounds R ≥ 0 (from agreementRoundsFor), the proposals'
 * dimension, estimator ('trimmed-mean' | 'midpoint', default 'trimmed-mean'), byzantine f ≥ 0
 * (default 0; needs q ≤ k). Round numbering is 0-based: round r carries the value after r steps;
 * a cluster whose `round` equals R is done and its `value` is the output.
 *
 * Also: `averageProposals` — the no-agreement mode for strongly convex jobs (seed 000 tolerates
 * any number of failures there): the output is the mean of whatever proposals have arrived.
 *
 * Pure and deterministic: no clock, no transport. `ClusterAgreement` is one cluster's
 * participant (messages relayed by anyone — the coordinator or a simulator);
 * `AgreementCoordinator` runs all k clusters' rounds centrally. (The coordinator server's
 * RoundEngine, packages/core/src/rounds.ts, holds every proposal itself and hands every cluster
 * the same value: its one step is the estimate round, with norm clipping before reduce.)
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

/** Proposals trimmed per side and coordinate out of n held (see rounds.ts). */
export function trimCount(n: number, trim: number, floor = 1): number {
  const most = Math.max(0, Math.floor((n - 1) / 2));
  return Math.min(most, Math.max(n >= 3 ? floor : 0, Math.floor(trim * n)));
}

/** How a round's held values become the next value (see the file comment). */
export type AgreementEstimator = 'trimmed-mean' | 'midpoint';

export const AGREEMENT_ESTIMATORS: readonly AgreementEstimator[] = ['trimmed-mean', 'midpoint'];

export const DEFAULT_AGREEMENT_ESTIMATOR: AgreementEstimator = 'trimmed-mean';

/**
 * Rounds for ε-agreement from an initial per-coordinate spread D: agreementRounds(D, ε) halving
 * rounds, plus the estimate round of 'trimmed-mean' (which does not contract).
 */
export function agreementRoundsFor(
  estimator: AgreementEstimator,
  initialSpread: number,
  epsilon: number,
): number {
  return agreementRounds(initialSpread, epsilon) + (estimator === 'trimmed-mean' ? 1 : 0);
}

/**
 * Values a round needs with up to f Byzantine clusters among k: max(⌊k/2⌋+1, ⌈(k+3f+1)/2⌉), so
 * any two quorums share ≥ 3f + 1 clusters (a majority when f = 0). Throws when it exceeds k
 * (k < 3f + 1: no quorum can exist).
 */
export function quorumOf(clusterCount: number, byzantine: number): number {
  checkCount('clusterCount', clusterCount, 1);
  checkCount('byzantine', byzantine, 0);
  const q = Math.max(majorityOf(clusterCount), Math.ceil((clusterCount + 3 * byzantine + 1) / 2));
  if (q > clusterCount) {
    throw new RangeError(
      `${byzantine} Byzantine of ${clusterCount} clusters: two quorums cannot share 3f + 1 (needs k ≥ 3f + 1)`,
    );
  }
  return q;
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

/**
 * One agreement step over held values, into `out`: per coordinate drop the f lowest and f
 * highest values (reduce^f), then the mean ('mean') or the midpoint (min + max)/2 ('midpoint') of
 * the rest, computed in float64, rounded once to float32 and clamped to the reduced range (so the
 * result is exactly inside it). Throws on fewer than 2f + 1 values or mixed lengths.
 */
export function agreementStepInto(
  out: Float32Array,
  values: readonly Float32Array[],
  rule: 'mean' | 'midpoint',
  byzantine = 0,
): Float32Array {
  const n = values.length;
  const f = byzantine;
  checkCount('byzantine', f, 0);
  if (n < 2 * f + 1) {
    throw new RangeError(`agreementStepInto: ${n} values cannot lose ${f} per side`);
  }
  const d = out.length;
  for (const v of values) {
    if (v.length !== d) throw new RangeError('agreementStepInto: values differ in length');
  }
  if (f === 0) {
    const lo = new Float64Array(d).fill(Infinity);
    const hi = new Float64Array(d).fill(-Infinity);
    const sum = rule === 'mean' ? new Float64Array(d) : undefined;
    for (const v of values) {
      for (let i = 0; i < d; i++) {
        const x = v[i]!;
        if (x < lo[i]!) lo[i] = x;
        if (x > hi[i]!) hi[i] = x;
      }
      if (sum !== undefined) for (let i = 0; i < d; i++) sum[i]! += v[i]!;
    }
    for (let i = 0; i < d; i++) {
      const y = sum === undefined ? (lo[i]! + hi[i]!) / 2 : sum[i]! / n;
      out[i] = Math.min(hi[i]!, Math.max(lo[i]!, Math.fround(y)));
    }
    return out;
  }
  const column = new Float64Array(n);
  for (let i = 0; i < d; i++) {
    for (let c = 0; c < n; c++) column[c] = values[c]![i]!;
    column.sort();
    const lo = column[f]!;
    const hi = column[n - 1 - f]!;
    let y: number;
    if (rule === 'midpoint') y = (lo + hi) / 2;
    else {
      let sum = 0;
      for (let c = f; c < n - f; c++) sum += column[c]!;
      y = sum / (n - 2 * f);
    }
    out[i] = Math.min(hi, Math.max(lo, Math.fround(y)));
  }
  return out;
}

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
  /** Default 'trimmed-mean' (round 0 averages, later rounds take midpoints). */
  estimator?: AgreementEstimator | undefined;
  /** f: Byzantine clusters tolerated (default 0); the quorum grows to quorumOf(k, f). */
  byzantine?: number | undefined;
}

function checkEstimator(estimator: AgreementEstimator | undefined): AgreementEstimator {
  const e = estimator ?? DEFAULT_AGREEMENT_ESTIMATOR;
  if (!AGREEMENT_ESTIMATORS.includes(e)) throw new RangeError(`unknown estimator ${String(e)}`);
  return e;
}

/** Round 0 of 'trimmed-mean' is the estimate round; every other round contracts. */
function stepRule(estimator: AgreementEstimator, round: number): 'mean' | 'midpoint' {
  return estimator === 'trimmed-mean' && round === 0 ? 'mean' : 'midpoint';
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
  /** Values a round needs: quorumOf(k, f), the majority when f = 0. */
  readonly quorum: number;
  readonly estimator: AgreementEstimator;
  readonly byzantine: number;
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
    this.byzantine = options.byzantine ?? 0;
    this.quorum = quorumOf(clusterCount, this.byzantine);
    this.estimator = checkEstimator(options.estimator);
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

  /** Advance while the current round holds a quorum (buffered messages may chain rounds). */
  private progress(): void {
    if (this.done) return;
    const held = this.pending.get(this.currentRound);
    if (held === undefined || held.size < this.quorum) return;
    agreementStepInto(
      this.current,
      [...held.values()],
      stepRule(this.estimator, this.currentRound),
      this.byzantine,
    );
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
  | 'mismatch' // round > 0 but not the value handed to this cluster
  | 'wrong-length'
  | 'non-finite';

export type SubmitResult = { accepted: true } | { accepted: false; reason: SubmitRejectReason };

export interface AgreementCoordinatorOptions {
  clusterCount: number;
  rounds: number;
  dimension: number;
  /** Default 'trimmed-mean'. */
  estimator?: AgreementEstimator | undefined;
  /** f: Byzantine proposals tolerated (default 0); the quorum grows to quorumOf(k, f). */
  byzantine?: number | undefined;
}

/**
 * All k clusters' agreement, run centrally with per-cluster rounds (the message form's rounds
 * with the coordinator as the relay). A cluster `submit`s its proposal as its round-0 value;
 * `next(c)` hands it its round-(r+1) value — the step (the estimator's: trimmed mean in round 0
 * of 'trimmed-mean', else midpoint; after dropping f per side) of the round-r values that have
 * arrived — as soon as round r holds values from a quorum (a majority when f = 0) of clusters;
 * the cluster then submits that value for round r+1 (a different value is rejected as
 * 'mismatch'), and so on until `outputOf(c)` is defined.
 *
 * It never waits for a crashed cluster: a cluster that lost all its tabs simply never submits,
 * and `next` only ever needs round-r values from a quorum, whichever clusters they come from.
 * Every round-r value set used for a step is a quorum subset of the round-r values that arrived,
 * so the file comment's intersection argument holds unchanged. When fewer than a quorum of
 * clusters are alive, `next` keeps returning undefined: the stall is visible via `heldFrom`.
 * The value handed to a cluster is fixed at the first `next` call that can compute it.
 */
export class AgreementCoordinator {
  readonly clusterCount: number;
  readonly rounds: number;
  readonly dimension: number;
  readonly majority: number;
  /** Values a round needs: quorumOf(k, f), the majority when f = 0. */
  readonly quorum: number;
  readonly estimator: AgreementEstimator;
  readonly byzantine: number;
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
    this.byzantine = options.byzantine ?? 0;
    this.quorum = quorumOf(clusterCount, this.byzantine);
    this.estimator = checkEstimator(options.estimator);
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
    if (held.size < this.quorum) return undefined;
    const value = agreementStepInto(
      new Float32Array(this.dimension),
      [...held.values()],
      stepRule(this.estimator, last),
      this.byzantine,
    );
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

  /** True when round `round` holds values from a quorum (f = 0: a majority) of clusters. */
  hasQuorum(round: number): boolean {
    return (this.submitted[round]?.size ?? 0) >= this.quorum;
  }

  /** No-agreement mode: mean of the proposals (round-0 values) that arrived, if any. */
  averageOfProposals(): Float32Array | undefined {
    const proposals = [...this.submitted[0]!.values()];
    return proposals.length === 0 ? undefined : averageProposals(proposals);
  }
}

function checkCount(name: string, n: number, min: number): void {
  if (!Number.isInteger(n) || n < min) {
    throw new RangeError(`${name} must be an integer ≥ ${min}, got ${n}`);
  }
}
