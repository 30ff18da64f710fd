/**
 * The coordinator's HTTP surface: status, Prometheus metrics, the agreed model in TF.js
 * layers format, the parameters as an fp32 frame, the data partitions, token-protected
 * control, and the built web app (with the COOP/COEP headers threaded WASM needs and a CSP).
 */
import express, { type Request, type Response, type NextFunction } from 'express';
import helmet from 'helmet';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { ErrorCode, JobSpec, Phase } from '@swarmgrad/protocol';
import type { Metrics } from './metrics.ts';
import type { Dataset } from './dataset.ts';
import type { EvaluationPoint } from './options.ts';
import type { CoordinatorStatus } from './status.ts';
import { metricsCsv, type DashboardMetrics } from './dashboard.ts';

/** What the HTTP surface reads of the coordinator (coordinator.ts implements it). */
export interface HttpSurface {
  readonly job: JobSpec;
  readonly dataset: Dataset;
  readonly metrics: Metrics;
  readonly multiNode: boolean;
  readonly iteration: number;
  readonly base: Float32Array;
  readonly modelTopology: object;
  readonly modelWeightSpecs: unknown;
  readonly history: readonly EvaluationPoint[];
  readonly dashboardMetrics: DashboardMetrics;
  status(): CoordinatorStatus;
  paramsFrame(): Uint8Array;
  checkToken(header: string | undefined): boolean;
  countRejected(code: ErrorCode): void;
  control(
    raw: unknown,
  ): { ok: true; phase: Phase } | { ok: false; code: ErrorCode; message: string };
}

export function createHttpApp(
  coordinator: HttpSurface,
  webRoot: string | undefined,
): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.use(
    helmet({
      contentSecurityPolicy: {
        useDefaults: true,
        directives: {
          // the worker compiles TF.js's WASM kernels and runs blob workers; threaded WASM's
          // pthread workers importScripts() the Emscripten factory from a blob: URL, which only
          // this origin's own scripts can mint
          'script-src': ["'self'", "'wasm-unsafe-eval'", 'blob:'],
          'worker-src': ["'self'", 'blob:'],
          // with several nodes a tab whose own node died fetches the agreed parameters and its
          // data from another node (whose address the operator gave in ?coordinators=)
          'connect-src': [
            "'self'",
            'ws:',
            'wss:',
            ...(coordinator.multiNode ? ['http:', 'https:'] : []),
          ],
          'img-src': ["'self'", 'data:', 'blob:'],
          'style-src': ["'self'", "'unsafe-inline'"],
          // helmet's default would rewrite every same-origin http:// asset and ws:// socket to
          // https:// / wss://, which breaks the pages on a plain-http LAN address (the URL
          // `swarmgrad serve` prints); behind TLS there is nothing to upgrade anyway
          'upgrade-insecure-requests': null,
        },
      },
      crossOriginEmbedderPolicy: { policy: 'require-corp' },
      crossOriginOpenerPolicy: { policy: 'same-origin' },
      crossOriginResourcePolicy: { policy: 'same-origin' },
    }),
  );

  // what a tab reads (status, agreed parameters, model, data) is public and read-only: any
  // origin may fetch it, so a tab served by one node can fail over to another node
  app.use(['/api/status', '/api/params', '/api/model', '/data'], (req, res, next) => {
    if (req.method === 'GET' || req.method === 'HEAD') {
      res.set('Access-Control-Allow-Origin', '*');
      res.set('Cross-Origin-Resource-Policy', 'cross-origin');
    }
    next();
  });

  app.get('/api/status', (_req, res) => {
    res.json(coordinator.status());
  });

  app.get('/metrics', async (_req, res) => {
    res.type(coordinator.metrics.registry.contentType);
    res.send(await coordinator.metrics.registry.metrics());
  });

  app.get('/api/params', (_req, res) => {
    res.type('application/octet-stream');
    res.set('Cache-Control', 'no-store');
    res.send(Buffer.from(coordinator.paramsFrame()));
  });

  app.get(['/api/model', '/api/model/', '/api/model/model.json'], (_req, res) => {
    res.set('Cache-Control', 'no-store');
    res.json({
      format: 'layers-model',
      generatedBy: 'swarmgrad',
      convertedBy: null,
      modelTopology: coordinator.modelTopology,
      weightsManifest: [{ paths: ['weights.bin'], weights: coordinator.modelWeightSpecs }],
      userDefinedMetadata: { iteration: coordinator.iteration, job: coordinator.job.name },
    });
  });

  app.get('/api/model/weights.bin', (_req, res) => {
    const base = coordinator.base;
    res.type('application/octet-stream');
    res.set('Cache-Control', 'no-store');
    res.send(Buffer.from(base.buffer.slice(base.byteOffset, base.byteOffset + base.byteLength)));
  });

  app.get('/data/manifest.json', (_req, res) => {
    res.json(coordinator.dataset.manifest);
  });

  app.get('/data/:file', (req, res) => {
    const match = /^([0-9a-f]{64})\.bin$/.exec(req.params.file);
    const entry = match
      ? coordinator.dataset.manifest.partitions.find((p) => p.sha256 === match[1])
      : undefined;
    if (!entry) {
      res.status(404).json({ code: 'invalid-message', message: 'no such partition' });
      return;
    }
    res.type('application/octet-stream');
    res.set('Cache-Control', 'public, max-age=31536000, immutable');
    res.send(Buffer.from(coordinator.dataset.partitionBytes(entry.index)));
  });

  app.get('/api/metrics.csv', (_req, res) => {
    res.type('text/csv');
    res.set('Cache-Control', 'no-store');
    res.attachment(`${coordinator.job.name}-metrics.csv`);
    res.send(metricsCsv(coordinator.dashboardMetrics.series, coordinator.history));
  });

  // lets the dashboard check a token once before unlocking its controls; changes nothing
  app.get('/api/control', (req, res) => {
    if (!coordinator.checkToken(req.get('authorization'))) {
      coordinator.countRejected('unauthorized');
      res.status(401).json({ code: 'unauthorized', message: 'admin bearer token required' });
      return;
    }
    res.json({ ok: true });
  });

  app.post('/api/control', express.json({ limit: '4kb' }), (req, res) => {
    if (!coordinator.checkToken(req.get('authorization'))) {
      coordinator.countRejected('unauthorized');
      res.status(401).json({ code: 'unauthorized', message: 'admin bearer token required' });
      return;
    }
    const result = coordinator.control(req.body);
    if (!result.ok) {
      res.status(400).json({ code: result.code, message: result.message });
      return;
    }
    res.json({ ok: true, phase: result.phase, iteration: coordinator.iteration });
  });

  const root = webRoot && existsSync(join(webRoot, 'index.html')) ? webRoot : undefined;
  if (root) {
    app.use(express.static(root, { index: 'index.html' }));
    app.get(['/', '/dashboard', '/dashboard/'], (_req, res) =>
      res.sendFile(join(root, 'index.html')),
    );
  } else {
    app.get(['/', '/dashboard'], (_req, res) => {
      res.type('html').send(placeholderPage(coordinator));
    });
  }

  app.use((_req, res) => {
    res.status(404).json({ code: 'invalid-message', message: 'not found' });
  });
  // malformed JSON bodies and other request errors: a typed answer, never a crash
  app.use(
    (
      error: Error & { status?: number; type?: string },
      _req: Request,
      res: Response,
      _next: NextFunction,
    ) => {
      const status = error.status ?? 500;
      const code =
        error.type === 'entity.too.large'
          ? 'payload-too-large'
          : status < 500
            ? 'invalid-message'
            : 'internal';
      coordinator.countRejected(code);
      res.status(status).json({ code, message: status < 500 ? error.message : 'internal error' });
    },
  );
  return app;
}

function placeholderPage(coordinator: HttpSurface): string {
  return `<!doctype html><html lang="en"><meta charset="utf-8"><title>swarmgrad</title>
<body><h1>swarmgrad coordinator</h1><p>Job <b>${coordinator.job.name}</b>. The web app is not built
(run <code>npm run build</code>); the API is at <a href="/api/status">/api/status</a>.</p></body></html>`;
}
