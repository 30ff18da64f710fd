/**
 * A real TURN server for the credential tests: Debian's coturn (scripts/ensure-coturn.mjs
 * installs it when missing), on free ports, with `use-auth-secret` (TURN REST API), and a
 * minimal TURN client (RFC 5766 Allocate over UDP with long-term credentials, RFC 5389
 * MESSAGE-INTEGRITY): enough to ask coturn whether it accepts a username/credential pair.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';

// self-contained (no harness import): the e2e tests start coturn with it too

async function waitFor(probe: () => Promise<boolean>, what: string, timeoutMs: number) {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const ensureScript = fileURLToPath(new URL('../../../scripts/ensure-coturn.mjs', import.meta.url));

/** Installs coturn when missing (as root), else fails with a one-line instruction. */
export function ensureTurnserver(): string {
  execFileSync(process.execPath, [ensureScript], { stdio: 'inherit' });
  return process.env.TURNSERVER ?? '/usr/bin/turnserver';
}

async function freeUdpPort(host: string): Promise<number> {
  const socket = createSocket('udp4');
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(0, host, () => resolve());
  });
  const port = socket.address().port;
  await new Promise<void>((resolve) => socket.close(() => resolve()));
  return port;
}

export class Coturn {
  private child: ChildProcess | undefined;
  private log = '';
  private constructor(
    readonly host: string,
    readonly port: number,
    readonly secret: string,
    readonly realm: string,
  ) {}

  /**
   * coturn listening on `host` (UDP and TCP on one free port), relaying on `host` in a
   * 200-port range, accepting TURN REST credentials made with `secret`. `execPrefix`: argv it
   * runs under (a network lab's `ip netns exec <ns>`, where `host` is), with `port` given (the
   * free-port probe runs in this process's namespace).
   */
  static async start(
    host = '127.0.0.1',
    secret = randomBytes(16).toString('hex'),
    options: { execPrefix?: readonly string[]; port?: number } = {},
  ): Promise<Coturn> {
    const binary = ensureTurnserver();
    const port = options.port ?? (await freeUdpPort(host));
    const dir = await mkdtemp(join(tmpdir(), 'swarmgrad-coturn-'));
    const relayBase = 40000 + Math.floor(Math.random() * 20000);
    const server = new Coturn(host, port, secret, 'swarmgrad.test');
    const [command, ...prefixArgs] = [...(options.execPrefix ?? []), binary];
    const child = spawn(
      command!,
      [
        ...prefixArgs,
        '-n',
        '--listening-ip',
        host,
        '--relay-ip',
        host,
        '--listening-port',
        String(port),
        '--min-port',
        String(relayBase),
        '--max-port',
        String(relayBase + 200),
        '--use-auth-secret',
        '--static-auth-secret',
        secret,
        '--realm',
        server.realm,
        '--no-tls',
        '--no-dtls',
        '--no-cli',
        '--no-rfc5780',
        '--pidfile',
        join(dir, 'turnserver.pid'),
        '--log-file',
        'stdout',
        '--simple-log',
        '--verbose',
        ...(host.startsWith('127.') ? ['--allow-loopback-peers'] : []),
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    server.child = child;
    child.stdout!.on('data', (chunk: Buffer) => (server.log += chunk.toString()));
    child.stderr!.on('data', (chunk: Buffer) => (server.log += chunk.toString()));
    // ready when an unauthenticated Allocate gets its 401 challenge
    await waitFor(
      async () => {
        if (child.exitCode !== null) throw new Error(`turnserver exited:\n${server.log}`);
        const answer = await allocate({ host, port }, undefined, 500).catch(() => undefined);
        return answer?.error === 401 ? true : false;
      },
      'coturn to answer',
      10_000,
    );
    return server;
  }

  get output(): string {
    return this.log;
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
    await exited;
    clearTimeout(timer);
  }
}

// ---------------------------------------------------------------- a minimal TURN client

const MAGIC = 0x2112a442;
const ALLOCATE = 0x0003;
const ALLOCATE_OK = 0x0103;
const ALLOCATE_ERROR = 0x0113;
const ATTR = {
  USERNAME: 0x0006,
  MESSAGE_INTEGRITY: 0x0008,
  ERROR_CODE: 0x0009,
  REALM: 0x0014,
  NONCE: 0x0015,
  XOR_RELAYED_ADDRESS: 0x0016,
  REQUESTED_TRANSPORT: 0x0019,
} as const;

function attribute(type: number, value: Buffer): Buffer {
  const padded = Buffer.alloc(4 + Math.ceil(value.length / 4) * 4);
  padded.writeUInt16BE(type, 0);
  padded.writeUInt16BE(value.length, 2);
  value.copy(padded, 4);
  return padded;
}

function message(type: number, id: Buffer, attributes: Buffer[], integrityKey?: Buffer): Buffer {
  const body = Buffer.concat(attributes);
  const header = Buffer.alloc(20);
  header.writeUInt16BE(type, 0);
  header.writeUInt32BE(MAGIC, 4);
  id.copy(header, 8);
  if (!integrityKey) {
    header.writeUInt16BE(body.length, 2);
    return Buffer.concat([header, body]);
  }
  // the length covers MESSAGE-INTEGRITY (24 bytes), the HMAC covers everything before it
  header.writeUInt16BE(body.length + 24, 2);
  const hmac = createHmac('sha1', integrityKey)
    .update(Buffer.concat([header, body]))
    .digest();
  return Buffer.concat([header, body, attribute(ATTR.MESSAGE_INTEGRITY, hmac)]);
}

function parse(buffer: Buffer): { type: number; id: Buffer; attrs: Map<number, Buffer> } {
  const type = buffer.readUInt16BE(0);
  const length = buffer.readUInt16BE(2);
  const attrs = new Map<number, Buffer>();
  let offset = 20;
  while (offset + 4 <= 20 + length) {
    const t = buffer.readUInt16BE(offset);
    const l = buffer.readUInt16BE(offset + 2);
    if (!attrs.has(t)) attrs.set(t, buffer.subarray(offset + 4, offset + 4 + l));
    offset += 4 + Math.ceil(l / 4) * 4;
  }
  return { type, id: buffer.subarray(8, 20), attrs };
}

export interface AllocateResult {
  /** The relayed transport address coturn allocated (success). */
  relayed?: { address: string; port: number };
  /** The STUN error code (401: the credentials were refused). */
  error?: number;
  reason?: string;
  realm?: string;
  nonce?: string;
}

function xorAddress(value: Buffer): { address: string; port: number } {
  const port = value.readUInt16BE(2) ^ (MAGIC >>> 16);
  const raw = value.readUInt32BE(4) ^ MAGIC;
  const address = [raw >>> 24, (raw >>> 16) & 255, (raw >>> 8) & 255, raw & 255].join('.');
  return { address, port };
}

/** One UDP socket for a whole exchange: coturn ties its nonce to the client's address. */
async function transactor(timeoutMs: number) {
  const socket = createSocket('udp4');
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(0, () => resolve());
  });
  const send = (server: { host: string; port: number }, request: Buffer, id: Buffer) =>
    new Promise<ReturnType<typeof parse>>((resolve, reject) => {
      const timer = setTimeout(() => {
        socket.off('message', onMessage);
        reject(new Error('no answer from the TURN server'));
      }, timeoutMs);
      const onMessage = (data: Buffer) => {
        if (data.length < 20) return;
        const answer = parse(data);
        if (!answer.id.equals(id)) return;
        clearTimeout(timer);
        socket.off('message', onMessage);
        resolve(answer);
      };
      socket.on('message', onMessage);
      socket.send(request, server.port, server.host);
    });
  return { send, close: () => socket.close() };
}

/**
 * One TURN Allocate (UDP relay). Without credentials: the server's 401 challenge (realm,
 * nonce). With them: the challenge first, then the authenticated request, as a browser does.
 */
export async function allocate(
  server: { host: string; port: number },
  credentials: { username: string; credential: string } | undefined,
  timeoutMs = 3000,
): Promise<AllocateResult> {
  const client = await transactor(timeoutMs);
  try {
    return await allocateOn(client, server, credentials);
  } finally {
    client.close();
  }
}

async function allocateOn(
  client: Awaited<ReturnType<typeof transactor>>,
  server: { host: string; port: number },
  credentials: { username: string; credential: string } | undefined,
): Promise<AllocateResult> {
  const transport = attribute(ATTR.REQUESTED_TRANSPORT, Buffer.from([17, 0, 0, 0]));
  const firstId = randomBytes(12);
  const challenge = describe(
    await client.send(server, message(ALLOCATE, firstId, [transport]), firstId),
  );
  if (!credentials || challenge.error !== 401 || !challenge.realm || !challenge.nonce)
    return challenge;
  const key = createHash('md5')
    .update(`${credentials.username}:${challenge.realm}:${credentials.credential}`)
    .digest();
  const id = randomBytes(12);
  const request = message(
    ALLOCATE,
    id,
    [
      transport,
      attribute(ATTR.USERNAME, Buffer.from(credentials.username)),
      attribute(ATTR.REALM, Buffer.from(challenge.realm)),
      attribute(ATTR.NONCE, Buffer.from(challenge.nonce)),
    ],
    key,
  );
  return describe(await client.send(server, request, id));
}

function describe(answer: ReturnType<typeof parse>): AllocateResult {
  const realm = answer.attrs.get(ATTR.REALM)?.toString();
  const nonce = answer.attrs.get(ATTR.NONCE)?.toString();
  const extra = { ...(realm ? { realm } : {}), ...(nonce ? { nonce } : {}) };
  if (answer.type === ALLOCATE_OK) {
    const relayed = answer.attrs.get(ATTR.XOR_RELAYED_ADDRESS);
    return { ...(relayed ? { relayed: xorAddress(relayed) } : {}), ...extra };
  }
  if (answer.type === ALLOCATE_ERROR) {
    const code = answer.attrs.get(ATTR.ERROR_CODE);
    return {
      error: code ? (code[2]! & 7) * 100 + code[3]! : 0,
      reason: code ? code.subarray(4).toString() : '',
      ...extra,
    };
  }
  return { error: -1, reason: `unexpected STUN message type 0x${answer.type.toString(16)}` };
}
