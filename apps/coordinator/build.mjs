#!/usr/bin/env node
// Builds the `swarmgrad` CLI (src/cli.ts) into dist/ with esbuild, so the bin runs compiled
// JavaScript and never loads tsx at run time.
//
// - The workspace packages (@swarmgrad/*) are TypeScript sources: they are bundled. Every other
//   package (node_modules) stays an external import, resolved by Node at run time.
// - Code splitting keeps dynamic imports lazy: `serve` does not load the chunks behind
//   `import('@swarmgrad/swarm/command')` (Playwright) or `import('@swarmgrad/worker/node')`
//   (the native WebRTC module). apps/coordinator/test/cli-build.test.ts checks it.
// - src/evaluator-thread.ts is a second entry: evaluator.ts starts it as a worker thread by URL.
// - Entries and chunks are written flat into dist/, one directory below apps/coordinator, the
//   same depth as src/: paths that sources compute from import.meta.url ('../../web/dist' in
//   cli.ts, '../../../scripts' in packages/swarm/src) resolve the same from the output.
// - dist/build.json records the build's start time and its inputs (esbuild's metafile): the
//   build is stale when an output is missing or an input changed or disappeared since.
//
// `node apps/coordinator/build.mjs` builds when stale, `--force` always, `--check` only tells
// (exit 1 when stale). The bin (bin/swarmgrad.js) and scripts/ensure-deps.mjs call ensureCli().
// Writes are atomic per file (temporary name, then rename), so processes that start together
// on a fresh clone may all build without reading a half-written file.
import { existsSync, readFileSync, readdirSync, renameSync, statSync, unlinkSync } from 'node:fs';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const app = dirname(fileURLToPath(import.meta.url));
const root = resolve(app, '..', '..');
export const distDir = join(app, 'dist');
const record = join(distDir, 'build.json');
/** The entry points, named as their outputs in dist/. */
const entries = { cli: 'src/cli.ts', 'evaluator-thread': 'src/evaluator-thread.ts' };
/** Files that shape the output without being bundled: this script and the packages' exports. */
function configInputs() {
  const manifests = readdirSync(join(root, 'packages')).map((p) =>
    join('packages', p, 'package.json'),
  );
  return [relative(root, fileURLToPath(import.meta.url)), 'apps/coordinator/package.json']
    .concat(manifests)
    .filter((file) => existsSync(join(root, file)));
}
/** An unreferenced output of an earlier build is removed once it is this old (a process
 * started from that build may still import it lazily). */
const keepOldOutputsMs = 10 * 60_000;

/** Why the build in dist/ is stale, or undefined when it is current. */
export function staleReason() {
  if (!existsSync(record)) return 'dist/ is missing';
  let built;
  try {
    built = JSON.parse(readFileSync(record, 'utf8'));
  } catch {
    return 'dist/build.json is unreadable';
  }
  for (const output of built.outputs ?? []) {
    if (!existsSync(join(root, output))) return `${output} is missing`;
  }
  for (const input of [...(built.inputs ?? []), ...configInputs()]) {
    const path = join(root, input);
    if (!existsSync(path)) return `${input} is gone`;
    if (statSync(path).mtimeMs > built.startedAt) return `${input} changed`;
  }
  return undefined;
}

function writeAtomic(path, contents) {
  mkdirSync(dirname(path), { recursive: true });
  const temporary = `${path}.${process.pid}.tmp`;
  writeFileSync(temporary, contents);
  renameSync(temporary, path);
}

/** Builds dist/ now; returns the esbuild metafile. */
export async function buildCli() {
  const { build } = await import('esbuild');
  const startedAt = Date.now();
  const result = await build({
    absWorkingDir: root,
    entryPoints: Object.fromEntries(
      Object.entries(entries).map(([name, file]) => [name, join(app, file)]),
    ),
    outdir: distDir,
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    sourcemap: 'linked',
    keepNames: true,
    metafile: true,
    write: false,
    logLevel: 'warning',
    plugins: [
      {
        name: 'external-node-modules',
        setup(b) {
          // bare specifiers other than the workspace's own packages stay imports
          b.onResolve({ filter: /^[^./]/ }, (args) =>
            args.path.startsWith('@swarmgrad/') ? undefined : { path: args.path, external: true },
          );
        },
      },
    ],
  });
  const outputs = result.outputFiles.map((file) => relative(root, file.path));
  const entryOutputs = new Set(Object.keys(entries).map((name) => `${name}.js`));
  // chunks and maps before the entries that import them, the record last
  const ordered = [...result.outputFiles].sort(
    (a, b) =>
      Number(entryOutputs.has(relative(distDir, a.path))) -
      Number(entryOutputs.has(relative(distDir, b.path))),
  );
  for (const file of ordered) writeAtomic(file.path, file.contents);
  const inputs = Object.keys(result.metafile.inputs).filter((p) => !p.includes('node_modules/'));
  writeAtomic(join(distDir, 'metafile.json'), JSON.stringify(result.metafile));
  writeAtomic(record, JSON.stringify({ startedAt, inputs, outputs }, null, 1));
  const keep = new Set([
    ...outputs,
    relative(root, record),
    relative(root, distDir) + '/metafile.json',
  ]);
  for (const name of readdirSync(distDir)) {
    const path = join(distDir, name);
    if (keep.has(relative(root, path))) continue;
    try {
      if (Date.now() - statSync(path).mtimeMs > keepOldOutputsMs) unlinkSync(path);
    } catch {
      // another process removed it first
    }
  }
  return result.metafile;
}

/**
 * Builds dist/ when it is missing or stale (saying why on stderr); returns whether it built.
 * A failed build (a syntax error in a source) exits with code 1.
 */
export async function ensureCli({ quiet = false } = {}) {
  const reason = staleReason();
  if (reason === undefined) return false;
  if (!quiet)
    process.stderr.write(`swarmgrad: building the CLI into apps/coordinator/dist (${reason})…\n`);
  try {
    await buildCli();
  } catch (error) {
    // esbuild has printed its errors (file, line, column): no stack trace on top of them
    if (!Array.isArray(error?.errors)) throw error;
    process.stderr.write('swarmgrad: the CLI build failed (errors above)\n');
    process.exit(1);
  }
  return true;
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const flag = process.argv[2];
  if (flag === '--check') {
    const reason = staleReason();
    process.stdout.write(reason === undefined ? 'current\n' : `stale: ${reason}\n`);
    process.exit(reason === undefined ? 0 : 1);
  } else if (flag === '--force') {
    await buildCli();
  } else if (flag === undefined) {
    await ensureCli();
  } else {
    process.stderr.write('usage: node apps/coordinator/build.mjs [--check | --force]\n');
    process.exit(2);
  }
}
