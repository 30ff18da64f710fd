/**
 * The operator's commands (dashboard and `/api/control`), applied alike on every node: pause and
 * resume, the learning rate, the cluster size, the aggregation rule, and the staleness
 * threshold (also the auto mode's own choice, logged as such).
 */
import type { ControlCommand } from '@swarmgrad/protocol';
import type { CoordinatorContext } from './context.ts';

export function applyControl(ctx: CoordinatorContext, command: ControlCommand, at: number): void {
  const { flags, engine, job, iterations } = ctx;
  switch (command.action) {
    case 'pause':
      flags.paused = true;
      iterations.holdClose();
      if (flags.phase !== 'done') iterations.setPhase('paused');
      break;
    case 'resume':
      flags.paused = false;
      if (flags.phase === 'paused') {
        if (engine.clusters.length === 0) {
          flags.phase = 'waiting';
          iterations.startIfReady(at);
        } else {
          iterations.setPhase('training');
          iterations.updateQuorum();
        }
        iterations.maybeClose();
      }
      break;
    case 'set-learning-rate':
      flags.learningRate = command.learningRate;
      break;
    case 'set-cluster-size':
      job.cluster.size = command.size;
      if (job.cluster.redundancy >= command.size) job.cluster.redundancy = command.size - 1;
      ctx.registry.setJob(job);
      flags.placementsDirty = true;
      break;
    case 'set-aggregator':
      // proposals computed before the tabs switch (at the next iteration) used the old rule
      flags.previousAggregator = {
        name: job.aggregator.name,
        f: job.aggregator.f,
        until: engine.iteration + 1,
      };
      job.aggregator.name = command.name;
      if (command.f !== undefined) job.aggregator.f = command.f;
      flags.placementsDirty = true;
      break;
    case 'set-staleness':
      engine.setStaleness(command.threshold);
      ctx.proposals.run(ctx.desk.retryStale());
      if (command.reason !== undefined) {
        flags.stalenessAuto = {
          threshold: command.threshold,
          workers: command.workers ?? ctx.registry.connected().length,
          reason: command.reason,
          iteration: engine.iteration,
        };
        // the auto mode's decisions are logged as such, not as an operator's
        ctx.logEvent('staleness', `auto: ${command.reason}`);
        return;
      }
      break;
  }
  ctx.logEvent('control', `operator: ${JSON.stringify(command)}`);
  ctx.tabs.toAllHere('phase', ctx.effectivePhase());
}
