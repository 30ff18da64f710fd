/**
 * A real nginx for the reverse-proxy tests: Debian's package (scripts/ensure-nginx.mjs installs
 * it when missing), in the foreground, with its pid, logs and temporary files in a temporary
 * directory. The site it serves is a documented ```nginx block (docs/internet.md,
 * docs/architecture.md) with only its addresses replaced, so what the docs tell an operator to
 * run is what the tests run.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tempDir, waitFor } from './harness.ts';

const root = fileURLToPath(new URL('../../../', import.meta.url));

/** Installs nginx when missing (as root), else fails with a one-line instruction. */
export function ensureNginx(): string {
  execFileSync(process.execPath, [join(root, 'scripts', 'ensure-nginx.mjs')], { stdio: 'inherit' });
  return process.env.NGINX ?? '/usr/sbin/nginx';
}

/**
 * The ```nginx block of `doc` (a path from the repository's root) with each replacement made;
 * a replacement that matches nothing throws, so a doc edit cannot silently untest the config.
 */
export async function documentedNginxSite(
  doc: string,
  replacements: readonly (readonly [string | RegExp, string])[],
): Promise<string> {
  const text = await readFile(join(root, doc), 'utf8');
  const block = /```nginx\n([\s\S]*?)```/.exec(text)?.[1];
  if (!block) throw new Error(`${doc} has no \`\`\`nginx block`);
  let site = block;
  for (const [from, to] of replacements) {
    const next = site.replace(from, to);
    if (next === site) throw new Error(`the nginx config of ${doc} lost ${String(from)}`);
    site = next;
  }
  return site;
}

export interface RunningNginx {
  process: ChildProcess;
  log(): string;
  stop(): Promise<void>;
}

/**
 * Starts nginx serving `site` (the body of an `http {}` block) and resolves once `ready`
 * answers true; throws with nginx's output if it exits first.
 */
export async function startNginx(
  site: string,
  ready: () => Promise<boolean>,
): Promise<RunningNginx> {
  const binary = ensureNginx();
  const dir = await tempDir('swarmgrad-nginx-');
  await mkdir(join(dir, 'tmp'), { recursive: true });
  const main = [
    `pid ${join(dir, 'nginx.pid')};`,
    `error_log ${join(dir, 'error.log')} warn;`,
    'worker_processes 1;',
    'events { worker_connections 256; }',
    'http {',
    '  access_log off;',
    ...['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map(
      (t) => `  ${t}_temp_path ${join(dir, 'tmp', t)};`,
    ),
    site,
    '}',
    '',
  ].join('\n');
  const conf = join(dir, 'nginx.conf');
  await writeFile(conf, main);
  const child = spawn(binary, ['-p', dir, '-c', conf, '-g', 'daemon off;'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  child.stdout!.on('data', (c: Buffer) => (log += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (log += c.toString()));
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGQUIT');
    const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
    await exited;
    clearTimeout(timer);
  };
  try {
    await waitFor(
      async () => {
        if (child.exitCode !== null) throw new Error(`nginx exited: ${log}`);
        return ready();
      },
      'nginx to proxy',
      20_000,
    );
  } catch (error) {
    await stop();
    throw error;
  }
  return { process: child, log: () => log, stop };
}
