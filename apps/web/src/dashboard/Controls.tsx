/**
 * Operator controls. The admin token is entered once, checked against the coordinator, and
 * kept in sessionStorage for this tab's session; without it every control is disabled and
 * the server refuses control requests anyway. Downloads need no token.
 */
import { useEffect, useState, type FormEvent } from 'react';
import {
  aggregatorNames,
  type AggregatorName,
  type ControlCommand,
  type DashboardStatus,
} from '@swarmgrad/protocol';
import { checkToken, downloadModel, sendControl } from '../lib/api.ts';
import { formatBytes, formatClock, formatInt } from '../lib/format.ts';

const TOKEN_KEY = 'swarmgrad.adminToken';

const AGGREGATORS = aggregatorNames;
type Aggregator = AggregatorName;

function readToken(): string | null {
  try {
    return sessionStorage.getItem(TOKEN_KEY);
  } catch {
    return null;
  }
}

function writeToken(token: string | null): void {
  try {
    if (token === null) sessionStorage.removeItem(TOKEN_KEY);
    else sessionStorage.setItem(TOKEN_KEY, token);
  } catch {
    // storage disabled: the token lives in memory for this page only
  }
}

interface Feedback {
  tone: 'ok' | 'bad' | 'muted';
  text: string;
}

function describe(command: ControlCommand): string {
  switch (command.action) {
    case 'pause':
      return 'Paused';
    case 'resume':
      return 'Resumed';
    case 'set-learning-rate':
      return `Learning rate set to ${command.learningRate}`;
    case 'set-cluster-size':
      return `Cluster size set to ${command.size} (applies from the next iteration)`;
    case 'set-aggregator':
      return `Aggregator set to ${command.name}${command.f !== undefined ? `, f = ${command.f}` : ''}`;
    case 'set-staleness':
      return `Staleness threshold S set to ${command.threshold}`;
  }
}

export function Controls({ status }: { status: DashboardStatus | null }) {
  const [token, setToken] = useState<string | null>(readToken);
  const [draft, setDraft] = useState('');
  const [busy, setBusy] = useState(false);
  const [feedback, setFeedback] = useState<Feedback | null>(null);
  const [learningRate, setLearningRate] = useState('');
  const [clusterSize, setClusterSize] = useState('');
  const [aggregator, setAggregator] = useState<Aggregator>('mean');
  const [f, setF] = useState('0');

  // fill the forms with the job's values once they are known
  const known = status !== null;
  useEffect(() => {
    if (!status) return;
    setLearningRate((v) => (v === '' ? String(status.learningRate) : v));
    setClusterSize((v) => (v === '' ? String(status.job.cluster.size) : v));
    setAggregator(status.job.aggregator.name);
    setF(String(status.job.aggregator.f));
    // only on first status: later statuses must not overwrite what the operator types
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [known]);

  const unlocked = token !== null;
  const disabled = !unlocked || busy || status === null;

  const unlock = async (event: FormEvent) => {
    event.preventDefault();
    const candidate = draft.trim();
    if (!candidate) return;
    setBusy(true);
    try {
      if (await checkToken(candidate)) {
        writeToken(candidate);
        setToken(candidate);
        setDraft('');
        setFeedback({ tone: 'ok', text: 'Controls unlocked for this session' });
      } else {
        setFeedback({ tone: 'bad', text: 'The coordinator refused this token' });
      }
    } catch (error) {
      setFeedback({
        tone: 'bad',
        text: `Could not reach the coordinator: ${(error as Error).message}`,
      });
    } finally {
      setBusy(false);
    }
  };

  const lock = () => {
    writeToken(null);
    setToken(null);
    setFeedback({ tone: 'muted', text: 'Locked: the page is read-only' });
  };

  const run = async (command: ControlCommand) => {
    setBusy(true);
    const result = await sendControl(token, command);
    setBusy(false);
    if (result.ok) {
      setFeedback({ tone: 'ok', text: `${describe(command)} · ${formatClock(Date.now())}` });
    } else {
      if (result.status === 401) {
        writeToken(null);
        setToken(null);
      }
      setFeedback({ tone: 'bad', text: `Refused (${result.code}): ${result.message}` });
    }
  };

  const [downloading, setDownloading] = useState(false);
  const download = async () => {
    setDownloading(true);
    try {
      const saved = await downloadModel();
      setFeedback({
        tone: 'ok',
        text: `Model saved: model.json + weights.bin (${formatBytes(saved.bytes)}, iteration ${formatInt(saved.iteration)})`,
      });
    } catch (error) {
      setFeedback({ tone: 'bad', text: (error as Error).message });
    } finally {
      setDownloading(false);
    }
  };

  const phase = status?.phase;
  const paused = phase === 'paused';
  const jobName = status?.job.name ?? 'job';

  return (
    <div className="controls">
      {unlocked ? (
        <div className="lockbar lockbar--open">
          <span>
            <span className="lockbar__icon" aria-hidden="true">
              ●
            </span>{' '}
            Admin controls unlocked
          </span>
          <button type="button" className="btn btn--ghost btn--small" onClick={lock}>
            Lock
          </button>
        </div>
      ) : (
        <form className="lockbar" onSubmit={unlock} aria-label="Admin token">
          <label className="sr-only" htmlFor="admin-token">
            Admin token
          </label>
          <input
            id="admin-token"
            type="password"
            autoComplete="off"
            placeholder="Admin token"
            value={draft}
            onChange={(e) => setDraft(e.target.value)}
          />
          <button type="submit" className="btn btn--primary" disabled={busy || draft.trim() === ''}>
            Unlock
          </button>
          <p className="lockbar__hint">
            Read-only. <code>swarmgrad serve</code> prints the admin token.
          </p>
        </form>
      )}

      <fieldset className="controls__group" disabled={disabled}>
        <legend>Training</legend>
        <div className="controls__row">
          <button
            type="button"
            className={`btn ${paused ? 'btn--ghost' : 'btn--warn'}`}
            data-testid="pause"
            disabled={paused || phase === 'done'}
            onClick={() => void run({ action: 'pause' })}
          >
            Pause
          </button>
          <button
            type="button"
            className={`btn ${paused ? 'btn--primary' : 'btn--ghost'}`}
            data-testid="resume"
            disabled={!paused}
            onClick={() => void run({ action: 'resume' })}
          >
            Resume
          </button>
        </div>
      </fieldset>

      <fieldset className="controls__group" disabled={disabled}>
        <legend>For the next iterations</legend>
        <form
          className="controls__field"
          onSubmit={(e) => {
            e.preventDefault();
            const value = Number(learningRate);
            if (Number.isFinite(value) && value > 0)
              void run({ action: 'set-learning-rate', learningRate: value });
            else setFeedback({ tone: 'bad', text: 'The learning rate must be a positive number' });
          }}
        >
          <label htmlFor="lr">Learning rate</label>
          <input
            id="lr"
            type="number"
            inputMode="decimal"
            step="any"
            min="0"
            max="10"
            value={learningRate}
            onChange={(e) => setLearningRate(e.target.value)}
          />
          <button type="submit" className="btn btn--ghost btn--small">
            Set
          </button>
        </form>
        <form
          className="controls__field"
          onSubmit={(e) => {
            e.preventDefault();
            const value = Number(clusterSize);
            if (Number.isInteger(value) && value >= 1 && value <= 32)
              void run({ action: 'set-cluster-size', size: value });
            else
              setFeedback({
                tone: 'bad',
                text: 'The cluster size must be an integer from 1 to 32',
              });
          }}
        >
          <label htmlFor="cluster-size">Cluster size m</label>
          <input
            id="cluster-size"
            type="number"
            inputMode="numeric"
            step="1"
            min="1"
            max="32"
            value={clusterSize}
            onChange={(e) => setClusterSize(e.target.value)}
          />
          <button type="submit" className="btn btn--ghost btn--small">
            Set
          </button>
        </form>
        <form
          className="controls__field controls__field--wide"
          onSubmit={(e) => {
            e.preventDefault();
            const fv = Number(f);
            void run({
              action: 'set-aggregator',
              name: aggregator,
              ...(Number.isInteger(fv) && fv >= 0 ? { f: fv } : {}),
            });
          }}
        >
          <label htmlFor="aggregator">Aggregator</label>
          <select
            id="aggregator"
            value={aggregator}
            onChange={(e) => setAggregator(e.target.value as Aggregator)}
          >
            {AGGREGATORS.map((a) => (
              <option key={a} value={a}>
                {a}
              </option>
            ))}
          </select>
          <label htmlFor="byzantine-f" className="controls__inline-label">
            f
          </label>
          <input
            id="byzantine-f"
            className="input--narrow"
            type="number"
            inputMode="numeric"
            min="0"
            max="15"
            step="1"
            value={f}
            onChange={(e) => setF(e.target.value)}
          />
          <button type="submit" className="btn btn--ghost btn--small">
            Set
          </button>
        </form>
      </fieldset>

      <div className="controls__group controls__downloads">
        <span className="controls__legend">Downloads</span>
        <div className="controls__row">
          <button
            type="button"
            className="btn btn--ghost"
            data-testid="download-model"
            disabled={downloading}
            onClick={() => void download()}
          >
            Model (TF.js)
          </button>
          <a
            className="btn btn--ghost"
            href="/api/metrics.csv"
            download={`${jobName}-metrics.csv`}
            data-testid="download-csv"
          >
            Metrics (CSV)
          </a>
        </div>
      </div>

      <p
        className={`feedback tone--${feedback?.tone ?? 'muted'}`}
        role="status"
        aria-live="polite"
        data-testid="control-feedback"
      >
        {feedback?.text ?? '\u00a0'}
      </p>
    </div>
  );
}
