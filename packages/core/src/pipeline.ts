/**
 * A pipelined tab's local progress (issue 16): the tab never waits for its cluster's round; it
 * keeps taking local steps, on the newest base it holds, and publishes the progress made since
 * its previous register when the next iteration opens.
 *
 * Guarantee: for every local partition j the tab holds parameters x_j and an origin o_j, and
 * at every moment x_j = o_j + p_j where p_j is the sum of the steps taken on j since the last
 * `take` (its progress). `rebase(base, k)` re-centres every x_j on the agreed base of iteration
 * k (o_j := base, x_j := base + p_j): the deltas between bases are never added one by one, so a
 * base delivered twice changes nothing and a skipped base costs nothing — the progress ends on
 * the newest base exactly once. Bases older than the held one are ignored. `take(T)` returns
 * the progress u_j = x_j − o_j (what a lock-step tab would send: the steps since its anchor),
 * the staleness of its oldest step, T − (iteration of the base that step was taken on), and
 * the step delay, the mean of T − (that base) over all its steps (≤ staleness; what seed 001's
 * step scale reads: a register whose last steps ran on the newest base is mostly fresh), then
 * starts a new progress from x_j.
 *
 * Paper: asynchronous SGD with bounded staleness, seed 001 (../shared/seeds/
 * async-sgd-sdde-staleness.md): registers older than the job's `staleness` S are dropped at
 * the cluster's door (cluster-round.ts decodeRegister); the elastic term of Parle (trainer)
 * pulls x_j toward o_j, the newest base.
 *
 * Parameters: the partition count, the initial base and its iteration.
 */

export interface TakenProgress {
  /** u_j = x_j − o_j per partition, in the order of construction. */
  updates: Float32Array[];
  /** Fewest steps any partition took in this progress. */
  steps: number;
  /** Iterations between the base the progress's first step was taken on and `iteration`. */
  staleness: number;
  /** The mean over the progress's steps of the iterations between its base and `iteration`. */
  stepDelay: number;
}

export class LocalProgress {
  private readonly params: Float32Array[];
  private readonly origins: Float32Array[];
  private readonly stepCounts: number[];
  private baseIterationValue: number;
  /** The base iteration the current progress's first step was taken on (none yet: undefined). */
  private firstStepBase: number | undefined;
  /** Over the steps since the last take: how many, and the sum of the base iterations. */
  private stepsTaken = 0;
  private stepBaseSum = 0;

  constructor(base: Float32Array, baseIteration: number, partitions: number) {
    if (partitions < 1) throw new RangeError('a local progress needs at least one partition');
    this.params = Array.from({ length: partitions }, () => Float32Array.from(base));
    this.origins = Array.from({ length: partitions }, () => Float32Array.from(base));
    this.stepCounts = new Array<number>(partitions).fill(0);
    this.baseIterationValue = baseIteration;
  }

  /** The iteration of the newest base applied. */
  get baseIteration(): number {
    return this.baseIterationValue;
  }

  get partitions(): number {
    return this.params.length;
  }

  /** x_j, to be stepped in place by the trainer. */
  parameters(partition: number): Float32Array {
    return this.params[partition]!;
  }

  /** o_j, the elastic anchor of partition j's steps (the newest base, or the last take). */
  origin(partition: number): Float32Array {
    return this.origins[partition]!;
  }

  /** Steps taken on `partition` since the last take. */
  stepsOf(partition: number): number {
    return this.stepCounts[partition]!;
  }

  /** Fewest steps any partition has taken since the last take. */
  get steps(): number {
    return Math.min(...this.stepCounts);
  }

  /** The partition with the fewest steps (the next to step, so partitions advance evenly). */
  nextPartition(): number {
    let best = 0;
    for (let j = 1; j < this.stepCounts.length; j++) {
      if (this.stepCounts[j]! < this.stepCounts[best]!) best = j;
    }
    return best;
  }

  /** Records one step taken on `partition` (after the trainer moved its parameters). */
  recordStep(partition: number): void {
    if (this.firstStepBase === undefined) this.firstStepBase = this.baseIterationValue;
    this.stepCounts[partition]!++;
    this.stepsTaken++;
    this.stepBaseSum += this.baseIterationValue;
  }

  /**
   * Re-centres the progress on the agreed base of `iteration`. Returns false (and changes
   * nothing) for a base no newer than the one held.
   */
  rebase(base: Float32Array, iteration: number): boolean {
    if (iteration <= this.baseIterationValue) return false;
    if (base.length !== this.params[0]!.length) {
      throw new RangeError(
        `base of ${base.length} parameters, progress of ${this.params[0]!.length}`,
      );
    }
    for (let j = 0; j < this.params.length; j++) {
      const x = this.params[j]!;
      const o = this.origins[j]!;
      for (let i = 0; i < x.length; i++) {
        const progress = x[i]! - o[i]!;
        o[i] = base[i]!;
        x[i] = base[i]! + progress;
      }
    }
    this.baseIterationValue = iteration;
    return true;
  }

  /** Hands out the progress as the register of `iteration` and starts a new one from x_j. */
  take(iteration: number): TakenProgress {
    const updates = this.params.map((x, j) => {
      const o = this.origins[j]!;
      const u = new Float32Array(x.length);
      for (let i = 0; i < x.length; i++) u[i] = x[i]! - o[i]!;
      o.set(x);
      return u;
    });
    const steps = this.steps;
    const staleness = Math.max(0, iteration - (this.firstStepBase ?? this.baseIterationValue));
    const meanBase =
      this.stepsTaken > 0 ? this.stepBaseSum / this.stepsTaken : this.baseIterationValue;
    const stepDelay = Math.min(staleness, Math.max(0, iteration - meanBase));
    this.stepCounts.fill(0);
    this.firstStepBase = undefined;
    this.stepsTaken = 0;
    this.stepBaseSum = 0;
    return { updates, steps, staleness, stepDelay };
  }
}
