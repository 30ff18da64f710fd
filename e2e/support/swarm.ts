/**
 * A training swarm for end-to-end tests: a real coordinator child process
 * (`swarmgrad serve --port 0`) and one "tab" per FakeWorker from
 * packages/test-support/src/fake-worker.ts — real socket.io clients speaking the real
 * protocol, fetching real partitions and proposing real 1-bit softmax-regression updates.
 *
 * The dashboard and volunteer-page specs use them: cheap, deterministic tabs that leave the two
 * cores to the pages under test. Each tab here also sends the tab `report` a browser worker
 * sends (state, steps, examples/s, training loss), so the dashboard's per-tab figures and
 * training-loss curve have data. Real Chromium tabs training over WebRTC are in
 * browser-swarm.ts (browser-swarm, node-worker and webgpu-gradient specs).
 */
import { FakeWorker } from '@swarmgrad/test-support/fake-worker';
import { startCoordinator, until } from './coordinator.ts';

export { until };

/** A softmax-regression job the fake workers compute real gradients for; 2 tabs per cluster. */
export const dashboardJob = {
  name: 'e2e-dashboard',
  model: { preset: 'softmax-784-10' },
  partitions: 16,
  cluster: { size: 2, redundancy: 0 },
  agreement: { graceMs: 100 },
  optimizer: { learningRate: 0.5 },
  evaluateEvery: 5,
  checkpointEvery: 25,
  staleness: 2,
};

export class Tab {
  private readonly timer: NodeJS.Timeout;
  private readonly joinedAt = Date.now();
  private readonly firstIteration: number;
  closed = false;

  constructor(readonly worker: FakeWorker) {
    this.firstIteration = worker.iteration;
    this.timer = setInterval(() => this.report(), 700);
  }

  get id(): string {
    return this.worker.id;
  }

  private report(): void {
    if (this.closed) return;
    const steps = Math.max(0, this.worker.iteration - this.firstIteration);
    const seconds = Math.max(0.001, (Date.now() - this.joinedAt) / 1000);
    const proposer = this.worker.placement?.proposer === true;
    const loss = this.worker.trainingLoss();
    this.worker.socket.emit('report', {
      state: proposer ? 'computing' : 'waiting',
      steps,
      examplesPerSecond: (steps * 64) / seconds,
      computeMs: 5,
      wallMs: seconds * 1000,
      peerBytesSent: 0,
      peerFp32Bytes: 0,
      trainingLoss: loss !== null && Number.isFinite(loss) ? loss : null,
      throttle: 1,
    });
  }

  /** The tab goes away, as a closed browser tab does: its socket drops. */
  close(): void {
    this.closed = true;
    clearInterval(this.timer);
    this.worker.close();
  }
}

export interface Swarm {
  /** Loopback URL for pages and the API. */
  url: string;
  /** The non-loopback URL the coordinator printed (what WebRTC tabs would use). */
  lanUrl: string;
  token: string;
  tabs: Tab[];
  addTab(): Promise<Tab>;
  status(): Promise<ApiStatus>;
  stop(): Promise<void>;
  output(): string;
}

export interface ApiStatus {
  iteration: number;
  phase: string;
  tabs: number;
  learningRate: number;
  clusters: { id: number; live: boolean; members: { tabId: string; live: boolean }[] }[];
  job: { aggregator: { name: string; f: number }; cluster: { size: number } };
  accuracy: number | null;
}

/** Starts `swarmgrad serve` with `job` and `tabs` fake tabs, and waits until they train. */
export async function startSwarm(options: {
  tabs: number;
  job?: object;
  delayMs?: number;
}): Promise<Swarm> {
  const coordinator = await startCoordinator({ job: options.job ?? dashboardJob });
  const { loopbackUrl: url, url: lanUrl, token } = coordinator;

  const tabs: Tab[] = [];
  const addTab = async () => {
    const tab = new Tab(await FakeWorker.connect({ url, delayMs: options.delayMs ?? 150 }));
    tabs.push(tab);
    return tab;
  };
  const status = async () => (await (await fetch(`${url}/api/status`)).json()) as ApiStatus;
  for (let i = 0; i < options.tabs; i++) await addTab();

  return {
    url,
    lanUrl,
    token,
    tabs,
    addTab,
    status,
    output: coordinator.output,
    async stop() {
      for (const tab of tabs) if (!tab.closed) tab.close();
      await coordinator.stop();
    },
  };
}
