/**
 * Loading the training code again when a fetch failed. A volunteer on a lossy link (or the
 * network lab's wan profile: 1 % loss) sometimes loses one of the chunks the Donate button
 * imports; browsers then reject the dynamic import, and without a retry the tab stays dead until
 * it is reloaded. Chromium re-fetches a failed module when it is imported again (checked with
 * Debian's Chromium 156), so importing again after a pause is enough.
 */
export interface RetryOptions {
  /** Tries in all (default 5). */
  attempts?: number;
  /** Pause before the second try, doubled before each further one (default 500 ms). */
  delayMs?: number;
  sleep?: (ms: number) => Promise<void>;
  /** Told of each failed try that will be tried again. */
  onRetry?: (error: unknown, attempt: number) => void;
}

export async function withRetries<T>(
  load: () => Promise<T>,
  options: RetryOptions = {},
): Promise<T> {
  const attempts = Math.max(1, options.attempts ?? 5);
  const sleep = options.sleep ?? ((ms) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  let delay = options.delayMs ?? 500;
  for (let attempt = 1; ; attempt++) {
    try {
      return await load();
    } catch (error) {
      if (attempt >= attempts) throw error;
      options.onRetry?.(error, attempt);
      await sleep(delay);
      delay *= 2;
    }
  }
}
