import { createHash, randomUUID } from "node:crypto";

// The request ids the service makes itself. Each kind has a prefix that clients may not use
// (the rgrid.client_request_id rule in proto/rgrid/v1/rules.proto), so no id a client chooses
// can ever replay, or be refused as a reuse of, one of these.

/** The one automatic retry of a failed execution: a second sweep finds it instead of making another. */
export function automaticRetryRequestId(failedId: string): string {
  return `auto:${failedId}`;
}

/**
 * The request_id of one item's retry: the same batch request always names the same retry of an
 * execution, so a re-sent RetryBatch finds the retries it made instead of making more.
 */
export function batchItemRequestId(batchRequestId: string, originalId: string): string {
  return "batch:" + createHash("sha256").update(batchRequestId + originalId).digest("hex");
}

/**
 * The request_id of one item's retry in a bulk retry (RetryWhere): the operation always names the
 * same retry of an execution, so a worker that carries on after another replays, never repeats.
 * The separator keeps it apart from every batch item id (request ids cannot hold control
 * characters).
 */
export function bulkItemRequestId(operationId: string, originalId: string): string {
  return "batch:" + createHash("sha256").update(`bulk\u0000${operationId}\u0000${originalId}`).digest("hex");
}

/**
 * For a retry request that came without a request_id (it is optional in the protos): unique, so
 * the call works, but a re-sent call makes another retry — which is why clients should send one.
 */
export function serverRequestId(): string {
  return `server:${randomUUID()}`;
}
