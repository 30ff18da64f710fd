import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

/** The swarmgrad executable the tests' swarms start coordinators with (packages/swarm useCli). */
const swarmgradCli = fileURLToPath(new URL('./apps/coordinator/bin/swarmgrad.js', import.meta.url));

export default defineConfig({
  test: {
    include: ['packages/*/test/**/*.test.ts', 'apps/*/test/**/*.test.ts'],
    testTimeout: 30_000,
    pool: 'forks',
    env: { SWARMGRAD_CLI: process.env.SWARMGRAD_CLI ?? swarmgradCli },
  },
});
