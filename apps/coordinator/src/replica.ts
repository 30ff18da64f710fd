/**
 * The replicated state of a multi-node coordinator as plain data (a snapshot in Redis;
 * redis-state.ts): every node holds it alike, having applied the same commands in one order.
 */
import {
  decodeFrameInto,
  type PendingProposalState,
  type RegistryState,
  type RoundEngineState,
} from '@swarmgrad/core';
import type { JobSpec, Phase, ProposalVerdicts, StalenessChoice } from '@swarmgrad/protocol';
import type { AggregationRule, CoordinatorContext } from './context.ts';
import type { EvaluationPoint } from './options.ts';

export interface ReplicaState {
  /** The job's fixed part: nodes of one swarm must run the same job. */
  job: string;
  iteration: number;
  /** The engine's state without its held proposals, which travel as frames (heldFrames). */
  engine: RoundEngineState;
  heldFrames: { clusterId: number; baseIteration: number; frame: Uint8Array }[];
  registry: RegistryState;
  phase: Phase;
  paused: boolean;
  started: boolean;
  placementsDirty: boolean;
  learningRate: number;
  cluster: JobSpec['cluster'];
  aggregator: JobSpec['aggregator'];
  history: EvaluationPoint[];
  /** Proposals waiting for their clusters' confirmations (without their decoded updates). */
  pendingProposals?: PendingProposalState[];
  /** Proposals of this iteration dropped as stale, offered again if S is raised. */
  staleProposals?: PendingProposalState[];
  verdicts?: ProposalVerdicts;
  previousAggregator?: AggregationRule & { until: number };
  /** The threshold S enforced, and the auto mode's last choice. */
  staleness?: number;
  stalenessAuto?: StalenessChoice | null;
  /** The secret of the tabs' voucher keys (every node must derive the same keys). */
  vouchSecret?: string;
  /** The iteration frames' Ed25519 signing key (a relay forwards frames of any node). */
  iterationSigningKey?: string;
}

/** What every node of one swarm must agree on: the job without what the operator may change. */
export function swarmIdentity(job: JobSpec): string {
  const { cluster: _cluster, aggregator: _aggregator, optimizer: _optimizer, ...fixed } = job;
  return JSON.stringify(fixed);
}

export function exportReplica(ctx: CoordinatorContext): ReplicaState {
  const { engine, desk, flags, job } = ctx;
  const state = engine.exportState();
  const proposals = desk.exportState();
  // held proposals travel as the frames the tabs sent (1-bit: ~d/8 bytes, not 4·d)
  const heldFrames = state.held.flatMap((h) => {
    const frame = ctx.proposals.heldFrames.get(h.clusterId);
    return frame === undefined
      ? []
      : [{ clusterId: h.clusterId, baseIteration: h.baseIteration, frame }];
  });
  return {
    job: swarmIdentity(job),
    iteration: engine.iteration,
    engine: { ...state, held: [] },
    heldFrames,
    registry: ctx.registry.exportState(),
    phase: flags.phase,
    paused: flags.paused,
    started: flags.started,
    placementsDirty: flags.placementsDirty,
    learningRate: flags.learningRate,
    cluster: { ...job.cluster },
    aggregator: { ...job.aggregator },
    history: ctx.records.history.slice(-200),
    pendingProposals: proposals.pending,
    staleProposals: proposals.droppedStale ?? [],
    verdicts: proposals.verdicts,
    ...(flags.previousAggregator ? { previousAggregator: { ...flags.previousAggregator } } : {}),
    staleness: engine.staleness,
    stalenessAuto: flags.stalenessAuto,
    vouchSecret: ctx.vouchers.exportSecret(),
    iterationSigningKey: ctx.broadcast.exportSigningKey(),
  };
}

/** Replaces this node's replica with `state`; `replaceHistory` sets the evaluation history. */
export function importReplica(
  ctx: CoordinatorContext,
  state: ReplicaState,
  replaceHistory: (history: EvaluationPoint[]) => void,
): void {
  const { engine, flags, job, dimension, jobId } = ctx;
  if (state.job !== swarmIdentity(job)) {
    throw new Error(
      `this node's job differs from the swarm's in Redis (every node needs the same job file): ${state.job}`,
    );
  }
  const held = state.heldFrames.map((h) => {
    const update = new Float32Array(dimension);
    const decoded = decodeFrameInto(h.frame, update, { dimension, jobId });
    if (!decoded.ok)
      throw new Error(`snapshot: undecodable held proposal of cluster ${h.clusterId}`);
    return { clusterId: h.clusterId, baseIteration: h.baseIteration, update };
  });
  const heldFrames = ctx.proposals.heldFrames;
  heldFrames.clear();
  for (const h of state.heldFrames) heldFrames.set(h.clusterId, h.frame);
  engine.importState({ ...state.engine, held });
  ctx.registry.importState(state.registry);
  flags.phase = state.phase;
  flags.paused = state.paused;
  flags.started = state.started;
  flags.placementsDirty = state.placementsDirty;
  flags.learningRate = state.learningRate;
  if (state.vouchSecret !== undefined) ctx.vouchers.importSecret(state.vouchSecret);
  if (state.iterationSigningKey !== undefined)
    ctx.broadcast.importSigningKey(state.iterationSigningKey);
  Object.assign(job.cluster, state.cluster);
  Object.assign(job.aggregator, state.aggregator);
  ctx.registry.setJob(job);
  replaceHistory(state.history);
  ctx.desk.importState({
    pending: state.pendingProposals ?? [],
    droppedStale: state.staleProposals ?? [],
    ...(state.verdicts ? { verdicts: state.verdicts } : {}),
  });
  flags.previousAggregator = state.previousAggregator;
  if (state.staleness !== undefined) engine.setStaleness(state.staleness);
  flags.stalenessAuto = state.stalenessAuto ?? null;
  ctx.metrics.iteration.set(engine.iteration);
  ctx.metrics.tabs.set(ctx.registry.connected().length);
}
