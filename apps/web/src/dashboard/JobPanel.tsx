/** The job as the coordinator runs it now (operator changes included). */
import type { DashboardStatus } from '@swarmgrad/protocol';
import {
  describeDataset,
  describeModel,
  formatDuration,
  formatInt,
  formatNumber,
  formatPercent,
} from '../lib/format.ts';

export function JobPanel({ status }: { status: DashboardStatus }) {
  const { job } = status;
  const rows: [string, string][] = [
    ['Model', `${describeModel(job.model)} · ${formatInt(status.dimension)} parameters`],
    ['Dataset', describeDataset(job.dataset, status.data)],
    [
      'Learning rate',
      `${formatNumber(status.learningRate)} · batch ${job.batchSize} · L = ${job.localSteps}`,
    ],
    [
      'Clusters',
      `m = ${job.cluster.size}, redundancy s = ${job.cluster.redundancy} (${job.cluster.scheme}), ${job.cluster.placement} placement`,
    ],
    [
      'Aggregator',
      `${job.aggregator.name}${job.aggregator.f > 0 ? `, f = ${job.aggregator.f}` : ''}`,
    ],
    [
      'Agreement',
      job.agreement.mode === 'majority'
        ? `majority of clusters, ε = ${formatNumber(job.agreement.epsilon)}, grace ${job.agreement.graceMs} ms`
        : `average of arrived proposals, grace ${job.agreement.graceMs} ms`,
    ],
    [
      'Staleness S',
      job.staleness === 'auto'
        ? `auto, ${status.stalenessThreshold} iterations now`
        : `${status.stalenessThreshold} iterations`,
    ],
    [
      'Codec',
      `${job.codec.name}${job.codec.name.includes('one-bit') ? `, block ${job.codec.blockSize}` : ''}`,
    ],
    ['Target', `${formatPercent(job.targetAccuracy, 0)} held-out accuracy`],
    ['Uptime', formatDuration(status.uptimeSeconds)],
  ];
  return (
    <dl className="facts" data-testid="job">
      {rows.map(([k, v]) => (
        <div key={k}>
          <dt>{k}</dt>
          <dd>{v}</dd>
        </div>
      ))}
    </dl>
  );
}
