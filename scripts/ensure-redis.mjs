#!/usr/bin/env node
// Makes sure the multi-node coordinator tests (apps/coordinator/test/scale-out.test.ts) and
// `npm run bench -- coordinator --nodes K` have a Redis: Debian's redis-server (or REDIS_SERVER).
// Installs it with apt when running as root; otherwise says how, in one line, and fails.
// Plain Node, no dependencies. Exits 0 when redis-server is there.
import { existsSync } from 'node:fs';
import { execSync } from 'node:child_process';

export function redisServerPath() {
  return process.env.REDIS_SERVER ?? '/usr/bin/redis-server';
}

export function ensureRedis() {
  const path = redisServerPath();
  if (existsSync(path)) return true;
  if (process.getuid?.() === 0) {
    process.stdout.write(`swarmgrad: ${path} is missing; installing Debian's redis-server…\n`);
    execSync('apt-get update && apt-get install -y --no-install-recommends redis-server', {
      stdio: 'inherit',
    });
    return existsSync(path);
  }
  process.stderr.write(
    `swarmgrad: no redis-server at ${path}: run \`sudo apt-get update && sudo apt-get install -y redis-server\` (or set REDIS_SERVER)\n`,
  );
  return false;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  process.exit(ensureRedis() ? 0 : 1);
}
