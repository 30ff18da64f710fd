/**
 * Real browser tabs for the end-to-end tests and `npm run bench -- swarm`: the swarm package's
 * (packages/swarm/src/browser.ts), re-exported under the names the specs import.
 */
export {
  chromiumArgs,
  chromiumPath,
  launchBrowser,
  openTab,
  startNodeWorker,
  untilTraining,
  type BrowserTab,
  type NodeWorkerProcess,
} from '@swarmgrad/swarm';
