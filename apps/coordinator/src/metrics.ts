/** Prometheus metrics of one coordinator process (prom-client, its own registry). */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'swarmgrad_process_' });
  const metrics = {
    registry,
    tabs: new Gauge({ name: 'swarmgrad_tabs', help: 'Connected tabs', registers: [registry] }),
    clusters: new Gauge({
      name: 'swarmgrad_clusters',
      help: 'Clusters voting in the current iteration',
      registers: [registry],
    }),
    liveClusters: new Gauge({
      name: 'swarmgrad_live_clusters',
      help: 'Clusters with at least one live tab',
      registers: [registry],
    }),
    iteration: new Gauge({
      name: 'swarmgrad_iteration',
      help: 'Current iteration',
      registers: [registry],
    }),
    accuracy: new Gauge({
      name: 'swarmgrad_accuracy',
      help: 'Held-out accuracy',
      registers: [registry],
    }),
    loss: new Gauge({ name: 'swarmgrad_loss', help: 'Held-out loss', registers: [registry] }),
    roundClose: new Histogram({
      name: 'swarmgrad_round_close_seconds',
      help: 'Time from the proposal (or grace deadline) that completed a round to its broadcast',
      // fine around the 200 ms goal of issue 3, so bench/coordinator.ts can read p50/p99
      buckets: [
        0.001, 0.002, 0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.125, 0.15, 0.175, 0.2, 0.25, 0.3,
        0.4, 0.5, 0.75, 1, 2, 5,
      ],
      registers: [registry],
    }),
    iterationSeconds: new Histogram({
      name: 'swarmgrad_iteration_seconds',
      help: 'Wall time of an iteration, start to close',
      buckets: [0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30, 60],
      registers: [registry],
    }),
    wireBytes: new Counter({
      name: 'swarmgrad_wire_bytes_total',
      help: 'Update bytes on the wire',
      labelNames: ['path'] as const,
      registers: [registry],
    }),
    fp32Bytes: new Counter({
      name: 'swarmgrad_fp32_equivalent_bytes_total',
      help: 'What the same updates would have cost in fp32',
      registers: [registry],
    }),
    rejected: new Counter({
      name: 'swarmgrad_rejected_messages_total',
      help: 'Messages refused, by error code',
      labelNames: ['code'] as const,
      registers: [registry],
    }),
    proposalVerdicts: new Counter({
      name: 'swarmgrad_proposal_verdicts_total',
      help: 'Proposals by verdict: confirmed, refuted, unconfirmed, not-proposer',
      labelNames: ['verdict'] as const,
      registers: [registry],
    }),
    vouchers: new Counter({
      name: 'swarmgrad_vouchers_total',
      help: "Members' vouchers proposers brought, by check: verified (its MAC holds) or forged (dropped)",
      labelNames: ['result'] as const,
      registers: [registry],
    }),
    confirmRequests: new Counter({
      name: 'swarmgrad_confirm_requests_total',
      help: 'Confirm requests the coordinator sent to members a proposal brought no voucher of',
      registers: [registry],
    }),
    staleDropped: new Counter({
      name: 'swarmgrad_stale_proposals_total',
      help: 'Proposals dropped for exceeding the staleness threshold',
      registers: [registry],
    }),
    iterationFrames: new Counter({
      name: 'swarmgrad_iteration_frames_total',
      help: 'Iteration frames the coordinator wrote, by recipient: a cluster relay (forwards it), a tab directly, or a tab that asked',
      labelNames: ['to'] as const,
      registers: [registry],
    }),
    relayedFrames: new Counter({
      name: 'swarmgrad_relayed_frames_total',
      help: 'Frames the coordinator relayed between two tabs whose WebRTC link does not connect',
      registers: [registry],
    }),
    relayedPairs: new Gauge({
      name: 'swarmgrad_relayed_pairs',
      help: 'Pairs of tabs whose frames the coordinator relays now',
      registers: [registry],
    }),
    checkpoints: new Counter({
      name: 'swarmgrad_checkpoints_total',
      help: 'Checkpoints written',
      registers: [registry],
    }),
  };
  return metrics;
}

export type Metrics = ReturnType<typeof createMetrics>;
