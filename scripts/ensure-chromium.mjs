#!/usr/bin/env node
// Makes sure the e2e tests have a browser: Debian's Chromium at /usr/bin/chromium (or
// CHROMIUM_PATH). Playwright's own browser download is not used. Installs it with apt when
// running as root; otherwise says how, in one line, and fails. Plain Node, no dependencies.
import { existsSync } from 'node:fs';
import { execSync } from 'node:child_process';

const path = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
if (!existsSync(path)) {
  if (process.getuid?.() === 0) {
    process.stdout.write(`swarmgrad: ${path} is missing; installing Debian's chromium…\n`);
    execSync('apt-get update && apt-get install -y chromium', { stdio: 'inherit' });
  } else {
    process.stderr.write(
      `swarmgrad e2e: no Chromium at ${path}: run \`sudo apt-get update && sudo apt-get install -y chromium\` (or set CHROMIUM_PATH)\n`,
    );
    process.exit(1);
  }
}
