/**
 * What the swarm's state machines take from their host instead of reaching for globals: a clock
 * and a logger (pino's call shape, so a pino logger can be passed as is). The browser and Node
 * hosts (packages/worker's runtime.ts) and the simulator's virtual clock implement them.
 */

export interface Clock {
  /** Milliseconds, monotonic. */
  now(): number;
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

type LogFn = (object: object, message?: string) => void;

/** pino's `logger.info({ ...fields }, 'message')` shape. */
export interface Logger {
  debug: LogFn;
  info: LogFn;
  warn: LogFn;
  error: LogFn;
}
