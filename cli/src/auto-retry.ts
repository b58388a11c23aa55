// Whether the server is about to retry a failed execution by itself (docs/architecture.md, automatic retries): the
// failure is recorded first and the automatic retry a moment later, so a client waiting for an
// outcome must not take that failure as final.
import { ExecutionStatus, FailureKind, RetryKind } from "@rgrid/proto/execution";
import type { Execution } from "@rgrid/proto/execution";
import { fetchExecution } from "./context";
import type { ServerContext } from "./context";

/** How long a waiting client gives the server to make an expected automatic retry. */
export const AUTO_RETRY_GRACE_MS = 30_000;

/** True when the rules promise an automatic retry of `execution` that has not been made yet. */
export function awaitsAutomaticRetry(execution: Execution): boolean {
  if (execution.status !== ExecutionStatus.FAILED || execution.retriedAs.length > 0) {
    return false;
  }
  const transient =
    execution.failureKind === FailureKind.RUNNER_LOST ||
    execution.failureKind === FailureKind.INFRASTRUCTURE ||
    (execution.failureKind === FailureKind.SCRIPT &&
      execution.exitCode !== undefined &&
      execution.retryOnExitCodes.includes(execution.exitCode));
  // The retry would be number auto_retry_number + 1, made only while that is within the budget.
  return transient && execution.autoRetryNumber + 1 <= execution.maxRetries;
}

/**
 * The automatic retry of a failed execution, once the server has made it (waiting up to
 * AUTO_RETRY_GRACE_MS when the rules promise one); undefined when there is none to follow.
 */
export async function findAutomaticRetry(
  context: ServerContext,
  failed: Execution,
  pollIntervalMs: number,
): Promise<Execution | undefined> {
  let execution = failed;
  for (let waitedMs = 0; awaitsAutomaticRetry(execution) && waitedMs < AUTO_RETRY_GRACE_MS; waitedMs += pollIntervalMs) {
    await context.clock.sleep(pollIntervalMs);
    execution = await fetchExecution(context, execution.id);
  }
  const retryId = execution.status === ExecutionStatus.FAILED ? execution.retriedAs[0] : undefined;
  if (retryId === undefined) {
    return undefined;
  }
  // Someone may have retried it by hand first; only the system's own retry continues this run.
  const retry = await fetchExecution(context, retryId);
  return retry.retryKind === RetryKind.AUTOMATIC ? retry : undefined;
}
