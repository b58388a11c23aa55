// Re-sending after transport failures. Only calls that are safe to repeat go through here: reads,
// and writes the server de-duplicates (a request_id chosen once per invocation, or idempotent).
import { Code, ConnectError } from "@connectrpc/connect";
import { sendWithResends } from "@rgrid/common/backoff";

export interface ResendPolicy {
  /** Total sends, the first included. */
  attempts: number;
  /** Wait before the first re-send; doubles each time. */
  firstDelayMs: number;
}

/**
 * Runs `send` again after transport failures. A long-lived call (a log stream) calls `madeProgress`
 * whenever the server answered: the budget counts failures in a row, so a stream that drops now
 * and then over hours is followed to its end, while a server that is gone is still given up on.
 */
export type Resender = <T>(send: (madeProgress: () => void) => Promise<T>) => Promise<T>;

export function createResender(deps: {
  policy: ResendPolicy;
  sleep: (ms: number) => Promise<void>;
  warn: (line: string) => void;
}): Resender {
  const { policy, sleep, warn } = deps;
  return (send) => {
    let failuresInARow = 0;
    return sendWithResends(
      () =>
        send(() => {
          failuresInARow = 0;
        }),
      {
        // The budget is failuresInARow, which progress resets; sendWithResends' own count cannot be.
        attempts: Number.POSITIVE_INFINITY,
        shouldResend: (error) => isTransportFailure(error) && ++failuresInARow < policy.attempts,
        delayMs: () => policy.firstDelayMs * 2 ** (failuresInARow - 1),
        sleep,
        beforeResend: () => warn(`Connection lost. Retrying... (attempt ${failuresInARow + 1}/${policy.attempts})`),
      },
    );
  };
}

/** Socket-level failures: the request may never have arrived, or its answer was cut off. */
const NETWORK_ERROR_CODES: ReadonlySet<string> = new Set([
  "ECONNRESET",
  "ECONNREFUSED",
  "ECONNABORTED",
  "EPIPE",
  "ETIMEDOUT",
  "ENETUNREACH",
  "EHOSTUNREACH",
  "ERR_STREAM_PREMATURE_CLOSE",
]);

/**
 * connect-node reports refused, reset and dropped connections as Unavailable, except a response
 * stream cut off mid-way, which arrives as Internal with the socket's error as its cause.
 */
export function isTransportFailure(error: unknown): boolean {
  if (!(error instanceof ConnectError)) {
    return false;
  }
  if (error.code === Code.Unavailable) {
    return true;
  }
  const causeCode = (error.cause as { code?: unknown } | undefined)?.code;
  return typeof causeCode === "string" && NETWORK_ERROR_CODES.has(causeCode);
}
