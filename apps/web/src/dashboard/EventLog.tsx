/**
 * The event log, newest first, filterable: tabs joining and leaving, faults (a tab closed
 * mid-round, a cluster or the quorum lost, updates rejected and why, quarantines),
 * checkpoints and operator actions.
 */
import { useMemo, useState } from 'react';
import type { DashboardEvent, DashboardEventKind } from '@swarmgrad/protocol';
import { formatClock } from '../lib/format.ts';

type Filter = 'all' | 'faults' | 'tabs' | 'checkpoints' | 'operator';

const GROUP: Record<DashboardEventKind, Exclude<Filter, 'all'>> = {
  'tab-joined': 'tabs',
  'tab-left': 'tabs',
  'tab-left-mid-round': 'faults',
  'cluster-lost': 'faults',
  'quorum-lost': 'faults',
  'quorum-restored': 'faults',
  'update-rejected': 'faults',
  'tab-quarantined': 'faults',
  'proposal-refuted': 'faults',
  'proposal-unconfirmed': 'faults',
  'proposer-silent': 'faults',
  'link-relayed': 'faults',
  'link-direct': 'faults',
  'tabs-parted': 'faults',
  checkpoint: 'checkpoints',
  control: 'operator',
  staleness: 'operator',
  iteration: 'operator',
  node: 'faults',
};

const LABEL: Record<DashboardEventKind, string> = {
  'tab-joined': 'joined',
  'tab-left': 'left',
  'tab-left-mid-round': 'left mid-round',
  'cluster-lost': 'cluster lost',
  'quorum-lost': 'quorum lost',
  'quorum-restored': 'quorum restored',
  'update-rejected': 'rejected',
  'tab-quarantined': 'quarantined',
  'proposal-refuted': 'proposal refuted',
  'proposal-unconfirmed': 'proposal unconfirmed',
  'proposer-silent': 'proposer silent',
  'link-relayed': 'link relayed',
  'link-direct': 'link direct',
  'tabs-parted': 'tabs parted',
  checkpoint: 'checkpoint',
  control: 'operator',
  staleness: 'staleness S',
  iteration: 'iteration',
  node: 'node',
};

const TONE: Record<DashboardEventKind, string> = {
  'tab-joined': 'ok',
  'tab-left': 'muted',
  'tab-left-mid-round': 'warn',
  'cluster-lost': 'bad',
  'quorum-lost': 'bad',
  'quorum-restored': 'ok',
  'update-rejected': 'warn',
  'tab-quarantined': 'bad',
  'proposal-refuted': 'bad',
  'proposal-unconfirmed': 'warn',
  'proposer-silent': 'warn',
  'link-relayed': 'warn',
  'link-direct': 'ok',
  'tabs-parted': 'info',
  checkpoint: 'info',
  control: 'violet',
  staleness: 'info',
  iteration: 'muted',
  node: 'warn',
};

const FILTERS: { id: Filter; label: string }[] = [
  { id: 'all', label: 'All' },
  { id: 'faults', label: 'Faults' },
  { id: 'tabs', label: 'Tabs' },
  { id: 'checkpoints', label: 'Checkpoints' },
  { id: 'operator', label: 'Operator' },
];

const SHOWN = 300;

/** Operator actions arrive as `operator: {json}`; shown as words. */
function messageOf(e: DashboardEvent): string {
  if (e.kind !== 'control') return e.message;
  const match = /^operator: (\{.*\})$/.exec(e.message);
  if (!match) return e.message;
  try {
    const command = JSON.parse(match[1]!) as Record<string, unknown>;
    const { action, ...rest } = command;
    const args = Object.entries(rest)
      .map(([k, v]) => `${k} ${String(v)}`)
      .join(', ');
    return `${String(action)}${args ? `: ${args}` : ''}`;
  } catch {
    return e.message;
  }
}

export function EventLog({ events }: { events: DashboardEvent[] }) {
  const [filter, setFilter] = useState<Filter>('all');
  const counts = useMemo(() => {
    const c: Record<Filter, number> = {
      all: events.length,
      faults: 0,
      tabs: 0,
      checkpoints: 0,
      operator: 0,
    };
    for (const e of events) c[GROUP[e.kind] ?? 'operator']++;
    return c;
  }, [events]);
  const shown = useMemo(() => {
    const out: { event: DashboardEvent; key: string }[] = [];
    for (let i = events.length - 1; i >= 0 && out.length < SHOWN; i--) {
      const e = events[i]!;
      if (filter === 'all' || GROUP[e.kind] === filter) out.push({ event: e, key: `${e.at}:${i}` });
    }
    return out;
  }, [events, filter]);
  return (
    <div className="log">
      <div className="segmented" role="tablist" aria-label="Filter events">
        {FILTERS.map((f) => (
          <button
            key={f.id}
            type="button"
            role="tab"
            aria-selected={filter === f.id}
            className={filter === f.id ? 'is-active' : ''}
            onClick={() => setFilter(f.id)}
          >
            {f.label}
            <span className="segmented__count">{counts[f.id]}</span>
          </button>
        ))}
      </div>
      {shown.length === 0 ? (
        <p className="empty">No events yet.</p>
      ) : (
        <ol className="log__list" data-testid="event-log">
          {shown.map(({ event: e, key }) => (
            <li key={key} className="log__item" data-testid="event" data-kind={e.kind}>
              <time className="log__time" dateTime={new Date(e.at).toISOString()}>
                {formatClock(e.at)}
              </time>
              <span className={`log__kind tone--${TONE[e.kind] ?? 'muted'}`}>
                {LABEL[e.kind] ?? e.kind}
              </span>
              <span className="log__message">{messageOf(e)}</span>
            </li>
          ))}
        </ol>
      )}
    </div>
  );
}
