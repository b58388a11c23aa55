// The re-send loop shared by every client that repeats calls after failures. What counts as worth
// re-sending, how long to wait and how to say so differ per caller, so they come in as options.
// Imports nothing, so the CLI can load it without the server stack.

export interface ResendOptions {
  /** Sends in all, the first included. */
  attempts: number;
  /** Whether the request may not have been processed, so that sending it again is the remedy. */
  shouldResend(error: unknown): boolean;
  /** The wait after failed send number `attempt` (counting from 1). */
  delayMs(attempt: number): number;
  sleep(ms: number): Promise<void>;
  /** Called before each wait, e.g. to tell the user or the log that the call is being repeated. */
  beforeResend?(error: unknown, attempt: number, delayMs: number): void;
}

/** Runs `send`, sending again while `options` allow; throws the last error. Only for calls that are safe to repeat. */
export async function sendWithResends<T>(send: () => Promise<T>, options: ResendOptions): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await send();
    } catch (error) {
      if (attempt >= options.attempts || !options.shouldResend(error)) {
        throw error;
      }
      const delayMs = options.delayMs(attempt);
      options.beforeResend?.(error, attempt, delayMs);
      await options.sleep(delayMs);
    }
  }
}
