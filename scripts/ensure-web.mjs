#!/usr/bin/env node
// Builds the web app (apps/web → apps/web/dist) when dist is missing or older than anything it
// is built from, so `npm start` and the e2e tests always serve current pages. Plain Node, no
// dependencies; the build itself is `vite build` with the root vite.config.ts.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const built = join(root, 'apps', 'web', 'dist', 'index.html');
const sources = [
  'apps/web/src',
  'public',
  'apps/web/index.html',
  'apps/web/package.json',
  'vite.config.ts',
  'package-lock.json',
  // the pages import these workspace packages' sources
  'packages/protocol/src',
  'packages/core/src',
  'packages/model/src',
  'packages/worker/src',
];

/** Newest modification time under `path` (a file or a directory tree), 0 when absent. */
function newest(path) {
  if (!existsSync(path)) return 0;
  const stat = statSync(path);
  if (!stat.isDirectory()) return stat.mtimeMs;
  let latest = stat.mtimeMs;
  for (const entry of readdirSync(path)) {
    if (entry === 'node_modules' || entry === 'dist') continue;
    latest = Math.max(latest, newest(join(path, entry)));
  }
  return latest;
}

const builtAt = existsSync(built) ? statSync(built).mtimeMs : 0;
const sourcesAt = Math.max(...sources.map((s) => newest(join(root, s))));
if (builtAt === 0 || sourcesAt > builtAt) {
  process.stdout.write(
    builtAt === 0
      ? 'swarmgrad: building the web app (apps/web/dist is missing)…\n'
      : 'swarmgrad: rebuilding the web app (its sources changed)…\n',
  );
  execFileSync(process.execPath, [join(root, 'node_modules', 'vite', 'bin', 'vite.js'), 'build'], {
    cwd: root,
    stdio: 'inherit',
  });
}
