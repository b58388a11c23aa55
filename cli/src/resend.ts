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

export type Resender = <T>(send: () => Promise<T>) => Promise<T>;

export function createResender(deps: {
  policy: ResendPolicy;
  sleep: (ms: number) => Promise<void>;
  warn: (line: string) => void;
}): Resender {
  const { policy, sleep, warn } = deps;
  return (send) =>
    sendWithResends(send, {
      attempts: policy.attempts,
      shouldResend: isTransportFailure,
      delayMs: (attempt) => policy.firstDelayMs * 2 ** (attempt - 1),
      sleep,
      beforeResend: (_error, attempt) => warn(`Connection lost. Retrying... (attempt ${attempt + 1}/${policy.attempts})`),
    });
}

/** connect-node reports refused, reset and dropped connections as Unavailable. */
function isTransportFailure(error: unknown): boolean {
  return error instanceof ConnectError && error.code === Code.Unavailable;
}
