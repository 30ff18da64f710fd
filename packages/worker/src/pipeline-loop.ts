/**
 * A pipelined tab's step loop (issue 16), the same on the page's thread and on a training
 * thread (training-thread.ts): step one partition at a time on the newest base the host holds,
 * re-centred on every new base between steps (core pipeline.ts `LocalProgress`), and hand the
 * progress out as the register of the open iteration once every partition holds `localSteps`
 * steps.
 *
 * Guarantee: at most one register per iteration leaves the loop, each holding ≥ localSteps
 * steps on every partition that has data (partitions without data take none: their update is
 * zero, as in lock-step); progress staler than the host's limit is dropped and counted, never
 * sent; the loop stops stepping once every partition holds PIPELINE_MAX_STEPS_FACTOR ×
 * localSteps steps and no newer iteration opened (a stalled round must not grow one register
 * without bound), and resumes when the host runs it again.
 *
 * Parameters: the partitions (fixed for the loop's life: a new placement is a new loop), the
 * model's dimension, whether the optimiser keeps a velocity; per step, what `current()` says.
 */
import { LocalProgress } from '@swarmgrad/core';
import type { LocalPartition, LocalWorkSettings } from './trainer.ts';

/**
 * A pipelined tab stops stepping once every partition holds this many times `localSteps` steps
 * and the next iteration has not opened: a round that stalls (majority lost) must not grow one
 * register without bound.
 */
export const PIPELINE_MAX_STEPS_FACTOR = 8;

/** What the loop steps on now. */
export interface PipelineNow {
  base: Float32Array;
  iteration: number;
  settings: LocalWorkSettings;
  /** The oldest base a register may have been computed on and still be sent (iterations). */
  stalenessLimit: number;
}

/** A register's worth of progress, taken for `iteration`. */
export interface PipelineRegister {
  iteration: number;
  updates: Float32Array[];
  staleness: number;
  /** The mean over its steps of how far behind their base was (core LocalProgress.take). */
  stepDelay: number;
  /** Fewest steps a partition took. */
  steps: number;
  /** Mean training loss over the steps (NaN when none). */
  loss: number;
}

export interface PipelineHost {
  /** The newest base and the settings, or undefined when the loop must not step now. */
  current(): PipelineNow | undefined;
  /** One step x ← x − η·(g(x) + γ·(x − origin)) in place (trainer.ts `step`). */
  step(
    x: Float32Array,
    origin: Float32Array,
    velocity: Float32Array | undefined,
    partition: LocalPartition,
    settings: Omit<LocalWorkSettings, 'steps'>,
  ): Promise<{ loss: number; examples: number; ms: number }>;
  /** Awaited after every step: counts it, throttles, waits while paused, lets messages in. */
  pace(ms: number, examples: number): Promise<void>;
  publish(register: PipelineRegister): void;
  /** Progress older than the staleness limit was thrown away. */
  staleDropped(): void;
}

export class PipelineLoop {
  private progress: LocalProgress | undefined;
  private readonly velocities: (Float32Array | undefined)[];
  private lossSum = 0;
  private lossSteps = 0;
  /** The last iteration a register was taken for. */
  private takenIteration = -1;
  private stopped = false;

  constructor(
    private readonly partitions: readonly LocalPartition[],
    private readonly host: PipelineHost,
    options: { dimension: number; momentum: boolean },
  ) {
    this.velocities = partitions.map(() =>
      options.momentum ? new Float32Array(options.dimension) : undefined,
    );
  }

  /** The loop steps no more (its placement or job is gone); a step under way is discarded. */
  stop(): void {
    this.stopped = true;
  }

  /** Whether a register was taken for `iteration` already. */
  tookFor(iteration: number): boolean {
    return this.takenIteration >= iteration;
  }

  /**
   * Steps until it must wait (the host says not now, or the step budget is spent before the
   * next iteration) and resolves then; throws what a step threw. One run at a time (the caller
   * keeps the promise).
   */
  async run(): Promise<void> {
    while (!this.stopped) {
      const now = this.host.current();
      if (now === undefined) return;
      const { base, iteration, settings } = now;
      if (this.progress === undefined) {
        this.progress = new LocalProgress(base, iteration, this.partitions.length);
      }
      const progress = this.progress;
      progress.rebase(base, iteration);
      const stepping = this.partitions.map((p, j) => ({ p, j })).filter(({ p }) => p.count > 0);
      const fewest = Math.min(Infinity, ...stepping.map(({ j }) => progress.stepsOf(j)));
      if (this.takenIteration < iteration && (stepping.length === 0 || fewest >= settings.steps)) {
        const taken = progress.take(iteration);
        this.takenIteration = iteration;
        const loss = this.lossSteps > 0 ? this.lossSum / this.lossSteps : Number.NaN;
        this.lossSum = 0;
        this.lossSteps = 0;
        if (taken.staleness > now.stalenessLimit) {
          // older than the proposal desk accepts: start again on this base
          this.host.staleDropped();
          this.takenIteration = iteration - 1;
          continue;
        }
        this.host.publish({
          iteration,
          updates: taken.updates,
          staleness: taken.staleness,
          stepDelay: taken.stepDelay,
          steps: taken.steps,
          loss,
        });
        continue;
      }
      if (stepping.length === 0 || fewest >= PIPELINE_MAX_STEPS_FACTOR * settings.steps) return;
      const next = stepping.reduce((a, b) =>
        progress.stepsOf(b.j) < progress.stepsOf(a.j) ? b : a,
      );
      const taken = await this.host.step(
        progress.parameters(next.j),
        progress.origin(next.j),
        this.velocities[next.j],
        next.p,
        settings,
      );
      if (this.stopped) return;
      progress.recordStep(next.j);
      this.lossSum += taken.loss;
      this.lossSteps++;
      await this.host.pace(taken.ms, taken.examples);
    }
  }
}
