/**
 * The coordinator's round engine: one iteration at a time, cluster proposals in, the next
 * agreed base out. Pure: the caller passes the current time; the coordinator server and the
 * simulator (packages/sim) drive the same engine.
 *
 * - A proposal is a cluster's update relative to the base it started from. It is accepted
 *   while its base is at most `staleness` iterations old (seed 001), dropped and counted after.
 * - An iteration closes once proposals from a majority of the iteration's clusters are held
 *   (seed 000): at once when every cluster that still has a live tab has proposed, else when
 *   `graceMs` more have passed. It never waits for a cluster with no live tab. With fewer live
 *   clusters than a majority the engine reports `quorum-lost` and waits for them to return.
 *   In 'average' mode an explicit `quorum` (e.g. 1) may replace the majority.
 * - Closing runs the majority-cluster approximate agreement of packages/core over the held
 *   proposals y_c = base + u_c, made Byzantine-tolerant: every update longer than `clip` × the
 *   lower median update norm is scaled down to that length, then per coordinate the t lowest
 *   and t highest proposals are dropped, t = trimCount(n) (⌊trim·n⌋, at least 1 from n = 3 on,
 *   at most ⌊(n − 1)/2⌋), and the rest averaged. With at most t Byzantine proposals among the
 *   n held, every coordinate of the output lies between the lowest and highest correct
 *   (clipped) proposal — seed 000's validity for the correct clusters — and, in this star
 *   topology, every cluster gets the same output (ε-agreement with spread 0); a majority of
 *   clusters is still needed to close. The trimmed mean, not the midpoint of the range, is the
 *   estimator: the midpoint of many proposals is dominated by the two most extreme ones (it
 *   lost 19 points of accuracy against `average` at 1,250 clusters); `estimator: 'midpoint'`
 *   keeps seed 000's (min + max)/2 of the trimmed proposals for comparison (with trim 0,
 *   trimFloor 0 and clip Infinity: of all held proposals, the rule before issue 13). This close
 *   is the estimate round of agreement.ts's 'trimmed-mean' (no contraction round is needed:
 *   every cluster gets the same value). R = ⌈log2(D/ε)⌉ of the trimmed spread D is still computed and reported.
 *   `average` mode takes the plain mean.
 * - The base moves by a coded delta (the job's codec, error feedback kept here), and the
 *   coordinator applies the decoded delta to its own base exactly as every tab does, so all
 *   hold bit-identical bases. Egress per iteration is one delta frame per tab: O(k·m·d) bits.
 */
import { PROPOSAL_SLOT, type CodecName, type ErrorCode } from '@swarmgrad/protocol';
import {
  AGREEMENT_ESTIMATORS,
  DEFAULT_AGREEMENT_ESTIMATOR,
  agreementRounds,
  majorityOf,
  trimCount,
  type AgreementEstimator,
} from './agreement.ts';
import { decodeFrameInto, encodeToFrame, getCodec, type CodecEncoder } from './codec/index.ts';
import { signAgreement, signUpdateOfFrame, type SignUpdate } from './sign-agreement.ts';

export interface RoundEngineOptions {
  dimension: number;
  jobId: number;
  codec: CodecName;
  blockSize: number;
  mode: 'majority' | 'average';
  epsilon: number;
  staleness: number;
  graceMs: number;
  initial: Float32Array;
  iteration: number;
  /** Majority mode: share of proposals trimmed per side and coordinate (default 0.1). */
  trim?: number | undefined;
  /**
   * Majority mode: proposals trimmed per side at least, from 3 held on (default 1, so one
   * Byzantine proposal is always dropped). 0 with trim 0: no trimming (seed 000's rule).
   */
  trimFloor?: number | undefined;
  /** Majority mode: norm bound as a multiple of the lower median update norm (default 3). */
  clip?: number | undefined;
  /**
   * Majority mode: the estimator over the proposals left after trimming (agreement.ts):
   * 'trimmed-mean' (default) averages them, 'midpoint' takes (min + max)/2 — seed 000's rule,
   * kept for comparison (with trim 0, trimFloor 0 and clip Infinity: the midpoint of all held
   * proposals).
   */
  estimator?: AgreementEstimator | undefined;
  /**
   * Proposals needed to close, 'average' mode only: DESIGN step 5's no-agreement mode with
   * quorum 1 averages whatever has arrived and tolerates any number of failed clusters.
   * Default (and always in 'majority' mode, where two quorums must intersect): a majority of
   * the iteration's clusters. Time is whatever unit the caller's `now` values use; `graceMs`
   * is added to them as is (the simulator passes simulated milliseconds).
   */
  quorum?: number | undefined;
}

export type OfferResult =
  { ok: true; counted: boolean; stale: boolean } | { ok: false; code: ErrorCode; message: string };

export type CloseDecision =
  { action: 'close' } | { action: 'wait'; until?: number } | { action: 'quorum-lost' };

export interface ClosedIteration {
  /** The iteration the new base belongs to (previous + 1). */
  iteration: number;
  /** Delta frame moving every base from the previous iteration to this one. */
  frame: Uint8Array;
  contributors: number[];
  staleAccepted: number;
  rounds: number;
  spread: number;
  /** The update norm actually applied. */
  deltaNorm: number;
}

/** RoundEngine.exportState(): everything a replica needs to continue identically. */
export interface RoundEngineState {
  iteration: number;
  base: Float32Array;
  clusterIds: number[];
  held: { clusterId: number; baseIteration: number; update: Float32Array }[];
  staleDropped: number;
  residual: Float32Array | null;
  /** The threshold S the current iteration opened with (absent in older snapshots). */
  openedWithStaleness?: number;
}

/**
 * A held proposal's update: decoded, or decoded when first needed (a node of a multi-node
 * coordinator that never closes need not decode the proposals it replicates). A source that
 * returns undefined (its frame does not decode) is left out of the close.
 */
export type UpdateSource = Float32Array | (() => Float32Array | undefined);

interface HeldProposal {
  update: UpdateSource;
  baseIteration: number;
  signs?: SignUpdate;
}

/** What a close computed, before any replica adopted it (RoundEngine.prepareClose). */
export interface PreparedClose extends Omit<ClosedIteration, 'deltaNorm'> {
  /** The encoder's error-feedback residual after this close (adopt it with the close). */
  residual: Float32Array | undefined;
}

function resolved(held: HeldProposal): Float32Array | undefined {
  if (typeof held.update !== 'function') return held.update;
  const update = held.update();
  if (update !== undefined) held.update = update;
  return update;
}

export class RoundEngine {
  readonly dimension: number;
  private readonly options: RoundEngineOptions;
  private readonly encoder: CodecEncoder;
  private baseParams: Float32Array;
  private currentIteration: number;
  private clusterIds: number[] = [];
  /** clusterIds as a set: offer and setClusters ask it per proposal (O(k²) per iteration). */
  private voting = new Set<number>();
  private held = new Map<number, HeldProposal>();
  private quorumSince: number | undefined;
  /** S when the current iteration opened: a lower S set since applies from the next one. */
  private openedWithStaleness: number;
  staleDropped = 0;

  constructor(options: RoundEngineOptions) {
    if (options.initial.length !== options.dimension) {
      throw new RangeError(
        `initial parameters have ${options.initial.length} != ${options.dimension}`,
      );
    }
    if (options.quorum !== undefined) {
      if (options.mode !== 'average') {
        throw new RangeError(`quorum is an 'average' mode option; 'majority' needs a majority`);
      }
      if (!Number.isInteger(options.quorum) || options.quorum < 1) {
        throw new RangeError(`quorum must be an integer ≥ 1, got ${options.quorum}`);
      }
    }
    if (options.estimator !== undefined && !AGREEMENT_ESTIMATORS.includes(options.estimator)) {
      throw new RangeError(`unknown agreement estimator ${String(options.estimator)}`);
    }
    this.options = { ...options };
    this.dimension = options.dimension;
    this.baseParams = Float32Array.from(options.initial);
    this.currentIteration = options.iteration;
    this.openedWithStaleness = options.staleness;
    const codec = getCodec(options.codec);
    this.encoder = codec.createEncoder(options.dimension, {
      ...(codec.defaultBlockSize > 0 ? { blockSize: options.blockSize } : {}),
      seed: options.jobId,
    });
  }

  get iteration(): number {
    return this.currentIteration;
  }

  /** The agreed parameters of the current iteration (do not modify). */
  get base(): Float32Array {
    return this.baseParams;
  }

  get clusters(): readonly number[] {
    return this.clusterIds;
  }

  get majority(): number {
    return majorityOf(Math.max(1, this.clusterIds.length));
  }

  /** Proposals needed to close: the `quorum` option, else a majority of the clusters. */
  get quorum(): number {
    return this.options.quorum ?? this.majority;
  }

  /** Clusters whose proposal for this iteration is held. */
  proposers(): number[] {
    return [...this.held.keys()].sort((a, b) => a - b);
  }

  /**
   * Fixes the clusters that vote in the current iteration (placement changes between
   * iterations). Proposals already held from clusters that still exist are kept.
   */
  setClusters(clusterIds: readonly number[]): void {
    this.clusterIds = [...clusterIds].sort((a, b) => a - b);
    this.voting = new Set(this.clusterIds);
    for (const id of [...this.held.keys()]) if (!this.voting.has(id)) this.held.delete(id);
    this.quorumSince = undefined;
  }

  /** The staleness threshold S now set (what the next iteration frame states). */
  get staleness(): number {
    return this.options.staleness;
  }

  /**
   * A new threshold S (an operator's, or a `staleness: "auto"` job's, staleness-policy.ts).
   * A higher S applies to the next offer; a lower one from the next iteration on: the tabs
   * learn S from the frame that opened the iteration (iteration-frame.ts) and drop registers
   * staler than that, so a proposal is never judged by a threshold its registers could not
   * know — a cluster whose proposal was refused that way would offer nothing more this
   * iteration.
   */
  setStaleness(threshold: number): void {
    if (!Number.isInteger(threshold) || threshold < 0)
      throw new RangeError(`staleness threshold must be an integer ≥ 0, got ${threshold}`);
    this.options.staleness = threshold;
  }

  /** The threshold offers are judged by now (see setStaleness). */
  get enforcedStaleness(): number {
    return Math.max(this.options.staleness, this.openedWithStaleness);
  }

  /**
   * Offers a decoded proposal (already validated as finite and of the right length).
   * `registerStaleness`: how much older than `baseIteration` the oldest local step of its
   * registers is (pipelined tabs, frame header); its delay, compared with S, is the proposal's
   * age plus that. `signs`: the same update as a sign payload (signUpdateOfFrame), when its
   * frame was one; a majority-mode close whose proposals all have one runs signAgreement on them
   * (no decoding, no per-coordinate selection).
   */
  offer(
    clusterId: number,
    baseIteration: number,
    update: UpdateSource,
    now: number,
    registerStaleness = 0,
    signs?: SignUpdate,
  ): OfferResult {
    if (!this.voting.has(clusterId)) {
      return {
        ok: false,
        code: 'not-in-cluster',
        message: `cluster ${clusterId} does not vote now`,
      };
    }
    if (baseIteration > this.currentIteration) {
      return {
        ok: false,
        code: 'wrong-iteration',
        message: `proposal on iteration ${baseIteration}, coordinator is at ${this.currentIteration}`,
      };
    }
    const age = this.currentIteration - baseIteration;
    const delay = age + Math.max(0, registerStaleness);
    const threshold = this.enforcedStaleness;
    if (delay > threshold) {
      this.staleDropped++;
      return {
        ok: false,
        code: 'stale',
        message: `proposal ${delay} iterations stale (${age} since its base), staleness threshold is ${threshold}`,
      };
    }
    const existing = this.held.get(clusterId);
    if (existing !== undefined && existing.baseIteration >= baseIteration) {
      return { ok: true, counted: false, stale: age > 0 };
    }
    this.held.set(clusterId, signs ? { update, baseIteration, signs } : { update, baseIteration });
    if (this.quorumSince === undefined && this.held.size >= this.quorum) this.quorumSince = now;
    return { ok: true, counted: true, stale: age > 0 };
  }

  /** Whether to close now, given which clusters still have a live tab. */
  decide(liveClusters: ReadonlySet<number>, now: number): CloseDecision {
    if (this.clusterIds.length === 0) return { action: 'wait' };
    const quorum = this.quorum;
    // each scan stops once its answer is known: a full scan per call (decide runs on every
    // proposal) cost O(k²) per iteration, tens of ms at the simulator's 1,250 clusters
    if (this.held.size >= quorum) {
      let liveWaiting = false;
      for (const id of this.clusterIds) {
        if (liveClusters.has(id) && !this.held.has(id)) {
          liveWaiting = true;
          break;
        }
      }
      if (!liveWaiting) return { action: 'close' };
      const since = this.quorumSince ?? now;
      const until = since + this.options.graceMs;
      return now >= until ? { action: 'close' } : { action: 'wait', until };
    }
    let live = 0;
    for (const id of this.clusterIds) {
      if ((liveClusters.has(id) || this.held.has(id)) && ++live >= quorum)
        return { action: 'wait' };
    }
    return { action: 'quorum-lost' };
  }

  /** Runs the agreement over the held proposals and moves the base. */
  close(): ClosedIteration {
    const prepared = this.prepareClose();
    const deltaNorm = this.adopt(prepared, prepared.residual);
    if (deltaNorm === undefined) throw new Error('close() could not adopt its own close');
    const { residual: _residual, ...closed } = prepared;
    return { ...closed, deltaNorm };
  }

  /**
   * Runs the agreement over the held proposals and encodes the delta, changing nothing: the
   * close every replica then adopts (a multi-node coordinator's lease holder computes it once
   * and publishes it). Throws when no proposal is held or too few decode.
   */
  prepareClose(): PreparedClose {
    const majority = this.options.mode !== 'average';
    let contributors = this.proposers();
    const signs = contributors.map((id) => this.held.get(id)!.signs);
    const allSigns = majority && signs.every((x) => x !== undefined);
    const updates: Float32Array[] = [];
    if (!allSigns) contributors = this.decodeHeld(contributors, updates);
    if (contributors.length === 0) throw new Error('close() without proposals');
    const staleAccepted = contributors.filter(
      (id) => this.held.get(id)!.baseIteration < this.currentIteration,
    ).length;
    let spread: number;
    let agreed: Float32Array;
    let rounds = 0;
    if (this.options.mode === 'average') {
      // maxSpread and averageProposals over the proposals, in one pass without copying them
      const sum = new Float64Array(this.dimension);
      spread = proposalBox(this.baseParams, updates, sum).spread;
      agreed = new Float32Array(this.dimension);
      for (let i = 0; i < agreed.length; i++) agreed[i] = sum[i]! / updates.length;
    } else {
      const n = contributors.length;
      if (n < majorityOf(Math.max(this.clusterIds.length, n)))
        throw new Error('agreement did not terminate with a majority held');
      const rule = {
        trim: this.options.trim ?? 0.1,
        trimFloor: this.options.trimFloor ?? 1,
        clip: this.options.clip ?? 3,
        estimator: this.options.estimator ?? DEFAULT_AGREEMENT_ESTIMATOR,
      };
      let robust = allSigns
        ? signAgreement(this.baseParams, signs as SignUpdate[], rule)
        : robustAgreement(this.baseParams, updates, rule);
      if (robust === undefined) {
        // sign payloads of different block sizes: decoded after all
        contributors = this.decodeHeld(contributors, updates);
        robust = robustAgreement(this.baseParams, updates, rule);
      }
      spread = robust.spread;
      rounds = agreementRounds(spread, this.options.epsilon);
      agreed = robust.agreed;
    }
    const delta = new Float32Array(this.dimension);
    for (let i = 0; i < delta.length; i++) delta[i] = agreed[i]! - this.baseParams[i]!;
    const nextIteration = this.currentIteration + 1;
    // encoding moves the error-feedback residual: taken after, and put back until adopted
    const residual = this.encoder.residual();
    const before = residual === undefined ? undefined : Float32Array.from(residual);
    const frame = encodeToFrame(this.encoder, delta, {
      jobId: this.options.jobId,
      iteration: nextIteration,
      round: Math.min(rounds, 0xffff),
      senderSlot: PROPOSAL_SLOT,
    });
    const after = residual === undefined ? undefined : Float32Array.from(residual);
    if (residual !== undefined && before !== undefined) residual.set(before);
    return {
      iteration: nextIteration,
      frame,
      contributors,
      staleAccepted,
      rounds,
      spread,
      residual: after,
    };
  }

  /**
   * A proposal frame's sign payload, for offer's `signs`: undefined unless this engine closes
   * by majority and the frame is a valid sign frame of its job, dimension and block size.
   * `factor`: the step scale its decoded update is offered with.
   */
  signsOf(frame: Uint8Array, factor = 1): SignUpdate | undefined {
    if (this.options.mode === 'average') return undefined;
    const signs = signUpdateOfFrame(
      frame,
      { dimension: this.dimension, jobId: this.options.jobId },
      factor,
    );
    return signs?.blockSize === this.options.blockSize ? signs : undefined;
  }

  /**
   * The updates of these held proposals, decoded, into `out`; returns the clusters whose update
   * decodes (a proposal that does not is let go: it can never count).
   */
  private decodeHeld(clusterIds: readonly number[], out: Float32Array[]): number[] {
    out.length = 0;
    const decoded: number[] = [];
    for (const id of clusterIds) {
      const update = resolved(this.held.get(id)!);
      if (update === undefined) {
        this.held.delete(id);
        continue;
      }
      decoded.push(id);
      out.push(update);
    }
    return decoded;
  }

  /**
   * Adopts a close (prepared here or by another replica) when it moves the current iteration
   * one on: the base moves by its delta frame, its contributors' proposals are let go, and
   * proposals it did not use (held after it was prepared) stay, one iteration older. `residual`:
   * the encoder's residual to continue from (the preparer's own; a replica that did not
   * prepare the close keeps its own). Returns the applied update's norm, or undefined when the
   * close is not for the next iteration (it changes nothing then).
   */
  adopt(
    closed: Pick<ClosedIteration, 'iteration' | 'frame' | 'contributors'>,
    residual?: Float32Array,
  ): number | undefined {
    if (closed.iteration !== this.currentIteration + 1) return undefined;
    const applied = this.applyDelta(closed.frame);
    this.currentIteration = closed.iteration;
    this.openedWithStaleness = this.options.staleness;
    for (const id of closed.contributors) this.held.delete(id);
    this.quorumSince = undefined;
    const own = this.encoder.residual();
    if (own !== undefined && residual !== undefined && residual.length === own.length)
      own.set(residual);
    return applied;
  }

  /**
   * Forgets the error-feedback residual: a replica that starts closing after others did holds
   * an old one, whose error was corrected since.
   */
  resetResidual(): void {
    this.encoder.residual()?.fill(0);
  }

  /** Replays a journaled delta frame (restart): same arithmetic as close(). */
  replay(frame: Uint8Array, iteration: number): void {
    this.applyDelta(frame);
    this.currentIteration = iteration;
    this.openedWithStaleness = this.options.staleness;
    this.held = new Map();
  }

  /**
   * The engine's state as plain data, for a replica of it in another process (multi-node
   * coordinator snapshots): base, iteration, voting clusters, held proposals, the stale count
   * and the encoder's error-feedback residual, so a replica closes bit-identical iterations.
   * (A stochastic codec's generator state is not included.)
   */
  exportState(): RoundEngineState {
    const residual = this.encoder.residual();
    return {
      iteration: this.currentIteration,
      base: Float32Array.from(this.baseParams),
      clusterIds: [...this.clusterIds],
      held: [...this.held.entries()].flatMap(([clusterId, h]) => {
        const update = resolved(h);
        return update === undefined
          ? []
          : [{ clusterId, baseIteration: h.baseIteration, update: Float32Array.from(update) }];
      }),
      staleDropped: this.staleDropped,
      residual: residual === undefined ? null : Float32Array.from(residual),
      openedWithStaleness: this.openedWithStaleness,
    };
  }

  /** Replaces the state with an exported one (same dimension and codec). */
  importState(state: RoundEngineState): void {
    if (state.base.length !== this.dimension) throw new RangeError('state of another dimension');
    this.baseParams = Float32Array.from(state.base);
    this.currentIteration = state.iteration;
    this.clusterIds = [...state.clusterIds].sort((a, b) => a - b);
    this.voting = new Set(this.clusterIds);
    this.held = new Map(
      state.held.map((h) => [h.clusterId, { update: h.update, baseIteration: h.baseIteration }]),
    );
    this.quorumSince = undefined;
    this.openedWithStaleness = state.openedWithStaleness ?? this.options.staleness;
    this.staleDropped = state.staleDropped;
    const residual = this.encoder.residual();
    if (residual !== undefined) {
      if (state.residual !== null && state.residual.length === residual.length)
        residual.set(state.residual);
      else residual.fill(0);
    }
  }

  private applyDelta(frame: Uint8Array): number {
    const decoded = new Float32Array(this.dimension);
    const result = decodeDelta(frame, decoded, this.options.jobId);
    if (!result) throw new Error('coordinator could not decode its own delta frame');
    let norm = 0;
    for (let i = 0; i < decoded.length; i++) {
      this.baseParams[i]! += decoded[i]!;
      norm += decoded[i]! * decoded[i]!;
    }
    return Math.sqrt(norm);
  }
}

function decodeDelta(frame: Uint8Array, out: Float32Array, jobId: number): boolean {
  return decodeFrameInto(frame, out, { dimension: out.length, jobId }).ok;
}

/** Per coordinate, the lowest and highest proposal y_c = base + u_c, and the largest spread. */
interface ProposalBox {
  lo: Float64Array;
  hi: Float64Array;
  /** max over coordinates of hi − lo: what maxSpread gives for the proposals. */
  spread: number;
}

/**
 * One pass over the updates, proposal by proposal (each y_c rounded to float32 as it would be
 * stored), without materialising the k proposals: at thousands of clusters the k·d copies and
 * the coordinate-major maxSpread over them cost hundreds of ms per close. With `sum`, also adds
 * every y_c to it in float64, in order: averageProposals' sum, bit for bit.
 */
function proposalBox(
  base: Float32Array,
  updates: readonly Float32Array[],
  sum?: Float64Array,
): ProposalBox {
  const d = base.length;
  const lo = new Float64Array(d).fill(Infinity);
  const hi = new Float64Array(d).fill(-Infinity);
  for (const update of updates) {
    if (sum === undefined) {
      for (let i = 0; i < d; i++) {
        const y = Math.fround(base[i]! + update[i]!);
        if (y < lo[i]!) lo[i] = y;
        if (y > hi[i]!) hi[i] = y;
      }
    } else {
      for (let i = 0; i < d; i++) {
        const y = Math.fround(base[i]! + update[i]!);
        if (y < lo[i]!) lo[i] = y;
        if (y > hi[i]!) hi[i] = y;
        sum[i]! += y;
      }
    }
  }
  let spread = 0;
  for (let i = 0; i < d; i++) if (hi[i]! - lo[i]! > spread) spread = hi[i]! - lo[i]!;
  return { lo, hi, spread };
}

/**
 * The Byzantine-tolerant agreement over held updates (relative to `base`): norm clipping to
 * clip × the lower median norm, then per coordinate the proposals y_c = base + u_c (each
 * rounded to float32 as it would be stored) lose their t lowest and t highest, and the rest are
 * averaged ('trimmed-mean', the default) or reduced to their midpoint ('midpoint'). `spread` is
 * the largest per-coordinate range of the proposals that survive trimming.
 */
export function robustAgreement(
  base: Float32Array,
  updates: readonly Float32Array[],
  options: {
    trim: number;
    clip: number;
    estimator?: AgreementEstimator | undefined;
    /** At least this many trimmed per side from n = 3 on (default 1). */
    trimFloor?: number | undefined;
  },
): { agreed: Float32Array; spread: number; trimmed: number; clipped: number } {
  const n = updates.length;
  const d = base.length;
  if (n === 0) throw new RangeError('robustAgreement: no proposals');
  const norms = updates.map((u) => {
    let sq = 0;
    for (let i = 0; i < u.length; i++) sq += u[i]! * u[i]!;
    return Math.sqrt(sq);
  });
  const sorted = [...norms].sort((a, b) => a - b);
  const bound = options.clip * sorted[Math.floor((n - 1) / 2)]!;
  let clipped = 0;
  const scales = norms.map((norm) => {
    if (norm > bound && norm > 0) {
      clipped++;
      return bound / norm;
    }
    return 1;
  });
  const t = trimCount(n, options.trim, options.trimFloor ?? 1);
  const midpoint = (options.estimator ?? DEFAULT_AGREEMENT_ESTIMATOR) === 'midpoint';
  const agreed = new Float32Array(d);
  // coordinates in blocks of BLOCK, each block's proposals copied coordinate-major (reading one
  // value from each of n proposals per coordinate was most of a close at 1,250 clusters)
  const BLOCK = 64;
  const columns = new Float64Array(n * Math.min(BLOCK, d));
  const kept = new KeptMiddle(n);
  let spread = 0;
  for (let i0 = 0; i0 < d; i0 += BLOCK) {
    const width = Math.min(BLOCK, d - i0);
    for (let c = 0; c < n; c++) {
      const u = updates[c]!;
      const scale = scales[c]!;
      for (let j = 0; j < width; j++) {
        columns[j * n + c] = Math.fround(base[i0 + j]! + scale * u[i0 + j]!);
      }
    }
    for (let j = 0; j < width; j++) {
      kept.measure(columns, j * n, t);
      const { lo, hi } = kept;
      agreed[i0 + j] = midpoint ? (lo + hi) / 2 : kept.sum / (n - 2 * t);
      if (hi - lo > spread) spread = hi - lo;
    }
  }
  return { agreed, spread, trimmed: t, clipped };
}

/** A sample rank clamped into the sample. */
function sampleRank(r: number): number {
  return Math.min(SAMPLE_SIZE - 1, Math.max(0, r));
}

/** From this many proposals on, the kept middle is found through a sample (KeptMiddle). */
const SAMPLED_FROM = 256;
/** Sample size and the margin (in sample ranks) around each cut. */
const SAMPLE_SIZE = 64;
const SAMPLE_MARGIN = 6;

/**
 * Per coordinate, the values of ranks t … n − 1 − t of a column of n proposals (the sorted
 * column's kept middle): its lowest, its highest and its sum. Two quickselects in place, O(n)
 * (a full sort per coordinate cost seconds per close at 1,250 clusters × 7,850 parameters). From
 * SAMPLED_FROM proposals on, first Floyd and Rivest's idea: a sorted sample of the column
 * brackets each cut, one pass sums what lies between the brackets and collects the values
 * inside them, and only those (~10 % of n each) are selected in; when a cut falls outside its
 * bracket (an unlucky sample) the quickselects run instead. The selection alone was 1.2–1.6×
 * faster at 300–1,250 proposals in a micro-benchmark, the whole agreement 1.2× at 1,250
 * (`npm run bench -- agreement`, docs/benchmarks.md); the kept values, lo and hi are the same,
 * the sum is taken in another order.
 */
class KeptMiddle {
  lo = 0;
  hi = 0;
  sum = 0;
  private readonly sample = new Float64Array(SAMPLE_SIZE);
  private readonly low: Float64Array;
  private readonly high: Float64Array;

  constructor(private readonly n: number) {
    const bracket = n >= SAMPLED_FROM ? n : 0;
    this.low = new Float64Array(bracket);
    this.high = new Float64Array(bracket);
  }

  /** Measures the kept middle of a[from … from + n) (which it may reorder), trimming t a side. */
  measure(a: Float64Array, from: number, t: number): void {
    const n = this.n;
    if (t === 0 || n < SAMPLED_FROM || !this.bracketed(a, from, t)) {
      // [from + t, from + n − 1 − t] then holds the kept middle
      if (t > 0) {
        selectInPlace(a, from + t, from, from + n - 1);
        selectInPlace(a, from + n - 1 - t, from + t, from + n - 1);
      }
      let lo = a[from + t]!;
      let hi = lo;
      let sum = 0;
      for (let c = from + t; c < from + n - t; c++) {
        const y = a[c]!;
        if (y < lo) lo = y;
        if (y > hi) hi = y;
        sum += y;
      }
      this.lo = lo;
      this.hi = hi;
      this.sum = sum;
    }
  }

  /** The sampled path; false (nothing measured) when a cut falls outside its bracket. */
  private bracketed(a: Float64Array, from: number, t: number): boolean {
    const { n, sample, low, high } = this;
    for (let i = 0; i < SAMPLE_SIZE; i++)
      sample[i] = a[from + Math.floor(((i + 0.5) * n) / SAMPLE_SIZE)]!;
    sample.sort();
    const atLow = (t * SAMPLE_SIZE) / n;
    const atHigh = ((n - 1 - t) * SAMPLE_SIZE) / n;
    const lowFrom = sample[sampleRank(Math.floor(atLow - SAMPLE_MARGIN))]!;
    const lowTo = sample[sampleRank(Math.ceil(atLow + SAMPLE_MARGIN))]!;
    const highFrom = sample[sampleRank(Math.floor(atHigh - SAMPLE_MARGIN))]!;
    const highTo = sample[sampleRank(Math.ceil(atHigh + SAMPLE_MARGIN))]!;
    if (!(lowTo < highFrom)) return false;
    // the column in five disjoint, ordered parts: below | low = [lowFrom, lowTo) |
    // middle = [lowTo, highFrom] | high = (highFrom, highTo] | above
    let below = 0;
    let above = 0;
    let lows = 0;
    let highs = 0;
    let middle = 0;
    for (let c = from, end = from + n; c < end; c++) {
      const y = a[c]!;
      if (y < lowTo) {
        if (y < lowFrom) below++;
        else low[lows++] = y;
      } else if (y > highFrom) {
        if (y > highTo) above++;
        else high[highs++] = y;
      } else middle += y;
    }
    // rank t of the column is rank t − below of `low`; rank n − 1 − t is highs − 1 − (t − above)
    // of `high`
    const lowRank = t - below;
    const highRank = highs - 1 - (t - above);
    if (lowRank < 0 || lowRank >= lows || highRank < 0 || highRank >= highs) return false;
    selectInPlace(low, lowRank, 0, lows - 1);
    selectInPlace(high, highRank, 0, highs - 1);
    let sum = middle;
    for (let i = lowRank; i < lows; i++) sum += low[i]!;
    for (let i = 0; i <= highRank; i++) sum += high[i]!;
    this.lo = low[lowRank]!;
    this.hi = high[highRank]!;
    this.sum = sum;
    return true;
  }
}

/**
 * Rearranges a[left..right] so that a[k] holds the value a sorted copy would hold there, with
 * nothing greater before it and nothing smaller after it (quickselect, median-of-three pivot;
 * falls back to sorting the range after 2·log2(n) unlucky partitions, so never O(n²)).
 */
function selectInPlace(a: Float64Array, k: number, left: number, right: number): void {
  let budget = 2 * Math.ceil(Math.log2(right - left + 2));
  while (right > left) {
    if (budget-- <= 0) {
      a.subarray(left, right + 1).sort();
      return;
    }
    const mid = (left + right) >>> 1;
    // median of three as the pivot value
    const x = a[left]!;
    const y = a[mid]!;
    const z = a[right]!;
    const pivot = x < y ? (y < z ? y : x < z ? z : x) : x < z ? x : y < z ? z : y;
    let i = left;
    let j = right;
    while (i <= j) {
      while (a[i]! < pivot) i++;
      while (a[j]! > pivot) j--;
      if (i <= j) {
        const tmp = a[i]!;
        a[i] = a[j]!;
        a[j] = tmp;
        i++;
        j--;
      }
    }
    // a[left..j] ≤ pivot ≤ a[i..right], and a[j+1..i−1] all equal the pivot
    if (k <= j) right = j;
    else if (k >= i) left = i;
    else return;
  }
}
