/**
 * Issue 14: the nginx configuration docs/internet.md documents, run for real. Debian's nginx
 * (scripts/ensure-nginx.mjs installs it when missing) terminates TLS with a self-signed
 * certificate in front of a real coordinator on plain http: pages (with their COOP/COEP
 * headers), API and socket.io over wss pass through; plain http redirects to https. The config
 * is taken from the doc's ```nginx block, only its ports and certificate paths replaced.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request as httpsRequest } from 'node:https';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { join } from 'node:path';
import pino from 'pino';
import { io } from 'socket.io-client';
import { PROTOCOL_VERSION, type Welcome } from '@swarmgrad/protocol';
import { Coordinator, parseJob } from '../src/index.ts';
import { selfSignedCertificate, type SelfSigned } from '../src/tls.ts';
import { tempDir, testJobInput, waitFor } from '@swarmgrad/test-support/harness';
import { freePort } from '@swarmgrad/test-support/redis';
import { documentedNginxSite, startNginx, type RunningNginx } from '@swarmgrad/test-support/nginx';

/** The doc's nginx block with this test's ports and certificate. */
async function documentedNginxConfig(values: {
  upstreamPort: number;
  httpPort: number;
  httpsPort: number;
  cert: string;
  key: string;
}): Promise<string> {
  return documentedNginxSite('docs/internet.md', [
    ['server 127.0.0.1:8080;', `server 127.0.0.1:${values.upstreamPort};`],
    ['listen 80;', `listen 127.0.0.1:${values.httpPort};`],
    ['listen 443 ssl;', `listen 127.0.0.1:${values.httpsPort} ssl;`],
    [/ssl_certificate\s+\S+;/, `ssl_certificate ${values.cert};`],
    [/ssl_certificate_key\s+\S+;/, `ssl_certificate_key ${values.key};`],
  ]);
}

function get(
  url: string,
  ca?: string,
): Promise<{ status: number; body: string; headers: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const done = (res: IncomingMessage) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
    };
    const req = url.startsWith('https:') ? httpsRequest(url, { ca }, done) : httpRequest(url, done);
    req.on('error', reject);
    req.end();
  });
}

describe('behind nginx (docs/internet.md)', () => {
  let coordinator: Coordinator;
  let nginx: RunningNginx | undefined;
  let cert: SelfSigned;
  let httpsPort: number;
  let httpPort: number;

  beforeAll(async () => {
    coordinator = await Coordinator.start({
      job: parseJob(testJobInput),
      port: 0,
      host: '127.0.0.1',
      dataDir: await tempDir(),
      logger: pino({ level: 'silent' }),
      evaluate: false,
      minTabs: 1,
      addresses: { trustProxy: ['127.0.0.1'] },
    });
    const dir = await tempDir('swarmgrad-nginx-');
    cert = await selfSignedCertificate(join(dir, 'tls'), {
      dns: ['localhost'],
      ips: ['127.0.0.1'],
    });
    httpsPort = await freePort();
    httpPort = await freePort();
    const site = await documentedNginxConfig({
      upstreamPort: coordinator.port,
      httpPort,
      httpsPort,
      cert: cert.certFile,
      key: cert.keyFile,
    });
    nginx = await startNginx(
      site,
      async () =>
        (await get(`https://127.0.0.1:${httpsPort}/api/status`, cert.cert).catch(() => undefined))
          ?.status === 200,
    );
  }, 180_000);

  afterAll(async () => {
    await nginx?.stop();
    await coordinator?.close();
  });

  it('serves the API and the page over https with the coordinator’s headers', async () => {
    const status = await get(`https://127.0.0.1:${httpsPort}/api/status`, cert.cert);
    expect(status.status).toBe(200);
    expect(JSON.parse(status.body).phase).toBe('waiting');
    const page = await get(`https://127.0.0.1:${httpsPort}/`, cert.cert);
    expect(page.status).toBe(200);
    expect(page.headers['cross-origin-opener-policy']).toBe('same-origin');
    expect(page.headers['cross-origin-embedder-policy']).toBe('require-corp');
    expect(String(page.headers['content-security-policy'])).toContain("connect-src 'self'");
  });

  it('carries socket.io over wss', async () => {
    const socket = io(`https://127.0.0.1:${httpsPort}/worker`, {
      transports: ['websocket'],
      ca: cert.cert,
      reconnection: false,
    });
    try {
      const answer = (await socket
        .timeout(10_000)
        .emitWithAck('hello', { protocolVersion: PROTOCOL_VERSION, kind: 'node' })) as {
        ok: boolean;
        value: Welcome;
      };
      expect(answer.ok).toBe(true);
      await waitFor(() => coordinator.status().tabs === 1, 'the coordinator to count the tab');
    } finally {
      socket.disconnect();
    }
  });

  it('redirects plain http to https', async () => {
    const answer = await get(`http://127.0.0.1:${httpPort}/api/status`);
    expect(answer.status).toBe(301);
    expect(answer.headers.location).toBe(`https://127.0.0.1/api/status`);
  });
});
