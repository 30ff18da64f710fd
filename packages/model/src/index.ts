/** @swarmgrad/model: a job's model as a flat parameter vector (model.ts). */
export * from './model.ts';
