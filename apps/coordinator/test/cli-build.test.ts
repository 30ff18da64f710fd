/**
 * Issue 15 item 6: the `swarmgrad` bin runs the esbuild output in apps/coordinator/dist (built
 * by build.mjs), not the TypeScript sources through tsx, and `serve` loads neither Playwright
 * nor the native WebRTC module: both sit behind dynamic imports that code splitting keeps lazy.
 *
 * Checked twice: on the build's module graph (esbuild's metafile: what cli.js imports
 * statically, transitively), and at run time, with a real `swarmgrad serve` whose every module
 * load — ESM resolutions through a module.register() hook and CommonJS loads through
 * Module._load — is written to a file.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnCoordinator, tempDir, type ChildCoordinator } from '@swarmgrad/test-support/harness';

const app = fileURLToPath(new URL('..', import.meta.url));
const root = join(app, '..', '..');
const build = join(app, 'build.mjs');
const bin = join(app, 'bin', 'swarmgrad.js');

/** Modules `serve` must not load: Playwright, the Node WebRTC bindings, tsx. */
const forbidden = [
  /\/node_modules\/playwright(-core)?\//,
  /\/node_modules\/@playwright\//,
  /\/node_modules\/@roamhq\//,
  /\/node_modules\/node-datachannel\//,
  /\/node_modules\/tsx\//,
];
const forbiddenSpecifier =
  /^(playwright|playwright-core|@playwright\/|@roamhq\/|node-datachannel|tsx)/;

interface Metafile {
  outputs: Record<
    string,
    { imports: { path: string; kind: string; external?: boolean }[]; entryPoint?: string }
  >;
}

/** Outputs and external specifiers reached from `start` through static imports only. */
function staticClosure(meta: Metafile, start: string) {
  const outputs = new Set<string>();
  const externals = new Set<string>();
  const dynamic = new Set<string>();
  const queue = [start];
  while (queue.length > 0) {
    const output = queue.pop()!;
    if (outputs.has(output)) continue;
    outputs.add(output);
    for (const edge of meta.outputs[output]?.imports ?? []) {
      if (edge.kind === 'dynamic-import') {
        if (!edge.external) dynamic.add(edge.path);
      } else if (edge.external) externals.add(edge.path);
      else queue.push(edge.path);
    }
  }
  return { outputs, externals, dynamic };
}

const children: ChildCoordinator[] = [];
afterAll(() => {
  for (const child of children) if (child.process.exitCode === null) child.process.kill('SIGKILL');
});

describe('the compiled CLI', () => {
  it('keeps Playwright and WebRTC out of the static module graph of cli.js', () => {
    execFileSync(process.execPath, [build], { cwd: root, stdio: 'pipe' });
    const meta = JSON.parse(readFileSync(join(app, 'dist', 'metafile.json'), 'utf8')) as Metafile;
    const entry = 'apps/coordinator/dist/cli.js';
    expect(Object.keys(meta.outputs)).toContain(entry);
    expect(Object.keys(meta.outputs)).toContain('apps/coordinator/dist/evaluator-thread.js');
    const loaded = staticClosure(meta, entry);
    // the workspace packages are bundled, third-party packages stay imports
    expect([...loaded.externals]).toEqual(expect.arrayContaining(['socket.io', 'express']));
    expect([...loaded.externals].filter((s) => s.startsWith('@swarmgrad/'))).toEqual([]);
    expect([...loaded.externals].filter((s) => forbiddenSpecifier.test(s))).toEqual([]);
    // …and they are there, behind dynamic imports (the check sees them when they are reached)
    const lazy = new Set<string>();
    for (const chunk of loaded.dynamic) {
      for (const s of staticClosure(meta, chunk).externals)
        if (forbiddenSpecifier.test(s)) lazy.add(s);
    }
    expect([...lazy]).toEqual(expect.arrayContaining(['@playwright/test', '@roamhq/wrtc']));
  });

  it('serves from dist/ without loading tsx, Playwright or the WebRTC module', async () => {
    execFileSync(process.execPath, [build], { cwd: root, stdio: 'pipe' });
    const dir = await tempDir();
    const log = join(dir, 'modules.log');
    const hooks = join(dir, 'hooks.mjs');
    const preload = join(dir, 'trace.mjs');
    writeFileSync(
      hooks,
      `import { appendFileSync } from 'node:fs';
let log;
export function initialize(data) { log = data.log; }
export async function resolve(specifier, context, next) {
  const result = await next(specifier, context);
  appendFileSync(log, result.url + '\\n');
  return result;
}
`,
    );
    writeFileSync(
      preload,
      `import { appendFileSync } from 'node:fs';
import Module, { register } from 'node:module';
const log = ${JSON.stringify(log)};
register(${JSON.stringify(new URL(`file://${hooks}`).href)}, { data: { log } });
const load = Module._load;
Module._load = function (request, parent, isMain) {
  const exports = load.apply(this, arguments);
  try { appendFileSync(log, Module._resolveFilename(request, parent, isMain) + '\\n'); } catch {}
  return exports;
};
`,
    );
    const child = await spawnCoordinator(['-d', join(dir, 'data')], {
      NODE_OPTIONS: `--import=${preload}`,
    });
    children.push(child);
    const status = (await (await fetch(`${child.url}/api/status`)).json()) as {
      job: { name: string };
    };
    expect(status.job.name).toBe('mnist-mlp');
    child.process.kill('SIGTERM');
    await child.exited;
    const modules = readFileSync(log, 'utf8').split('\n').filter(Boolean);
    // the trace works: it saw the compiled entry, ESM and CommonJS packages
    expect(modules).toContain(new URL('file://' + join(app, 'dist', 'cli.js')).href);
    expect(modules.some((m) => m.includes('/node_modules/socket.io/'))).toBe(true);
    expect(modules.some((m) => m.includes('/node_modules/express/'))).toBe(true);
    // no TypeScript source ran, and nothing forbidden loaded
    expect(modules.filter((m) => m.endsWith('.ts'))).toEqual([]);
    expect(modules.filter((m) => forbidden.some((f) => f.test(m)))).toEqual([]);
    // a current build does not even load esbuild
    expect(modules.filter((m) => m.includes('/node_modules/esbuild/'))).toEqual([]);
  }, 90_000);

  it('rebuilds when a source changed, before running', () => {
    execFileSync(process.execPath, [build], { cwd: root, stdio: 'pipe' });
    const check = () =>
      spawnSync(process.execPath, [build, '--check'], { cwd: root, encoding: 'utf8' });
    expect(check().status).toBe(0);
    const source = join(app, 'src', 'ice.ts'); // imported by cli.ts, not by the web app
    const { atime, mtime } = statSync(source);
    try {
      const now = new Date();
      utimesSync(source, now, now);
      const stale = check();
      expect(stale.status).toBe(1);
      expect(stale.stdout).toContain('apps/coordinator/src/ice.ts changed');
      const run = spawnSync(process.execPath, [bin, '--help'], { cwd: root, encoding: 'utf8' });
      expect(run.status).toBe(0);
      expect(run.stderr).toContain('building the CLI');
      expect(run.stdout).toContain('serve');
      expect(check().status).toBe(0);
    } finally {
      utimesSync(source, atime, mtime);
    }
  });
});
