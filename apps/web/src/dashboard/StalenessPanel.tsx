/**
 * Seed 001's staleness panel: the measured delay distribution (ages of accepted proposals),
 * the rightmost root of the SDDE's characteristic equation at the current tab count and
 * threshold (the stability margin), and the tab count and threshold the analysis picks.
 */
import type { DashboardStatus, StalenessSummary } from '@swarmgrad/protocol';
import { formatDuration, formatInt, formatNumber } from '../lib/format.ts';

function Histogram({ summary }: { summary: StalenessSummary }) {
  const maxAge = Math.max(summary.threshold + 1, ...summary.histogram.map((h) => h.age));
  const counts = new Map(summary.histogram.map((h) => [h.age, h.count]));
  const ages = Array.from({ length: maxAge + 1 }, (_, age) => age);
  const peak = Math.max(1, ...summary.histogram.map((h) => h.count), summary.dropped);
  return (
    <div className="histogram" role="img" aria-label="Accepted proposal ages in iterations">
      {ages.map((age) => {
        const beyond = age > summary.threshold;
        const count = beyond && age === maxAge ? summary.dropped : (counts.get(age) ?? 0);
        return (
          <div key={age} className={`histogram__col${beyond ? ' histogram__col--dropped' : ''}`}>
            <span className="histogram__count">{formatInt(count)}</span>
            <span className="histogram__bar" style={{ height: `${(count / peak) * 100}%` }} />
            <span className="histogram__age">
              {beyond && age === maxAge ? `>${summary.threshold}` : age}
            </span>
          </div>
        );
      })}
    </div>
  );
}

function RateByTabs({ summary }: { summary: StalenessSummary }) {
  const peak = Math.max(1e-12, ...summary.byWorkers.map((p) => Math.max(0, p.rate)));
  return (
    <div className="rates" role="img" aria-label="Convergence rate per active tab count">
      {summary.byWorkers.map((p) => {
        const chosen = p.workers === summary.recommended.workers;
        const current = p.workers === summary.activeTabs;
        return (
          <div
            key={p.workers}
            className={`rates__col${chosen ? ' rates__col--chosen' : ''}${current ? ' rates__col--current' : ''}${p.stable ? '' : ' rates__col--unstable'}`}
            title={`${p.workers} tabs: rate ${formatNumber(p.rate)}/s${p.stable ? '' : ' (unstable)'}`}
          >
            <span
              className="rates__bar"
              style={{ height: `${(Math.max(0, p.rate) / peak) * 100}%` }}
            />
            <span className="rates__n">{p.workers}</span>
          </div>
        );
      })}
    </div>
  );
}

export function StalenessPanel({ status }: { status: DashboardStatus }) {
  const s = status.staleness;
  if (!s) {
    return (
      <p className="empty">
        Waiting for measurements: the analysis needs accepted proposals and a closed iteration.
      </p>
    );
  }
  const stable = s.current.stable;
  return (
    <div className="staleness" data-testid="staleness">
      <div className="staleness__summary">
        <div className={`verdict ${stable ? 'verdict--ok' : 'verdict--bad'}`}>
          <span className="verdict__label">{stable ? 'Stable' : 'Unstable'}</span>
          <span className="verdict__value">margin {formatNumber(s.current.margin)}/s</span>
          <span className="verdict__detail">
            Re(s*) = {formatNumber(s.current.re)}
            {s.current.im > 0 ? `, oscillating (Im ${formatNumber(s.current.im)})` : ''} · a·τ̄ ={' '}
            {formatNumber(s.current.aTau)} (fixed-delay limit π/2)
          </span>
        </div>
        <div className="choice" data-testid="staleness-choice">
          <span className="choice__label">Analysis picks</span>
          <span className="choice__value">
            {s.recommended.workers} tabs · S = {s.recommended.threshold}
          </span>
          <span className="choice__detail">
            now {s.activeTabs} tabs · S = {s.threshold}
          </span>
        </div>
      </div>
      <div className="staleness__charts">
        <figure>
          <figcaption>Delay distribution (iterations, {formatInt(s.samples)} proposals)</figcaption>
          <Histogram summary={s} />
        </figure>
        <figure>
          <figcaption>Convergence rate by active tabs (S = {s.threshold})</figcaption>
          <RateByTabs summary={s} />
        </figure>
      </div>
      {status.stalenessAuto ? (
        <p className="reason" data-testid="staleness-auto">
          <strong>Auto S = {status.stalenessAuto.threshold}</strong> (since iteration{' '}
          {formatInt(status.stalenessAuto.iteration)}): {status.stalenessAuto.reason}
        </p>
      ) : (
        <p className="reason">{s.recommended.reason}</p>
      )}
      <dl className="facts facts--compact">
        <div>
          <dt>Mean delay</dt>
          <dd>{formatNumber(s.meanAge)} it.</dd>
        </div>
        <div>
          <dt>E[T]</dt>
          <dd>
            {s.meanTaskSeconds < 1
              ? `${formatNumber(s.meanTaskSeconds * 1000)} ms`
              : formatDuration(s.meanTaskSeconds)}
          </dd>
        </div>
        <div>
          <dt>η</dt>
          <dd>{formatNumber(s.learningRate)}</dd>
        </div>
        <div>
          <dt title={s.curvatureSource}>h (est.)</dt>
          <dd title={s.curvatureSource}>{formatNumber(s.curvature)}</dd>
        </div>
        <div>
          <dt>Accepted</dt>
          <dd>{formatNumber(s.current.acceptance * 100)}%</dd>
        </div>
        <div>
          <dt>Dropped</dt>
          <dd>{formatInt(s.dropped)}</dd>
        </div>
        <div>
          <dt title="proposals whose step seed 001's rule shrank, min(1, 1/(e·η·h·d)), and the smallest factor">
            Steps shrunk
          </dt>
          <dd data-testid="step-scaled">
            {formatInt(status.stepScaled.proposals)}
            {status.stepScaled.minScale !== null
              ? ` (min ×${formatNumber(status.stepScaled.minScale)})`
              : ''}
          </dd>
        </div>
      </dl>
    </div>
  );
}
