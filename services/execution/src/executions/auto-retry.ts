import type { Logger } from "@rgrid/common";
import type { Execution } from "../db/entities";
import type { RetryExecution } from "./retry";

export interface AutoRetryDeps {
  retryExecution: RetryExecution;
  clock: () => Date;
  logger: Logger;
  /** The first automatic retry waits this long; each further one twice as long, up to the cap. */
  backoffBaseMillis: number;
}

/** The fields of a failed execution that decide whether and how it is retried automatically. */
export type RetryCandidate = Pick<
  Execution,
  "id" | "accountId" | "status" | "failureKind" | "exitCode" | "retryOnExitCodes" | "autoRetryNumber" | "maxRetries"
>;

/**
 * Makes the automatic retry of a failed execution if it is due one; resolves with the retry's id,
 * or undefined when none is due or making it failed (logged; the lease sweep tries again).
 * Never throws: its callers (CompleteExecution, the sweep) have already recorded the failure.
 */
export type AutoRetry = (failed: RetryCandidate) => Promise<string | undefined>;

export const MAX_BACKOFF_MILLIS = 300_000;

/** Why `execution` deserves an automatic retry, or undefined when it does not. */
export function automaticRetryReason(execution: RetryCandidate): string | undefined {
  if (execution.status !== "failed") {
    return undefined; // cancelled, timed out and completed executions are never retried
  }
  switch (execution.failureKind) {
    case "runner_lost":
      return "runner lost";
    case "infrastructure":
      return "infrastructure error";
    case "script":
      return execution.exitCode !== null && execution.retryOnExitCodes.includes(execution.exitCode)
        ? `exit code ${execution.exitCode}`
        : undefined;
    default:
      return undefined;
  }
}

/** Doubling per automatic retry of the lineage (1, 2, ...), capped. */
export function backoffMillis(baseMillis: number, number: number): number {
  return Math.min(baseMillis * 2 ** (number - 1), MAX_BACKOFF_MILLIS);
}

export function createAutoRetry(deps: AutoRetryDeps): AutoRetry {
  return async (failed) => {
    const reason = automaticRetryReason(failed);
    const number = failed.autoRetryNumber + 1;
    if (reason === undefined || number > failed.maxRetries) {
      return undefined;
    }
    try {
      const { execution } = await deps.retryExecution(
        // The owner's account; no API key asked, so none is recorded as retried_by.
        { accountId: failed.accountId, apiKeyId: "" },
        {
          executionId: failed.id,
          force: false,
          // One automatic retry per failed execution, whichever path (or replica) gets there first.
          requestId: automaticRetryRequestId(failed.id),
          automatic: {
            number,
            reason,
            notBefore: new Date(deps.clock().getTime() + backoffMillis(deps.backoffBaseMillis, number)),
          },
        },
      );
      return execution.id;
    } catch (error) {
      deps.logger.warn("automatic retry failed; the next lease sweep tries again", { executionId: failed.id, error });
      return undefined;
    }
  };
}

export function automaticRetryRequestId(failedId: string): string {
  return `auto:${failedId}`;
}
