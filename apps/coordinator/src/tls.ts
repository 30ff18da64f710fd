/**
 * HTTPS/WSS for the coordinator: one server carries the pages, the API and socket.io, plain
 * http or TLS. On an https origin a tab is a secure context (WebGPU, cross-origin isolation for
 * threaded WASM) with no browser flag.
 *
 * Certificates: the operator's PEM files (`--tls-cert`, `--tls-key`), or `--tls self-signed`: a
 * throwaway certificate made in-process (npm `selfsigned`, ECDSA P-256) for this host's names
 * and addresses, kept in `<data-dir>/tls/` so that a browser told to trust it once keeps
 * trusting it across restarts (it is remade when it nears its expiry or the addresses change).
 */
import { createServer as createPlainServer, type RequestListener, type Server } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import { createHash, createPrivateKey, createPublicKey, X509Certificate } from 'node:crypto';
import { createSecureContext } from 'node:tls';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { isIP } from 'node:net';
import { hostname, networkInterfaces } from 'node:os';
import { join } from 'node:path';

export interface TlsOptions {
  /** PEM certificate chain. */
  cert: string;
  /** PEM private key. */
  key: string;
  /**
   * A throwaway certificate: no Strict-Transport-Security header, which would make a browser
   * that trusted it insist on https for `localhost` (every port) for a year.
   */
  selfSigned?: boolean;
}

export class TlsConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TlsConfigError';
  }
}

/** The coordinator's server: https when `tls` is given, else plain http. */
export function createHttpServer(app: RequestListener, tls?: TlsOptions): Server {
  if (!tls) return createPlainServer(app);
  const listener: RequestListener = tls.selfSigned
    ? (req, res) => {
        const setHeader = res.setHeader.bind(res);
        res.setHeader = (name, value) =>
          name.toLowerCase() === 'strict-transport-security' ? res : setHeader(name, value);
        app(req, res);
      }
    : app;
  // https.Server has http.Server's request/upgrade surface, which is all socket.io and
  // listen() use
  return createTlsServer({ cert: tls.cert, key: tls.key }, listener) as unknown as Server;
}

/** Checks that the key opens the certificate; throws TlsConfigError with a one-line reason. */
export function checkTls(tls: TlsOptions, what = 'TLS'): TlsOptions {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(tls.cert);
  } catch (error) {
    throw new TlsConfigError(`${what}: not a PEM certificate (${(error as Error).message})`);
  }
  try {
    createPrivateKey(tls.key);
  } catch (error) {
    throw new TlsConfigError(`${what}: not a PEM private key (${(error as Error).message})`);
  }
  try {
    createSecureContext({ cert: tls.cert, key: tls.key });
  } catch (error) {
    throw new TlsConfigError(
      `${what}: the key does not belong to the certificate (${(error as Error).message})`,
    );
  }
  if (Date.parse(cert.validTo) < Date.now())
    throw new TlsConfigError(`${what}: the certificate expired on ${cert.validTo}`);
  return tls;
}

/** Reads and checks the operator's certificate and key files. */
export async function loadTlsFiles(certFile: string, keyFile: string): Promise<TlsOptions> {
  const read = async (file: string) => {
    try {
      return await readFile(file, 'utf8');
    } catch (error) {
      throw new TlsConfigError(`${file}: cannot read (${(error as Error).message})`);
    }
  };
  return checkTls({ cert: await read(certFile), key: await read(keyFile) }, certFile);
}

/** Names and addresses a self-signed certificate covers: localhost, this host, its interfaces. */
export function localNames(): { dns: string[]; ips: string[] } {
  const dns = new Set(['localhost', hostname()]);
  const ips = new Set(['127.0.0.1', '::1']);
  for (const list of Object.values(networkInterfaces()))
    for (const item of list ?? []) if (!item.address.startsWith('fe80')) ips.add(item.address);
  return { dns: [...dns].filter((n) => n !== '' && isIP(n) === 0), ips: [...ips] };
}

export interface SelfSigned extends TlsOptions {
  certFile: string;
  keyFile: string;
  /** SHA-256 fingerprint of the certificate (colon-separated hex, as browsers show it). */
  fingerprint: string;
  /** base64 SHA-256 of the public key (SPKI): Chromium's --ignore-certificate-errors-spki-list. */
  spki: string;
  names: { dns: string[]; ips: string[] };
  /** Whether the certificate was made now (else an earlier one was reused). */
  created: boolean;
}

const SELF_SIGNED_DAYS = 30;

/**
 * A self-signed certificate for this host in `<dir>/self-signed.{crt,key}`: the one there when
 * it covers `names` and is valid for one more day, else a new one.
 */
export async function selfSignedCertificate(
  dir: string,
  names = localNames(),
  now = new Date(),
): Promise<SelfSigned> {
  const certFile = join(dir, 'self-signed.crt');
  const keyFile = join(dir, 'self-signed.key');
  if (existsSync(certFile) && existsSync(keyFile)) {
    try {
      const tls = checkTls({
        cert: await readFile(certFile, 'utf8'),
        key: await readFile(keyFile, 'utf8'),
      });
      const cert = new X509Certificate(tls.cert);
      const covered =
        names.dns.every((n) => cert.checkHost(n) !== undefined) &&
        names.ips.every((ip) => cert.checkIP(ip) !== undefined);
      if (covered && Date.parse(cert.validTo) > now.getTime() + 86_400_000)
        return describe(tls, certFile, keyFile, names, false);
    } catch {
      // unreadable or expired: made again below
    }
  }
  const { generate } = await import('selfsigned');
  const notAfter = new Date(now.getTime() + SELF_SIGNED_DAYS * 86_400_000);
  const pems = await generate([{ name: 'commonName', value: 'swarmgrad self-signed' }], {
    keyType: 'ec',
    curve: 'P-256',
    algorithm: 'sha256',
    notBeforeDate: new Date(now.getTime() - 60_000),
    notAfterDate: notAfter,
    extensions: [
      { name: 'basicConstraints', cA: false },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
      { name: 'extKeyUsage', serverAuth: true },
      {
        name: 'subjectAltName',
        altNames: [
          ...names.dns.map((value) => ({ type: 2 as const, value })),
          ...names.ips.map((ip) => ({ type: 7 as const, ip })),
        ],
      },
    ],
  });
  const tls = checkTls({ cert: pems.cert, key: pems.private }, 'self-signed certificate');
  await mkdir(dir, { recursive: true });
  await writeFile(keyFile, tls.key, { mode: 0o600 });
  await chmod(keyFile, 0o600);
  await writeFile(certFile, tls.cert);
  return describe(tls, certFile, keyFile, names, true);
}

function describe(
  tls: TlsOptions,
  certFile: string,
  keyFile: string,
  names: { dns: string[]; ips: string[] },
  created: boolean,
): SelfSigned {
  const spkiDer = createPublicKey(tls.cert).export({ type: 'spki', format: 'der' });
  return {
    ...tls,
    selfSigned: true,
    certFile,
    keyFile,
    fingerprint: new X509Certificate(tls.cert).fingerprint256,
    spki: createHash('sha256').update(spkiDer).digest('base64'),
    names,
    created,
  };
}

/** What `swarmgrad serve --tls self-signed` prints: how to make browsers and Node trust it. */
export function trustInstructions(self: SelfSigned, base: string): string[] {
  const url = `${base}/`;
  return [
    `  TLS:            self-signed certificate ${self.created ? 'made' : 'reused'}: ${self.certFile}`,
    `                  SHA-256 ${self.fingerprint}`,
    `                  covers ${[...self.names.dns, ...self.names.ips].join(', ')}`,
    '  to trust it (local trials only; use a real certificate for volunteers):',
    `    any browser:  open ${url} and accept the warning (the page is still a secure context)`,
    `    Chromium/Chrome (Linux): certutil -d sql:$HOME/.pki/nssdb -A -t "P,," -n swarmgrad -i ${self.certFile}`,
    `    Chromium, one run: --user-data-dir=<dir> --ignore-certificate-errors-spki-list=${self.spki}`,
    `    Firefox:      about:preferences#privacy → View Certificates → Servers → Add Exception → ${url}`,
    `    Node workers: NODE_EXTRA_CA_CERTS=${self.certFile} npx swarmgrad worker --url ${base}`,
  ];
}
