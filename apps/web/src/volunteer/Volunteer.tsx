/**
 * The volunteer page at /: says what the tab will do, starts nothing before Donate, then
 * shows the tab's contribution (backend and why, steps, examples/s, bytes against fp32,
 * peers, accuracy) with throttle, pause and leave. Talks to the worker only through
 * ./adapter.ts.
 */
import { useEffect, useRef, useState } from 'react';
import type { DashboardStatus } from '@swarmgrad/protocol';
import { fetchStatus } from '../lib/api.ts';
import {
  bitsPerParameter,
  describeDataset,
  describeModel,
  formatBytes,
  formatInt,
  formatNumber,
  formatPercent,
} from '../lib/format.ts';
import type { VolunteerStatus, VolunteerWorker } from './adapter.ts';
import { loadVolunteerWorker } from './worker-factory.ts';
import { installDebugHook } from './debug.ts';
import { coordinatorUrls } from './coordinators.ts';

// window.__swarmgrad for the end-to-end tests and benchmarks, only with ?debug in the URL
installDebugHook();

type Stage = 'ready' | 'loading' | 'running' | 'paused' | 'left' | 'unavailable' | 'error';

const BACKEND_LABEL: Record<string, string> = {
  webgpu: 'WebGPU',
  webgl: 'WebGL',
  wasm: 'WebAssembly',
  cpu: 'CPU (JavaScript)',
  none: 'not chosen yet',
};

const PHASE_LABEL: Record<string, string> = {
  waiting: 'Waiting for tabs',
  training: 'Training',
  paused: 'Paused by the operator',
  'quorum-lost': 'Waiting for clusters to return',
  done: 'Finished',
};

function useSwarmStatus(): { status: DashboardStatus | null; error: string | null } {
  const [status, setStatus] = useState<DashboardStatus | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    const controller = new AbortController();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const poll = async () => {
      try {
        setStatus(await fetchStatus(controller.signal));
        setError(null);
      } catch (e) {
        if (!controller.signal.aborted) setError((e as Error).message);
      }
      if (!controller.signal.aborted) timer = setTimeout(() => void poll(), 5000);
    };
    void poll();
    return () => {
      controller.abort();
      clearTimeout(timer);
    };
  }, []);
  return { status, error };
}

const icon = {
  width: 18,
  height: 18,
  viewBox: '0 0 24 24',
  fill: 'none',
  stroke: 'currentColor',
  strokeWidth: 2,
  strokeLinecap: 'round',
  strokeLinejoin: 'round',
  'aria-hidden': true,
} as const;

const BoltIcon = () => (
  <svg {...icon}>
    <path d="M13 2 3 14h9l-1 8 10-12h-9l1-8z" />
  </svg>
);
const WireIcon = () => (
  <svg {...icon}>
    <path d="M7 20V4M3 8l4-4 4 4M17 4v16M13 16l4 4 4-4" />
  </svg>
);
const PowerIcon = () => (
  <svg {...icon}>
    <path d="M12 2v10" />
    <path d="M18.4 6.6a9 9 0 1 1-12.8 0" />
  </svg>
);

/** "softmax-784-10 on MNIST handwritten digits (8,000 training and 2,000 held-out images)" */
function describeWork(status: DashboardStatus): string {
  const { model, dataset } = status.job;
  const data =
    'preset' in dataset
      ? `MNIST handwritten digits (${formatInt(dataset.train)} training and ${formatInt(dataset.heldOut)} held-out images)`
      : describeDataset(dataset, status.data);
  return `${describeModel(model)}, a ${formatInt(status.dimension)}-parameter model, on ${data}`;
}

function Stat({
  label,
  value,
  detail,
  testId,
}: {
  label: string;
  value: string;
  detail?: string;
  testId?: string;
}) {
  return (
    <div className="stat">
      <span className="stat__label">{label}</span>
      <span className="stat__value" data-testid={testId}>
        {value}
      </span>
      {detail && <span className="stat__detail">{detail}</span>}
    </div>
  );
}

export default function Volunteer() {
  const { status, error } = useSwarmStatus();
  const [stage, setStage] = useState<Stage>('ready');
  const [message, setMessage] = useState<string | null>(null);
  const [mine, setMine] = useState<VolunteerStatus | null>(null);
  const [throttle, setThrottle] = useState(1);
  const worker = useRef<VolunteerWorker | null>(null);

  useEffect(
    () => () => {
      void worker.current?.leave();
    },
    [],
  );

  const donate = async () => {
    setStage('loading');
    setMessage(null);
    try {
      const loaded = await loadVolunteerWorker();
      if (!loaded.ok) {
        setStage('unavailable');
        setMessage(loaded.reason);
        return;
      }
      const w = loaded.create({ url: coordinatorUrls(), throttle });
      worker.current = w;
      w.on('status', (s) => setMine({ ...s }));
      // the tab's card shows progress (backend trials, connecting) while start() runs
      setMine({ ...w.status() });
      setStage('running');
      await w.start();
      setMine({ ...w.status() });
    } catch (e) {
      setStage('error');
      setMessage(`The worker could not start: ${(e as Error).message}`);
    }
  };

  const pause = () => {
    worker.current?.pause();
    setStage('paused');
  };
  const resume = () => {
    worker.current?.resume();
    setStage('running');
  };
  const leave = async () => {
    await worker.current?.leave();
    worker.current = null;
    setStage('left');
  };
  const changeThrottle = (share: number) => {
    setThrottle(share);
    worker.current?.setThrottle(share);
  };

  const job = status?.job;
  const bits = job ? bitsPerParameter(job.codec) : 1 + 32 / 1024;
  const perUpdate = status ? (status.dimension * bits) / 8 : null;
  const fp32PerUpdate = status ? status.dimension * 4 : null;
  const started = stage === 'running' || stage === 'paused';
  const otherTabs = status ? Math.max(0, status.tabs - (started ? 1 : 0)) : null;

  return (
    <div className="page page--volunteer">
      <header className="topbar topbar--simple">
        <div className="topbar__brand">
          <img src="/favicon.svg" alt="" width="28" height="28" />
          <div>
            <span className="topbar__title">swarmgrad</span>
            <span className="topbar__subtitle">Volunteer compute</span>
          </div>
        </div>
        {status && (
          <span className={`phase phase--${status.phase}`} data-testid="swarm-phase">
            {PHASE_LABEL[status.phase] ?? status.phase}
          </span>
        )}
      </header>

      <main className="volunteer">
        <section className="card hero" aria-labelledby="hero-title">
          <p className="eyebrow">Donate this tab's compute</p>
          <h1 id="hero-title">
            Help train{' '}
            <span className="hero__job" data-testid="volunteer-job">
              {job?.name ?? '…'}
            </span>
          </h1>
          <p className="lead">
            {status
              ? `This tab will train ${describeWork(status)}, together with ${
                  otherTabs === 0
                    ? 'the other tabs that join'
                    : `${formatInt(otherTabs)} other tab${otherTabs === 1 ? '' : 's'}`
                }.`
              : error
                ? `The coordinator is not answering (${error}).`
                : 'Loading the job…'}
          </p>
          <ul className="promises">
            <li>
              <span className="promises__icon">
                <BoltIcon />
              </span>
              <span>
                <strong>Uses your GPU or CPU</strong> while this tab is open: WebGPU when your
                browser has it, otherwise WebGL, WebAssembly or plain JavaScript.
              </span>
            </li>
            <li>
              <span className="promises__icon">
                <WireIcon />
              </span>
              <span>
                <strong>
                  Sends about {formatNumber(bits, 3)} bit{bits === 1 ? '' : 's'} per parameter
                </strong>
                {perUpdate !== null && fp32PerUpdate !== null
                  ? ` — ${formatBytes(perUpdate)} per update instead of ${formatBytes(fp32PerUpdate)} in fp32`
                  : ''}
                , to the few tabs of its cluster and the coordinator.
              </span>
            </li>
            <li>
              <span className="promises__icon">
                <PowerIcon />
              </span>
              <span>
                <strong>Nothing starts before you press Donate.</strong> Throttle, pause or leave at
                any time; the swarm carries on without losing work.
              </span>
            </li>
          </ul>
          {!started && (
            <div className="hero__actions">
              <button
                type="button"
                className="btn btn--primary btn--large"
                data-testid="donate"
                disabled={stage === 'loading' || !status}
                onClick={() => void donate()}
              >
                {stage === 'loading' ? 'Starting…' : stage === 'left' ? 'Donate again' : 'Donate'}
              </button>
              <span className="hero__fineprint">
                No account, no install. Training data comes from this server.
              </span>
            </div>
          )}
          {message && (
            <p
              className={`notice ${stage === 'error' ? 'notice--bad' : 'notice--info'}`}
              role="status"
              data-testid="volunteer-message"
            >
              {message}
            </p>
          )}
          {stage === 'left' && (
            <p className="notice notice--info" role="status">
              You left the swarm. Thank you for your compute!
            </p>
          )}
        </section>

        {started && (
          <section className="card mine" aria-labelledby="mine-title" data-testid="my-tab">
            <header className="card__head">
              <h2 id="mine-title">Your tab</h2>
              <span className={`phase phase--${stage === 'paused' ? 'paused' : 'training'}`}>
                {stage === 'paused' ? 'Paused' : (mine?.phase ?? 'starting')}
              </span>
            </header>
            <div className="backend-line">
              <span className={`backend backend--${mine?.backend ?? 'none'}`}>
                {BACKEND_LABEL[mine?.backend ?? 'none'] ?? mine?.backend}
                {mine?.fallbackAdapter ? ' · fallback adapter' : ''}
              </span>
              <span className="backend-line__reason">
                {mine?.backendReason ?? 'Choosing a backend…'}
              </span>
            </div>
            <div className="stats">
              <Stat label="Steps" value={formatInt(mine?.steps)} />
              <Stat label="Examples/s" value={formatNumber(mine?.examplesPerSecond ?? null)} />
              <Stat
                label="Sent"
                value={formatBytes(mine?.peerBytesSent ?? 0)}
                detail={`vs ${formatBytes(mine?.peerFp32Bytes ?? 0)} in fp32`}
              />
              <Stat label="Peers" value={formatInt(mine?.peers)} />
              <Stat label="Iteration" value={formatInt(mine?.iteration)} />
              <Stat
                label="Accuracy"
                value={formatPercent(mine?.accuracy ?? status?.accuracy ?? null)}
              />
            </div>
            <div className="mine__controls">
              <label className="throttle" htmlFor="throttle">
                <span>
                  Compute share <strong>{Math.round(throttle * 100)}%</strong>
                </span>
                <input
                  id="throttle"
                  type="range"
                  min="0.1"
                  max="1"
                  step="0.05"
                  value={throttle}
                  onChange={(e) => changeThrottle(Number(e.target.value))}
                />
              </label>
              <div className="mine__buttons">
                {stage === 'paused' ? (
                  <button type="button" className="btn btn--primary" onClick={resume}>
                    Resume
                  </button>
                ) : (
                  <button type="button" className="btn btn--ghost" onClick={pause}>
                    Pause
                  </button>
                )}
                <button type="button" className="btn btn--danger" onClick={() => void leave()}>
                  Leave
                </button>
              </div>
            </div>
          </section>
        )}

        <section className="card swarm" aria-labelledby="swarm-title" data-testid="swarm">
          <header className="card__head">
            <h2 id="swarm-title">The swarm now</h2>
          </header>
          <div className="stats">
            <Stat
              label="Tabs"
              value={formatInt(status?.tabs)}
              detail={
                status
                  ? `${status.clusters.length} cluster${status.clusters.length === 1 ? '' : 's'}`
                  : undefined
              }
            />
            <Stat label="Iteration" value={formatInt(status?.iteration)} />
            <Stat
              label="Accuracy"
              value={formatPercent(status?.accuracy ?? null)}
              detail={job ? `target ${formatPercent(job.targetAccuracy, 0)}` : undefined}
            />
            <Stat
              label="Saved vs fp32"
              value={
                status?.wire.compression ? `${formatNumber(status.wire.compression, 3)}×` : '—'
              }
            />
          </div>
        </section>
      </main>
      <footer className="footer">
        swarmgrad · <a href="/dashboard">Operator dashboard</a> ·{' '}
        <a href="/api/status">Status API</a>
      </footer>
    </div>
  );
}
