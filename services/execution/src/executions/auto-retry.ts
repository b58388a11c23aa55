import type { Logger } from "@rgrid/common";
import { Execution } from "../db/entities";
import type { Database } from "../db/orm";
import { NotFoundError, PreconditionError } from "../errors";
import { automaticRetryRequestId } from "./request-ids";
import { AlreadyRetriedError } from "./retry";
import type { RetryExecution } from "./retry";

export interface AutoRetryDeps {
  db: Database;
  retryExecution: RetryExecution;
  clock: () => Date;
  logger: Logger;
  /** The first automatic retry waits this long; each further one twice as long, up to the cap. */
  backoffBaseMillis: number;
}

/** The fields of a failed execution that decide whether and how it is retried automatically. */
export const RETRY_CANDIDATE_FIELDS = [
  "id", "accountId", "status", "failureKind", "exitCode", "retryOnExitCodes", "autoRetryNumber", "maxRetries",
] as const satisfies ReadonlyArray<keyof Execution>;
export type RetryCandidate = Pick<Execution, (typeof RETRY_CANDIDATE_FIELDS)[number]>;

/**
 * Makes the automatic retry of a failed execution if it is due one; resolves with the retry's id,
 * or undefined when none is due or making it failed. A failure that may pass (storage
 * unreachable) leaves the execution's auto_retry_pending set, so the lease sweep tries again; a
 * refusal that cannot change (an input gone, a retry already made) clears it, noting why in the
 * execution's error message. Never throws: its callers (CompleteExecution, the sweep) have
 * already recorded the failure.
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

/** Whether a failure is due an automatic retry: a retryable reason and budget left. */
export function isDueAutomaticRetry(execution: RetryCandidate): boolean {
  return automaticRetryReason(execution) !== undefined && execution.autoRetryNumber < execution.maxRetries;
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
      await settlePending(failed.id, "");
      return undefined;
    }
    try {
      const { execution } = await deps.retryExecution(
        // The owner's account; no API key asked, so none is recorded as retried_by.
        { accountId: failed.accountId, actorId: "" },
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
      if (error instanceof AlreadyRetriedError) {
        // Someone retried it first (RetryExecution, RetryBatch): one retry per failure.
        await settlePending(failed.id, "");
      } else if (error instanceof PreconditionError || error instanceof NotFoundError) {
        deps.logger.warn("automatic retry is not possible; not trying again", { executionId: failed.id, error });
        await settlePending(failed.id, `automatic retry not possible: ${error.message}`);
      } else {
        deps.logger.warn("automatic retry failed; the next lease sweep tries again", { executionId: failed.id, error });
      }
      return undefined;
    }
  };

  /** The sweep stops looking at `failedId`; `note`, if any, tells its owner why no retry came. */
  async function settlePending(failedId: string, note: string): Promise<void> {
    try {
      const em = deps.db.fork();
      const row = await em.findOne(Execution, { id: failedId, autoRetryPending: true }, { fields: ["id", "errorMessage"] });
      if (row !== null) {
        const errorMessage = note === "" ? row.errorMessage : [row.errorMessage, note].filter((text) => text !== "").join("; ");
        await em.nativeUpdate(Execution, { id: failedId, autoRetryPending: true }, { autoRetryPending: false, errorMessage });
      }
    } catch (error) {
      deps.logger.warn("could not record that an automatic retry will not be made", { executionId: failedId, error });
    }
  }
}
