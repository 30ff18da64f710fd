/**
 * The many-worker simulator: packages/core's algorithms wired together the way the product
 * wires them (DESIGN.md "One training iteration"), driven by a discrete-event clock in simulated
 * seconds, with virtual workers in place of browser tabs.
 *
 * Per cluster round (a cluster starts one whenever a newer agreed base exists):
 *  1. every live member downloads the base delta, computes — L local steps (Parle), or with
 *     gradient coding its s + 1 partition gradients — and broadcasts its coded message; its
 *     arrival time = download + compute + upload, from the scenario's compute-time, latency and
 *     bandwidth models, the worker's persistent slowness and the straggler regime;
 *  2. the cluster aggregates when the tab's own rule says so — core's `WaitRule`, the one the
 *     product's cluster round runs: every live member arrived, or the fastest k (static b, or the
 *     dynamic `BackupWorkerPolicy` fed with every arrival time, late ones included; at least
 *     m − s coded — the mode is the product's: coded for `mean`, robust for any other rule —,
 *     2f + 1 robust) and, coded, an exact decode; else the rule's deadline after
 *     the first arrival. Members that leave before arriving never arrive, and the cluster stops
 *     counting them as live when they leave;
 *  3. the round's content — messages, attacks, codec frames, the door, and core's ClusterRound
 *     (the product's cluster round: gradient-code decoder or robust rule, quarantine), then the
 *     proposal frame — is computed by content.ts, inline or in worker threads (threads.ts;
 *     identical results);
 *  4. the proposal travels to the coordinator: packages/core's RoundEngine, the same round
 *     logic apps/coordinator runs, driven in simulated milliseconds. It accepts a proposal while
 *     its base is at most S iterations old, closes the iteration once a majority of clusters (or,
 *     in 'average' mode, the scenario's quorum: 1 by default) proposed — at once when every live
 *     cluster has, else after the grace window — by majority-cluster agreement or averaging,
 *     reports quorum lost, and moves the base by a coded delta. Churn and crashes remove members
 *     at their departure time; joiners are seated by core's placement at the next close when
 *     `rebalance` is on; quarantined workers are left out of their cluster's later rounds.
 *
 * Messages that arrive after the cluster aggregated are counted in the bytes sent but not
 * computed (the cluster ignores them; their sender's residual is not advanced).
 *
 * `staleness: 'auto'` (issue 16 item 3; seed 001, ../shared/seeds/async-sgd-sdde-staleness.md):
 * the coordinator starts at core's AUTO_INITIAL_STALENESS and, at the first proposal on or after
 * each multiple of `autoStaleness.every` simulated seconds, runs core's `analyzeStaleness` over
 * `stalenessCandidates(n, S, true)` (n: workers alive and not quarantined) on what it measured —
 * the delays of the last `window` proposals, dropped ones included (an accepted-only sample would
 * be cut off at S and could never show that a larger S accepts more), scaled to each candidate n
 * by core's proportional model, and the mean of the last `window` task times (taken when a task
 * starts: the simulator draws its length then) — with the scenario's η and h (the quadratic's
 * top eigenvalue, exact there; the real coordinator uses a held-out estimate, core
 * curvature.ts). Core's `decideAutoStaleness(points, n, S)` gives the threshold, set on the
 * RoundEngine before that proposal is offered; every decision is in `stalenessDecisions`. The
 * worker count the analysis prefers is recorded, not enforced (as in the coordinator). Delays are proposal ages only: simulated workers do not pipeline, so they
 * carry no register staleness. Guarantee: S stays in [0, AUTO_MAX_STALENESS], and the run
 * stays deterministic (the analysis reads simulated measurements only).
 *
 * Guarantees: deterministic for a scenario (same seed, same result, whatever the wall clock or
 * the thread count); simulated time is kept apart from wall time (`wallMs` is reported
 * separately). With `threads` > 1 the content of rounds is computed in worker threads while the
 * events go on, and collected (the held proposals decoded) before the coordinator closes an
 * iteration — allowed only when timing cannot depend on content (no Byzantine workers, no
 * quarantine, fixed membership), so the result is the same.
 */
import {
  AUTO_INITIAL_STALENESS,
  WaitRule,
  aggregationModeOf,
  analyzeStaleness,
  createGradientCode,
  decideAutoStaleness,
  stalenessCandidates,
  stalenessStepScale,
  type BackupRule,
  type GradientCode,
  RoundEngine,
  correlatedGain,
  decodeFrameInto,
  getCodec,
  getPlacement,
  linearGain,
  type ClosedIteration,
  type ClusterSeats,
  type PlacementTab,
} from '@swarmgrad/core';
import { FRAME_HEADER_BYTES, jobIdOf } from '@swarmgrad/protocol';
import { EventQueue } from './clock.ts';
import { ContentEngine, type ContentJob, type ContentResult, type WorkerTally } from './content.ts';
import { sampleTime } from './distributions.ts';
import { Stream, keyedRng, mix } from './hash.ts';
import { createModel } from './models/index.ts';
import type { Model } from './models/model.ts';
import { defineScenario, type Scenario, type ScenarioInput } from './scenario.ts';
import { ContentPool } from './threads.ts';

export interface MetricPoint {
  iteration: number;
  /** Simulated seconds. */
  time: number;
  loss: number;
  accuracy: number;
  /** Bytes sent by workers so far (peer messages + proposals). */
  bytesSent: number;
}

export interface Stall {
  iteration: number;
  /** Simulated time the quorum was lost. */
  since: number;
  liveClusters: number;
  quorum: number;
}

/** One re-pick of S by a `staleness: 'auto'` coordinator. */
export interface StalenessDecision {
  /** Simulated seconds. */
  time: number;
  iteration: number;
  /** n0: workers alive and not quarantined, the count the delay sample was measured with. */
  activeWorkers: number;
  /** Delays analysed (at most `autoStaleness.window`). */
  samples: number;
  meanDelay: number;
  /** E[T] the analysis used, seconds. */
  meanTaskTime: number;
  /** S before and after. */
  previous: number;
  threshold: number;
  /** The worker count the analysis found fastest over all candidates (reported, not enforced). */
  recommendedWorkers: number;
  /**
   * Whether some analysed S was stable for the active count (for any candidate count when the
   * active one is not among them): without one, core keeps S.
   */
  stable: boolean;
  reason: string;
}

export interface SimulationResult {
  scenario: Scenario;
  model: string;
  dimension: number;
  history: MetricPoint[];
  final: MetricPoint;
  /** First evaluation that met the target accuracy/loss. */
  reached: MetricPoint | undefined;
  stalled: Stall | undefined;
  diverged: boolean;
  /** Why the run ended. */
  ended: 'max-iterations' | 'target' | 'diverged' | 'max-time' | 'stalled';
  bytes: { peer: number; proposal: number; broadcast: number };
  counters: {
    clusterRounds: number;
    proposals: number;
    staleDropped: number;
    staleAccepted: number;
    notVoting: number;
    doorRejected: number;
    filtered: number;
    approximateDecodes: number;
    /** Proposals refuted, refused as not-proposer or not confirmed (proposal attacks). */
    proposalsRefused: number;
    agreementRounds: number;
    joins: number;
    leaves: number;
  };
  /** Quarantined worker ids, in the order they were banned. */
  quarantined: string[];
  /** Per quarantined worker id: the coordinator's iteration when it was banned. */
  quarantinedAt: Record<string, number>;
  /** Per worker id: messages its cluster used, filtered by the rule, rejected at the door. */
  perWorker: Record<string, WorkerTally>;
  byzantine: string[];
  /** Staleness (iterations) of every proposal at its arrival, dropped ones included. */
  staleness: number[];
  /** The step factor each counted proposal was applied with, in order (issue 16 item 2). */
  stepScales: number[];
  /** The threshold S the coordinator enforced at the end (an auto job's last choice). */
  finalStaleness: number;
  /** `staleness: 'auto'`: every analysis and the S it led to, in time order; else empty. */
  stalenessDecisions: StalenessDecision[];
  /** How many peers each cluster round waited for (k), in round order. */
  waitCounts: number[];
  /** Mean time of one worker task (download + compute + upload) over all tasks, seconds. */
  meanTaskTime: number;
  /** Wall-clock milliseconds the simulation took. */
  wallMs: number;
}

export interface SimulateOptions {
  /** Worker threads for the rounds' content (default 1: inline). See the file header. */
  threads?: number;
}

interface Worker {
  index: number;
  id: string;
  joinSeq: number;
  /** Persistent compute-time multiplier (slow phones). */
  speed: number;
  leaveAt: number;
  rttMs: number;
}

interface Arrival {
  worker: Worker;
  slot: number;
  /** Absolute simulated time; Infinity when the worker leaves first. */
  time: number;
}

interface Round {
  epoch: number;
  baseIteration: number;
  start: number;
  arrivals: Arrival[];
  /** Registers held when the cluster aggregates (core's WaitRule decided when). */
  held: number;
}

interface Cluster {
  id: number;
  seats: (Worker | undefined)[];
  /** The product's wait rule (core swarm/wait-rule.ts), its backup policy kept across rounds. */
  wait: WaitRule | undefined;
  round: Round | undefined;
  epoch: number;
  rounds: number;
  retired: boolean;
}

/** A proposal whose frame may still be computed by the thread pool. */
interface Pending {
  result: ContentResult | undefined;
}

type SimEvent =
  | { kind: 'start'; cluster: number }
  | { kind: 'ready'; cluster: number; epoch: number }
  | { kind: 'proposal'; cluster: number; baseIteration: number; pending: Pending }
  /** The round engine's grace deadline, in the engine's (simulated) milliseconds. */
  | { kind: 'timer'; atMs: number }
  | { kind: 'leave'; worker: number }
  | { kind: 'join' };

class DivergedError extends Error {}

/** Runs one scenario to its end and returns what was measured. */
export function simulate(
  input: ScenarioInput | Scenario,
  options: SimulateOptions = {},
): SimulationResult {
  const simulation = new Simulation(defineScenario(input as ScenarioInput), options.threads ?? 1);
  try {
    return simulation.run();
  } finally {
    simulation.dispose();
  }
}

class Simulation {
  private readonly s: Scenario;
  private readonly model: Model;
  private readonly d: number;
  private readonly jobId: number;
  private readonly queue = new EventQueue<SimEvent>();
  private readonly coordinator: RoundEngine;
  /** The decoded proposals the round engine holds, by cluster (recycled after each close). */
  private readonly heldBuffers = new Map<number, Float32Array>();
  /** Threads: proposals the engine holds whose content is computed at the next flush. */
  private readonly undecoded: { pending: Pending; buffer: Float32Array; weight: number }[] = [];
  /** Bytes of the coordinator's last delta frame (what every worker downloads). */
  private lastFrameBytes = 0;
  private staleAccepted = 0;
  private roundsTotal = 0;
  private readonly frameBytes: number;
  private readonly proposalBytes: number;
  private readonly workers: Worker[] = [];
  private readonly byId = new Map<string, Worker>();
  private readonly clusters = new Map<number, Cluster>();
  private nextClusterId = 0;
  private nextJoinSeq = 0;
  private membershipChanged = false;
  private readonly byzantine: number[] = [];
  private readonly banned = new Set<number>();
  private readonly engine: ContentEngine | undefined;
  private readonly pool: ContentPool | undefined;
  private readonly inFlight: { pending: Pending; job: ContentJob }[] = [];
  /** Proposal buffers the coordinator is done with, reused for the next decodes. */
  private readonly spare: Float32Array[] = [];
  private readonly history: MetricPoint[] = [];
  private initialLoss = NaN;
  private reached: MetricPoint | undefined;
  private done: SimulationResult['ended'] | undefined;
  /** Deadline of the pending timer event, engine milliseconds. */
  private timerAtMs = Infinity;
  /** Clusters with a live, non-quarantined member; recomputed after leaves, bans and placement. */
  private liveCache: Set<number> | undefined;
  private quorumLost: { since: number; live: number; quorum: number } | undefined;
  private readonly bytes = { peer: 0, proposal: 0, broadcast: 0 };
  private readonly counters: SimulationResult['counters'] = {
    clusterRounds: 0,
    proposals: 0,
    staleDropped: 0,
    staleAccepted: 0,
    notVoting: 0,
    doorRejected: 0,
    filtered: 0,
    approximateDecodes: 0,
    proposalsRefused: 0,
    agreementRounds: 0,
    joins: 0,
    leaves: 0,
  };
  private readonly quarantined: string[] = [];
  private readonly quarantinedAt: Record<string, number> = {};
  private readonly perWorker: Record<string, WorkerTally> = {};
  private readonly staleness: number[] = [];
  /** The step factor of every counted proposal (1 unless `stalenessStep: 'sdde'`). */
  private readonly stepScales: number[] = [];
  private readonly waitCounts: number[] = [];
  private taskTimeSum = 0;
  private taskCount = 0;
  /** Auto staleness: recent task times (only kept when auto), next analysis time, decisions. */
  private readonly recentTaskTimes: number[] = [];
  private nextStalenessAt = Infinity;
  private readonly stalenessDecisions: StalenessDecision[] = [];
  private roundCounter = 0;

  constructor(scenario: Scenario, threads: number) {
    const s = scenario;
    this.s = s;
    this.model = createModel(s);
    this.d = this.model.dimension;
    this.jobId = jobIdOf(s.jobName);
    const codec = getCodec(s.codec.name);
    const proposalCodec = getCodec(s.proposalCodec.name);
    const block = (c: typeof codec, spec: Scenario['codec']) =>
      c.defaultBlockSize > 0 ? spec.blockSize : 0;
    this.frameBytes = FRAME_HEADER_BYTES + codec.payloadBytes(this.d, block(codec, s.codec));
    this.proposalBytes =
      FRAME_HEADER_BYTES +
      proposalCodec.payloadBytes(this.d, block(proposalCodec, s.proposalCodec));
    const initial = this.model.init(s.seed);
    // the product's round engine; its clock is simulated time in milliseconds
    this.coordinator = new RoundEngine({
      dimension: this.d,
      jobId: this.jobId,
      codec: s.proposalCodec.name,
      blockSize: s.proposalCodec.blockSize,
      mode: s.agreement.mode,
      epsilon: s.agreement.epsilon,
      staleness: s.staleness === 'auto' ? AUTO_INITIAL_STALENESS : s.staleness,
      graceMs: s.agreement.grace * 1000,
      initial,
      iteration: 0,
      quorum: s.agreement.mode === 'average' ? (s.agreement.quorum ?? 1) : undefined,
      estimator: s.agreement.estimator,
      trim: s.agreement.trim,
      trimFloor: s.agreement.trimFloor,
      clip: s.agreement.clip,
    });
    const { count, placement } = s.byzantine;
    for (let i = 0; i < count; i++) {
      this.byzantine.push(placement === 'first' ? i : Math.floor((i * s.workers) / count));
    }
    for (let i = 0; i < s.workers; i++) this.addWorker(0);
    this.place();
    const partitions = Math.max(1, this.clusters.size * s.cluster.size);
    const trainSize = Math.max(1, this.model.trainSize);
    const setup = {
      partitions,
      shardSize:
        s.data.shardSize > 0
          ? s.data.shardSize
          : Math.min(trainSize, Math.max(8, Math.floor(trainSize / partitions))),
      jobId: this.jobId,
      byzantine: this.byzantine,
    };
    if (threads > 1) {
      const fixed =
        s.churn.joinRate === 0 && s.churn.leaveRate === 0 && s.churn.crashes.length === 0;
      if (s.byzantine.count > 0 || s.quarantine.enabled || !fixed) {
        throw new RangeError(
          'simulate: threads > 1 needs timing independent of content: no Byzantine workers, no ' +
            'quarantine, no churn or crashes',
        );
      }
      this.pool = new ContentPool(s, setup, threads);
      this.pool.setBase(0, initial);
    } else {
      this.engine = new ContentEngine(s, this.model, setup);
      this.engine.setBase(0, Float32Array.from(this.coordinator.base));
    }
    if (s.staleness === 'auto') this.nextStalenessAt = s.autoStaleness.every;
    this.scheduleCrashes();
    for (const w of this.workers) {
      if (w.leaveAt < s.stop.maxTime)
        this.queue.schedule(w.leaveAt, { kind: 'leave', worker: w.index });
    }
    if (s.churn.joinRate > 0) {
      if (!Number.isFinite(s.stop.maxTime)) {
        throw new RangeError('scenario: joins need a finite stop.maxTime');
      }
      this.scheduleJoin(0);
    }
  }

  dispose(): void {
    this.pool?.close();
  }

  // ------------------------------------------------------------------------------ setup

  private addWorker(now: number): Worker {
    const s = this.s;
    const index = this.workers.length;
    const rng = keyedRng(s.seed, Stream.worker, index);
    const slow = rng.next() < s.timing.slowFraction;
    const lifetime =
      s.churn.leaveRate > 0 ? -Math.log(1 - rng.next()) / s.churn.leaveRate : Infinity;
    const worker: Worker = {
      index,
      id: `w${index}`,
      joinSeq: this.nextJoinSeq++,
      speed: slow ? s.timing.slowFactor : 1,
      leaveAt: now + lifetime,
      rttMs: 2000 * sampleTime(s.timing.latency, rng),
    };
    this.workers.push(worker);
    this.byId.set(worker.id, worker);
    return worker;
  }

  private scheduleJoin(now: number): void {
    const rng = keyedRng(this.s.seed, Stream.churn, this.counters.joins, 0x101);
    const at = now - Math.log(1 - rng.next()) / this.s.churn.joinRate;
    if (at < this.s.stop.maxTime) this.queue.schedule(at, { kind: 'join' });
  }

  private scheduleCrashes(): void {
    const ids = [...this.clusters.keys()].sort((a, b) => a - b);
    for (const crash of this.s.churn.crashes) {
      for (const k of crash.clusters) {
        const id = ids[k];
        if (id === undefined) {
          throw new RangeError(`scenario: crash of cluster ${k}, there are ${ids.length}`);
        }
        let kept = 0;
        for (const w of this.clusters.get(id)!.seats) {
          if (w === undefined) continue;
          if (kept < (crash.keep ?? 0)) {
            kept++;
            continue;
          }
          if (crash.at < w.leaveAt) w.leaveAt = crash.at;
        }
      }
    }
  }

  private alive(w: Worker, now: number): boolean {
    return w.leaveAt > now;
  }

  private usable(w: Worker, now: number): boolean {
    return this.alive(w, now) && !this.banned.has(w.index);
  }

  /** Core's placement over the live workers; clusters without a live member are retired. */
  private place(): void {
    const now = this.queue.now;
    const s = this.s;
    const live: PlacementTab[] = [];
    for (const w of this.workers) {
      if (this.usable(w, now)) live.push({ id: w.id, joinSeq: w.joinSeq, rttMs: w.rttMs });
    }
    const current: ClusterSeats[] = [...this.clusters.values()]
      .filter((c) => !c.retired)
      .map((c) => ({ id: c.id, seats: c.seats.map((w) => w?.id) }));
    const placed = getPlacement(s.cluster.placement).place({
      clusters: current,
      live,
      clusterSize: s.cluster.size,
      nextClusterId: this.nextClusterId,
    });
    this.nextClusterId = placed.nextClusterId;
    const keep = new Set<number>();
    for (const seats of placed.clusters) {
      keep.add(seats.id);
      let c = this.clusters.get(seats.id);
      if (c === undefined) {
        c = {
          id: seats.id,
          seats: [],
          wait: undefined,
          round: undefined,
          epoch: 0,
          rounds: 0,
          retired: false,
        };
        this.clusters.set(seats.id, c);
      }
      c.seats = seats.seats.map((id) => (id === undefined ? undefined : this.byId.get(id)));
    }
    for (const c of this.clusters.values()) if (!keep.has(c.id)) c.retired = true;
    this.coordinator.setClusters([...keep]);
    // the engine forgets the proposals of clusters that no longer vote
    for (const id of [...this.heldBuffers.keys()]) if (!keep.has(id)) this.heldBuffers.delete(id);
    this.membershipChanged = false;
    this.liveCache = undefined;
  }

  // ------------------------------------------------------------------------------ run

  run(): SimulationResult {
    const wallStart = performance.now();
    this.record(0);
    this.initialLoss = this.history[0]!.loss;
    for (const c of [...this.clusters.values()]) this.startRound(c, 0);
    try {
      while (this.done === undefined && this.queue.size > 0) {
        if (this.queue.peekTime() > this.s.stop.maxTime) break;
        const { time, event } = this.queue.pop()!;
        this.handle(event, time);
      }
      this.flush();
    } catch (error) {
      if (!(error instanceof DivergedError)) throw error;
      this.done = 'diverged';
    }
    const last = this.history[this.history.length - 1]!;
    if (last.iteration !== this.coordinator.iteration || this.done === 'diverged') {
      this.record(Math.min(this.queue.now, this.s.stop.maxTime));
    }
    let stalled: Stall | undefined;
    if (this.done === undefined) {
      const lost = this.quorumLost;
      if (lost !== undefined) {
        stalled = {
          iteration: this.coordinator.iteration,
          since: lost.since,
          liveClusters: lost.live,
          quorum: lost.quorum,
        };
        this.done = 'stalled';
      } else {
        this.done = 'max-time';
      }
    }
    this.counters.staleDropped = this.coordinator.staleDropped;
    this.counters.staleAccepted = this.staleAccepted;
    this.counters.agreementRounds = this.roundsTotal;
    return {
      scenario: this.s,
      model: this.model.name,
      dimension: this.d,
      history: this.history,
      final: this.history[this.history.length - 1]!,
      reached: this.reached,
      stalled,
      diverged: this.done === 'diverged',
      ended: this.done,
      bytes: { ...this.bytes },
      counters: { ...this.counters },
      quarantined: [...this.quarantined],
      quarantinedAt: { ...this.quarantinedAt },
      perWorker: this.perWorker,
      byzantine: [...this.byzantine].sort((a, b) => a - b).map((i) => `w${i}`),
      staleness: this.staleness,
      stepScales: this.stepScales,
      finalStaleness: this.coordinator.staleness,
      stalenessDecisions: this.stalenessDecisions,
      waitCounts: this.waitCounts,
      meanTaskTime: this.taskCount > 0 ? this.taskTimeSum / this.taskCount : NaN,
      wallMs: performance.now() - wallStart,
    };
  }

  private handle(event: SimEvent, now: number): void {
    switch (event.kind) {
      case 'start': {
        const c = this.clusters.get(event.cluster);
        if (c !== undefined && !c.retired && c.round === undefined) this.startRound(c, now);
        return;
      }
      case 'ready': {
        const c = this.clusters.get(event.cluster);
        if (c !== undefined && c.round !== undefined && c.round.epoch === event.epoch) {
          this.finishRound(c, now);
        }
        return;
      }
      case 'proposal':
        this.onProposal(event.cluster, event.baseIteration, event.pending, now);
        return;
      case 'timer':
        this.timerAtMs = Infinity;
        // the deadline the engine gave, not now · 1000 (which may round below it)
        this.tryClose(now, event.atMs);
        return;
      case 'leave':
        this.counters.leaves++;
        this.liveCache = undefined;
        this.membershipChanged = true;
        this.tryClose(now);
        return;
      case 'join': {
        this.counters.joins++;
        const w = this.addWorker(now);
        if (w.leaveAt < this.s.stop.maxTime) {
          this.queue.schedule(w.leaveAt, { kind: 'leave', worker: w.index });
        }
        this.membershipChanged = true;
        this.scheduleJoin(now);
        return;
      }
    }
  }

  // ------------------------------------------------------------------------------ clusters

  private stragglerFactor(w: Worker, now: number): number {
    const st = this.s.timing.stragglers;
    if (st === undefined) return 1;
    const regime = Math.floor(now / st.period);
    if (st.alternate && regime % 2 === 1) return 1;
    const u = mix(this.s.seed, Stream.straggler, regime, w.index) / 4294967296;
    return u < st.fraction ? st.factor : 1;
  }

  private liveClusters(now: number): Set<number> {
    if (this.liveCache === undefined) {
      const live = new Set<number>();
      for (const c of this.clusters.values()) {
        if (!c.retired && c.seats.some((w) => w !== undefined && this.usable(w, now)))
          live.add(c.id);
      }
      this.liveCache = live;
    }
    return this.liveCache;
  }

  private startRound(c: Cluster, now: number): void {
    const s = this.s;
    const members: { worker: Worker; slot: number }[] = [];
    c.seats.forEach((w, slot) => {
      if (w !== undefined && this.usable(w, now)) members.push({ worker: w, slot });
    });
    if (members.length === 0) return;
    const t = s.training;
    const gradientsPerTask =
      t.localSteps *
      (s.cluster.redundancy + 1) *
      (t.mode === 'entropy-sgd' ? (t.entropy?.innerSteps ?? 5) : 1);
    const downBytes = this.lastFrameBytes;
    const peers = Math.max(0, members.length - 1);
    const roundKey = this.roundCounter++;
    const bandwidth = s.timing.bandwidth;
    const arrivals: Arrival[] = [];
    for (const { worker: w, slot } of members) {
      const rng = keyedRng(s.seed, Stream.compute, w.index, roundKey);
      const download = sampleTime(s.timing.latency, rng) + downBytes / bandwidth;
      let compute = 0;
      const slowness = w.speed * this.stragglerFactor(w, now);
      for (let k = 0; k < gradientsPerTask; k++) {
        compute += sampleTime(s.timing.compute, rng) * slowness;
      }
      const upload = sampleTime(s.timing.latency, rng) + (peers * this.frameBytes) / bandwidth;
      const task = download + compute + upload;
      this.taskTimeSum += task;
      this.taskCount++;
      if (this.s.staleness === 'auto') {
        this.recentTaskTimes.push(task);
        // trimmed in bulk: a shift per task would be O(window) each
        const window = this.s.autoStaleness.window;
        if (this.recentTaskTimes.length >= 2 * window) this.recentTaskTimes.splice(0, window);
      }
      const time = now + task;
      arrivals.push({ worker: w, slot, time: w.leaveAt <= time ? Infinity : time });
    }
    arrivals.sort((a, b) => a.time - b.time || a.slot - b.slot);
    const ready = this.readyTime(this.waitRule(c), arrivals, now);
    if (ready === undefined) return; // every member leaves before its message arrives
    c.epoch++;
    c.round = {
      epoch: c.epoch,
      baseIteration: this.coordinator.iteration,
      start: now,
      arrivals,
      held: ready.held,
    };
    this.queue.schedule(ready.at, { kind: 'ready', cluster: c.id, epoch: c.epoch });
  }

  /**
   * The cluster's wait rule: the product's (core WaitRule: mode floors, exact-decode condition,
   * deadline) with this scenario's backups — static b, or the dynamic policy.
   */
  private waitRule(c: Cluster): WaitRule {
    if (c.wait !== undefined) return c.wait;
    const s = this.s;
    const b = s.backup;
    const shape = {
      mode: aggregationModeOf(s.aggregator.name),
      clusterSize: s.cluster.size,
      redundancy: s.cluster.redundancy,
      f: s.aggregator.f,
    };
    const minWait = b.kind === 'static' ? undefined : b.minWait;
    const backups: BackupRule =
      b.kind === 'static'
        ? { kind: 'static', backups: b.backups ?? s.cluster.redundancy }
        : {
            kind: 'dynamic',
            window: b.window,
            gain: b.correlation > 0 ? correlatedGain(b.correlation) : linearGain,
          };
    c.wait = new WaitRule(shape, {
      backups: minWait === undefined ? backups : { ...backups, minWait },
      minPatience: s.timing.minPatience,
      patienceFactor: s.timing.patienceFactor,
    });
    return c.wait;
  }

  /**
   * When the cluster aggregates, stepping through its members' arrivals and departures (a member
   * leaving before its message arrives drops out of the live count then) and asking the wait rule
   * at each; the rule's deadline after the first arrival ends the wait when the rest never come.
   */
  private readyTime(
    rule: WaitRule,
    arrivals: Arrival[],
    start: number,
  ): { at: number; held: number } | undefined {
    const finite = arrivals.filter((a) => a.time < Infinity);
    if (finite.length === 0) return undefined;
    const departures = arrivals
      .filter((a) => a.time === Infinity)
      .map((a) => a.worker.leaveAt)
      .sort((x, y) => x - y);
    const code = this.gradientCode();
    const slots: number[] = [];
    let live = arrivals.length;
    let deadline = Infinity;
    let i = 0;
    let j = 0;
    while (i < finite.length || j < departures.length) {
      const nextArrival = i < finite.length ? finite[i]!.time : Infinity;
      const nextDeparture = j < departures.length ? departures[j]! : Infinity;
      const t = Math.min(nextArrival, nextDeparture);
      if (t > deadline) return { at: deadline, held: slots.length };
      if (nextArrival <= nextDeparture) {
        if (slots.length === 0) deadline = rule.deadline(t, start);
        slots.push(finite[i]!.slot);
        i++;
      } else {
        live--;
        j++;
      }
      const held = slots.length;
      const ready = rule.ready({
        live,
        written: held,
        allLiveWritten: held >= live,
        decodable: () => code?.decode(slots).exact ?? true,
      });
      if (ready) return { at: t, held };
    }
    return { at: deadline, held: slots.length };
  }

  private gradientCodeValue: GradientCode | undefined | null = null;

  /**
   * The clusters' gradient code in coded mode (the cluster round's, same seed; s = 0 included:
   * then only all m slots decode exactly): which slot sets decode exactly.
   */
  private gradientCode(): GradientCode | undefined {
    if (this.gradientCodeValue === null) {
      const { size, redundancy, scheme } = this.s.cluster;
      this.gradientCodeValue =
        aggregationModeOf(this.s.aggregator.name) === 'coded'
          ? createGradientCode({ slots: size, redundancy, scheme, seed: mix(this.s.seed, 0x6c) })
          : undefined;
    }
    return this.gradientCodeValue;
  }

  private finishRound(c: Cluster, now: number): void {
    const s = this.s;
    const round = c.round!;
    c.round = undefined;
    this.counters.clusterRounds++;
    const finite = round.arrivals.filter((a) => a.time < Infinity);
    const used = finite.filter((a) => a.time <= now).slice(0, Math.max(1, round.held));
    this.waitCounts.push(used.length);
    c.wait?.record(
      round.arrivals.length,
      finite.map((a) => a.time - round.start),
    );
    const peers = Math.max(0, round.arrivals.length - 1);
    this.bytes.peer += finite.length * peers * this.frameBytes;
    const job: ContentJob = {
      cluster: c.id,
      round: c.rounds++,
      baseIteration: round.baseIteration,
      members: used.map((a) => ({ worker: a.worker.index, slot: a.slot })),
    };
    const pending: Pending = { result: undefined };
    if (this.engine !== undefined) {
      pending.result = this.engine.run(job);
      this.apply(pending.result);
      if (pending.result.frame === undefined) {
        this.afterRound(c, round, now);
        return;
      }
    } else {
      // threads: content later, in a batch; timing cannot depend on it (see the header)
      this.pool!.submit(job);
      this.inFlight.push({ pending, job });
    }
    this.bytes.proposal += this.proposalBytes;
    const leader = used[0]!.worker;
    const rng = keyedRng(s.seed, Stream.latency, leader.index, job.round, c.id);
    const uplink = sampleTime(s.timing.latency, rng) + this.proposalBytes / s.timing.bandwidth;
    this.queue.schedule(now + uplink, {
      kind: 'proposal',
      cluster: c.id,
      baseIteration: round.baseIteration,
      pending,
    });
    this.afterRound(c, round, now);
  }

  /** Book a job's result: counters, tallies, bans; a non-finite honest value ends the run. */
  private apply(r: ContentResult): void {
    this.counters.doorRejected += r.doorRejected;
    this.counters.proposalsRefused += r.proposalsRefused;
    this.counters.filtered += r.filtered;
    this.counters.approximateDecodes += r.approximateDecodes;
    for (const [index, t] of r.tallies) {
      const id = `w${index}`;
      const total = (this.perWorker[id] ??= { used: 0, filtered: 0, rejected: 0 });
      total.used += t.used;
      total.filtered += t.filtered;
      total.rejected += t.rejected;
    }
    for (const index of r.banned) {
      if (this.banned.has(index)) continue;
      this.banned.add(index);
      this.quarantined.push(`w${index}`);
      this.quarantinedAt[`w${index}`] = this.coordinator.iteration;
      this.liveCache = undefined;
    }
    if (r.diverged !== undefined) throw new DivergedError(r.diverged);
  }

  /** Runs the thread pool's pending jobs, books their results, decodes the held proposals. */
  private flush(): void {
    if (this.pool === undefined || this.pool.pending === 0) return;
    const results = this.pool.flush();
    const done = this.inFlight.splice(0, this.inFlight.length);
    results.forEach((r, i) => {
      done[i]!.pending.result = r;
    });
    for (const r of results) this.apply(r);
    for (const { pending, buffer, weight } of this.undecoded.splice(0))
      this.decodeInto(pending, buffer, weight);
  }

  /**
   * Decodes a proposal frame into a zeroed buffer, as the coordinator does at its door, scaled
   * by `weight` (the staleness step factor; 1: in full).
   */
  private decodeInto(pending: Pending, buffer: Float32Array, weight: number): void {
    const frame = pending.result?.frame;
    if (frame === undefined) throw new Error('proposal frame missing');
    const decoded = decodeFrameInto(
      frame,
      buffer,
      { dimension: this.d, jobId: this.jobId },
      weight,
    );
    if (!decoded.ok) throw new Error(`coordinator refused a proposal: ${decoded.error.code}`);
  }

  private afterRound(c: Cluster, round: Round, now: number): void {
    // a newer base already exists (this cluster was slow): start again at once
    if (this.coordinator.iteration > round.baseIteration && !c.retired) this.startRound(c, now);
  }

  // ------------------------------------------------------------------------------ coordinator

  private onProposal(
    clusterId: number,
    baseIteration: number,
    pending: Pending,
    now: number,
  ): void {
    this.counters.proposals++;
    if (now >= this.nextStalenessAt) this.retuneStaleness(now);
    this.staleness.push(this.coordinator.iteration - baseIteration);
    // the engine reads a held update only when it closes the iteration: with threads, the
    // buffer is filled at the flush that precedes every close
    const buffer = this.spare.pop()?.fill(0) ?? new Float32Array(this.d);
    const outcome = this.coordinator.offer(clusterId, baseIteration, buffer, now * 1000);
    if (outcome.ok && outcome.counted) {
      const delay = this.coordinator.iteration - baseIteration;
      const weight =
        this.s.stalenessStep === 'sdde'
          ? stalenessStepScale(delay, this.s.training.learningRate, this.curvature())
          : 1;
      this.stepScales.push(weight);
      // a replaced (older) proposal's buffer is left to the GC: it may await a decode
      this.heldBuffers.set(clusterId, buffer);
      if (pending.result === undefined) this.undecoded.push({ pending, buffer, weight });
      else this.decodeInto(pending, buffer, weight);
    } else {
      this.spare.push(buffer);
      if (!outcome.ok && outcome.code === 'not-in-cluster') this.counters.notVoting++;
    }
    this.tryClose(now);
  }

  /** h for the SDDE analysis and the staleness step: given, or the quadratic's exact one. */
  private curvature(): number {
    const model = this.s.model;
    return (
      this.s.autoStaleness.curvature ??
      (model.kind === 'quadratic' ? Math.max(...model.eigenvalues) : NaN)
    );
  }

  /** `staleness: 'auto'`: re-pick S from the SDDE analysis of what was measured (file header). */
  private retuneStaleness(now: number): void {
    const auto = this.s.autoStaleness;
    this.nextStalenessAt = (Math.floor(now / auto.every) + 1) * auto.every;
    const window = auto.window;
    const delays = this.staleness.slice(-window);
    const times = this.recentTaskTimes.slice(-window);
    let n0 = 0;
    for (const w of this.workers) if (this.usable(w, now)) n0++;
    if (delays.length === 0 || times.length === 0 || n0 === 0) return;
    const meanTaskTime = times.reduce((a, b) => a + b, 0) / times.length;
    const curvature = this.curvature();
    const previous = this.coordinator.staleness;
    const points = analyzeStaleness({
      learningRate: this.s.training.learningRate,
      curvature,
      meanTaskTime,
      delays,
      sampleWorkers: n0,
      ...stalenessCandidates(n0, previous, true),
    });
    const decision = decideAutoStaleness(points, n0, previous);
    const candidates = points.some((p) => p.workers === n0)
      ? points.filter((p) => p.workers === n0)
      : points;
    if (decision.changed) this.coordinator.setStaleness(decision.threshold);
    this.stalenessDecisions.push({
      time: now,
      iteration: this.coordinator.iteration,
      activeWorkers: n0,
      samples: delays.length,
      meanDelay: delays.reduce((a, b) => a + b, 0) / delays.length,
      meanTaskTime,
      previous,
      threshold: decision.threshold,
      recommendedWorkers: decision.workers,
      stable: candidates.some((p) => p.stable),
      reason: decision.reason,
    });
  }

  /** Asks the round engine whether to close; `nowMs` is its clock (simulated milliseconds). */
  private tryClose(now: number, nowMs = now * 1000): void {
    if (this.done !== undefined) return;
    const live = this.liveClusters(now);
    const engine = this.coordinator;
    // no cluster left at all (every worker gone): nothing can ever propose
    const decision =
      engine.clusters.length === 0
        ? { action: 'quorum-lost' as const }
        : engine.decide(live, nowMs);
    if (decision.action === 'close') {
      this.quorumLost = undefined;
      this.close(now);
      return;
    }
    if (decision.action === 'quorum-lost') {
      const held = new Set(engine.proposers());
      let liveCount = 0;
      for (const id of engine.clusters) if (live.has(id) || held.has(id)) liveCount++;
      this.quorumLost ??= { since: now, live: liveCount, quorum: engine.quorum };
      this.quorumLost.live = liveCount;
      return;
    }
    this.quorumLost = undefined;
    if (decision.until !== undefined && decision.until < this.timerAtMs) {
      this.timerAtMs = decision.until;
      this.queue.schedule(decision.until / 1000, { kind: 'timer', atMs: decision.until });
    }
  }

  private close(now: number): void {
    this.flush();
    let closed: ClosedIteration;
    try {
      closed = this.coordinator.close();
    } catch (error) {
      // a codec refuses a non-finite delta (RangeError) before the engine changes anything
      if (error instanceof RangeError) throw new DivergedError(error.message);
      throw error;
    }
    for (const buffer of this.heldBuffers.values()) this.spare.push(buffer);
    this.heldBuffers.clear();
    this.staleAccepted += closed.staleAccepted;
    this.roundsTotal += closed.rounds;
    this.lastFrameBytes = closed.frame.byteLength;
    let liveWorkers = 0;
    for (const w of this.workers) if (this.alive(w, now)) liveWorkers++;
    this.bytes.broadcast += closed.frame.byteLength * liveWorkers;
    const it = closed.iteration;
    this.publishBase(it);
    const stop = this.s.stop;
    if (it % this.s.evalEvery === 0 || it <= this.s.evalEarly || it >= stop.maxIterations) {
      const point = this.record(now);
      const bad =
        !Number.isFinite(point.loss) ||
        point.loss > stop.divergeFactor * Math.max(this.initialLoss, 1e-12);
      if (bad) {
        this.done = 'diverged';
        return;
      }
      const hitAccuracy =
        stop.targetAccuracy !== undefined && point.accuracy >= stop.targetAccuracy;
      const hitLoss = stop.targetLoss !== undefined && point.loss <= stop.targetLoss;
      if ((hitAccuracy || hitLoss) && this.reached === undefined) {
        this.reached = point;
        this.done = 'target';
        return;
      }
    }
    if (it >= stop.maxIterations) {
      this.done = 'max-iterations';
      return;
    }
    if (this.s.cluster.rebalance && this.membershipChanged) this.place();
    // the coordinator's own time to close (timing.coordinatorClose): the iteration reaches the
    // clusters that much later
    const cost = this.s.timing.coordinatorClose;
    const startAt = now + (cost ? (cost.fixedMs + cost.perWorkerMs * liveWorkers) / 1000 : 0);
    for (const c of [...this.clusters.values()]) {
      if (!c.retired && c.round === undefined) {
        this.queue.schedule(startAt, { kind: 'start', cluster: c.id });
      }
    }
  }

  /** Hands the new base to the content engine and forgets bases no round can still use. */
  private publishBase(iteration: number): void {
    let oldest = iteration;
    for (const c of this.clusters.values()) {
      if (c.round !== undefined) oldest = Math.min(oldest, c.round.baseIteration);
    }
    if (this.engine !== undefined) {
      // the round engine moves its base in place: the content engine keeps a copy per iteration
      this.engine.setBase(iteration, Float32Array.from(this.coordinator.base));
      this.engine.dropBasesBefore(oldest);
    } else {
      this.pool!.setBase(iteration, this.coordinator.base);
      this.pool!.dropBasesBefore(oldest);
    }
  }

  private record(now: number): MetricPoint {
    const e = this.model.evaluate(this.coordinator.base, this.s.data.evalLimit);
    const point: MetricPoint = {
      iteration: this.coordinator.iteration,
      time: now,
      loss: e.loss,
      accuracy: e.accuracy,
      bytesSent: this.bytes.peer + this.bytes.proposal,
    };
    this.history.push(point);
    return point;
  }
}
