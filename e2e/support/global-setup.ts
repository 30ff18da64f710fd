/**
 * Builds the web app (the coordinator serves it) and the compiled CLI (the tests start
 * `swarmgrad serve`) first, when missing or stale: once here rather than in every worker.
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export default function globalSetup(): void {
  for (const script of ['../../scripts/ensure-web.mjs', '../../apps/coordinator/build.mjs']) {
    execFileSync(process.execPath, [fileURLToPath(new URL(script, import.meta.url))], {
      stdio: 'inherit',
    });
  }
}
