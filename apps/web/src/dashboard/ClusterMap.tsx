/**
 * Clusters drawn as groups of tabs: each tab's state, backend and steps per second; each
 * cluster marked when it made the last iteration's majority, has proposed for the current
 * one, or has lost every tab.
 */
import type { DashboardCluster, DashboardStatus, TabStateView } from '@swarmgrad/protocol';
import { formatInt, formatNumber } from '../lib/format.ts';

const STATE_LABEL: Record<TabStateView, string> = {
  computing: 'Computing',
  waiting: 'Waiting for peers',
  idle: 'Joined',
  paused: 'Paused',
  quarantined: 'Quarantined',
  closed: 'Closed',
};

const SHORT_LABEL: Record<TabStateView, string> = {
  computing: 'Computing',
  waiting: 'Waiting',
  idle: 'Joined',
  paused: 'Paused',
  quarantined: 'Quarantined',
  closed: 'Closed',
};

export const STATE_ORDER: TabStateView[] = [
  'computing',
  'waiting',
  'idle',
  'paused',
  'quarantined',
  'closed',
];

function ClusterCard({ cluster, inMajority }: { cluster: DashboardCluster; inMajority: boolean }) {
  const live = cluster.members.filter((m) => m.live).length;
  return (
    <article
      className={`cluster${cluster.live ? '' : ' cluster--lost'}${inMajority ? ' cluster--majority' : ''}`}
      data-testid="cluster"
      data-cluster={cluster.id}
      data-live={cluster.live}
    >
      <header className="cluster__head">
        <h3>Cluster {cluster.id}</h3>
        <span className="cluster__count">
          {live}/{cluster.members.length} live
        </span>
        <span className="cluster__badges">
          {!cluster.live && <span className="badge badge--bad">lost</span>}
          {inMajority && <span className="badge badge--ok">in majority</span>}
          {cluster.proposed && <span className="badge badge--info">proposed</span>}
        </span>
      </header>
      <ul className="tabs">
        {cluster.members.map((tab) => (
          <li
            key={tab.tabId}
            className={`tab tab--${tab.state}`}
            data-testid="tab"
            data-tab={tab.tabId}
            data-state={tab.state}
            title={`${tab.tabId} · slot ${tab.slot} · ${STATE_LABEL[tab.state]}${
              tab.rttMs !== null ? ` · RTT ${formatNumber(tab.rttMs, 2)} ms` : ''
            } · ${formatInt(tab.steps)} steps`}
          >
            <div className="tab__row">
              <span className="tab__dot" aria-hidden="true" />
              <span className="tab__id">{tab.tabId.replace(/^tab-/, '')}</span>
              <span className={`backend backend--${tab.backend}`}>
                {tab.backend === 'none' ? '—' : tab.backend.toUpperCase()}
                {tab.backend === 'webgpu' && tab.fallbackAdapter ? ' · fallback' : ''}
              </span>
            </div>
            <div className="tab__row tab__row--meta">
              <span className="tab__state">{SHORT_LABEL[tab.state]}</span>
              <span className="tab__rate">
                {tab.live ? `${formatNumber(tab.stepsPerSecond, 2)} steps/s` : ''}
              </span>
            </div>
          </li>
        ))}
      </ul>
    </article>
  );
}

export function ClusterMap({ status }: { status: DashboardStatus }) {
  const majority = new Set(status.quorum.lastMajority);
  if (status.clusters.length === 0) {
    return (
      <p className="empty">
        No tabs yet. Volunteers join at <code>{window.location.origin}/</code>
      </p>
    );
  }
  return (
    <>
      <ul className="legend" aria-label="Tab states">
        {STATE_ORDER.map((s) => (
          <li key={s} className={`legend__item tab--${s}`}>
            <span className="tab__dot" aria-hidden="true" />
            {STATE_LABEL[s]}
          </li>
        ))}
      </ul>
      <div className="clusters">
        {status.clusters.map((cluster) => (
          <ClusterCard
            key={cluster.id}
            cluster={cluster}
            inMajority={cluster.live && majority.has(cluster.id)}
          />
        ))}
      </div>
    </>
  );
}
