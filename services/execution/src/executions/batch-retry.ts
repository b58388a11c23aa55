import { create } from "@bufbuild/protobuf";
import { mapWithLimit } from "@rgrid/common";
import { BatchRetryItemSchema, ErrorInfo_Reason, RetryBatchResponseSchema } from "@rgrid/proto";
import type { RetryBatchResponse } from "@rgrid/proto";
import type { Caller } from "../auth";
import type { Database } from "../db/orm";
import { Execution, isTerminal } from "../db/entities";
import type { ExecutionState } from "../db/entities";
import { NotFoundError, PreconditionError } from "../errors";
import { batchItemRequestId } from "./request-ids";
import { skipReasonOf } from "./retry";
import type { RetryExecution } from "./retry";
import { SUMMARY_FIELDS, summaryMessage } from "./summary";
import type { ExecutionSummary } from "./summary";

export interface BatchRetryDeps {
  db: Database;
  retryExecution: RetryExecution;
  /** Retries in flight at once: each copies objects in storage, so the store sets the pace. */
  concurrency?: number;
  /** Most executions (retries included) one call considers; MAX_BATCH_RETRY_EXECUTIONS unless a test sets it. */
  maxExecutions?: number;
}

export interface BatchRetryRequest {
  batchId: string;
  failedOnly: boolean;
  requestId: string;
  /** The caller's reason (`--reason`), recorded in the audit with each retry made. */
  reason?: string;
}

/** A member of a batch as RetryBatch reads it. */
export type BatchMember = ExecutionSummary;

/** One candidate of the batch: retried as `retry`, or left alone for the reason in `skipped`. */
export interface BatchRetryOutcome {
  original: BatchMember;
  retry?: BatchMember;
  skipped: string;
}

export type RetryBatch = (caller: Caller, request: BatchRetryRequest) => Promise<BatchRetryOutcome[]>;

const DEFAULT_CONCURRENCY = 8;

/**
 * The most executions of a batch, retries included (they stay in the batch), that one RetryBatch
 * considers: it reads them all at once and answers with one item per candidate. A larger batch
 * is refused whole, before anything is retried; its executions can be retried one by one.
 */
export const MAX_BATCH_RETRY_EXECUTIONS = 10_000;
const RETRIED_WHEN_FAILED_ONLY: readonly ExecutionState[] = ["failed", "timed_out"];


/**
 * Retries the latest attempt of each lineage in a batch, one RetryExecution per item with all
 * of its guarantees. Candidates are the batch's executions with no retry yet, plus those this
 * same request already retried (a re-send answers the same); the retries this request made are
 * never candidates themselves.
 */
export function createRetryBatch(deps: BatchRetryDeps): RetryBatch {
  const concurrency = deps.concurrency ?? DEFAULT_CONCURRENCY;
  const maxExecutions = deps.maxExecutions ?? MAX_BATCH_RETRY_EXECUTIONS;

  return async (caller, request) => {
    const members: BatchMember[] = await deps.db.fork().find(
      Execution,
      { accountId: caller.accountId, batchId: request.batchId },
      { fields: [...SUMMARY_FIELDS], orderBy: [{ createdAt: "asc" }, { id: "asc" }], limit: maxExecutions + 1 },
    );
    if (members.length === 0) {
      throw new NotFoundError(`batch ${request.batchId} not found`, { reason: ErrorInfo_Reason.NOT_FOUND, batchId: request.batchId });
    }
    if (members.length > maxExecutions) {
      // FailedPrecondition, not InvalidArgument: the request is well-formed, and it is the
      // batch's current size (which grows with every round of retries) that refuses it.
      throw new PreconditionError(
        `batch ${request.batchId} has more than ${maxExecutions} executions (retries included), more than ` +
          `RetryBatch considers at once; nothing was retried. Retry its executions with RetryExecution instead`,
        { reason: ErrorInfo_Reason.BATCH_TOO_LARGE, batchId: request.batchId },
      );
    }
    // Retries inherit their original's batch, so the batch's own rows show what was retried.
    const retriedIds = new Set<string>();
    const retryByThisRequest = new Map<string, BatchMember>();
    for (const member of members) {
      if (member.retryOf !== null) {
        retriedIds.add(member.retryOf);
        if (member.requestId === batchItemRequestId(request.requestId, member.retryOf)) {
          retryByThisRequest.set(member.retryOf, member);
        }
      }
    }
    const madeByThisRequest = new Set([...retryByThisRequest.values()].map((retry) => retry.id));
    const candidates = members.filter(
      (member) => !madeByThisRequest.has(member.id) && (!retriedIds.has(member.id) || retryByThisRequest.has(member.id)),
    );

    return mapWithLimit(candidates, concurrency, async (candidate): Promise<BatchRetryOutcome> => {
      const earlier = retryByThisRequest.get(candidate.id);
      if (earlier !== undefined) {
        return { original: candidate, retry: earlier, skipped: "" };
      }
      const skipped = skipReason(candidate.status, request.failedOnly);
      if (skipped !== undefined) {
        return { original: candidate, skipped };
      }
      try {
        const result = await deps.retryExecution(caller, {
          executionId: candidate.id,
          force: false,
          requestId: batchItemRequestId(request.requestId, candidate.id),
          // The audit shows the batch's request id, the one the caller knows.
          auditRequestId: request.requestId,
          reason: request.reason,
          // Retried meanwhile (automatically, or by another request): reported, not retried twice.
          onlyIfNotYetRetried: true,
          batch: true,
        });
        return { original: result.original, retry: result.execution, skipped: "" };
      } catch (error) {
        // Anything but this execution's own problem fails the call; a re-send with the same
        // request_id finishes the rest.
        const skipped = skipReasonOf(error);
        if (skipped === undefined) {
          throw error;
        }
        return { original: candidate, skipped };
      }
    });
  };
}

function skipReason(status: ExecutionState, failedOnly: boolean): string | undefined {
  if (!isTerminal(status)) {
    return `still ${status}`;
  }
  if (failedOnly && !RETRIED_WHEN_FAILED_ONLY.includes(status)) {
    return `${status} (only failed and timed-out executions are retried)`;
  }
  return undefined;
}

export function batchRetryResponse(outcomes: readonly BatchRetryOutcome[]): RetryBatchResponse {
  const retriedCount = outcomes.filter((outcome) => outcome.retry !== undefined).length;
  return create(RetryBatchResponseSchema, {
    items: outcomes.map((outcome) =>
      create(BatchRetryItemSchema, {
        original: summaryMessage(outcome.original),
        retry: outcome.retry && summaryMessage(outcome.retry),
        skipped: outcome.skipped,
      }),
    ),
    retriedCount,
    skippedCount: outcomes.length - retriedCount,
  });
}
