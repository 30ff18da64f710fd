#!/usr/bin/env node
// Installs the npm dependencies from the lock file when they are missing or older than the
// lock file, then builds the web app (scripts/ensure-web.mjs) and the CLI
// (apps/coordinator/build.mjs) when they are missing or stale, so `npm start` and `npm test`
// work on a fresh clone. Plain Node, no dependencies.
import { existsSync, statSync } from 'node:fs';
import { execFileSync, execSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const lock = join(root, 'package-lock.json');
const installed = join(root, 'node_modules', '.package-lock.json');

const stale =
  !existsSync(installed) ||
  (existsSync(lock) && statSync(lock).mtimeMs > statSync(installed).mtimeMs);
if (stale) {
  process.stdout.write('swarmgrad: installing npm dependencies from package-lock.json…\n');
  execSync(existsSync(lock) ? 'npm ci --no-audit --no-fund' : 'npm install --no-audit --no-fund', {
    cwd: root,
    stdio: 'inherit',
  });
}

// the pages `swarmgrad serve` serves: built when missing or older than their sources
execFileSync(process.execPath, [join(root, 'scripts', 'ensure-web.mjs')], {
  cwd: root,
  stdio: 'inherit',
});

// the compiled CLI (apps/coordinator/dist): the bin would build it too, this builds it once
// before the tests start many bins at the same time
execFileSync(process.execPath, [join(root, 'apps', 'coordinator', 'build.mjs')], {
  cwd: root,
  stdio: 'inherit',
});
