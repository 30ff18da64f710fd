#!/usr/bin/env node
// Makes sure the TURN tests (apps/coordinator/test/turn.test.ts) have a TURN server: Debian's
// coturn (`turnserver`, or TURNSERVER). Installs it with apt when running as root; otherwise
// says how, in one line, and fails. Exits 0 when turnserver is there.
import { ensureAptBinary } from './ensure-apt.mjs';

export function turnserverPath() {
  return process.env.TURNSERVER ?? '/usr/bin/turnserver';
}

export function ensureCoturn() {
  return ensureAptBinary({
    binary: '/usr/bin/turnserver',
    pkg: 'coturn',
    env: 'TURNSERVER',
    why: 'the TURN credential tests start one',
  });
}

if (import.meta.url === `file://${process.argv[1]}`) {
  process.exit(ensureCoturn() ? 0 : 1);
}
