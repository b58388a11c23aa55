import type { RetryExecutionRequest } from "@rgrid/proto";

/**
 * When a delayed retry may first be claimed (RetryExecutionRequest.queued_until), or undefined
 * when it may run at once. A delay counts from `now` on this service's clock, so a client whose
 * clock is off still gets the wait it asked for. Sub-millisecond parts round up: a retry is never
 * claimed before the time asked, even by a fraction (dates here have millisecond precision).
 */
export function requestedNotBefore(request: Pick<RetryExecutionRequest, "queuedUntil">, now: Date): Date | undefined {
  const { queuedUntil } = request;
  switch (queuedUntil.case) {
    case "delay":
      return new Date(now.getTime() + millisecondsOf(queuedUntil.value));
    case "notBefore":
      return new Date(millisecondsOf(queuedUntil.value));
    default:
      return undefined;
  }
}

/** Seconds and nanoseconds (a Duration, or a Timestamp since the epoch) in whole milliseconds. */
function millisecondsOf(value: { seconds: bigint; nanos: number }): number {
  return Number(value.seconds) * 1000 + Math.ceil(value.nanos / 1_000_000);
}
