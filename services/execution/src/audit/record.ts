import { randomUUID } from "node:crypto";
import type { HandlerContext } from "@connectrpc/connect";
import { randomHex, requestIdKey } from "@rgrid/common";
import type { Caller } from "../auth";
import { rowCodec } from "../db/row-codec";
import type { SqlSession } from "../db/sql-session";
import { AuditEntry } from "../db/entities";
import type { AuditActionName, Execution } from "../db/entities";

/** What one action leaves in the audit, besides who and when. */
export interface AuditFacts {
  action: AuditActionName;
  /** The execution acted on; absent for sign-ins. */
  execution?: Pick<Execution, "id" | "rootId" | "batchId">;
  requestId: string;
  reason: string;
  outcome: string;
}

export const AUDIT_ENTRY_ID_PATTERN = /^audit_[0-9a-f]{32}$/;

/**
 * Inserts the entry through `sql`, which must be the transaction making the change it records: the
 * entry is written by the same commit, so an action is never recorded without happening, nor the
 * other way round. Refusals leave no entry (there is no change to commit it with); the RPC log
 * has them under their request id. Inserted at once rather than left to the flush: entries are
 * never changed, so the unit of work has nothing to track.
 */
export async function recordAudit(
  sql: SqlSession,
  caller: Pick<Caller, "accountId" | "actorId">,
  now: Date,
  facts: AuditFacts,
): Promise<void> {
  const entries = rowCodec<AuditEntry>(sql, AuditEntry.name);
  await sql.query(entries.insertSql, entries.insertValues(auditEntry(caller, now, facts)));
}

/** The entry `recordAudit` inserts, for a statement that inserts it along with its change (retry-statement.ts). */
export function auditEntry(caller: Pick<Caller, "accountId" | "actorId">, now: Date, facts: AuditFacts): AuditEntry {
  return {
    id: `audit_${randomHex(16)}`,
    accountId: caller.accountId,
    actor: caller.actorId,
    action: facts.action,
    executionId: facts.execution?.id ?? null,
    rootId: facts.execution?.rootId ?? null,
    batchId: facts.execution?.batchId ?? null,
    requestId: facts.requestId,
    reason: facts.reason,
    outcome: facts.outcome,
    createdAt: now,
  };
}

/**
 * The id this RPC is logged under (x-request-id), so an entry leads to its log lines. Served
 * in memory (tests) there is no RPC log, and a fresh id stands in.
 */
export function rpcRequestId(ctx: HandlerContext): string {
  return ctx.values.get(requestIdKey) ?? randomUUID();
}
