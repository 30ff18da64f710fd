/**
 * What the dashboard and `/api/status` show: the swarm as this node sees it, built on demand
 * (it walks every cluster and tab, so only when asked or watched).
 */
import type { DashboardStatus } from '@swarmgrad/protocol';
import type { CoordinatorContext } from './context.ts';
import type { Dataset } from './dataset.ts';
import type { NodeStatus } from './shared-state.ts';
import { SwarmView } from './node-share.ts';

export type CoordinatorStatus = DashboardStatus & {
  node?: NodeStatus & { checkpoints: number; lastCheckpoint: number; sockets: number };
};

/** What the status shows beyond the context: the data and the uptime. */
export interface StatusExtras {
  dataset: Dataset;
  startedAt: number;
}

export function buildStatus(ctx: CoordinatorContext, extras: StatusExtras): CoordinatorStatus {
  const { dataset, startedAt } = extras;
  const { registry, engine, job, flags, records, dashboardMetrics } = ctx;
  // several nodes: the tabs other nodes hold report to them, and each node counts its own bytes
  const swarm = new SwarmView(ctx);
  const wire = swarm.totals;
  const live = registry.liveClusters();
  const proposers = new Set(engine.proposers());
  const clusters = registry.clusters.map((cluster) => ({
    id: cluster.id,
    live: live.has(cluster.id),
    proposed: proposers.has(cluster.id),
    members: cluster.seats.flatMap((id, slot) => {
      if (id === undefined) return [];
      const tab = registry.tabs.get(id);
      const report = swarm.reportOf(tab);
      return [
        {
          tabId: id,
          slot,
          live: tab?.connected === true,
          backend: tab?.backend ?? 'none',
          fallbackAdapter: tab?.fallbackAdapter ?? null,
          state: !tab?.connected
            ? ('closed' as const)
            : tab.quarantined
              ? ('quarantined' as const)
              : (report?.state ?? 'idle'),
          examplesPerSecond: report?.examplesPerSecond ?? 0,
          stepsPerSecond: (report?.examplesPerSecond ?? 0) / job.batchSize,
          rttMs: tab?.rttMs ?? null,
          steps: report?.steps ?? 0,
        },
      ];
    }),
  }));
  const manifest = dataset.manifest;
  const node = ctx.shared.status();
  return {
    job: {
      name: job.name,
      model: job.model,
      dataset: job.dataset,
      cluster: job.cluster,
      aggregator: job.aggregator,
      agreement: job.agreement,
      codec: job.codec,
      localSteps: job.localSteps,
      pipeline: job.pipeline,
      staleness: job.staleness,
      targetAccuracy: job.targetAccuracy,
      batchSize: job.batchSize,
    },
    dimension: ctx.dimension,
    data: {
      name: manifest.job,
      train: dataset.train.count,
      heldOut: dataset.heldOut.count,
      partitions: manifest.partitions.length,
      features: manifest.features,
      classes: manifest.classes,
      source: manifest.source ?? null,
    },
    iteration: engine.iteration,
    phase: ctx.effectivePhase(),
    learningRate: flags.learningRate,
    agreementRounds: ctx.iterations.lastRounds,
    tabs: registry.connected().length,
    clusters,
    quorum: {
      clusters: engine.clusters.length,
      live: live.size,
      majority: engine.majority,
      proposed: [...proposers],
      lastMajority: dashboardMetrics.lastMajority,
    },
    loss: records.lastEvaluation?.loss ?? null,
    accuracy: records.lastEvaluation?.accuracy ?? null,
    evaluatedAt: records.lastEvaluation?.iteration ?? null,
    trainingLoss: swarm.trainingLoss(),
    wire: {
      bytesSent: wire.bytesSent,
      fp32EquivalentBytes: wire.fp32EquivalentBytes,
      compression: wire.bytesSent > 0 ? wire.fp32EquivalentBytes / wire.bytesSent : null,
      byPath: { ...wire.byPath },
    },
    staleDropped: engine.staleDropped,
    stalenessThreshold: engine.staleness,
    stalenessAuto: flags.stalenessAuto,
    stepScaled: { ...dashboardMetrics.stepScaled },
    rejected: wire.rejected,
    uptimeSeconds: (Date.now() - startedAt) / 1000,
    quarantined: ctx.membership.quarantined.map((q) => ({ ...q, reportedBy: [...q.reportedBy] })),
    proposals: { ...ctx.desk.verdicts },
    unseated: registry.unseated().length,
    relayedFrames: wire.relayedFrames,
    relay: { bytes: wire.relayedBytes, pairs: ctx.relays.relayedPairs },
    iterationFrames: { ...wire.iterationFrames },
    serverTime: Date.now(),
    staleness: ctx.proposals.stalenessAnalysis(),
    // several nodes: which node answered, Redis reachable, lease, live nodes
    ...(node === undefined
      ? {}
      : {
          node: {
            ...node,
            checkpoints: records.checkpointsWritten,
            lastCheckpoint: records.lastCheckpointIteration,
            sockets: ctx.tabs.size,
          },
        }),
  };
}
