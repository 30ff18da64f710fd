/**
 * Test hook of the volunteer page: `window.__swarmgrad`, installed only when the page is opened
 * with `?debug` in its URL (the end-to-end tests and `npm run bench -- swarm` do). It reads; it
 * never drives the worker (Donate, pause and leave stay the page's buttons).
 *
 * - `status()`: the tab worker's full `WorkerStatus` (undefined before Donate).
 * - `dataChannels()`: per mesh link, the frames and bytes the worker counted and what the
 *   browser's own `RTCPeerConnection.getStats()` says its data channels carried.
 * - `gradientCheck()`: the job's model at the agreed parameters (GET /api/params) on the first
 *   `batchSize` samples of data partition 0, its flat gradient on the webgpu backend and on the
 *   cpu backend, for comparison (@swarmgrad/model computeGradientAsync, what the trainer uses). Call it before Donate: TF.js's
 *   backend is page-wide (it is restored afterwards).
 */
import type { SwarmWorker, WorkerStatus } from '@swarmgrad/worker';
import {
  parseFrame,
  verifyPartition,
  type DashboardStatus,
  type DataManifest,
  type DataChannelTraffic,
  type GradientCheck,
  type GradientRun,
  type SwarmgradDebug,
} from '@swarmgrad/protocol';

let current: SwarmWorker | undefined;

export function debugEnabled(): boolean {
  return new URLSearchParams(window.location.search).has('debug');
}

/** The worker the page created (worker-factory.ts calls this when the hook is on). */
export function attachDebugWorker(worker: SwarmWorker): void {
  current = worker;
}

export function installDebugHook(): void {
  if (!debugEnabled()) return;
  const hook: SwarmgradDebug<WorkerStatus> = {
    status: () => current?.status(),
    dataChannels,
    gradientCheck,
  };
  (window as unknown as { __swarmgrad: SwarmgradDebug<WorkerStatus> }).__swarmgrad = hook;
}

async function dataChannels(): Promise<DataChannelTraffic[]> {
  const links = current?.links() ?? [];
  return Promise.all(
    links.map(async (link) => {
      let stats: DataChannelTraffic['stats'] = null;
      let candidatePair: DataChannelTraffic['candidatePair'] = null;
      const pc = link.connection as RTCPeerConnection | undefined;
      if (pc && typeof pc.getStats === 'function') {
        stats = { bytesSent: 0, messagesSent: 0, channels: 0 };
        const reports = new Map<string, { type: string } & Record<string, unknown>>();
        (await pc.getStats()).forEach(
          (report: { type: string; id: string } & Record<string, unknown>) => {
            reports.set(report.id, report);
            if (report.type !== 'data-channel') return;
            stats!.channels++;
            stats!.bytesSent += Number(report['bytesSent'] ?? 0);
            stats!.messagesSent += Number(report['messagesSent'] ?? 0);
          },
        );
        // the transport names the selected pair; the pair names its two candidates
        for (const report of reports.values()) {
          if (report.type !== 'transport') continue;
          const pair = reports.get(String(report['selectedCandidatePairId'] ?? ''));
          const local = reports.get(String(pair?.['localCandidateId'] ?? ''));
          const remote = reports.get(String(pair?.['remoteCandidateId'] ?? ''));
          if (local && remote) {
            candidatePair = {
              local: String(local['candidateType']),
              remote: String(remote['candidateType']),
            };
          }
        }
      }
      const after = current?.links().find((l) => l.tabId === link.tabId);
      return {
        tabId: link.tabId,
        state: link.state,
        framesSent: link.framesSent,
        framesSentAfter: after?.framesSent ?? link.framesSent,
        bytesSent: link.bytesSent,
        controlFramesSent: link.controlFramesSent,
        controlBytesSent: link.controlBytesSent,
        stats,
        candidatePair,
      };
    }),
  );
}

async function gradientCheck(): Promise<GradientCheck> {
  const [worker, models, tf] = await Promise.all([
    import('@swarmgrad/worker'),
    import('@swarmgrad/model'),
    import('@tensorflow/tfjs-core'),
  ]);
  const get = async (url: string) => {
    const response = await fetch(url, { cache: 'no-store' });
    if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
    return response;
  };
  const status = (await (await get('/api/status')).json()) as DashboardStatus;
  const frame = parseFrame(new Uint8Array(await (await get('/api/params')).arrayBuffer()), {
    maxFrameBytes: Number.MAX_SAFE_INTEGER,
  });
  if (!frame.ok) throw new Error(`/api/params: ${frame.error.code} ${frame.error.message}`);
  const { dimension, iteration } = frame.value.header;
  const payload = frame.value.payload;
  const params = new Float32Array(
    payload.buffer.slice(payload.byteOffset, payload.byteOffset + 4 * dimension),
  );
  const manifest = (await (await get('/data/manifest.json')).json()) as DataManifest;
  const entry = manifest.partitions[0]!;
  const verified = await verifyPartition(
    new Uint8Array(await (await get(entry.url)).arrayBuffer()),
    entry.sha256,
    { features: manifest.features, classes: manifest.classes, count: entry.count },
  );
  if (!verified.ok) throw new Error(`partition 0: ${verified.error.message}`);
  const batch = Math.min(status.job.batchSize, verified.value.count);

  const run = async (backend: 'webgpu' | 'cpu'): Promise<GradientRun | { error: string }> => {
    try {
      if (!(await tf.setBackend(backend))) return { error: `${backend} did not initialise` };
      await tf.ready();
      const model = models.buildModel(status.job.model, 0);
      try {
        models.setFlatParameters(model, params);
        const started = performance.now();
        const { loss, gradient } = await models.computeGradientAsync(
          model,
          verified.value.xs,
          verified.value.labels,
          batch,
        );
        const ms = performance.now() - started;
        return { backend: tf.getBackend(), loss, gradient: Array.from(gradient), ms };
      } finally {
        model.dispose();
      }
    } catch (error) {
      return { error: error instanceof Error ? error.message : String(error) };
    }
  };

  // the adapter first, as the worker's backend choice asks (before TF.js holds a device)
  const fallbackAdapter = await worker.webgpuFallbackAdapter();
  const info = await adapterInfo();
  // engine().backendName, not getBackend(): the latter would initialise a backend of its own
  const before = tf.engine().backendName as string | null;
  const webgpu = await run('webgpu');
  const cpu = await run('cpu');
  if (before) await tf.setBackend(before);
  return {
    model: 'preset' in status.job.model ? status.job.model.preset : 'custom',
    dimension,
    batch,
    iteration,
    fallbackAdapter,
    adapterInfo: info,
    webgpu,
    cpu,
  };
}

async function adapterInfo(): Promise<Record<string, string> | undefined> {
  const gpu = (navigator as { gpu?: { requestAdapter(): Promise<unknown> } }).gpu;
  const adapter = (await gpu?.requestAdapter().catch(() => null)) as {
    info?: Record<string, unknown>;
  } | null;
  if (!adapter?.info) return undefined;
  const out: Record<string, string> = {};
  for (const key of ['vendor', 'architecture', 'device', 'description', 'isFallbackAdapter']) {
    if (adapter.info[key] !== undefined) out[key] = String(adapter.info[key]);
  }
  return out;
}
