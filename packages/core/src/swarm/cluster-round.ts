/**
 * One cluster's iteration as seen from one tab: the cluster's shared memory (one register per
 * slot, each written by its own tab and broadcast to the others), when to stop waiting, and what
 * the cluster update is. Pure: Float32Arrays in, decisions out, a clock and a logger passed in,
 * no sockets (DESIGN.md step 4; seeds 000, 002, 003, 004 in ../shared/seeds/).
 *
 * Guarantees
 * - Registers: a slot's first write for iteration k is its value for k (a single writer never
 *   writes twice; later copies are ignored as 'duplicate'). A register written for k + 1 before
 *   this tab reached k + 1 is kept for it; writes for k − 1 after k began are only recorded as
 *   late arrivals for the backup-worker policy; older ones are 'stale'. A slot that wrote and
 *   then left keeps its value (a closed tab simply stops writing).
 * - When to aggregate (once per iteration, never twice): as soon as every live slot has written;
 *   or when the fastest k have written, k = BackupWorkerPolicy.waitFor() over the n live slots
 *   (seed 003, dynamic backup workers; fed with every register's arrival time, late ones too;
 *   the rule is wait-rule.ts, which the simulator runs too),
 *   with k ≥ min(n, m − s) in coded mode and k ≥ min(n, 2f + 1) in robust mode, and in coded mode
 *   only once the held registers decode exactly; or, failing both, at the deadline
 *   firstArrival + max(minPatienceMs, patienceFactor · (firstArrival − start)), so a live peer
 *   that never writes (broken link, paused tab) cannot stall the cluster.
 * - Coded mode (job.aggregator 'mean'; gradient coding, Tandon et al. 2017 / seed 004): register
 *   i holds Σ_j B[i][j] · u_j over the s + 1 local partitions j of slot i, u_j the L-step update
 *   on partition j. From any m − s registers (cyclic code) `decode` gives exact weights, and the
 *   cluster update is (1/m) · Σ_i a_i · register_i = (1/m) · Σ_{j<m} u_j, the mean partition
 *   update. Below that the approximate decode is used and the result is flagged `approximate`.
 * - Robust mode (any other aggregator, seed 002 filters): register i holds the tab's own estimate
 *   (1/(s+1)) · Σ_{j ∈ held(i)} u_j — equivalently (1/m) · [m/(s+1) · Σ_j u_j], the brief's
 *   full-sum estimate divided by m — and the cluster update is aggregator(registers) with the
 *   job's f. Both modes therefore produce the mean partition update, E = (1/m) Σ_j u_j: one
 *   L-step update's magnitude, so the learning rate means the same in both.
 * - Non-finite or wrong-length registers never reach a decode or a rule (rejected, reported);
 *   in robust mode each tab's updates also feed core's Quarantine (SafeguardSGD-style windows)
 *   and a quarantined tab's registers are left out.
 * - Proposing: the proposer (placement.proposer) is handed the cluster update once per
 *   iteration, with the registers it took (`inputs`: slot and frame digest, in the order used).
 *   Non-proposers aggregate too, so a tab that becomes proposer mid-iteration (the previous one
 *   left or was refuted) proposes at once if it already aggregated.
 * - Confirming (core's swarm/proposal.ts): the update is a deterministic function of the input
 *   registers and the rule — centered clipping starts from the coordinate-wise median, not from
 *   this tab's own history — so `recompute` gives any member the proposer's update from the
 *   same registers. Every register of the last few iterations is kept (late ones too) with the
 *   digest of its frame; an input this tab lacks or holds with another digest is reported.
 *
 * Parameters: dimension d; aggregator {name, f}; backupWindow (iterations remembered, default
 * 20); minPatienceMs (default 2000) and patienceFactor (default 3) of the deadline; quarantine
 * (robust mode; default window 10, threshold 3, 3 strikes, alignment test with z 5, lag-symmetry
 * test for replayed updates with its defaults; false to disable).
 */
import {
  fail,
  frameStepDelay,
  maxUpdateFrameBytes,
  ok,
  parseFrame,
  type ProposalInput,
  type Result,
} from '@swarmgrad/protocol';
import { getAggregator, type Aggregator, type AggregatorName } from '../aggregators/index.ts';
import { decodeParsedFrameInto } from '../codec/index.ts';
import { createGradientCode, decodeInto, type GradientCode } from '../gradient-coding.ts';
import { Quarantine, type QuarantineConfig, type WindowReport } from '../quarantine.ts';
import { allFinite } from '../vector.ts';
import type { Clock, Logger } from './host.ts';
import { frameDigest } from './proposal.ts';
import { WaitRule, waitFloor, type AggregationMode } from './wait-rule.ts';

/** `mean` decodes the gradient code exactly; every other rule aggregates robustly. */
export function aggregationModeOf(name: AggregatorName): AggregationMode {
  return name === 'mean' ? 'coded' : 'robust';
}

export interface ClusterMembership {
  clusterId: number;
  /**
   * This tab's slot; or `OBSERVER_SLOT` (−1) for a view that holds the cluster's registers but
   * writes none and is never waited for: the simulator's view of a cluster, which computes what
   * the proposer computes (the update depends on the registers only, never on who aggregates).
   */
  slot: number;
  clusterSize: number;
  redundancy: number;
  scheme: 'cyclic' | 'fractional-repetition';
  codeSeed: number;
  proposer: boolean;
  /** The live peers of the cluster (this tab excluded). */
  peers: readonly { slot: number; tabId: string }[];
}

export interface AggregateResult {
  iteration: number;
  mode: AggregationMode;
  /** The cluster update (mean partition update, see the file comment). */
  update: Float32Array;
  /** Slots whose registers the update uses, ascending. */
  contributors: number[];
  /** The registers handed to the decoder or the rule, in that order, with their digests. */
  inputs: ProposalInput[];
  /** Registers left out and why ('non-finite', 'wrong-length', 'filtered', 'quarantined'). */
  rejected: { slot: number; reason: string }[];
  /** Coded mode: fewer registers than an exact decode needs (approximate decode). */
  approximate: boolean;
  /** Registers the backup-worker rule waited for (k), live slots (n), registers held. */
  waitedFor: number;
  live: number;
  held: number;
  /** Aggregated at the deadline rather than by the rule. */
  timedOut: boolean;
  /** Milliseconds from the iteration's start to the aggregation. */
  elapsedMs: number;
}

export interface ClusterProposal extends AggregateResult {
  clusterId: number;
}

export type ReceiveOutcome =
  | 'held' // stored for the current iteration
  | 'late' // the iteration already aggregated (or the previous one): recorded for the policy
  | 'buffered' // for a later iteration (up to REGISTERS_AHEAD ahead)
  | 'duplicate'
  | 'stale'
  | 'ignored'; // no cluster or iteration yet, or a slot outside the cluster

export interface ClusterRoundOptions {
  dimension: number;
  aggregator: { name: AggregatorName; f: number };
  clock: Clock;
  logger: Logger;
  /** Called (once per iteration) when this tab is the proposer and the update is ready. */
  onPropose: (proposal: ClusterProposal) => void;
  /** Called once per iteration when this tab has aggregated. */
  onAggregate?: (result: AggregateResult) => void;
  backupWindow?: number;
  /** Iterations before the backup rule may wait for fewer than all (policy default: 5). */
  backupWarmup?: number;
  minPatienceMs?: number;
  patienceFactor?: number;
  quarantine?: QuarantineConfig | false;
  /** Parameters per model layer, in flat-vector order: the quarantine's lag-symmetry groups. */
  layers?: readonly number[];
  /**
   * Iterations before the current one whose registers are kept for confirmations (`recompute`;
   * default 4). The simulator's observer view recomputes nothing and keeps 0: at 10,000
   * workers each kept iteration is another 10,000 registers in memory.
   */
  archiveIterations?: number;
}

interface Register {
  vector: Float32Array;
  /** Clock time of arrival. */
  at: number;
  /**
   * Why a coded decode cannot take it ('wrong-length', 'non-finite'), judged once when it is
   * held: the wait rule asks whether the held registers decode at every arrival.
   */
  unusable: 'wrong-length' | 'non-finite' | undefined;
}

/**
 * How far behind a register's local steps were (its frame header, core pipeline.ts): the
 * oldest step's staleness (the drop rule's) and the mean over its steps (seed 001's step
 * scale). Lock-step registers: both 0.
 */
export interface RegisterAge {
  staleness: number;
  stepDelay: number;
}

/**
 * A register's age as its frame carries it (a number: the staleness, every step as behind as
 * the first): the mean delay rounded as the frame rounds it, so a tab's own register and the
 * copies its peers decode count alike in every member's proposal age.
 */
function ageOf(age: RegisterAge | number): RegisterAge {
  const { staleness, stepDelay } =
    typeof age === 'number' ? { staleness: age, stepDelay: age } : age;
  return { staleness, stepDelay: frameStepDelay(stepDelay, staleness) };
}

interface ArchivedRegister extends RegisterAge {
  vector: Float32Array;
  digest: string;
}

/** Iterations of registers kept for confirmations (the current one and this many before). */
const DEFAULT_ARCHIVE_ITERATIONS = 4;
/**
 * A register for a later iteration than this tab's is kept — the newest one per slot, up to
 * this many iterations ahead — for when this tab gets there: a tab that fell behind (a
 * coordinator reconnection, a parameter download) gets its peers' registers of the iteration it
 * will reach only once, as soon as they are written (they are not sent again on a link that is
 * up), and its cluster could not confirm proposals without them.
 */
export const REGISTERS_AHEAD = 1000;

/** ClusterMembership.slot of a view that writes no register (see there). */
export const OBSERVER_SLOT = -1;

export type RecomputeResult =
  | ({ ok: true; update: Float32Array } & RegisterAge)
  | {
      ok: false;
      reason:
        'missing-register' | 'register-mismatch' | 'not-member' | 'unknown-rule' | 'too-few-inputs';
      slots?: number[];
    };

interface ArrivalRecord {
  iteration: number;
  startedAt: number;
  /** Live slots when the iteration started (the policy's n peers). */
  slots: Set<number>;
  /** Arrival time (ms after start) per slot, late arrivals included. */
  arrivals: Map<number, number>;
}

export interface ClusterRoundStats {
  aggregated: number;
  proposed: number;
  timedOut: number;
  approximate: number;
  late: number;
  stale: number;
  duplicate: number;
  /** Registers left out of an aggregation, by reason. */
  rejected: Record<string, number>;
}

const DEFAULT_QUARANTINE: QuarantineConfig = {
  window: 10,
  threshold: 3,
  strikes: 3,
  alignment: true,
  z: 5,
  lagSymmetry: true,
};

export class ClusterRound {
  private readonly options: ClusterRoundOptions;
  private readonly archiveIterations: number;
  private readonly clock: Clock;
  private modeValue: AggregationMode = 'coded';
  private aggregatorSpec: { name: AggregatorName; f: number };
  private aggregator: Aggregator | undefined;
  private quarantine: Quarantine | undefined;
  /** The operator's new rule, applied when the next iteration starts (see setAggregator). */
  private pendingAggregator: { name: AggregatorName; f: number } | undefined;
  private membership: ClusterMembership | undefined;
  private code: GradientCode | undefined;
  private codeKey = '';
  private currentIteration: number | undefined;
  private startedAt = 0;
  private registers = new Map<number, Register>();
  /** Slots whose write for the current iteration was refused at the door (code, arrival). */
  private doorRejected = new Map<number, { code: string; at: number }>();
  /** Robust mode: registers of the current iteration that came after it was aggregated, and
   * slots whose register the rule refused as non-finite or wrong-length — the quarantine judges
   * every register of an iteration, not only the fastest ones the backup rule waited for. */
  private lateRegisters = new Map<number, Float32Array>();
  private hardRejected = new Set<number>();
  /** Every register of recent iterations, first write per slot, for recompute(). */
  private archive = new Map<number, Map<number, ArchivedRegister>>();
  /** Per slot, its newest register for an iteration this tab has not reached yet. */
  private readonly ahead = new Map<number, ArchivedRegister & { iteration: number }>();
  private record: ArrivalRecord | undefined;
  private previous: ArrivalRecord | undefined;
  private result: AggregateResult | undefined;
  private proposedIteration: number | undefined;
  private selfActive = true;
  private rule: WaitRule | undefined;
  private timer: unknown;
  private timerAt: number | undefined;
  private readonly announced = new Set<string>();
  /** The last quarantine window whose strikes were logged. */
  private loggedWindow: number | undefined;
  readonly stats: ClusterRoundStats = {
    aggregated: 0,
    proposed: 0,
    timedOut: 0,
    approximate: 0,
    late: 0,
    stale: 0,
    duplicate: 0,
    rejected: {},
  };

  constructor(options: ClusterRoundOptions) {
    if (!Number.isInteger(options.dimension) || options.dimension < 1) {
      throw new RangeError(`dimension must be a positive integer, got ${options.dimension}`);
    }
    const archive = options.archiveIterations ?? DEFAULT_ARCHIVE_ITERATIONS;
    if (!Number.isInteger(archive) || archive < 0) {
      throw new RangeError(`archiveIterations must be a non-negative integer, got ${archive}`);
    }
    this.archiveIterations = archive;
    this.options = options;
    this.clock = options.clock;
    this.aggregatorSpec = options.aggregator;
    this.applyAggregator(options.aggregator);
  }

  /** 'coded' (gradient code, mean) or 'robust' (a filter over the members' own updates). */
  get mode(): AggregationMode {
    return this.modeValue;
  }

  /** The rule in force for the current iteration. */
  get aggregatorInUse(): { name: AggregatorName; f: number } {
    return { ...this.aggregatorSpec };
  }

  /**
   * The operator changed the cluster's rule (it comes with a placement, which the coordinator
   * sends before the next iteration): every member switches when that iteration starts, so the
   * registers of one iteration are always of one kind (coded messages or own updates).
   */
  setAggregator(spec: { name: AggregatorName; f: number }): void {
    const same = spec.name === this.aggregatorSpec.name && spec.f === this.aggregatorSpec.f;
    this.pendingAggregator = same ? undefined : { ...spec };
  }

  private applyAggregator(spec: { name: AggregatorName; f: number }): void {
    const before = this.modeValue;
    this.aggregatorSpec = { ...spec };
    this.modeValue = aggregationModeOf(spec.name);
    if (this.modeValue === 'coded') {
      this.aggregator = undefined;
      this.quarantine = undefined;
      return;
    }
    // no state of this tab's own (centered clipping starts from the median): every member
    // must compute the same update from the same registers (recompute)
    this.aggregator = getAggregator(spec.name);
    // a robust rule following another keeps the quarantine's memory of misbehaving peers
    if (before === 'robust' && this.quarantine) return;
    const q = this.options.quarantine ?? DEFAULT_QUARANTINE;
    const { dimension, layers } = this.options;
    this.quarantine =
      q === false ? undefined : new Quarantine({ segments: layers, ...q, dim: dimension });
  }

  get iteration(): number | undefined {
    return this.currentIteration;
  }

  /** The result of the current iteration, once aggregated. */
  get aggregated(): AggregateResult | undefined {
    return this.result;
  }

  /** Slots holding a register for the current iteration. */
  heldSlots(): number[] {
    return [...this.registers.keys()].sort((a, b) => a - b);
  }

  /**
   * The peers' registers this tab holds (its own slot left out), keyed by tab id: those of the
   * current iteration, or of the previous one when it holds more of those — what a
   * fault-injecting tab's colluding attacks read (faults.ts).
   */
  peerRegisters(): { id: string; update: Float32Array }[] {
    const m = this.membership;
    if (!m) return [];
    const of = (registers: Map<number, { vector: Float32Array }> | undefined) =>
      [...(registers?.entries() ?? [])]
        .filter(([slot]) => slot !== m.slot)
        .map(([slot, r]) => ({ id: this.keyOf(slot), update: r.vector }));
    const current = of(this.registers);
    const previous =
      this.currentIteration === undefined ? [] : of(this.archive.get(this.currentIteration - 1));
    return previous.length > current.length ? previous : current;
  }

  /** How many registers the backup rule currently waits for (k), for status displays. */
  waitCount(): number {
    const n = this.liveSlots().size;
    return n === 0 ? 0 : this.waitFor(n);
  }

  isQuarantined(tabId: string): boolean {
    return this.quarantine?.isQuarantined(tabId) ?? false;
  }

  /** The quarantine's last closed window (distances, alignment test, strikes given). */
  quarantineWindow(): WindowReport | undefined {
    return this.quarantine?.lastWindow;
  }

  /** Peers (by tab id) this tab's filter has quarantined, sorted; reported to the coordinator. */
  quarantinedPeers(): string[] {
    return (this.quarantine?.quarantined() ?? []).filter(
      (id) => id !== 'self' && !id.startsWith('slot-'),
    );
  }

  /** A placement: the cluster, this tab's slot, the live peers, the proposer flag. */
  setMembership(membership: ClusterMembership): void {
    const before = this.membership;
    const key = `${membership.clusterSize}/${membership.redundancy}/${membership.scheme}/${membership.codeSeed}`;
    const moved =
      before === undefined ||
      before.clusterId !== membership.clusterId ||
      before.slot !== membership.slot ||
      key !== this.codeKey;
    if (key !== this.codeKey) {
      this.code = createGradientCode({
        slots: membership.clusterSize,
        redundancy: membership.redundancy,
        scheme: membership.scheme,
        seed: membership.codeSeed,
      });
      this.codeKey = key;
    }
    this.membership = { ...membership, peers: [...membership.peers] };
    if (!moved && before !== undefined) this.forgetReplacedWriters(before, membership);
    if (moved) {
      // registers of another cluster (or another code) mean nothing here
      this.forgetSeat();
      if (this.currentIteration !== undefined) this.record = this.newRecord(this.currentIteration);
      this.clearTimer();
      if (before !== undefined) {
        this.options.logger.info(
          { clusterId: membership.clusterId, slot: membership.slot },
          'cluster membership changed',
        );
      }
    }
    // the proposer role came to this tab: it proposes what it aggregated — again, when the
    // role comes back after its earlier proposal of this iteration was not confirmed
    const becameProposer = membership.proposer && before?.proposer !== true;
    if (
      this.result &&
      membership.proposer &&
      (this.proposedIteration !== this.result.iteration || becameProposer)
    ) {
      // registers that came after this tab aggregated are taken now: a proposal of the early
      // ones alone is one the members that hold more do not vouch for (too-few-inputs)
      if (!this.reaggregate()) this.propose(this.result);
    }
    this.evaluate();
  }

  /**
   * Aggregates the current iteration again when registers came after it was aggregated (late
   * ones), so a proposal made now takes them too. Returns whether it did (aggregate() then
   * proposes, when this tab is the proposer).
   */
  private reaggregate(): boolean {
    const iteration = this.currentIteration;
    const result = this.result;
    if (iteration === undefined || result === undefined || result.iteration !== iteration)
      return false;
    const archived = this.archive.get(iteration);
    if (archived === undefined) return false;
    const now = this.clock.now();
    let added = false;
    for (const [slot, register] of archived) {
      if (this.registers.has(slot) || this.doorRejected.has(slot)) continue;
      this.registers.set(slot, this.held(register.vector, now));
      this.lateRegisters.delete(slot);
      added = true;
    }
    if (!added) return false;
    this.result = undefined;
    this.aggregate(false);
    return true;
  }

  /**
   * The coordinator did not count this tab's proposal for `iteration` (its cluster could not
   * confirm it yet: too few live members, or they could not judge): propose again when the next
   * placement comes (a member joined, or the role came back).
   */
  allowRepropose(iteration: number): void {
    if (this.proposedIteration === iteration) this.proposedIteration = undefined;
  }

  /**
   * This tab lost its seat (the coordinator gave it a new identity): no cluster until the next
   * setMembership, which then starts the current iteration's registers afresh, as a move does.
   */
  leaveCluster(): void {
    this.membership = undefined;
    this.clearTimer();
    this.forgetSeat();
    this.record = undefined;
    // the iteration starts over for this tab: the outage is not time its peers were slow
    this.startedAt = this.clock.now();
  }

  /**
   * A slot that has a new occupant since the last placement (its writer left mid-iteration and
   * a replacement took the seat) has one writer again: the new one. The old writer's register
   * of the current iteration (and any buffered ahead) is dropped, or this tab would keep it
   * ('duplicate' for the newcomer's) while the newcomer aggregates its own: the two would
   * refuse each other's proposals, and a cluster of two rotated the proposer role 1,220 times
   * on one iteration (CI, 2026-12-07). A slot left vacant keeps its register: a peer that wrote
   * and left still counts. Registers are taken only from a slot's occupant (the worker's door),
   * so whatever a re-occupied slot holds was written by someone else.
   */
  private forgetReplacedWriters(before: ClusterMembership, after: ClusterMembership): void {
    const occupantBefore = new Map(before.peers.map((p) => [p.slot, p.tabId]));
    const replaced = after.peers
      .filter((p) => occupantBefore.get(p.slot) !== p.tabId)
      .map((p) => p.slot);
    if (replaced.length === 0) return;
    const current = this.currentIteration;
    for (const slot of replaced) {
      this.registers.delete(slot);
      this.doorRejected.delete(slot);
      this.lateRegisters.delete(slot);
      this.hardRejected.delete(slot);
      this.ahead.delete(slot);
      if (current !== undefined) this.archive.get(current)?.delete(slot);
    }
    // an aggregate of the old writer's register is no longer what this cluster computes: it is
    // made again (and proposed, by a proposer) once the wait rule holds with the new one's
    const result = this.result;
    if (result && result.inputs.some((input) => replaced.includes(input.slot))) {
      this.result = undefined;
    }
  }

  /** Drops everything tied to the old seat: registers, result, arrival history, policy. */
  private forgetSeat(): void {
    this.registers.clear();
    this.doorRejected.clear();
    this.lateRegisters.clear();
    this.hardRejected.clear();
    this.archive.clear();
    this.ahead.clear();
    this.result = undefined;
    this.previous = undefined;
    this.rule = undefined;
  }

  /** Whether this tab is computing (a paused tab is not waited for). */
  setSelfActive(active: boolean): void {
    if (this.selfActive === active) return;
    this.selfActive = active;
    this.evaluate();
  }

  /** The coordinator opened iteration k (this tab's base is now k's). */
  startIteration(iteration: number): void {
    if (iteration === this.currentIteration) return;
    this.clearTimer();
    this.observeFinishedIteration();
    if (this.pendingAggregator) {
      const from = this.aggregatorSpec.name;
      this.applyAggregator(this.pendingAggregator);
      this.pendingAggregator = undefined;
      this.options.logger.info(
        { iteration, from, to: this.aggregatorSpec.name, mode: this.modeValue },
        'aggregation rule changed',
      );
    }
    this.commitPrevious();
    this.previous = this.record;
    this.currentIteration = iteration;
    for (const kept of [...this.archive.keys()]) {
      if (kept < iteration - this.archiveIterations || kept > iteration) this.archive.delete(kept);
    }
    this.startedAt = this.clock.now();
    this.result = undefined;
    this.registers = new Map();
    this.doorRejected = new Map();
    this.record = this.newRecord(iteration);
    // registers written for this iteration before this tab got here
    for (const [slot, kept] of [...this.ahead]) {
      if (kept.iteration > iteration) continue;
      this.ahead.delete(slot);
      if (kept.iteration < iteration) continue;
      this.archiveRegister(iteration, slot, kept.vector, kept.digest, kept);
      this.registers.set(slot, this.held(kept.vector, this.startedAt));
      this.record.arrivals.set(slot, 0);
    }
    this.evaluate();
  }

  /** This tab's own register for `iteration` (the value its peers decode). */
  writeOwn(
    iteration: number,
    vector: Float32Array,
    digest?: string,
    age: RegisterAge | number = 0,
  ): ReceiveOutcome {
    if (!this.membership) return 'ignored';
    return this.receive(this.membership.slot, iteration, vector, digest, age);
  }

  /**
   * A register write of `slot` for `iteration` (already through the door: decodeRegister).
   * `digest`: SHA-256 of the frame it came in (default: of the vector's bytes); `age`: the
   * staleness and step delay that frame carried (a number: both).
   */
  receive(
    slot: number,
    iteration: number,
    vector: Float32Array,
    digest?: string,
    age: RegisterAge | number = 0,
  ): ReceiveOutcome {
    const { staleness, stepDelay } = ageOf(age);
    const membership = this.membership;
    const current = this.currentIteration;
    if (!membership || current === undefined) return 'ignored';
    if (!Number.isInteger(slot) || slot < 0 || slot >= membership.clusterSize) return 'ignored';
    if (iteration > current && iteration <= current + REGISTERS_AHEAD) {
      const kept = this.ahead.get(slot);
      if (kept !== undefined && kept.iteration >= iteration) {
        this.stats.duplicate++;
        return 'duplicate';
      }
      // peers only move forward: one register per slot, the newest
      this.ahead.set(slot, {
        iteration,
        vector,
        digest: digest ?? vectorDigest(vector),
        staleness,
        stepDelay,
      });
      return 'buffered';
    }
    if (iteration >= current - this.archiveIterations && iteration <= current)
      this.archiveRegister(iteration, slot, vector, digest, { staleness, stepDelay });
    const now = this.clock.now();
    if (iteration === current) {
      if (this.registers.has(slot)) {
        this.stats.duplicate++;
        return 'duplicate';
      }
      if (!this.record!.arrivals.has(slot)) this.record!.arrivals.set(slot, now - this.startedAt);
      if (this.result) {
        if (this.quarantine && !this.registers.has(slot)) this.lateRegisters.set(slot, vector);
        this.stats.late++;
        return 'late';
      }
      this.registers.set(slot, this.held(vector, now));
      this.doorRejected.delete(slot); // a valid write supersedes a refused one
      this.evaluate();
      return 'held';
    }
    const previous = this.previous;
    if (previous && iteration === previous.iteration) {
      if (!previous.arrivals.has(slot)) previous.arrivals.set(slot, now - previous.startedAt);
      this.stats.late++;
      return 'late';
    }
    this.stats.stale++;
    return 'stale';
  }

  /**
   * A register of `slot` refused at the door (decodeRegister): counted, and in robust mode a
   * hard failure for the quarantine window of that tab.
   */
  rejectAtDoor(slot: number, iteration: number | undefined, code: string): void {
    this.stats.rejected[code] = (this.stats.rejected[code] ?? 0) + 1;
    const membership = this.membership;
    if (!membership) return;
    if (this.quarantine && (code === 'non-finite' || code === 'dimension-mismatch')) {
      this.quarantine.reportRejected(
        this.keyOf(slot),
        Math.max(0, iteration ?? this.currentIteration ?? 0),
        code === 'non-finite' ? 'non-finite' : 'wrong-length',
      );
    }
    // a refused write of this iteration still means the slot wrote: nobody waits for it
    if (
      iteration === undefined ||
      iteration !== this.currentIteration ||
      slot < 0 ||
      slot >= membership.clusterSize ||
      this.registers.has(slot) ||
      this.doorRejected.has(slot)
    ) {
      return;
    }
    const now = this.clock.now();
    if (!this.record!.arrivals.has(slot)) this.record!.arrivals.set(slot, now - this.startedAt);
    if (this.result) return;
    this.doorRejected.set(slot, { code, at: now });
    this.evaluate();
  }

  /** Stops the deadline timer (the tab leaves). */
  dispose(): void {
    this.clearTimer();
  }

  // ---------------------------------------------------------------------------------------

  private newRecord(iteration: number): ArrivalRecord {
    return {
      iteration,
      startedAt: this.clock.now(),
      slots: this.liveSlots(),
      arrivals: new Map(),
    };
  }

  private liveSlots(): Set<number> {
    const live = new Set<number>();
    const m = this.membership;
    if (!m) return live;
    for (const peer of m.peers) if (peer.slot !== m.slot) live.add(peer.slot);
    if (this.selfActive && m.slot !== OBSERVER_SLOT) live.add(m.slot);
    return live;
  }

  /** The wait rule for the current seat and aggregator (its backup policy kept across them). */
  private waitRule(): WaitRule {
    const m = this.membership!;
    const shape = {
      mode: this.mode,
      clusterSize: m.clusterSize,
      redundancy: m.redundancy,
      f: this.aggregatorSpec.f,
    };
    if (this.rule === undefined) {
      const { backupWindow, backupWarmup, minPatienceMs, patienceFactor } = this.options;
      this.rule = new WaitRule(shape, {
        backups: {
          kind: 'dynamic',
          window: backupWindow ?? 20,
          ...(backupWarmup === undefined ? {} : { warmup: backupWarmup }),
        },
        ...(minPatienceMs === undefined ? {} : { minPatience: minPatienceMs }),
        ...(patienceFactor === undefined ? {} : { patienceFactor }),
      });
    } else this.rule.setShape(shape);
    return this.rule;
  }

  private waitFor(n: number): number {
    return this.waitRule().waitFor(n);
  }

  /** Feeds the finished iteration's arrival times (late ones included) to the policy. */
  private commitPrevious(): void {
    const record = this.previous;
    if (!record || record.slots.size === 0) return;
    const times: number[] = [];
    for (const slot of record.slots) {
      const t = record.arrivals.get(slot);
      if (t !== undefined) times.push(Math.max(0, t));
    }
    // a sample for another peer count than today's is dropped (the policy is per n)
    this.waitRule().record(record.slots.size, times, this.liveSlots().size);
  }

  private evaluate(): void {
    const membership = this.membership;
    if (!membership || this.currentIteration === undefined || this.result) return;
    const written = this.registers.size + this.doorRejected.size;
    if (written === 0) {
      this.clearTimer();
      return;
    }
    const live = this.liveSlots();
    const n = live.size;
    let allLive = true;
    for (const slot of live) {
      if (!this.registers.has(slot) && !this.doorRejected.has(slot)) allLive = false;
    }
    const ready = this.waitRule().ready({
      live: n,
      written,
      allLiveWritten: allLive,
      decodable: () => this.code!.decode(this.validSlotsByArrival()).exact,
    });
    if (ready) return this.aggregate(false);
    this.armDeadline();
  }

  private armDeadline(): void {
    let first = Infinity;
    for (const register of this.registers.values()) first = Math.min(first, register.at);
    for (const refused of this.doorRejected.values()) first = Math.min(first, refused.at);
    const at = this.waitRule().deadline(first, this.startedAt);
    if (this.timer !== undefined && this.timerAt === at) return;
    this.clearTimer();
    const iteration = this.currentIteration;
    this.timerAt = at;
    this.timer = this.clock.setTimeout(
      () => {
        this.timer = undefined;
        this.timerAt = undefined;
        if (this.currentIteration === iteration && !this.result) {
          this.aggregate(true);
        }
      },
      Math.max(0, at - this.clock.now()),
    );
  }

  private clearTimer(): void {
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    this.timerAt = undefined;
  }

  private held(vector: Float32Array, at: number): Register {
    const unusable =
      vector.length !== this.options.dimension
        ? 'wrong-length'
        : allFinite(vector)
          ? undefined
          : 'non-finite';
    return { vector, at, unusable };
  }

  private validSlotsByArrival(): number[] {
    return [...this.registers.entries()]
      .filter(([, r]) => r.unusable === undefined)
      .sort((a, b) => a[1].at - b[1].at || a[0] - b[0])
      .map(([slot]) => slot);
  }

  private aggregate(timedOut: boolean): void {
    this.clearTimer();
    const membership = this.membership!;
    const iteration = this.currentIteration!;
    const live = this.liveSlots().size;
    const update = new Float32Array(this.options.dimension);
    const rejected: { slot: number; reason: string }[] = [];
    for (const [slot, { code }] of this.doorRejected) rejected.push({ slot, reason: code });
    const inputSlots: number[] = [];
    const { contributors, approximate } =
      this.mode === 'coded'
        ? this.decodeCoded(update, rejected, inputSlots)
        : {
            contributors: this.aggregateRobust(iteration, update, rejected, inputSlots),
            approximate: false,
          };
    const archived = this.archive.get(iteration);
    const inputs = inputSlots.map((slot) => ({
      slot,
      digest: archived?.get(slot)?.digest ?? vectorDigest(this.registers.get(slot)!.vector),
    }));
    for (const { slot, reason } of rejected) {
      if (this.doorRejected.has(slot)) continue; // counted at the door
      this.stats.rejected[reason] = (this.stats.rejected[reason] ?? 0) + 1;
    }
    const result: AggregateResult = {
      iteration,
      mode: this.mode,
      update,
      contributors,
      inputs,
      rejected: rejected.sort((a, b) => a.slot - b.slot),
      approximate,
      waitedFor: live === 0 ? 0 : this.waitFor(live),
      live,
      held: this.registers.size + this.doorRejected.size,
      timedOut,
      elapsedMs: this.clock.now() - this.startedAt,
    };
    this.result = result;
    this.stats.aggregated++;
    if (timedOut) this.stats.timedOut++;
    if (approximate) this.stats.approximate++;
    this.options.logger.debug(
      {
        iteration,
        contributors,
        rejected: result.rejected,
        approximate,
        timedOut,
        waitedFor: result.waitedFor,
        live,
      },
      'cluster aggregated',
    );
    this.options.onAggregate?.(result);
    if (membership.proposer && this.result === result) this.propose(result);
  }

  private decodeCoded(
    out: Float32Array,
    rejected: { slot: number; reason: string }[],
    inputs: number[],
  ): { contributors: number[]; approximate: boolean } {
    const m = this.membership!.clusterSize;
    for (const [slot, register] of this.registers) {
      if (register.unusable !== undefined) rejected.push({ slot, reason: register.unusable });
    }
    const slots = this.validSlotsByArrival();
    if (slots.length === 0) return { contributors: [], approximate: true };
    inputs.push(...slots);
    const messages = new Map<number, Float32Array>();
    for (const slot of slots) messages.set(slot, this.registers.get(slot)!.vector);
    const decoded = decodeCodedInto(this.code!, m, slots, messages, out);
    const contributors = slots.filter((slot) => decoded.weights[slot] !== 0).sort((a, b) => a - b);
    return { contributors, approximate: !decoded.exact };
  }

  private archiveRegister(
    iteration: number,
    slot: number,
    vector: Float32Array,
    digest: string | undefined,
    age: RegisterAge,
  ): void {
    let registers = this.archive.get(iteration);
    if (registers === undefined) {
      registers = new Map();
      this.archive.set(iteration, registers);
    }
    if (!registers.has(slot))
      registers.set(slot, {
        vector,
        digest: digest ?? vectorDigest(vector),
        staleness: age.staleness,
        stepDelay: age.stepDelay,
      });
  }

  /**
   * The age of a proposal of the registers `inputs` names (as archived, digest matching; one not
   * held counts as fresh): the largest staleness among them and the mean of their step delays
   * (the update is a mean of them, seed 002), the same at the proposer and at every member that
   * recomputes it.
   */
  inputAge(iteration: number, inputs: readonly ProposalInput[]): RegisterAge {
    const archived = this.archive.get(iteration);
    let staleness = 0;
    let stepDelaySum = 0;
    for (const input of inputs) {
      const held = archived?.get(input.slot);
      if (held !== undefined && held.digest === input.digest) {
        staleness = Math.max(staleness, held.staleness);
        stepDelaySum += held.stepDelay;
      }
    }
    // each held delay is at most its staleness, so their mean is at most the largest
    return { staleness, stepDelay: inputs.length > 0 ? stepDelaySum / inputs.length : 0 };
  }

  /** The largest staleness among the registers `inputs` names (inputAge). */
  inputStaleness(iteration: number, inputs: readonly ProposalInput[]): number {
    return this.inputAge(iteration, inputs).staleness;
  }

  /**
   * The cluster update of `iteration` from the given registers, as the proposer computed it:
   * same decoder or rule, same order, same arithmetic. Fails (never throws) when this tab does
   * not hold one of them, holds it with another digest, or is not in that cluster.
   */
  recompute(
    clusterId: number,
    iteration: number,
    inputs: readonly ProposalInput[],
    rule: { name: AggregatorName; f: number },
  ): RecomputeResult {
    const membership = this.membership;
    if (!membership || membership.clusterId !== clusterId)
      return { ok: false, reason: 'not-member' };
    const archived = this.archive.get(iteration);
    const missing: number[] = [];
    const mismatched: number[] = [];
    const vectors: Float32Array[] = [];
    for (const input of inputs) {
      const held = archived?.get(input.slot);
      if (held === undefined) missing.push(input.slot);
      else if (held.digest !== input.digest) mismatched.push(input.slot);
      else vectors.push(held.vector);
    }
    if (mismatched.length > 0) return { ok: false, reason: 'register-mismatch', slots: mismatched };
    if (missing.length > 0) return { ok: false, reason: 'missing-register', slots: missing };
    // A proposer may aggregate fewer registers than the rule waits for only at its deadline,
    // when the others never came: if this tab holds registers the proposal left out, the
    // proposer chose its inputs (e.g. only its own) and this tab does not vouch for it.
    // registers of peers this tab's own filter quarantined are left out by every honest
    // proposer: they neither count as live nor as left out
    const trusted = (slot: number) => this.quarantine?.isQuarantined(this.keyOf(slot)) !== true;
    const live = Math.max(1, [...this.liveSlots()].filter(trusted).length);
    const need = waitFloor({
      mode: aggregationModeOf(rule.name),
      clusterSize: membership.clusterSize,
      redundancy: membership.redundancy,
      f: rule.f,
    });
    const inputSlots = new Set(inputs.map((input) => input.slot));
    const leftOut = [...(archived?.keys() ?? [])].filter(
      (slot) => !inputSlots.has(slot) && trusted(slot),
    );
    if (inputs.length < Math.min(live, need) && leftOut.length > 0)
      return { ok: false, reason: 'too-few-inputs', slots: leftOut.sort((a, b) => a - b) };
    const update = new Float32Array(this.options.dimension);
    if (aggregationModeOf(rule.name) === 'coded') {
      const slots = inputs.map((input) => input.slot);
      if (new Set(slots).size !== slots.length || slots.some((s) => s >= membership.clusterSize))
        return { ok: false, reason: 'register-mismatch', slots };
      const messages = new Map<number, Float32Array>();
      inputs.forEach((input, index) => messages.set(input.slot, vectors[index]!));
      decodeCodedInto(this.code!, membership.clusterSize, slots, messages, update);
      return { ok: true, update, ...this.inputAge(iteration, inputs) };
    }
    let aggregator: Aggregator;
    try {
      aggregator = getAggregator(rule.name);
    } catch {
      return { ok: false, reason: 'unknown-rule' };
    }
    aggregator.aggregate(vectors, update, { f: rule.f });
    return { ok: true, update, ...this.inputAge(iteration, inputs) };
  }

  private aggregateRobust(
    iteration: number,
    out: Float32Array,
    rejected: { slot: number; reason: string }[],
    inputSlots: number[],
  ): number[] {
    const slots: number[] = [];
    const inputs: Float32Array[] = [];
    for (const slot of [...this.registers.keys()].sort((a, b) => a - b)) {
      if (this.quarantine?.isQuarantined(this.keyOf(slot))) {
        rejected.push({ slot, reason: 'quarantined' });
        continue;
      }
      slots.push(slot);
      inputs.push(this.registers.get(slot)!.vector);
    }
    if (inputs.length === 0) return [];
    inputSlots.push(...slots);
    const report = this.aggregator!.aggregate(inputs, out, { f: this.aggregatorSpec.f });
    for (const r of report.rejected) rejected.push({ slot: slots[r.index]!, reason: r.reason });
    // Being 'filtered' is not reported to the quarantine: CGE, Krum and Multi-Krum drop exactly
    // f inputs every round, so an honest tab whose partitions give systematically larger (or
    // farther) updates is filtered most rounds — it was quarantined that way (1 honest tab of 4
    // within 80 iterations, chaos suite). The distance, alignment and lag tests judge instead,
    // over every register of the iteration once it ends (observeFinishedIteration).
    for (const r of report.rejected) {
      if (r.reason !== 'non-finite' && r.reason !== 'wrong-length') continue;
      this.quarantine?.reportRejected(this.keyOf(slots[r.index]!), iteration, r.reason);
      this.hardRejected.add(slots[r.index]!);
    }
    return report.accepted.map((index) => slots[index]!);
  }

  /**
   * Robust mode, when the next iteration starts: every register of the finished one — those
   * aggregated and those that came later — goes to the quarantine at once, so the lag-symmetry
   * test sees a peer every iteration even when the backup rule rarely waits for it.
   */
  private observeFinishedIteration(): void {
    const q = this.quarantine;
    const iteration = this.currentIteration;
    const late = this.lateRegisters;
    const hard = this.hardRejected;
    this.lateRegisters = new Map();
    this.hardRejected = new Set();
    if (!q || iteration === undefined || !this.membership) return;
    const observed: { id: string; update: Float32Array }[] = [];
    const slots = new Set([...this.registers.keys(), ...late.keys()]);
    for (const slot of [...slots].sort((a, b) => a - b)) {
      if (hard.has(slot)) continue;
      const update = this.registers.get(slot)?.vector ?? late.get(slot)!;
      observed.push({ id: this.keyOf(slot), update });
    }
    q.observeIteration(iteration, observed);
    const window = q.lastWindow;
    if (window !== undefined && window.index !== this.loggedWindow && window.failed.length > 0) {
      // why a peer got a strike: the operator (and a test) can tell a replay from a distance
      this.loggedWindow = window.index;
      this.options.logger.warn(
        {
          window: window.index,
          failed: window.failed,
          distances: window.judged.map((id, i) => `${id}:${window.distances[i]?.toFixed(3)}`),
          scale: window.scale,
          alignment: window.directions.map(
            (d) =>
              `${d.id}:${d.alignment.toFixed(3)}/z${d.evidence.toFixed(1)}/c${d.correlation.toFixed(1)}`,
          ),
          lags: window.lags.map((l) => `${l.id}:${l.z.toFixed(2)}/${l.boundary.toFixed(2)}`),
        },
        'peers failed a quarantine window',
      );
    }
    for (const id of q.quarantined()) {
      if (this.announced.has(id)) continue;
      this.announced.add(id);
      this.options.logger.warn({ tab: id }, 'peer quarantined by the cluster filter');
    }
  }

  /** Quarantine key: the tab id when known (slots are reassigned), else the slot. */
  private keyOf(slot: number): string {
    const m = this.membership!;
    if (slot === m.slot) return 'self';
    return m.peers.find((p) => p.slot === slot)?.tabId ?? `slot-${slot}`;
  }

  private propose(result: AggregateResult): void {
    this.proposedIteration = result.iteration;
    this.stats.proposed++;
    this.options.onPropose({ ...result, clusterId: this.membership!.clusterId });
  }
}

/** (1/m) · the gradient-code decode of `slots` (in this order) from their messages. */
function decodeCodedInto(
  code: GradientCode,
  clusterSize: number,
  slots: readonly number[],
  messages: ReadonlyMap<number, Float32Array>,
  out: Float32Array,
): ReturnType<GradientCode['decode']> {
  const decoded = code.decode(slots);
  decodeInto(decoded, messages, out);
  const inv = 1 / clusterSize;
  for (let i = 0; i < out.length; i++) out[i]! *= inv;
  return decoded;
}

/** Digest of a register known only as a vector (tests; the worker passes frame digests). */
function vectorDigest(vector: Float32Array): string {
  return frameDigest(new Uint8Array(vector.buffer, vector.byteOffset, vector.byteLength));
}

export interface RegisterExpectations {
  jobId: number;
  dimension: number;
  /** Accepted iterations: [minIteration, maxIteration]. */
  minIteration: number;
  maxIteration: number;
  /** The job's staleness bound S: a register whose steps began on an older base is 'stale'. */
  maxStaleness?: number;
  /** The sender's slot in this tab's placement, when known. */
  senderSlot?: number;
}

export interface DecodedRegister {
  iteration: number;
  senderSlot: number;
  /** How many iterations before `iteration` the sender's steps began (frame header). */
  staleness: number;
  /** The mean over the sender's steps of how far behind each was (frame header). */
  stepDelay: number;
  vector: Float32Array;
}

/**
 * The door for a peer's register frame (untrusted): parse, job, round, iteration window,
 * staleness bound, sender slot, dimension, codec, finiteness. Never throws; a typed error code otherwise.
 */
export function decodeRegister(
  frame: Uint8Array,
  expect: RegisterExpectations,
): Result<DecodedRegister> {
  const maxFrameBytes = maxUpdateFrameBytes(expect.dimension);
  const parsed = parseFrame(frame, { maxFrameBytes });
  if (!parsed.ok) return parsed;
  const header = parsed.value.header;
  if (header.jobId !== expect.jobId >>> 0) {
    return fail('wrong-job', `frame of job ${header.jobId}, expected ${expect.jobId >>> 0}`);
  }
  if (header.round !== 0) return fail('bad-header', `register frame with round ${header.round}`);
  if (header.iteration < expect.minIteration) {
    return fail('stale', `register of iteration ${header.iteration}, at ${expect.minIteration}+`);
  }
  if (header.iteration > expect.maxIteration) {
    return fail(
      'wrong-iteration',
      `register of iteration ${header.iteration}, expected ≤ ${expect.maxIteration}`,
    );
  }
  if (expect.maxStaleness !== undefined && (header.staleness ?? 0) > expect.maxStaleness) {
    return fail(
      'stale',
      `register computed ${header.staleness} iterations behind, staleness bound ${expect.maxStaleness}`,
    );
  }
  if (expect.senderSlot !== undefined && header.senderSlot !== expect.senderSlot) {
    return fail(
      'bad-header',
      `sender claims slot ${header.senderSlot}, its slot is ${expect.senderSlot}`,
    );
  }
  const vector = new Float32Array(expect.dimension);
  const decoded = decodeParsedFrameInto(parsed.value, vector, {
    dimension: expect.dimension,
    jobId: expect.jobId,
  });
  if (!decoded.ok) return decoded;
  if (!allFinite(vector)) return fail('non-finite', 'decoded register is not finite');
  return ok({
    iteration: header.iteration,
    senderSlot: header.senderSlot,
    staleness: header.staleness ?? 0,
    stepDelay: header.stepDelay ?? header.staleness ?? 0,
    vector,
  });
}
