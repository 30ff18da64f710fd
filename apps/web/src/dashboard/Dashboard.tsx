/**
 * The operator dashboard at /dashboard: what a long training job needs at a glance (phase,
 * progress, tabs and clusters, curves, wire savings, faults, staleness), and the controls
 * behind the admin token.
 */
import { useEffect, useState, type ReactNode } from 'react';
import type { DashboardStatus, Phase } from '@swarmgrad/protocol';
import { useDashboard } from './useDashboard.ts';
import { ClusterMap } from './ClusterMap.tsx';
import { AccuracyChart, LossChart } from './Curves.tsx';
import type { XMode } from './Chart.tsx';
import { WirePanel } from './WirePanel.tsx';
import { StalenessPanel } from './StalenessPanel.tsx';
import { EventLog } from './EventLog.tsx';
import { Controls } from './Controls.tsx';
import { JobPanel } from './JobPanel.tsx';
import {
  formatBytes,
  formatInt,
  formatNumber,
  formatPercent,
  describeModel,
} from '../lib/format.ts';

const PHASE_LABEL: Record<Phase, string> = {
  waiting: 'Waiting for tabs',
  training: 'Training',
  paused: 'Paused',
  'quorum-lost': 'Quorum lost',
  done: 'Done',
};

function Panel({
  title,
  actions,
  className = '',
  children,
  testId,
}: {
  title: string;
  actions?: ReactNode;
  className?: string;
  children: ReactNode;
  testId?: string;
}) {
  return (
    <section className={`panel ${className}`} data-testid={testId} aria-label={title}>
      <header className="panel__head">
        <h2>{title}</h2>
        {actions}
      </header>
      <div className="panel__body">{children}</div>
    </section>
  );
}

function Kpi({
  label,
  value,
  detail,
  tone,
  testId,
}: {
  label: string;
  value: ReactNode;
  detail?: ReactNode;
  tone?: string;
  testId?: string;
}) {
  return (
    <div className={`kpi${tone ? ` kpi--${tone}` : ''}`}>
      <span className="kpi__label">{label}</span>
      <span className="kpi__value" data-testid={testId}>
        {value}
      </span>
      {detail !== undefined && <span className="kpi__detail">{detail}</span>}
    </div>
  );
}

function Banner({ status, connected }: { status: DashboardStatus | null; connected: boolean }) {
  if (!connected) {
    return (
      <div className="banner banner--muted" role="status">
        <strong>Reconnecting to the coordinator…</strong> The figures below are the last ones
        received.
      </div>
    );
  }
  if (!status) return null;
  switch (status.phase) {
    case 'quorum-lost':
      return (
        <div className="banner banner--bad" role="alert">
          <strong>Quorum lost.</strong> {status.quorum.live} of {status.quorum.clusters} clusters
          have a live tab; an iteration needs {status.quorum.majority}. Training resumes when tabs
          return.
        </div>
      );
    case 'paused':
      return (
        <div className="banner banner--warn" role="status">
          <strong>Paused by the operator</strong> at iteration {formatInt(status.iteration)}. Tabs
          stay connected.
        </div>
      );
    case 'waiting':
      return (
        <div className="banner banner--info" role="status">
          <strong>Waiting for tabs.</strong> Volunteers join at{' '}
          <code>{window.location.origin}/</code>
        </div>
      );
    case 'done':
      return (
        <div className="banner banner--info" role="status">
          <strong>Training finished</strong> at iteration {formatInt(status.iteration)}. Download
          the model below.
        </div>
      );
    default:
      return null;
  }
}

export default function Dashboard() {
  const state = useDashboard();
  const { status } = state;
  const [xMode, setXMode] = useState<XMode>('iteration');

  // the freshness dot dims when no status arrived for a few seconds
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(timer);
  }, []);
  const fresh = state.connected && state.lastStatusAt !== null && now - state.lastStatusAt < 4000;

  const liveClusters = status?.clusters.filter((c) => c.live).length ?? 0;
  const xToggle = (
    <div className="segmented segmented--small" role="group" aria-label="X axis">
      {(['iteration', 'time'] as const).map((m) => (
        <button
          key={m}
          type="button"
          aria-pressed={xMode === m}
          className={xMode === m ? 'is-active' : ''}
          onClick={() => setXMode(m)}
        >
          {m === 'iteration' ? 'Iterations' : 'Wall time'}
        </button>
      ))}
    </div>
  );

  return (
    <div className="page page--dashboard" data-status-count={state.statusCount}>
      <header className="topbar">
        <div className="topbar__brand">
          <img src="/favicon.svg" alt="" width="28" height="28" />
          <div>
            <span className="topbar__title">swarmgrad</span>
            <span className="topbar__subtitle">Operator dashboard</span>
          </div>
        </div>
        <div className="topbar__job">
          <span className="topbar__jobname" data-testid="job-name">
            {status?.job.name ?? '—'}
          </span>
          <span className="topbar__jobmeta">
            {status
              ? `${describeModel(status.job.model)} · ${formatInt(status.dimension)} params`
              : 'connecting…'}
          </span>
        </div>
        <div className="topbar__status">
          {status && (
            <span
              className={`phase phase--${status.phase}`}
              data-testid="phase"
              data-phase={status.phase}
            >
              {PHASE_LABEL[status.phase]}
            </span>
          )}
          <span
            className={`live ${fresh ? 'live--on' : ''}`}
            title={fresh ? 'live' : 'no recent status'}
          >
            <span className="live__dot" aria-hidden="true" />
            {fresh ? 'Live' : state.connected ? 'Stale' : 'Offline'}
          </span>
        </div>
      </header>

      <Banner status={status} connected={state.connected} />

      <section className="kpis" aria-label="Summary">
        <Kpi
          label="Iteration"
          testId="iteration"
          value={formatInt(status?.iteration)}
          detail={
            status
              ? `${state.iterationRate === null ? '—' : formatNumber(state.iterationRate, 2)} it/s · ${status.agreementRounds} rounds`
              : undefined
          }
        />
        <Kpi
          label="Held-out accuracy"
          testId="accuracy"
          tone={
            status && status.accuracy !== null && status.accuracy >= status.job.targetAccuracy
              ? 'ok'
              : undefined
          }
          value={formatPercent(status?.accuracy)}
          detail={
            status
              ? `target ${formatPercent(status.job.targetAccuracy, 0)}${status.evaluatedAt !== null ? ` · at it. ${formatInt(status.evaluatedAt)}` : ''}`
              : undefined
          }
        />
        <Kpi
          label="Loss"
          value={formatNumber(status?.loss)}
          detail={status ? `training ${formatNumber(status.trainingLoss)}` : undefined}
        />
        <Kpi
          label="Tabs"
          testId="tab-count"
          value={formatInt(status?.tabs)}
          detail={
            status ? (
              <span
                title={`an iteration needs proposals from ${status.quorum.majority} of ${status.clusters.length} clusters`}
              >
                <span data-testid="cluster-count">{status.clusters.length}</span> cluster
                {status.clusters.length === 1 ? '' : 's'} · {liveClusters} live · need{' '}
                {status.quorum.majority}
              </span>
            ) : undefined
          }
          tone={status?.phase === 'quorum-lost' ? 'bad' : undefined}
        />
        <Kpi
          label="Compression"
          value={status?.wire.compression ? `${formatNumber(status.wire.compression, 3)}×` : '—'}
          detail={status ? `${formatBytes(status.wire.bytesSent)} sent` : undefined}
        />
        <Kpi
          label="Refused"
          value={formatInt(
            status ? Object.values(status.rejected).reduce((a, b) => a + b, 0) : undefined,
          )}
          detail={status ? `${formatInt(status.staleDropped)} stale dropped` : undefined}
          tone={status && Object.keys(status.rejected).length > 0 ? 'warn' : undefined}
        />
      </section>

      <main className="layout">
        <div className="column column--main">
          <Panel title="Clusters and tabs" className="order-1" testId="clusters-panel">
            {status ? <ClusterMap status={status} /> : <p className="empty">Connecting…</p>}
          </Panel>
          <div className="charts">
            <Panel title="Held-out accuracy" className="order-3" actions={xToggle}>
              <AccuracyChart
                xMode={xMode}
                evaluations={state.evaluations}
                targetAccuracy={status?.job.targetAccuracy ?? 0.9}
              />
            </Panel>
            <Panel title="Loss" className="order-4">
              <LossChart
                xMode={xMode}
                evaluations={state.evaluations}
                iterations={state.iterations}
              />
            </Panel>
          </div>
          <Panel title="Staleness (SDDE)" className="order-5" testId="staleness-panel">
            {status ? <StalenessPanel status={status} /> : <p className="empty">Connecting…</p>}
          </Panel>
          <Panel title="Event log" className="order-7" testId="events-panel">
            <EventLog events={state.events} />
          </Panel>
        </div>
        <div className="column column--side">
          <Panel title="Controls" className="order-2" testId="controls-panel">
            <Controls status={status} />
          </Panel>
          <Panel title="Bytes on the wire" className="order-6">
            {status ? <WirePanel status={status} /> : <p className="empty">Connecting…</p>}
          </Panel>
          <Panel title="Job" className="order-8">
            {status ? <JobPanel status={status} /> : <p className="empty">Connecting…</p>}
          </Panel>
        </div>
      </main>
    </div>
  );
}
