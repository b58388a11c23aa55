import { create } from "@bufbuild/protobuf";
import { sharedWhileRunning } from "@rgrid/common";
import { BatchRetryItemSchema, ErrorInfo_Reason, RetryBatchResponseSchema } from "@rgrid/proto";
import type { RetryBatchResponse } from "@rgrid/proto";
import type { Caller } from "../auth";
import type { Database } from "../db/orm";
import { rowCodec } from "../db/row-codec";
import { withSqlSession } from "../db/sql-session";
import { Execution, isTerminal } from "../db/entities";
import type { ExecutionState } from "../db/entities";
import { NotFoundError, PreconditionError } from "../errors";
import { batchItemRequestId } from "./request-ids";
import type { ManyRetryOutcome, RetryMany } from "./retry-many";
import { SUMMARY_FIELDS, summaryMessage } from "./summary";
import type { ExecutionSummary } from "./summary";

export interface BatchRetryDeps {
  db: Database;
  retryMany: RetryMany;
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

/**
 * The most executions of a batch, retries included (they stay in the batch), that one RetryBatch
 * considers: it reads them all at once and answers with one item per candidate. A larger batch
 * is refused whole, before anything is retried; its executions can be retried one by one.
 */
export const MAX_BATCH_RETRY_EXECUTIONS = 10_000;
const RETRIED_WHEN_FAILED_ONLY: readonly ExecutionState[] = ["failed", "timed_out"];


/**
 * Retries the latest attempt of each lineage in a batch, each item with all of RetryExecution's
 * guarantees (retry-many.ts). Candidates are the batch's executions with no retry yet, plus those
 * this same request already retried (a re-send answers the same); the retries this request made
 * are never candidates themselves. A failure that is not one item's own (storage unreachable)
 * fails the call; a re-send with the same request_id finishes the rest.
 */
export function createRetryBatch(deps: BatchRetryDeps): RetryBatch {
  const maxExecutions = deps.maxExecutions ?? MAX_BATCH_RETRY_EXECUTIONS;
  // Identical requests arriving together (a client re-sending after a transport error) share one
  // attempt, so storage copies once; the unique index on request_id covers other replicas.
  const shared = sharedWhileRunning<BatchRetryOutcome[]>();
  return (caller, request) =>
    shared([caller.accountId, request.requestId, request.batchId, String(request.failedOnly)].join("\u0000"), () => retryBatchOnce(caller, request));

  async function retryBatchOnce(caller: Caller, request: BatchRetryRequest): Promise<BatchRetryOutcome[]> {
    const members = await withSqlSession(deps.db, async (sql) => {
      const executions = rowCodec<BatchMember>(sql, Execution.name);
      const rows = await sql.query(
        `select ${executions.columnsOf(SUMMARY_FIELDS)} from executions where account_id = ? and batch_id = ? order by created_at, id limit ?`,
        [caller.accountId, request.batchId, maxExecutions + 1],
      );
      return rows.map(executions.fromRow);
    });
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

    const outcomes = new Array<BatchRetryOutcome>(candidates.length);
    const toRetry: Array<{ index: number; candidate: BatchMember }> = [];
    candidates.forEach((candidate, index) => {
      const earlier = retryByThisRequest.get(candidate.id);
      const skipped = skipReason(candidate.status, request.failedOnly);
      if (earlier !== undefined) {
        outcomes[index] = { original: candidate, retry: earlier, skipped: "" };
      } else if (skipped !== undefined) {
        outcomes[index] = { original: candidate, skipped };
      } else {
        toRetry.push({ index, candidate });
      }
    });
    const retried = await deps.retryMany(caller, {
      items: toRetry.map(({ candidate }) => ({ executionId: candidate.id, requestId: batchItemRequestId(request.requestId, candidate.id) })),
      // The audit shows the batch's request id, the one the caller knows.
      auditRequestId: request.requestId,
      reason: request.reason,
    });
    toRetry.forEach(({ index, candidate }, position) => {
      const outcome = retried[position] as ManyRetryOutcome;
      outcomes[index] = "retry" in outcome ? { original: outcome.original, retry: outcome.retry, skipped: "" } : { original: candidate, skipped: outcome.skipped };
    });
    return outcomes;
  }
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
