/**
 * A real coordinator child process for the end-to-end tests and benchmarks, and `until`: the
 * swarm package's (packages/swarm/src/coordinator.ts), re-exported under the names the specs
 * import.
 */
import { swarmgradCli } from '@swarmgrad/swarm';

/** The swarmgrad executable (named by e2e/playwright.config.ts). */
export const cli = swarmgradCli();

export {
  fetchStatus,
  startCoordinator,
  until,
  type CoordinatorProcess,
  type StartCoordinatorOptions,
} from '@swarmgrad/swarm';
