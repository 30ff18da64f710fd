/**
 * @swarmgrad/sim: an in-process swarm of virtual workers running packages/core's algorithms
 * under modelled delays, churn and Byzantine faults (DESIGN.md "How the research claims are
 * checked"). `simulate(scenario)` runs one scenario; `npm run experiments` reproduces the seeds'
 * claims as the tables of docs/results.md.
 */
export * from './attacks.ts';
export * from './clock.ts';
export * from './content.ts';
export * from './data.ts';
export * from './distributions.ts';
export * from './models/index.ts';
export * from './models/mlp.ts';
export * from './models/model.ts';
export * from './models/quadratic.ts';
export * from './models/softmax.ts';
export * from './scale.ts';
export * from './scenario.ts';
export * from './simulator.ts';
export * from './cost-model.ts';
