// Shared by the ensure-<tool>.mjs scripts: a Debian package's binary is there, or (as root) it
// is installed with apt-get, or a one-line instruction says how. Plain Node, no dependencies.
// RUNLEVEL=1 keeps the package's init script from starting a system-wide daemon on install
// (nginx would take port 80, coturn port 3478): the tests start their own on free ports.
import { existsSync } from 'node:fs';
import { execSync } from 'node:child_process';

/** @param {{ binary: string, pkg: string, env?: string, why: string }} what */
export function ensureAptBinary({ binary, pkg, env, why }) {
  const path = (env && process.env[env]) || binary;
  if (existsSync(path)) return true;
  if (process.getuid?.() === 0) {
    process.stdout.write(`swarmgrad: ${path} is missing (${why}); installing Debian's ${pkg}…\n`);
    execSync(`apt-get update && apt-get install -y --no-install-recommends ${pkg}`, {
      stdio: 'inherit',
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive', RUNLEVEL: '1' },
    });
    return existsSync(path);
  }
  process.stderr.write(
    `swarmgrad: no ${pkg} at ${path} (${why}): run \`sudo apt-get update && sudo apt-get install -y ${pkg}\`${env ? ` (or set ${env})` : ''}\n`,
  );
  return false;
}
