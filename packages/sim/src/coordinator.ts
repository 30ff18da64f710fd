/**
 * The simulated coordinator (DESIGN.md steps 5–6; seeds 000 and 001): clusters' proposals in,
 * the next agreed parameters out, in the star topology the product runs (every cluster's
 * messages go through the coordinator). The rules mirror the coordinator app's round engine
 * (packages may not import apps code, so they are restated here, on core's algorithms):
 *
 * - A proposal is a cluster's update u_c relative to the base it started from. It is accepted
 *   while that base is at most S iterations old (staleness threshold, seed 001), dropped after.
 * - An iteration closes once `quorum` proposals are held — a majority ⌊k/2⌋ + 1 of the k voting
 *   clusters in 'majority' mode (seed 000), 1 by default in 'average' mode — at once when every
 *   cluster that still has a live tab has proposed, else `grace` seconds after the quorum was
 *   reached. It never waits for a cluster without a live tab. With fewer live clusters than the
 *   quorum it reports `quorum-lost` and training stalls visibly.
 * - Closing: 'majority' runs core's majority-cluster approximate agreement (AgreementCoordinator)
 *   over y_c = base + u_c with R = agreementRounds(spread, ε) rounds; 'average' takes core's
 *   averageProposals. The base then moves by a delta coded with the job's codec (error feedback
 *   kept here) and decoded, exactly as every tab applies it.
 *
 * Star-topology shortcut (exact): when every held proposal is submitted before any cluster asks
 * for its next value — as the coordinator does — all clusters hold the same set, round 1 hands
 * every cluster the same midpoint M, and rounds 2..R take midpoints of copies of M, which are M
 * bit for bit. So running AgreementCoordinator with min(R, 1) rounds yields the identical output
 * at O(|H|·d) instead of the O(R·|H|²·d) of driving every cluster through R rounds (the test suite
 * checks the equality). R is still computed and reported.
 */
import {
  AgreementCoordinator,
  agreementRounds,
  averageProposals,
  decodeFrameInto,
  encodeToFrame,
  getCodec,
  majorityOf,
  maxSpread,
  type CodecEncoder,
} from '@swarmgrad/core';
import { PROPOSAL_SLOT } from '@swarmgrad/protocol';
import type { CodecSpec } from './scenario.ts';

export interface SimCoordinatorOptions {
  dimension: number;
  jobId: number;
  codec: CodecSpec;
  seed: number;
  mode: 'majority' | 'average';
  epsilon: number;
  staleness: number;
  grace: number;
  quorum: number | undefined;
  initial: Float32Array;
}

/** An update, or a function producing it when the iteration closes (computed in a batch). */
export type LazyUpdate = Float32Array | (() => Float32Array);

export type OfferOutcome = 'accepted' | 'not-counted' | 'stale' | 'not-voting' | 'future';

export type Decision =
  | { action: 'close' }
  | { action: 'wait'; until?: number }
  | { action: 'quorum-lost'; live: number; quorum: number };

export interface ClosedIteration {
  iteration: number;
  contributors: number[];
  staleAccepted: number;
  rounds: number;
  /** Largest per-coordinate spread of the proposals ('majority' mode; NaN in 'average'). */
  spread: number;
  frameBytes: number;
}

/** Output of the majority agreement over `values`, run as the coordinator runs it (see header). */
export function starAgreement(
  values: readonly Float32Array[],
  clusterCount: number,
  rounds: number,
): Float32Array {
  const first = values[0];
  if (first === undefined) throw new RangeError('starAgreement: no proposals');
  const run = Math.min(rounds, 1);
  const agreement = new AgreementCoordinator({
    clusterCount: Math.max(clusterCount, values.length),
    rounds: run,
    dimension: first.length,
  });
  values.forEach((value, index) => agreement.submit(index, 0, value));
  if (run === 1) agreement.next(0);
  const output = agreement.outputOf(0);
  if (output === undefined) throw new Error('starAgreement: no majority held');
  return output;
}

export class SimCoordinator {
  readonly dimension: number;
  private readonly options: SimCoordinatorOptions;
  private readonly encoder: CodecEncoder;
  private baseParams: Float32Array;
  private current = 0;
  private voting: number[] = [];
  private votingSet = new Set<number>();
  private held = new Map<number, { update: LazyUpdate; baseIteration: number }>();
  private quorumSince: number | undefined;
  lastFrameBytes = 0;
  staleDropped = 0;
  staleAccepted = 0;
  roundsTotal = 0;

  constructor(options: SimCoordinatorOptions) {
    this.options = options;
    this.dimension = options.dimension;
    this.baseParams = Float32Array.from(options.initial);
    const codec = getCodec(options.codec.name);
    this.encoder = codec.createEncoder(options.dimension, {
      ...(codec.defaultBlockSize > 0 ? { blockSize: options.codec.blockSize } : {}),
      ...(options.codec.errorFeedback === undefined
        ? {}
        : { errorFeedback: options.codec.errorFeedback }),
      seed: options.seed,
    });
  }

  get iteration(): number {
    return this.current;
  }

  /** The agreed parameters; replaced (never mutated) by every close. */
  get base(): Float32Array {
    return this.baseParams;
  }

  get clusters(): readonly number[] {
    return this.voting;
  }

  quorum(): number {
    if (this.options.quorum !== undefined) return this.options.quorum;
    return this.options.mode === 'majority' ? majorityOf(Math.max(1, this.voting.length)) : 1;
  }

  heldCount(): number {
    return this.held.size;
  }

  setClusters(ids: readonly number[]): void {
    this.voting = [...ids].sort((a, b) => a - b);
    this.votingSet = new Set(this.voting);
    for (const id of [...this.held.keys()]) if (!this.votingSet.has(id)) this.held.delete(id);
    this.quorumSince = undefined;
  }

  /** Takes ownership of `update` when it returns 'accepted'. */
  offer(cluster: number, baseIteration: number, update: LazyUpdate, now: number): OfferOutcome {
    if (!this.votingSet.has(cluster)) return 'not-voting';
    if (baseIteration > this.current) return 'future';
    if (this.current - baseIteration > this.options.staleness) {
      this.staleDropped++;
      return 'stale';
    }
    const existing = this.held.get(cluster);
    if (existing !== undefined && existing.baseIteration >= baseIteration) return 'not-counted';
    this.held.set(cluster, { update, baseIteration });
    if (this.quorumSince === undefined && this.held.size >= this.quorum()) this.quorumSince = now;
    return 'accepted';
  }

  decide(isLive: (cluster: number) => boolean, now: number): Decision {
    if (this.voting.length === 0) return { action: 'quorum-lost', live: 0, quorum: 1 };
    const quorum = this.quorum();
    if (this.held.size >= quorum) {
      // close at once unless a live cluster has yet to propose
      let liveWaiting = false;
      for (const id of this.voting) {
        if (isLive(id) && !this.held.has(id)) {
          liveWaiting = true;
          break;
        }
      }
      if (!liveWaiting) return { action: 'close' };
      const until = (this.quorumSince ?? now) + this.options.grace;
      return now >= until ? { action: 'close' } : { action: 'wait', until };
    }
    let live = 0;
    for (const id of this.voting) if (isLive(id) || this.held.has(id)) live++;
    if (live < quorum) return { action: 'quorum-lost', live, quorum };
    return { action: 'wait' };
  }

  /**
   * Runs the agreement over the held proposals and moves the base. Throws on a non-finite delta.
   * The held update arrays are handed to `recycle` afterwards (their content is then garbage).
   */
  close(recycle?: (buffer: Float32Array) => void): ClosedIteration {
    const contributors = [...this.held.keys()].sort((a, b) => a - b);
    if (contributors.length === 0) throw new Error('close() without proposals');
    const base = this.baseParams;
    const d = this.dimension;
    // y_c = base + u_c, in place: the held updates belong to the coordinator
    const values = contributors.map((id) => {
      const { update } = this.held.get(id)!;
      const y = typeof update === 'function' ? update() : update;
      for (let i = 0; i < d; i++) y[i] = base[i]! + y[i]!;
      return y;
    });
    const staleAccepted = contributors.filter(
      (id) => this.held.get(id)!.baseIteration < this.current,
    ).length;
    this.staleAccepted += staleAccepted;
    let agreed: Float32Array;
    let rounds = 0;
    let spread = NaN;
    if (this.options.mode === 'average') {
      agreed = averageProposals(values);
    } else {
      spread = maxSpread(values);
      rounds = agreementRounds(spread, this.options.epsilon);
      agreed = starAgreement(values, this.voting.length, rounds);
    }
    this.roundsTotal += rounds;
    const delta = new Float32Array(d);
    for (let i = 0; i < d; i++) delta[i] = agreed[i]! - base[i]!;
    const next = this.current + 1;
    const frame = encodeToFrame(this.encoder, delta, {
      jobId: this.options.jobId,
      iteration: next,
      round: Math.min(rounds, 0xffff),
      senderSlot: PROPOSAL_SLOT,
    });
    const decoded = new Float32Array(d);
    const result = decodeFrameInto(frame, decoded, { dimension: d, jobId: this.options.jobId });
    if (!result.ok)
      throw new Error(`coordinator could not decode its own delta: ${result.error.code}`);
    const nextBase = new Float32Array(d);
    for (let i = 0; i < d; i++) nextBase[i] = base[i]! + decoded[i]!;
    this.baseParams = nextBase;
    this.current = next;
    if (recycle !== undefined) for (const v of values) recycle(v);
    this.held = new Map();
    this.quorumSince = undefined;
    this.lastFrameBytes = frame.byteLength;
    return {
      iteration: next,
      contributors,
      staleAccepted,
      rounds,
      spread,
      frameBytes: frame.byteLength,
    };
  }
}
