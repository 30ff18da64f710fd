export * from './swarm.ts';
export * from './watch.ts';
export * from './browser.ts';
export * from './coordinator.ts';
export * from './lab.ts';
