// A plain retry's re-check and inserts on PostgreSQL, as one statement. The transaction it
// replaces — begin, the original locked and read, the retry inserted, its audit entry inserted,
// commit — was five round trips to the server, each a write and a wait on execution-service's
// one thread and a statement for PostgreSQL to run; one statement commits the same rows, as
// atomically, in one.
//
// Only a plain retry (manual or forced, one of many an original may have) goes this way. A retry
// that must be its original's only one (automatic, RetryBatch) looks for the original's other
// retries after taking the original's exclusive lock, and a statement's snapshot is taken before
// it waits for that lock: it could not see a retry committed while it waited. Those keep their
// transaction (retry.ts), whose next statement reads with a fresh snapshot.
//
// Plain retries arriving together share one such statement (batchedWhileBusy): the originals
// are locked and read once, and each retry's insert and audit entry are a pair of its own in the
// statement, conditioned on its own original exactly as alone. The statement commits or fails
// whole; should it fail (one request_id taken, say), each retry runs its own statement instead
// and meets its own outcome. (One whose answer was lost with its connection after it committed
// meets its own request_id taken, which retry.ts answers with the retry it made.)
import { batchedWhileBusy } from "@rgrid/common";
import { auditEntry } from "../audit/record";
import type { AuditFacts } from "../audit/record";
import type { Caller } from "../auth";
import type { Database } from "../db/orm";
import { rowCodec } from "../db/row-codec";
import { placeholders, withSqlSession } from "../db/sql-session";
import type { SqlSession } from "../db/sql-session";
import { AuditEntry, Execution, TERMINAL_STATES } from "../db/entities";

/** The column the statement adds to each original's row: for each retry, in order, whether it went in. */
const INSERTED = "rgrid_retries_inserted";

/** Plain retries in one statement at most: some 70 bound values each. */
export const MAX_RETRIES_PER_STATEMENT = 16;

export interface PlainRetryInsert {
  caller: Pick<Caller, "accountId" | "actorId">;
  original: Pick<Execution, "id">;
  retry: Execution;
  /** Insert whatever the original's state (`rgrid retry --force`); else only if it is finished. */
  force: boolean;
  audit: AuditFacts;
}

export interface PlainRetryOutcome {
  /** The original as the statement read it, under its shared lock; undefined when it is gone. */
  current: Execution | undefined;
  /** Whether the retry and its audit entry were inserted: not when the original is gone, or unfinished and not forced. */
  inserted: boolean;
}

export type InsertPlainRetry = (insert: PlainRetryInsert) => Promise<PlainRetryOutcome>;

/** Plain retries on `db` (PostgreSQL), those arriving together in one statement, as above. */
export function coalescedPlainRetries(db: Database): InsertPlainRetry {
  return batchedWhileBusy<PlainRetryInsert, PlainRetryOutcome>(MAX_RETRIES_PER_STATEMENT, async (inserts) => {
    try {
      return (await withSqlSession(db, (sql) => insertPlainRetries(sql, inserts))).map((outcome) => ({ value: outcome }));
    } catch (error) {
      if (inserts.length === 1) {
        throw error;
      }
      return Promise.all(
        inserts.map((insert) =>
          withSqlSession(db, (sql) => insertPlainRetries(sql, [insert])).then(
            ([outcome]) => ({ value: outcome as PlainRetryOutcome }),
            (own: unknown) => ({ error: own }),
          ),
        ),
      );
    }
  });
}

/**
 * Locks and reads the originals (a shared lock, as retry.ts explains), and inserts each retry
 * and its audit entry if its original is there, and finished unless forced: one statement,
 * committed or failed whole. A request_id already used fails it with its unique violation, as
 * the insert alone would. Its shape depends on the number of retries alone, so PostgreSQL keeps
 * one prepared per count.
 */
export async function insertPlainRetries(sql: SqlSession, inserts: readonly PlainRetryInsert[]): Promise<PlainRetryOutcome[]> {
  const executions = rowCodec<Execution>(sql, Execution.name);
  const entries = rowCodec<AuditEntry>(sql, AuditEntry.name);
  const parts = [`"original" as (select ${executions.columns} from ${executions.table} where "id" in (${placeholders(inserts)}) for share)`];
  const values: unknown[] = inserts.map((insert) => insert.original.id);
  inserts.forEach((insert, index) => {
    parts.push(
      `"retry_${index}" as (insert into ${executions.table} (${executions.columns}) select ${executions.placeholders} from "original" ` +
        `where "id" = ? and (? or "status" in (${placeholders(TERMINAL_STATES)})) returning "id")`,
      `"audit_${index}" as (insert into ${entries.table} (${entries.columns}) select ${entries.placeholders} from "retry_${index}")`,
    );
    const entry = auditEntry(insert.caller, insert.retry.createdAt, insert.audit);
    values.push(...executions.insertValues(insert.retry), insert.original.id, insert.force, ...TERMINAL_STATES, ...entries.insertValues(entry));
  });
  const inserted = inserts.map((_, index) => `exists (select 1 from "retry_${index}")`).join(", ");
  const rows = await sql.query(`with ${parts.join(", ")} select ${executions.columns}, array[${inserted}] as "${INSERTED}" from "original"`, values);
  const flags = (rows[0]?.[INSERTED] ?? []) as boolean[];
  return inserts.map((insert, index) => {
    const row = rows.find((candidate) => candidate["id"] === insert.original.id);
    return { current: row === undefined ? undefined : executions.fromRow(row), inserted: flags[index] === true };
  });
}
