/** Builds the web app first when apps/web/dist is missing or stale (the coordinator serves it). */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export default function globalSetup(): void {
  const script = fileURLToPath(new URL('../../scripts/ensure-web.mjs', import.meta.url));
  execFileSync(process.execPath, [script], { stdio: 'inherit' });
}
