export * from './errors.ts';
export * from './checksum.ts';
export * from './frame.ts';
export * from './chunking.ts';
