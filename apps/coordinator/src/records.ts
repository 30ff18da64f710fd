/**
 * What the coordinator keeps of the training: each closed iteration journaled before any tab
 * hears of it, evaluations of the agreed model on the held-out set, and checkpoints (with
 * several nodes, only the lease holder evaluates and checkpoints; every node records the
 * evaluations through the log).
 */
import type { ClosedIteration } from '@swarmgrad/core';
import type { weightSpecs } from '@swarmgrad/model';
import type { CoordinatorContext, Records } from './context.ts';
import type { EvaluationPoint } from './options.ts';
import type { CheckpointStore } from './checkpoint.ts';
import type { Journal } from './journal.ts';
import type { Evaluator } from './evaluator.ts';
import { isWireTotals, type WireTotals } from './wire.ts';

/** A checkpoint's state beside the parameters. */
export interface PersistedState extends WireTotals {
  job: string;
  learningRate: number;
  history: EvaluationPoint[];
}

export function isPersistedState(value: unknown, jobName: string): value is PersistedState {
  if (!isWireTotals(value)) return false;
  const v = value as Partial<PersistedState>;
  return v.job === jobName && typeof v.learningRate === 'number' && Array.isArray(v.history);
}

export interface RecordsInit {
  checkpoints: CheckpointStore;
  journal: Journal;
  topology: object;
  specs: ReturnType<typeof weightSpecs>;
  lastCheckpointIteration: number;
}

export class TrainingRecords implements Records {
  readonly history: EvaluationPoint[] = [];
  lastEvaluation: EvaluationPoint | undefined;
  lastCheckpointIteration: number;
  checkpointsWritten = 0;
  /** Set once the held-out set is loaded (absent in benchmarks that only measure rounds). */
  evaluator: Evaluator | undefined;
  private readonly journalStore: Journal;
  private checkpointInFlight: Promise<void> | undefined;
  private evaluationInFlight = false;

  constructor(
    private readonly ctx: CoordinatorContext,
    private readonly init: RecordsInit,
  ) {
    this.journalStore = init.journal;
    this.lastCheckpointIteration = init.lastCheckpointIteration;
  }

  journal(closed: ClosedIteration): void {
    try {
      this.journalStore.append({ iteration: closed.iteration, frame: closed.frame });
    } catch (error) {
      // the iteration still goes on; a restart would resume from the iteration before
      this.ctx.logger.error({ err: error }, 'journal append failed');
    }
  }

  afterClose(iteration: number): void {
    const { ctx } = this;
    if (!ctx.shared.holdsLease()) return;
    if (this.evaluator && iteration % ctx.job.evaluateEvery === 0 && !this.evaluationInFlight) {
      this.evaluationInFlight = true;
      this.evaluator
        .evaluate(Float32Array.from(ctx.engine.base), iteration)
        // every node records it (its dashboard and status show it)
        .then((result) =>
          ctx.submit(ctx.command({ kind: 'evaluated', point: { ...result, at: Date.now() } })),
        )
        .catch((error: unknown) => ctx.logger.error({ err: error }, 'evaluation failed'))
        .finally(() => {
          this.evaluationInFlight = false;
        });
    }
    if (
      iteration - this.lastCheckpointIteration >= ctx.job.checkpointEvery &&
      !this.checkpointInFlight
    ) {
      void this.writeCheckpoint();
    }
  }

  record(result: { iteration: number; loss: number; accuracy: number }, at = Date.now()): void {
    const point = {
      iteration: result.iteration,
      loss: result.loss,
      accuracy: result.accuracy,
      at,
    };
    this.lastEvaluation = point;
    this.history.push(point);
    if (this.history.length > 10_000) this.history.splice(0, this.history.length - 10_000);
    this.ctx.metrics.accuracy.set(result.accuracy);
    this.ctx.metrics.loss.set(result.loss);
    this.ctx.showEvaluation(point);
    this.ctx.logger.info(point, 'evaluated');
  }

  /** Evaluates the current base now (used by tests and the swarm command). */
  async evaluateNow(): Promise<EvaluationPoint | undefined> {
    if (!this.evaluator) return undefined;
    const iteration = this.ctx.engine.iteration;
    const result = await this.evaluator.evaluate(
      Float32Array.from(this.ctx.engine.base),
      iteration,
    );
    this.record(result);
    return this.lastEvaluation;
  }

  /** Writes a full checkpoint of the current base and state; one at a time. */
  async writeCheckpoint(): Promise<void> {
    const { ctx } = this;
    if (this.checkpointInFlight) await this.checkpointInFlight;
    // several nodes: the replica at this point of the log also goes to Redis (lease holder)
    // (after the command being applied, so the snapshot sits between two log entries)
    queueMicrotask(() => ctx.shared.saveSnapshot());
    const iteration = ctx.engine.iteration;
    const params = Float32Array.from(ctx.engine.base);
    const state: PersistedState = {
      job: ctx.job.name,
      learningRate: ctx.flags.learningRate,
      ...ctx.wire.totals(),
      history: this.history.slice(-2000),
    };
    const task = (async () => {
      await this.init.checkpoints.save({
        iteration,
        params,
        state,
        modelTopology: this.init.topology,
        weightSpecs: this.init.specs,
      });
      this.lastCheckpointIteration = iteration;
      this.journalStore.rotate(iteration);
      this.checkpointsWritten++;
      ctx.metrics.checkpoints.inc();
      ctx.logEvent('checkpoint', `checkpoint at iteration ${iteration}`);
    })();
    this.checkpointInFlight = task;
    try {
      await task;
    } catch (error) {
      ctx.logger.error({ err: error }, 'checkpoint failed');
    } finally {
      this.checkpointInFlight = undefined;
    }
  }

  /** A checkpoint's state back (the parameters go to the round engine). */
  restore(state: PersistedState): void {
    this.ctx.wire.restore(state);
    this.history.push(...state.history);
    this.lastEvaluation = state.history.at(-1);
  }

  /** Replica import: the history every node holds alike. */
  replaceHistory(history: readonly EvaluationPoint[]): void {
    this.history.splice(0, this.history.length, ...history);
    this.lastEvaluation = this.history.at(-1);
  }
}
