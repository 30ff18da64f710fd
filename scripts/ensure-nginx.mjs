#!/usr/bin/env node
// Makes sure the reverse-proxy tests (apps/coordinator/test/reverse-proxy*.test.ts, the configs of
// docs/internet.md and docs/architecture.md) have nginx: Debian's nginx (or NGINX). Installs it
// with apt when running as root; otherwise says how, in one line, and fails. Exits 0 when nginx
// is there.
import { ensureAptBinary } from './ensure-apt.mjs';

export function ensureNginx() {
  return ensureAptBinary({
    binary: '/usr/sbin/nginx',
    pkg: 'nginx',
    env: 'NGINX',
    why: 'the reverse-proxy test starts one',
  });
}

if (import.meta.url === `file://${process.argv[1]}`) {
  process.exit(ensureNginx() ? 0 : 1);
}
