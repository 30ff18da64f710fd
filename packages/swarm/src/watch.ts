/**
 * What a swarm run measures, pure (no browser, no clock of its own): the stall detector fed with
 * the coordinator's polled status, and the summary the command prints as JSON.
 *
 * A round stalls when the coordinator's iteration does not advance for longer than
 * max(stallFactor × the median time per iteration so far, minStallMs) while the phase is
 * `training` the whole time — i.e. while a majority of clusters has a live tab, so the
 * coordinator could close the round. Time in `quorum-lost`, `paused`, `waiting` or `done` is
 * not a stall (the clock restarts when `training` resumes), and nothing is judged before the
 * first advance (tabs are still loading), nor after the coordinator was unreachable (killed or
 * restarting) or waiting for tabs before its next advance. One stuck interval counts once however long it lasts.
 * Defaults: stallFactor 10, minStallMs 15,000.
 */
import type { FaultMode, IterationFrameCounts, Phase } from '@swarmgrad/protocol';

export interface StallOptions {
  /** Multiple of the median iteration time that counts as a stall (default 10). */
  stallFactor?: number;
  /** Lower bound of the stall threshold, ms (default 15,000). */
  minStallMs?: number;
}

export interface Stall {
  /** The iteration that did not close. */
  iteration: number;
  /** When the stuck interval began (ms, the sample clock). */
  since: number;
  /** The threshold it exceeded, ms. */
  thresholdMs: number;
}

export class StallDetector {
  readonly stallFactor: number;
  readonly minStallMs: number;
  readonly stalls: Stall[] = [];
  /** Per-iteration times (ms) of advances made entirely in `training`. */
  private readonly perIteration: number[] = [];
  private iteration: number | undefined;
  /** Start of the current stuck interval: the last advance, or the return to `training`. */
  private since: number | undefined;
  private intervalClean = false;
  private counted = false;
  private advanced = false;
  private longest = 0;

  constructor(options: StallOptions = {}) {
    this.stallFactor = options.stallFactor ?? 10;
    this.minStallMs = options.minStallMs ?? 15_000;
    if (!(this.stallFactor > 0) || !Number.isFinite(this.stallFactor)) {
      throw new RangeError(`stallFactor must be a positive number, got ${this.stallFactor}`);
    }
    if (!(this.minStallMs >= 0) || !Number.isFinite(this.minStallMs)) {
      throw new RangeError(`minStallMs must be ≥ 0, got ${this.minStallMs}`);
    }
  }

  get roundsStalled(): number {
    return this.stalls.length;
  }

  /** Median ms per iteration over clean advances (undefined before the first). */
  get medianIterationMs(): number | undefined {
    if (this.perIteration.length === 0) return undefined;
    const sorted = [...this.perIteration].sort((a, b) => a - b);
    const k = sorted.length;
    return (sorted[(k - 1) >> 1]! + sorted[k >> 1]!) / 2;
  }

  /** Longest time (ms) the iteration stood still in `training` after the first advance. */
  get longestWaitMs(): number {
    return this.longest;
  }

  thresholdMs(): number {
    const median = this.medianIterationMs;
    return Math.max(this.minStallMs, median === undefined ? 0 : this.stallFactor * median);
  }

  /** One poll of the coordinator: time (ms), its iteration and phase. */
  sample(at: number, iteration: number, phase: Phase | string): void {
    const training = phase === 'training';
    if (this.iteration === undefined || iteration < this.iteration) {
      // the first observation, or a restarted coordinator that resumed from an earlier
      // checkpoint: nothing is judged until the next advance
      this.iteration = iteration;
      this.since = undefined;
      this.intervalClean = false;
      this.counted = false;
      this.advanced = false;
      return;
    }
    if (iteration > this.iteration) {
      if (this.since !== undefined && this.intervalClean && training) {
        this.perIteration.push((at - this.since) / (iteration - this.iteration));
      }
      this.iteration = iteration;
      this.advanced = true;
      this.since = training ? at : undefined;
      this.intervalClean = training;
      this.counted = false;
      return;
    }
    if (!training) {
      // not the coordinator's to close: the stall clock restarts when training resumes; an
      // unreachable coordinator (killed, restarting) starts over like a new one: its tabs
      // reconnect and reload before the first iteration closes, which is not judged. So does
      // one 'waiting' for tabs: a restart between two polls shows only as that
      this.since = undefined;
      this.intervalClean = false;
      if (phase === 'unreachable' || phase === 'waiting') this.advanced = false;
      return;
    }
    if (!this.advanced) return; // tabs still loading: judged from the first advance on
    if (this.since === undefined) {
      this.since = at; // back in training
      return;
    }
    const waited = at - this.since;
    this.longest = Math.max(this.longest, waited);
    const threshold = this.thresholdMs();
    if (!this.counted && waited > threshold) {
      this.counted = true;
      this.stalls.push({ iteration, since: this.since, thresholdMs: threshold });
    }
  }
}

export interface SwarmTarget {
  /** Held-out accuracy to reach (the job's targetAccuracy unless given). */
  accuracy: number;
  /** Stop at this iteration (the target is then judged on the accuracy there). */
  maxIterations: number | null;
  /** Give up after this many seconds. */
  timeoutSeconds: number;
}

/** The command's `--json` line. */
export interface SwarmSummary {
  /** The target was met: accuracy ≥ target.accuracy before the timeout. */
  ok: boolean;
  /** Why the run ended, in words. */
  reason: string;
  target: SwarmTarget;
  /** The coordinator's iteration at the end. */
  iterations: number;
  /** Its latest held-out accuracy (null before the first evaluation). */
  accuracy: number | null;
  /** The iteration that accuracy was measured at. */
  evaluatedAt: number | null;
  phase: string;
  /** Tabs asked for, tabs opened in all (replacements included), closed, closed mid-round. */
  tabs: number;
  tabsOpened: number;
  tabsClosed: number;
  tabsClosedMidRound: number;
  tabsLive: number;
  roundsStalled: number;
  /** Median seconds per iteration, longest stand-still in `training` (s), stall threshold (s). */
  medianIterationSeconds: number | null;
  longestWaitSeconds: number;
  stallThresholdSeconds: number;
  /**
   * Update traffic on the tabs' data channels: 8 × bytes sent / (update frames sent ×
   * parameters), bytes as the workers wrote them into the channels (chunk headers included, the
   * bytes RTCDataChannelStats.bytesSent counts), over every connection of every link. Per
   * frame, not per message: a frame larger than one 64 KiB chunk (a 1-bit frame above ~500,000
   * parameters) is several messages. Null before any update was sent.
   */
  wireBitsPerParam: number | null;
  /**
   * The selected ICE candidate pairs of the tabs' links (getStats()), each link counted at both
   * ends, by the pair's type: relay when either candidate is a TURN relay, else srflx or prflx
   * when either is one (through a NAT; prflx when learnt from a connectivity check), else host.
   */
  candidatePairs: CandidatePairCounts;
  /**
   * Frames the coordinator carried between tabs whose WebRTC link did not connect
   * (`/api/status` relayedFrames; 0 when every link connected).
   */
  relayedFrames: number;
  /**
   * Iteration frames the coordinator wrote, by recipient (`/api/status` iterationFrames): with
   * cluster dissemination mostly `relay`, one per cluster per iteration.
   */
  iterationFrames: IterationFrameCounts;
  wallSeconds: number;
  /** Tab ids the coordinator reports quarantined by their clusters. */
  quarantined: string[];
  /** Tab ids of the tabs that ran a fault-injection mode, and the mode. */
  byzantine: string[];
  attack: FaultMode | null;
}

export interface CandidatePairCounts {
  host: number;
  srflx: number;
  prflx: number;
  relay: number;
}

/** The type a selected pair counts as (SwarmSummary.candidatePairs). */
export function candidatePairType(pair: {
  local: string;
  remote: string;
}): keyof CandidatePairCounts {
  const types = [pair.local, pair.remote];
  if (types.includes('relay')) return 'relay';
  if (types.includes('srflx')) return 'srflx';
  if (types.includes('prflx')) return 'prflx';
  return 'host';
}

/** Why a run is over, or undefined while it should go on. */
export function judge(
  target: SwarmTarget,
  now: { iteration: number; accuracy: number | null; evaluatedAt: number | null; phase: string },
  elapsedSeconds: number,
): { ok: boolean; reason: string } | undefined {
  const reached = now.accuracy !== null && now.accuracy >= target.accuracy;
  const acc = now.accuracy === null ? 'no evaluation yet' : `accuracy ${now.accuracy.toFixed(4)}`;
  if (target.maxIterations !== null) {
    // judged on the evaluation at (or after) the last iteration
    if (now.evaluatedAt !== null && now.evaluatedAt >= target.maxIterations) {
      return reached
        ? { ok: true, reason: `${acc} ≥ ${target.accuracy} at iteration ${now.evaluatedAt}` }
        : {
            ok: false,
            reason: `${acc} < ${target.accuracy} at iteration ${now.evaluatedAt} (max iterations ${target.maxIterations})`,
          };
    }
  } else if (reached) {
    return { ok: true, reason: `${acc} ≥ ${target.accuracy} at iteration ${now.evaluatedAt}` };
  }
  if (now.phase === 'done' && target.maxIterations === null) {
    return {
      ok: false,
      reason: `the job ended (phase done) at iteration ${now.iteration}, ${acc}`,
    };
  }
  if (elapsedSeconds >= target.timeoutSeconds) {
    return {
      ok: false,
      reason: `timed out after ${target.timeoutSeconds} s at iteration ${now.iteration}, ${acc} (target ${target.accuracy})`,
    };
  }
  return undefined;
}
