/**
 * A real redis-server for the multi-node tests: Debian's package (scripts/ensure-redis.mjs
 * installs it when missing), on a free port, with its data in a temporary directory and
 * `appendonly yes` + `appendfsync always`, so a restart keeps every log entry it acknowledged.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { tempDir, waitFor } from './harness.ts';

const ensureScript = fileURLToPath(new URL('../../../scripts/ensure-redis.mjs', import.meta.url));

/** Installs redis-server when missing (as root), else fails with a one-line instruction. */
export function ensureRedisServer(): string {
  execFileSync(process.execPath, [ensureScript], { stdio: 'inherit' });
  return process.env.REDIS_SERVER ?? '/usr/bin/redis-server';
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as { port: number }).port;
      server.close(() => resolve(port));
    });
  });
}

export class RedisServer {
  private child: ChildProcess | undefined;
  private log = '';
  private constructor(
    readonly binary: string,
    readonly port: number,
    readonly dir: string,
    private readonly execPrefix: readonly string[],
  ) {}

  /**
   * `execPrefix`: argv redis-server runs under (a network lab's `ip netns exec <ns>`): it then
   * listens on that namespace's loopback, for coordinators started in the same namespace.
   */
  static async start(options: { execPrefix?: readonly string[] } = {}): Promise<RedisServer> {
    const binary = ensureRedisServer();
    const server = new RedisServer(
      binary,
      await freePort(),
      await tempDir('swarmgrad-redis-'),
      options.execPrefix ?? [],
    );
    await server.launch();
    return server;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  get output(): string {
    return this.log;
  }

  async launch(): Promise<void> {
    const [command, ...prefixArgs] = [...this.execPrefix, this.binary];
    const child = spawn(
      command!,
      [
        ...prefixArgs,
        '--port',
        String(this.port),
        '--bind',
        '127.0.0.1',
        '--dir',
        this.dir,
        '--appendonly',
        'yes',
        '--appendfsync',
        'always',
        '--save',
        '',
        '--protected-mode',
        'no',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    this.child = child;
    child.stdout!.on('data', (chunk: Buffer) => (this.log += chunk.toString()));
    child.stderr!.on('data', (chunk: Buffer) => (this.log += chunk.toString()));
    await waitFor(
      () => /Ready to accept connections/.test(this.log) || child.exitCode !== null,
      'redis-server to start',
      20_000,
    );
    if (child.exitCode !== null) throw new Error(`redis-server exited: ${this.log}`);
  }

  /** Stops it (SIGTERM: a clean shutdown) and waits for the exit. */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill(signal);
    await exited;
    this.log = '';
  }
}
