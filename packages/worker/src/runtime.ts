/**
 * What the worker's state machines take from their host instead of reaching for globals: a
 * clock, a logger (pino-compatible call shape, so a pino logger can be passed as is) and a tiny
 * typed event emitter that works in browsers and Node alike.
 */

import type { Clock, Logger } from '@swarmgrad/core';

export type { Clock, Logger };

export const systemClock: Clock = {
  now: () => performance.now(),
  setTimeout: (callback, ms) => setTimeout(callback, ms),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

type LogFn = Logger['info'];

const levels = ['debug', 'info', 'warn', 'error'] as const;
export type LogLevel = (typeof levels)[number] | 'silent';

/** A console logger printing levels at or above `level`. */
export function consoleLogger(level: LogLevel = 'info', name = 'swarmgrad-worker'): Logger {
  const threshold = level === 'silent' ? levels.length : levels.indexOf(level);
  const make =
    (at: (typeof levels)[number]): LogFn =>
    (object, message) => {
      if (levels.indexOf(at) < threshold) return;
      const line = `[${name}] ${at}${message ? ` ${message}` : ''}`;
      const sink = at === 'error' ? console.error : at === 'warn' ? console.warn : console.log;
      if (Object.keys(object).length > 0) sink(line, object);
      else sink(line);
    };
  return { debug: make('debug'), info: make('info'), warn: make('warn'), error: make('error') };
}

export const silentLogger: Logger = consoleLogger('silent');

/** Minimal typed event emitter (no Node `events`, so it bundles for the browser as is). */
export class Emitter<Events extends { [K in keyof Events]: (...args: never[]) => void }> {
  private readonly listeners = new Map<keyof Events, Set<Events[keyof Events]>>();

  on<K extends keyof Events>(event: K, listener: Events[K]): () => void {
    let set = this.listeners.get(event);
    if (!set) {
      set = new Set();
      this.listeners.set(event, set);
    }
    set.add(listener);
    return () => this.off(event, listener);
  }

  off<K extends keyof Events>(event: K, listener: Events[K]): void {
    this.listeners.get(event)?.delete(listener);
  }

  protected emit<K extends keyof Events>(event: K, ...args: Parameters<Events[K]>): void {
    const set = this.listeners.get(event);
    if (!set) return;
    for (const listener of [...set]) {
      (listener as (...a: Parameters<Events[K]>) => void)(...args);
    }
  }

  protected removeAllListeners(): void {
    this.listeners.clear();
  }
}

/** Resolves after `ms` on the given clock. */
export function sleep(clock: Clock, ms: number): Promise<void> {
  return new Promise((resolve) => clock.setTimeout(resolve, Math.max(0, ms)));
}

/**
 * Lets the event loop run pending tasks (messages, frames, timers) and comes back at once.
 * Not setTimeout(0): a browser clamps a timer set from a timer's task to ≥ 4 ms after five
 * levels, and a tab that yields after every step chains them (4 ms idle a step). A
 * MessageChannel message is a task without that clamp; Node has setImmediate.
 */
export function yieldToEventLoop(): Promise<void> {
  const g = globalThis as { setImmediate?: (f: () => void) => unknown };
  if (typeof g.setImmediate === 'function') {
    return new Promise((resolve) => g.setImmediate!(resolve));
  }
  if (typeof MessageChannel === 'function') {
    return new Promise((resolve) => {
      const channel = new MessageChannel();
      // a browser's MessagePort (the DOM's type; setting onmessage starts the port)
      const port = channel.port1 as unknown as { onmessage: (() => void) | null; close(): void };
      port.onmessage = () => {
        port.close();
        resolve();
      };
      channel.port2.postMessage(null);
    });
  }
  return new Promise((resolve) => setTimeout(resolve, 0));
}
