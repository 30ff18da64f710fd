/**
 * What a cluster round computes, apart from when (simulator.ts owns the clock): the used
 * members' messages — local work (core's Parle `runLocalSteps`) or the partition updates formed
 * into the product's register (core register-message.ts: coded Σ_j B[slot][j]·u_j when the rule
 * is `mean`, the mean of the held partitions' updates otherwise) —, the Byzantine members'
 * substitutions, core's codec in protocol frames (error feedback per sender), the product's door
 * (core `decodeRegister`), and then **the product's cluster round** (core `ClusterRound`, one per
 * cluster, seen from an observer slot that holds every register and writes none): its
 * gradient-code decoder or robust rule, its quarantine (fed every register of an iteration when
 * the next one starts, never the rule's 'filtered' verdicts — as in a tab) and the update it
 * hands the proposer. The cluster's proposal frame is then encoded as the product does (core's
 * `encodeProposal`: no error feedback, so members can recompute it) and judged as the
 * coordinator does (core's `judgeProposal`): the first member waited for is the proposer; a
 * `proposal-scale`/`proposal-flip` proposer sends a forged update, which the cluster's honest
 * members contradict (they compute the honest one; Byzantine members back the forgery) — refuted:
 * the proposer is banned and the next member's honest proposal counts in the same round; a
 * `proposal-race` member that is not the proposer proposes anyway, is refused and struck
 * (banned at the desk's third strike within its window: core DEFAULT_STRIKES), and a racing
 * proposer (its own register as the update) is not confirmed, so the next member proposes.
 *
 * One cluster round per cluster stands for its members' rounds: in the product every member
 * holds the same registers and computes the same update (ClusterRound.recompute), and each
 * tab's quarantine sees the same registers; the simulator keeps one and bans a worker when it
 * quarantines it (the coordinator's majority of reports, collapsed into one).
 *
 * Guarantee: the result of a job depends only on the scenario, the job (cluster, round, base
 * iteration, members used in arrival order), the base parameters of that iteration and the
 * results of the same cluster's earlier jobs — never on wall time or on other clusters — so the
 * engine gives identical results inline or in a worker thread (threads.ts), as long as each
 * cluster's jobs run in order.
 *
 * Sharing structure (exact): all holders of a partition at the same base and iteration draw the
 * same minibatch (keyed seeds), so a coded cluster computes each partition's update once and every
 * slot's message from those. L = 1 plain steps skip runLocalSteps' copies: its result from x = x̃
 * is −η·g(x̃), which the model computes in one pass (tested against runLocalSteps).
 */
import {
  ClusterRound,
  DEFAULT_STRIKES,
  OBSERVER_SLOT,
  REGISTERS_AHEAD,
  aggregationModeOf,
  createGradientCode,
  decodeRegister,
  encodeInto,
  encodeProposal,
  encodeToFrame,
  forgeProposal,
  isProposalAttackName,
  judgeProposal,
  getCodec,
  robustMessage,
  runLocalSteps,
  type AggregationMode,
  type Attack,
  type Clock,
  type ClusterProposal,
  type Codec,
  type CodecEncoder,
  type GradientCode,
  type Logger,
  type MemberAnswer,
} from '@swarmgrad/core';
import { attackerFor } from './attacks.ts';
import { Stream, keyedRng, mix } from './hash.ts';
import type { Model } from './models/model.ts';
import type { CodecSpec, Scenario } from './scenario.ts';

export interface ContentJob {
  cluster: number;
  /** The cluster's round counter (the quarantine's iteration index). */
  round: number;
  baseIteration: number;
  /** The members waited for, in arrival order. */
  members: readonly { worker: number; slot: number }[];
}

export interface WorkerTally {
  used: number;
  filtered: number;
  rejected: number;
}

export interface ContentResult {
  cluster: number;
  /** The proposal frame; undefined when no message was admitted (no proposal). */
  frame: Uint8Array | undefined;
  /** Workers (indices) quarantined by this job. */
  banned: number[];
  doorRejected: number;
  filtered: number;
  approximateDecodes: number;
  /** Proposals refuted by the cluster, refused as not-proposer, or not confirmed. */
  proposalsRefused: number;
  /** Per worker index, this job's tallies. */
  tallies: [number, WorkerTally][];
  /** Set when an honest computation produced a non-finite value (the run diverged). */
  diverged: string | undefined;
}

export interface ContentSetup {
  /** Partitions the training set is cut into (initial clusters × m). */
  partitions: number;
  /** Examples per partition shard. */
  shardSize: number;
  jobId: number;
  /** Indices of the Byzantine workers. */
  byzantine: readonly number[];
}

interface ClusterState {
  /** The gradient code the members' messages are formed with (the round decodes with its own). */
  code: GradientCode | undefined;
  /** The product's cluster round, from an observer slot (see compute). */
  round: ClusterRound;
  /** What the round handed its proposer in the current job. */
  proposal: ClusterProposal | undefined;
}

/** The quarantine's and the round's name for a worker (its tab id in the product). */
function workerKey(worker: number): string {
  return `w${worker}`;
}

const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };

/**
 * The round never waits here (every register of a job is written before its iteration starts),
 * so its deadline timer is never due: jobs carry no wall or simulated time into the content.
 */
const stillClock: Clock = {
  now: () => 0,
  setTimeout: () => undefined,
  clearTimeout: () => undefined,
};

export function codecOptions(codec: Codec, spec: CodecSpec, seed: number) {
  return {
    ...(codec.defaultBlockSize > 0 ? { blockSize: spec.blockSize } : {}),
    ...(spec.errorFeedback === undefined ? {} : { errorFeedback: spec.errorFeedback }),
    seed,
  };
}

class NonFinite extends Error {}

export class ContentEngine {
  private readonly s: Scenario;
  private readonly model: Model;
  private readonly setup: ContentSetup;
  private readonly d: number;
  private readonly codec: Codec;
  private readonly proposalCodec: Codec;
  private readonly bases = new Map<number, Float32Array>();
  private readonly clusters = new Map<number, ClusterState>();
  private readonly encoders = new Map<number, CodecEncoder>();
  /** Register attackers (their proposals are honest). */
  private readonly attackers = new Map<number, Attack>();
  /** Proposal attackers (their registers are honest). */
  private readonly proposalAttackers = new Set<number>();
  /** Per worker, the iterations of its races and refutations (the desk's strikes). */
  private readonly races = new Map<number, number[]>();
  private readonly refutations = new Map<number, number[]>();
  private readonly batch: Int32Array;
  private readonly gradBuf: Float32Array;
  private pool: Float32Array[] = [];
  private readonly codeSeed: number;
  private readonly mode: AggregationMode;

  constructor(scenario: Scenario, model: Model, setup: ContentSetup) {
    this.s = scenario;
    this.model = model;
    this.setup = setup;
    this.d = model.dimension;
    this.codec = getCodec(scenario.codec.name);
    this.proposalCodec = getCodec(scenario.proposalCodec.name);
    this.batch = new Int32Array(scenario.training.batchSize);
    this.gradBuf = new Float32Array(this.d);
    this.codeSeed = mix(scenario.seed, 0x6c);
    this.mode = aggregationModeOf(scenario.aggregator.name);
    const { attack, magnitude, lag } = scenario.byzantine;
    for (const i of setup.byzantine) {
      if (isProposalAttackName(attack)) this.proposalAttackers.add(i);
      else this.attackers.set(i, attackerFor({ attack, magnitude, lag }));
    }
  }

  /** Parameters of a base iteration (the engine keeps them until `dropBasesBefore`). */
  setBase(iteration: number, params: Float32Array): void {
    this.bases.set(iteration, params);
  }

  dropBasesBefore(iteration: number): void {
    for (const k of [...this.bases.keys()]) if (k < iteration) this.bases.delete(k);
  }

  run(job: ContentJob): ContentResult {
    const result: ContentResult = {
      cluster: job.cluster,
      frame: undefined,
      banned: [],
      doorRejected: 0,
      filtered: 0,
      approximateDecodes: 0,
      proposalsRefused: 0,
      tallies: [],
      diverged: undefined,
    };
    try {
      this.compute(job, result);
    } catch (error) {
      if (!(error instanceof NonFinite)) throw error;
      result.diverged = error.message;
      result.frame = undefined;
    }
    return result;
  }

  private cluster(id: number): ClusterState {
    const known = this.clusters.get(id);
    if (known !== undefined) return known;
    const s = this.s;
    const { size, redundancy, scheme } = s.cluster;
    const q = s.quarantine;
    const state: ClusterState = {
      code:
        redundancy > 0
          ? createGradientCode({ slots: size, redundancy, scheme, seed: this.codeSeed })
          : undefined,
      round: new ClusterRound({
        dimension: this.d,
        aggregator: { name: s.aggregator.name, f: s.aggregator.f },
        clock: stillClock,
        logger: silentLogger,
        onPropose: (proposal) => {
          state.proposal = proposal;
        },
        archiveIterations: 0,
        quarantine: q.enabled
          ? {
              window: q.window,
              threshold: q.threshold,
              strikes: q.strikes,
              floor: q.floor,
              alignment: q.alignment,
              lagSymmetry: q.lagSymmetry,
            }
          : false,
      }),
      proposal: undefined,
    };
    this.clusters.set(id, state);
    return state;
  }

  private tally(result: ContentResult, worker: number): WorkerTally {
    let t = result.tallies.find((x) => x[0] === worker)?.[1];
    if (t === undefined) {
      t = { used: 0, filtered: 0, rejected: 0 };
      result.tallies.push([worker, t]);
    }
    return t;
  }

  private compute(job: ContentJob, result: ContentResult): void {
    const s = this.s;
    const base = this.bases.get(job.baseIteration);
    if (base === undefined) throw new Error(`content: no base for iteration ${job.baseIteration}`);
    const c = this.cluster(job.cluster);
    const members = job.members;
    const messages = this.buffers(members.length);
    this.computeMessages(job, c, base, messages);

    // The members' frames through the product's door, into the cluster's round (core
    // ClusterRound, seen from an observer slot): written for the coming iteration, so that
    // starting it takes them all at once and the round aggregates exactly those the timing
    // layer waited for — the rule's decision over them is the timing layer's (simulator.ts).
    const iteration = job.baseIteration;
    const round = c.round;
    if (round.iteration === undefined || iteration - round.iteration > REGISTERS_AHEAD) {
      round.startIteration(iteration - 1);
    }
    const admitted: { worker: number; slot: number }[] = [];
    const refused: { worker: number; slot: number; code: string }[] = [];
    const registers: Float32Array[] = [];
    members.forEach((m, i) => {
      const t = this.tally(result, m.worker);
      t.used++;
      let encoder = this.encoders.get(m.worker);
      if (encoder === undefined) {
        encoder = this.codec.createEncoder(
          this.d,
          codecOptions(this.codec, s.codec, mix(s.seed, Stream.codec, m.worker)),
        );
        this.encoders.set(m.worker, encoder);
      }
      let frame = this.encode(encoder, messages[i]!, iteration, m.slot);
      const attacker = this.attackers.get(m.worker);
      if (attacker !== undefined) frame = attacker.corruptFrame(frame);
      const door = decodeRegister(frame, {
        jobId: this.setup.jobId,
        dimension: this.d,
        minIteration: iteration,
        maxIteration: iteration,
        senderSlot: m.slot,
      });
      if (!door.ok) {
        result.doorRejected++;
        t.rejected++;
        refused.push({ ...m, code: door.error.code });
        return;
      }
      admitted.push(m);
      registers.push(door.value.vector);
    });
    c.proposal = undefined;
    round.setMembership({
      clusterId: job.cluster,
      slot: OBSERVER_SLOT,
      clusterSize: s.cluster.size,
      redundancy: s.cluster.redundancy,
      scheme: s.cluster.scheme,
      codeSeed: this.codeSeed,
      proposer: true,
      peers: members.map((m) => ({ slot: m.slot, tabId: workerKey(m.worker) })),
    });
    admitted.forEach((m, i) => {
      // a stand-in digest: unique per register, and hashing every frame would cost more than
      // aggregating it (the worker passes the frame's SHA-256)
      round.receive(m.slot, iteration, registers[i]!, `${workerKey(m.worker)}@${iteration}`);
    });
    round.startIteration(iteration);
    // a refused write still means its member wrote: the round stops waiting for it
    for (const r of refused) round.rejectAtDoor(r.slot, iteration, r.code);
    const proposal = c.proposal as ClusterProposal | undefined;
    if (proposal !== undefined) {
      if (proposal.approximate) result.approximateDecodes++;
      const workerOf = new Map(admitted.map((m) => [m.slot, m.worker]));
      for (const r of proposal.rejected) {
        const worker = workerOf.get(r.slot);
        if (worker === undefined) continue; // refused at the door, counted there
        const t = this.tally(result, worker);
        // left out by the rule, or by the quarantine (which judges an iteration when the next
        // one starts, as in a tab, so a worker's register can come in the round it is banned)
        if (r.reason === 'filtered' || r.reason === 'quarantined') {
          result.filtered++;
          t.filtered++;
        } else if (r.reason === 'non-finite' || r.reason === 'wrong-length') {
          result.doorRejected++;
          t.rejected++;
        }
      }
    }
    for (const m of members) {
      if (round.isQuarantined(workerKey(m.worker))) result.banned.push(m.worker);
    }
    if (proposal === undefined || proposal.contributors.length === 0) return;
    const proposed = this.propose(job, proposal.update, result);
    try {
      result.frame = encodeProposal(proposed, {
        codec: s.proposalCodec.name,
        blockSize: s.proposalCodec.blockSize,
        jobId: this.setup.jobId,
        clusterId: job.cluster,
        iteration: job.baseIteration,
      });
    } catch (error) {
      if (error instanceof RangeError) throw new NonFinite(error.message);
      throw error;
    }
  }

  /**
   * The update the coordinator counts for this round, after the proposal attacks and the
   * cluster's confirmation (see the file comment). Members answer with stand-in digests: honest
   * ones compute the honest update, Byzantine ones back whatever their proposer sent.
   */
  private propose(job: ContentJob, update: Float32Array, result: ContentResult): Float32Array {
    const attack = this.s.byzantine.attack;
    const members = job.members;
    const proposer = members[0]!.worker;
    if (attack === 'proposal-race') {
      for (const m of members.slice(1)) {
        if (!this.proposalAttackers.has(m.worker)) continue;
        result.proposalsRefused++;
        if (this.strike(this.races, m.worker, job.baseIteration, DEFAULT_STRIKES.racesToQuarantine))
          result.banned.push(m.worker);
      }
      // a racing proposer's own register is not confirmed; the next member proposes
      if (this.proposalAttackers.has(proposer) && members.length > 1) result.proposalsRefused++;
      return update;
    }
    if (
      (attack !== 'proposal-scale' && attack !== 'proposal-flip') ||
      !this.proposalAttackers.has(proposer)
    )
      return update;
    const forged = forgeProposal(attack, update);
    const answers = new Map<string, MemberAnswer>();
    for (const m of members.slice(1)) {
      answers.set(`w${m.worker}`, {
        kind: 'computed',
        digest: this.proposalAttackers.has(m.worker) ? 'forged' : 'honest',
      });
    }
    const verdict = judgeProposal({
      digest: 'forged',
      proposer: `w${proposer}`,
      liveMembers: members.map((m) => `w${m.worker}`),
      answers,
      final: true,
    });
    if (verdict.kind === 'confirmed') return forged;
    result.proposalsRefused++;
    if (
      verdict.kind === 'refuted' &&
      this.strike(
        this.refutations,
        proposer,
        job.baseIteration,
        DEFAULT_STRIKES.refutationsToQuarantine,
      )
    )
      result.banned.push(proposer);
    return update;
  }

  /**
   * One more strike against `worker` at `iteration`; whether it now has `limit` within the
   * coordinator's strike window (core ProposalDesk's DEFAULT_STRIKES).
   */
  private strike(
    strikes: Map<number, number[]>,
    worker: number,
    iteration: number,
    limit: number,
  ): boolean {
    const recent = (strikes.get(worker) ?? []).filter(
      (at) => at > iteration - DEFAULT_STRIKES.strikeWindow,
    );
    recent.push(iteration);
    strikes.set(worker, recent);
    return recent.length >= limit;
  }

  private encode(
    encoder: CodecEncoder,
    update: Float32Array,
    iteration: number,
    senderSlot: number,
  ): Uint8Array {
    try {
      return encodeToFrame(encoder, update, {
        jobId: this.setup.jobId,
        iteration,
        round: 0,
        senderSlot,
      });
    } catch (error) {
      if (error instanceof RangeError) throw new NonFinite(error.message);
      throw error;
    }
  }

  private buffers(n: number): Float32Array[] {
    while (this.pool.length < n) this.pool.push(new Float32Array(this.d));
    return this.pool;
  }

  private partitionId(cluster: number, j: number): number {
    return (cluster * this.s.cluster.size + j) % this.setup.partitions;
  }

  /** The minibatch of partition p at this iteration and local step (same for every holder). */
  private batchFor(p: number, iteration: number, step: number): Int32Array {
    const n = Math.max(1, this.model.trainSize);
    const rng = keyedRng(this.s.seed, Stream.batch, p, iteration, step);
    const start = Math.floor((p * n) / this.setup.partitions) % n;
    const b = this.batch;
    const shard = this.setup.shardSize;
    for (let i = 0; i < b.length; i++) b[i] = (start + Math.floor(rng.next() * shard)) % n;
    return b;
  }

  /** out ← −η·g at x on partition p (one plain SGD step's update). */
  private sgdUpdate(
    x: Float32Array,
    p: number,
    iteration: number,
    flip: boolean,
    out: Float32Array,
  ): void {
    const noise = keyedRng(this.s.seed, Stream.noise, p, iteration, 0);
    this.model.gradient(x, this.batchFor(p, iteration, 0), out, {
      flipLabels: flip,
      rng: noise,
      scale: -this.s.training.learningRate,
    });
  }

  /** A worker's local work from the base (Parle, DESIGN step 2): u = x − x̃ after L steps. */
  private localWork(
    base: Float32Array,
    p: number,
    iteration: number,
    flip: boolean,
    out: Float32Array,
  ): void {
    const t = this.s.training;
    if (t.localSteps === 1 && t.mode !== 'entropy-sgd' && t.momentum === 0) {
      this.sgdUpdate(base, p, iteration, flip, out);
      return;
    }
    const x = Float32Array.from(base);
    const u = runLocalSteps({
      params: x,
      anchor: base,
      steps: t.localSteps,
      learningRate: t.learningRate,
      mode: t.mode,
      ...(t.mode === 'sgd' ? {} : { elastic: t.elastic }),
      momentum: t.momentum,
      ...(t.entropy === undefined
        ? {}
        : {
            entropy: {
              scoping: t.entropy.scoping,
              innerSteps: t.entropy.innerSteps,
              noise: t.entropy.noise,
              rng: keyedRng(this.s.seed, Stream.noise, p, iteration, 0x51),
            },
          }),
      gradient: (at, step) => {
        const noise = keyedRng(this.s.seed, Stream.noise, p, iteration, step);
        this.model.gradient(at, this.batchFor(p, iteration, step), this.gradBuf, {
          flipLabels: flip,
          rng: noise,
        });
        return this.gradBuf;
      },
    });
    out.set(u);
  }

  private computeMessages(
    job: ContentJob,
    c: ClusterState,
    base: Float32Array,
    out: Float32Array[],
  ): void {
    const s = this.s;
    const code = c.code;
    const it = job.baseIteration;
    const flips = (worker: number) => this.attackers.get(worker)?.acts === 'data';
    try {
      if (code !== undefined) {
        // each partition's update once per cluster round (again for a label-flip attacker)
        const honest = new Map<number, Float32Array>();
        const partitionUpdate = (j: number, flip: boolean): Float32Array => {
          if (!flip) {
            const hit = honest.get(j);
            if (hit !== undefined) return hit;
          }
          const u = new Float32Array(this.d);
          this.sgdUpdate(base, this.partitionId(job.cluster, j), it, flip, u);
          if (!flip) honest.set(j, u);
          return u;
        };
        job.members.forEach((m, i) => {
          const held = code.partitionsOf(m.slot);
          if (this.mode === 'robust') {
            // the tab's own estimate (core register-message.ts), as the worker writes it
            out[i]!.set(robustMessage(held.map((j) => partitionUpdate(j, flips(m.worker)))));
            return;
          }
          const updates: Float32Array[] = [];
          for (const j of held) updates[j] = partitionUpdate(j, flips(m.worker));
          encodeInto(code, m.slot, updates, out[i]!);
        });
      } else {
        job.members.forEach((m, i) => {
          this.localWork(base, this.partitionId(job.cluster, m.slot), it, flips(m.worker), out[i]!);
        });
      }
    } catch (error) {
      // runLocalSteps refuses a non-finite gradient: the model diverged
      if (error instanceof RangeError) throw new NonFinite(error.message);
      throw error;
    }
    // Attackers see the honest members' messages of the round (attacks.ts), copied before the
    // first one is replaced.
    const members = job.members;
    if (!members.some((m) => this.attackers.has(m.worker))) return;
    const honest = members.map((_, i) => Float32Array.from(out[i]!));
    const peers = members.flatMap((p, j) =>
      this.attackers.has(p.worker) ? [] : [{ id: `w${p.worker}`, update: honest[j]! }],
    );
    members.forEach((m, i) => {
      const attacker = this.attackers.get(m.worker);
      if (attacker === undefined) return;
      const rng = keyedRng(s.seed, Stream.attack, m.worker, it);
      out[i]!.set(attacker.craft({ honest: honest[i]!, peers, iteration: it, rng }));
    });
  }
}
