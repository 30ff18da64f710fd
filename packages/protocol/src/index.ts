export * from './errors.ts';
export * from './checksum.ts';
export * from './frame.ts';
export * from './chunking.ts';
export * from './job.ts';
export * from './dataset.ts';
export * from './events.ts';
export * from './dashboard.ts';
