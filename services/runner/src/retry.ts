// Re-sending calls that failed in transit, with exponential backoff and jitter so that many
// runners recovering from the same outage do not retry in lockstep.

import { setTimeout as delay } from "node:timers/promises";
import { Code, ConnectError } from "@connectrpc/connect";
import { sendWithResends } from "@rgrid/common/backoff";

export interface BackoffPolicy {
  initialDelayMs: number;
  maxDelayMs: number;
  /** Attempts in all, the first one included. */
  maxAttempts: number;
}

export const DEFAULT_BACKOFF: BackoffPolicy = { initialDelayMs: 250, maxDelayMs: 15_000, maxAttempts: 12 };

/** "Equal jitter": at least half the exponential delay, so a retry is never immediate. */
export function backoffDelay(attempt: number, policy: BackoffPolicy, random: () => number = Math.random): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.initialDelayMs * 2 ** Math.max(0, attempt - 1));
  return ceiling / 2 + random() * (ceiling / 2);
}

/** Failures where the request may not have been processed and re-sending is the remedy. */
function isTransient(error: unknown): boolean {
  const code = ConnectError.from(error).code;
  return (
    code === Code.Unavailable ||
    code === Code.DeadlineExceeded ||
    code === Code.ResourceExhausted ||
    code === Code.Aborted ||
    code === Code.Unknown
  );
}

export interface RetryOptions {
  policy: BackoffPolicy;
  /** Stops waiting between attempts; the last error is thrown. */
  signal?: AbortSignal;
  onRetry?(error: unknown, attempt: number, delayMs: number): void;
}

/** Runs `operation`, re-running it after transient failures. Only for idempotent calls. */
export function retryTransient<T>(operation: () => Promise<T>, options: RetryOptions): Promise<T> {
  return sendWithResends(operation, {
    attempts: options.policy.maxAttempts,
    // Once stopping, the last error is the answer rather than another wait.
    shouldResend: (error) => isTransient(error) && options.signal?.aborted !== true,
    delayMs: (attempt) => backoffDelay(attempt, options.policy),
    sleep: (ms) => sleep(ms, options.signal),
    beforeResend: (error, attempt, delayMs) => options.onRetry?.(error, attempt, delayMs),
  });
}

/** Resolves after `ms`, or as soon as `signal` aborts: being stopped ends a wait, it is not an error. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  // An aborted wait rejects with the signal's reason, whatever it is.
  return delay(ms, undefined, { signal }).catch((error: unknown) => {
    if (signal?.aborted !== true) {
      throw error;
    }
  });
}
