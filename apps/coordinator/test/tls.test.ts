/**
 * Issue 14: `swarmgrad serve` over TLS. The page, the API and socket.io on one https/wss port,
 * with the operator's certificate files or a self-signed one made in-process; clients here
 * verify the certificate for real (the self-signed certificate as their CA), no
 * `rejectUnauthorized: false`.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { request } from 'node:https';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { io } from 'socket.io-client';
import { PROTOCOL_VERSION, type Welcome } from '@swarmgrad/protocol';
import { checkTls, localNames, selfSignedCertificate, TlsConfigError } from '../src/tls.ts';
import { runCli, tempDir, waitFor } from '@swarmgrad/test-support/harness';

const cli = fileURLToPath(new URL('../bin/swarmgrad.js', import.meta.url));

describe('self-signed certificates', () => {
  it('covers localhost and this host’s addresses, and is reused while valid', async () => {
    const dir = await tempDir();
    const first = await selfSignedCertificate(dir);
    expect(first.created).toBe(true);
    const cert = new X509Certificate(first.cert);
    for (const ip of localNames().ips) expect(cert.checkIP(ip)).toBe(ip);
    expect(cert.checkHost('localhost')).toBe('localhost');
    expect(cert.checkHost('example.org')).toBeUndefined();
    expect(cert.verify(cert.publicKey)).toBe(true); // self-signed
    expect(first.fingerprint).toBe(cert.fingerprint256);
    const again = await selfSignedCertificate(dir);
    expect(again.created).toBe(false);
    expect(again.fingerprint).toBe(first.fingerprint);
    // an address it does not cover: made again
    const wider = await selfSignedCertificate(dir, {
      dns: ['localhost'],
      ips: ['127.0.0.1', '192.0.2.44'],
    });
    expect(wider.created).toBe(true);
    expect(new X509Certificate(wider.cert).checkIP('192.0.2.44')).toBe('192.0.2.44');
  });

  it('checkTls refuses a key that does not belong to the certificate', async () => {
    const a = await selfSignedCertificate(await tempDir());
    const b = await selfSignedCertificate(await tempDir());
    expect(() => checkTls({ cert: a.cert, key: b.key })).toThrow(TlsConfigError);
    expect(() => checkTls({ cert: 'junk', key: a.key })).toThrow(/PEM certificate/);
    expect(checkTls({ cert: a.cert, key: a.key }).cert).toBe(a.cert);
  });
});

interface Served {
  child: ChildProcess;
  url: string;
  stdout: () => string;
}

const children: ChildProcess[] = [];
afterAll(() => {
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
});

async function serve(args: string[]): Promise<Served> {
  const child = spawn(
    process.execPath,
    [cli, 'serve', '--host', '127.0.0.1', '--port', '0', ...args],
    {
      env: { ...process.env, SWARMGRAD_ADMIN_TOKEN: 'test-token', LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  children.push(child);
  let out = '';
  let err = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
  const port = await waitFor(
    () => {
      if (child.exitCode !== null) throw new Error(`serve exited ${child.exitCode}: ${err}`);
      return /status:\s+https:\/\/[^/\s]+:(\d+)\/api\/status/.exec(out)?.[1];
    },
    'the coordinator to start',
    60_000,
  );
  return { child, url: `https://127.0.0.1:${port}`, stdout: () => out };
}

function get(
  url: string,
  ca: string,
): Promise<{ status: number; body: string; headers: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { ca }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
    });
    req.on('error', reject);
    req.end();
  });
}

async function welcomeOver(url: string, ca: string): Promise<Welcome> {
  const socket = io(`${url}/worker`, { transports: ['websocket'], ca, reconnection: false });
  try {
    const answer = (await socket
      .timeout(10_000)
      .emitWithAck('hello', { protocolVersion: PROTOCOL_VERSION, kind: 'node' })) as {
      ok: boolean;
      value: Welcome;
    };
    expect(answer.ok).toBe(true);
    return answer.value;
  } finally {
    socket.disconnect();
  }
}

describe('swarmgrad serve over TLS', () => {
  it('--tls self-signed: https API and wss socket.io, and says how to trust it', async () => {
    const dataDir = await tempDir();
    const served = await serve(['--tls', 'self-signed', '--data-dir', dataDir]);
    const certFile = join(dataDir, 'tls', 'self-signed.crt');
    const ca = await readFile(certFile, 'utf8');
    const out = served.stdout();
    expect(out).toMatch(/volunteer page: https:\/\//);
    expect(out).toContain(certFile);
    expect(out).toContain(new X509Certificate(ca).fingerprint256);
    expect(out).toMatch(/--ignore-certificate-errors-spki-list=[A-Za-z0-9+/]+=*/);
    expect(out).toContain(`NODE_EXTRA_CA_CERTS=${certFile}`);

    const status = await get(`${served.url}/api/status`, ca);
    expect(status.status).toBe(200);
    expect(JSON.parse(status.body).phase).toBeDefined();
    const page = await get(`${served.url}/`, ca);
    expect(page.status).toBe(200);
    expect(page.headers['cross-origin-opener-policy']).toBe('same-origin');
    expect(page.headers['cross-origin-embedder-policy']).toBe('require-corp');
    // no HSTS for a throwaway certificate (it would pin https on localhost for a year)
    expect(page.headers['strict-transport-security']).toBeUndefined();
    // a client that does not trust the certificate is refused (the TLS is real)
    await expect(get(`${served.url}/api/status`, '')).rejects.toThrow();

    const welcome = await welcomeOver(served.url, ca);
    expect(welcome.tabId).toMatch(/^tab-/);
    served.child.kill('SIGTERM');
  }, 90_000);

  it('--tls-cert/--tls-key: the operator’s certificate', async () => {
    const own = await selfSignedCertificate(await tempDir(), {
      dns: ['localhost'],
      ips: ['127.0.0.1'],
    });
    const served = await serve([
      '--tls-cert',
      own.certFile,
      '--tls-key',
      own.keyFile,
      '--data-dir',
      await tempDir(),
    ]);
    expect(served.stdout()).not.toMatch(/self-signed certificate/);
    const status = await get(`${served.url}/api/status`, own.cert);
    expect(status.status).toBe(200);
    // the operator's certificate: browsers are told to keep to https
    expect(String(status.headers['strict-transport-security'])).toMatch(/max-age=\d+/);
    expect((await welcomeOver(served.url, own.cert)).tabId).toMatch(/^tab-/);
    served.child.kill('SIGTERM');
  }, 90_000);

  it('refuses half or contradictory TLS options (exit 2)', async () => {
    const own = await selfSignedCertificate(await tempDir());
    const other = await selfSignedCertificate(await tempDir());
    const dir = await tempDir();
    const serve = (...args: string[]) =>
      runCli(['serve', '--port', '0', '--data-dir', dir, ...args]);
    // started together: each exits before it listens
    const [half, mismatched, mode] = await Promise.all([
      serve('--tls-cert', own.certFile),
      serve('--tls-cert', own.certFile, '--tls-key', other.keyFile),
      serve('--tls', 'yes'),
    ]);
    expect(half.code).toBe(2);
    expect(half.stderr).toMatch(/go together/);
    expect(mismatched.code).toBe(2);
    expect(mismatched.stderr).toMatch(/does not belong/);
    expect(mode.code).toBe(2);
    expect(mode.stderr).toMatch(/self-signed/);
  }, 90_000);
});
