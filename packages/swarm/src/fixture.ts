/**
 * A Playwright fixture for writing your own swarm tests:
 *
 *   import { test, expect } from '@swarmgrad/swarm/fixture';
 *
 *   test('four tabs reach 90%', async ({ launchSwarm }) => {
 *     const swarm = await launchSwarm({ serve: true, tabs: 4 });
 *     const summary = await swarm.run({ accuracy: 0.9, timeoutSeconds: 600 });
 *     expect(summary.ok).toBe(true);
 *   });
 *
 * `launchSwarm` is the package's launchSwarm; every swarm a test launched is closed after it
 * (browsers, churn, a served coordinator), pass or fail.
 */
import { test as base } from '@playwright/test';
import { launchSwarm, type LaunchSwarmOptions, type Swarm } from './swarm.ts';

export interface SwarmFixtures {
  launchSwarm: (options: LaunchSwarmOptions) => Promise<Swarm>;
}

export const test = base.extend<SwarmFixtures>({
  // eslint-disable-next-line no-empty-pattern -- Playwright fixtures destructure their dependencies
  launchSwarm: async ({}, use) => {
    const swarms: Swarm[] = [];
    await use(async (options) => {
      const swarm = await launchSwarm(options);
      swarms.push(swarm);
      return swarm;
    });
    for (const swarm of swarms) await swarm.close();
  },
});

export { expect } from '@playwright/test';
