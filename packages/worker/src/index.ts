/**
 * @swarmgrad/worker: the tab's side of swarmgrad. Browser-safe exports only; the Node entry
 * (wrtc, simple-peer's Node build) is '@swarmgrad/worker/node'.
 */
export * from './runtime.ts';
export * from './backend.ts';
export * from './client.ts';
export * from './faults.ts';
export * from './mesh.ts';
export * from './trainer.ts';
export * from './worker.ts';
