/**
 * A real coordinator child process for the end-to-end tests and benchmarks, and `until`: the
 * swarm package's (packages/swarm/src/coordinator.ts), re-exported under the names the specs
 * import.
 */
export {
  cli,
  fetchStatus,
  lanAddress,
  startCoordinator,
  until,
  type CoordinatorProcess,
  type StartCoordinatorOptions,
} from '@swarmgrad/swarm';
