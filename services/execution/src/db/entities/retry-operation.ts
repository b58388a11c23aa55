import { EntitySchema } from "@mikro-orm/core";

/** The conditions of a bulk retry, as stored: RetryFilter with names a reader of the row can follow. */
export interface StoredRetryFilter {
  statuses: string[];
  exitCodes: number[];
  causes: string[];
  errorContains: string;
  scriptName: string;
  batchId: string;
  finishedAfter: string | null;
  finishedBefore: string | null;
  unresolved: boolean;
}

/**
 * A bulk retry (RetryWhere): the lineages it takes are fixed when it is made (its items), and it
 * retries them at the service's pace. Whoever holds its lease works through its items; a
 * replica that finds the lease expired (its holder stopped or died) carries on where it ended.
 */
export class RetryOperation {
  /** "op_" + 32 hex. */
  id!: string;
  accountId!: string;
  /** The API key's or session's id that asked. */
  actor!: string;
  /** The client's idempotency key, unique per account among operations. */
  requestId!: string;
  filter!: StoredRetryFilter;
  reason!: string;
  state!: "running" | "done";
  /** Its items; how many were retried or skipped is counted from them. */
  total!: number;
  createdAt!: Date;
  finishedAt!: Date | null;
  /** Until when its current worker holds it; null once done. */
  leaseUntil!: Date | null;
}

/** One lineage of an operation, by its latest attempt when the operation was made. */
export class RetryOperationItem {
  operationId!: string;
  /** 0, 1, … in the order the operation takes them (earliest finished first). */
  position!: number;
  originalId!: string;
  retryId!: string | null;
  skipped!: string;
  done!: boolean;
}

export const RetryOperationSchema = new EntitySchema<RetryOperation>({
  class: RetryOperation,
  tableName: "retry_operations",
  properties: {
    id: { type: "string", primary: true },
    accountId: { type: "string" },
    actor: { type: "string" },
    requestId: { type: "string" },
    filter: { type: "json" },
    reason: { type: "text" },
    state: { type: "string" },
    total: { type: "integer" },
    createdAt: { type: "datetime" },
    finishedAt: { type: "datetime", nullable: true },
    leaseUntil: { type: "datetime", nullable: true },
  },
});

export const RetryOperationItemSchema = new EntitySchema<RetryOperationItem>({
  class: RetryOperationItem,
  tableName: "retry_operation_items",
  properties: {
    operationId: { type: "string", primary: true },
    position: { type: "integer", primary: true },
    originalId: { type: "string" },
    retryId: { type: "string", nullable: true },
    skipped: { type: "text" },
    done: { type: "boolean" },
  },
});
