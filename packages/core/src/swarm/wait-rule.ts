/**
 * When a cluster stops waiting for its members' registers: the one rule the tab's cluster round
 * (cluster-round.ts) and the simulator both run (seed 003, dynamic backup workers, with the
 * product's floors and deadline).
 *
 * Guarantees
 * - `ready`: true as soon as every live slot has written; or once the fastest k have written,
 *   k = `waitFor(n)` over the n live slots, and in coded mode only if the written registers
 *   decode exactly. Never true before one register is held.
 * - `waitFor(n)` ∈ [min(n, 1), n] and ≥ the floor `minWait(n)`: coded mode (gradient code with
 *   redundancy s over m slots) min(n, m − s), so an exact decode is possible; robust mode
 *   min(n, 2f + 1), so the robust rule has an honest majority to work with; an explicit
 *   `minWait` replaces the floor. Dynamic backups: core's `BackupWorkerPolicy` over n peers (a new
 *   policy, in warm-up, whenever n changes: its samples are for a fixed n); static: n − b.
 * - `deadline(first, start)` = first + max(minPatience, patienceFactor · (first − start)): a live
 *   slot that never writes (broken link, paused tab) cannot stall the cluster past it.
 *
 * Parameters: mode, clusterSize m, redundancy s, f; backups (dynamic: window, default 20, warm-up,
 * gain, minWait; static: b); minPatience (default 2000, in the clock's unit) and patienceFactor
 * (default 3). Paper: ../shared/seeds/ (seed 003, Xiong et al.).
 */
import { BackupWorkerPolicy, linearGain, type Gain } from '../backup-workers.ts';

export type AggregationMode = 'coded' | 'robust';

export type BackupRule =
  | {
      kind: 'dynamic';
      /** Iterations of arrival times remembered (default 20). */
      window?: number;
      /** Iterations recorded before the policy leaves k = n (core's default otherwise). */
      warmup?: number;
      gain?: Gain;
      /** Fewest registers waited for; replaces the mode's floor. */
      minWait?: number;
    }
  | {
      kind: 'static';
      /** b: the slowest b live slots are not waited for. */
      backups: number;
      minWait?: number;
    };

export interface ClusterShape {
  mode: AggregationMode;
  clusterSize: number;
  redundancy: number;
  /** Byzantine members the robust rule tolerates. */
  f: number;
}

/** Registers a cluster of this shape needs: coded m − s (an exact decode), robust 2f + 1. */
export function waitFloor(shape: ClusterShape): number {
  return shape.mode === 'coded' ? shape.clusterSize - shape.redundancy : 2 * shape.f + 1;
}

export interface WaitRuleOptions {
  backups?: BackupRule;
  minPatience?: number;
  patienceFactor?: number;
}

export interface WaitState {
  /** Live slots (the tab itself included when it computes). */
  live: number;
  /** Registers held (refused-at-the-door ones count: their writer did write). */
  written: number;
  /** Every live slot has written. */
  allLiveWritten: boolean;
  /** Coded mode: whether the written registers decode exactly (asked only when needed). */
  decodable: () => boolean;
}

export class WaitRule {
  private shapeValue: ClusterShape;
  private readonly backups: BackupRule;
  readonly minPatience: number;
  readonly patienceFactor: number;
  private policy: BackupWorkerPolicy | undefined;

  constructor(shape: ClusterShape, options: WaitRuleOptions = {}) {
    this.shapeValue = { ...shape };
    this.backups = options.backups ?? { kind: 'dynamic' };
    this.minPatience = options.minPatience ?? 2000;
    this.patienceFactor = options.patienceFactor ?? 3;
  }

  get shape(): ClusterShape {
    return this.shapeValue;
  }

  /** A new cluster shape (placement or aggregator changed); the policy's history is kept. */
  setShape(shape: ClusterShape): void {
    this.shapeValue = { ...shape };
  }

  /** The fewest registers waited for among n live slots (see the file comment). */
  minWait(n: number): number {
    const need = this.backups.minWait ?? waitFloor(this.shapeValue);
    return Math.max(1, Math.min(n, need));
  }

  /** k: registers to wait for among n live slots. 0 when n = 0. */
  waitFor(n: number): number {
    if (n <= 0) return 0;
    const b = this.backups;
    const k = b.kind === 'static' ? Math.max(1, n - b.backups) : this.policyFor(n).waitFor();
    return Math.min(n, Math.max(k, this.minWait(n)));
  }

  /**
   * One finished iteration's arrival times (from its start; late ones too) over its n slots. The
   * policy is kept for the `currentLive` slots of now; the sample counts only if that is still n.
   */
  record(n: number, arrivalTimes: readonly number[], currentLive = n): void {
    if (this.backups.kind === 'static' || n <= 0) return;
    const policy = this.policyFor(currentLive > 0 ? currentLive : n);
    if (policy.peers === n) policy.recordIteration(arrivalTimes);
  }

  /** Whether to aggregate now (see the file comment). */
  ready(state: WaitState): boolean {
    if (state.written <= 0) return false;
    if (state.allLiveWritten) return true;
    if (state.written < this.waitFor(state.live)) return false;
    return this.shapeValue.mode === 'robust' || state.decodable();
  }

  /** When to aggregate whatever is held, given the first register's arrival and the start. */
  deadline(firstArrival: number, start: number): number {
    return firstArrival + Math.max(this.minPatience, this.patienceFactor * (firstArrival - start));
  }

  /** The dynamic policy for n peers, made afresh when n changed. */
  private policyFor(n: number): BackupWorkerPolicy {
    const b = this.backups;
    if (b.kind !== 'dynamic') throw new Error('static backups have no policy');
    if (this.policy?.peers !== n) {
      this.policy = new BackupWorkerPolicy({
        peers: n,
        window: b.window ?? 20,
        gain: b.gain ?? linearGain,
        minWait: this.minWait(n),
        ...(b.warmup === undefined ? {} : { warmup: b.warmup }),
      });
    }
    return this.policy;
  }

  /** Peers of the current dynamic policy (undefined: none yet, or static backups). */
  get policyPeers(): number | undefined {
    return this.policy?.peers;
  }
}
