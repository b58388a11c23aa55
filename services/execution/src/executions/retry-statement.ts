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
import { auditEntry } from "../audit/record";
import type { AuditFacts } from "../audit/record";
import type { Caller } from "../auth";
import { rowCodec } from "../db/row-codec";
import { placeholders } from "../db/sql-session";
import type { SqlSession } from "../db/sql-session";
import { AuditEntry, Execution, TERMINAL_STATES } from "../db/entities";

/** The column the statement adds to the original's row: whether the retry went in. */
const INSERTED = "rgrid_retry_inserted";

export interface PlainRetryInsert {
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

/**
 * Locks and reads the original (a shared lock, as retry.ts explains), and — if it is there, and
 * finished unless forced — inserts the retry and its audit entry, in one statement. A request_id
 * already used fails the whole statement with its unique violation, as the insert alone would.
 */
export async function insertPlainRetry(sql: SqlSession, caller: Pick<Caller, "accountId" | "actorId">, insert: PlainRetryInsert): Promise<PlainRetryOutcome> {
  const executions = rowCodec<Execution>(sql, Execution.name);
  const entries = rowCodec<AuditEntry>(sql, AuditEntry.name);
  const finished = insert.force ? "" : ` where "status" in (${placeholders(TERMINAL_STATES)})`;
  const statement =
    `with "original" as (select ${executions.columns} from ${executions.table} where "id" = ? for share), ` +
    `"retry" as (insert into ${executions.table} (${executions.columns}) select ${executions.placeholders} from "original"${finished} returning "id"), ` +
    `"audit" as (insert into ${entries.table} (${entries.columns}) select ${entries.placeholders} from "retry") ` +
    `select ${executions.columns}, exists (select 1 from "retry") as "${INSERTED}" from "original"`;
  const entry = auditEntry(caller, insert.retry.createdAt, insert.audit);
  const [row] = await sql.query(statement, [
    insert.original.id,
    ...executions.insertValues(insert.retry),
    ...(insert.force ? [] : TERMINAL_STATES),
    ...entries.insertValues(entry),
  ]);
  return row === undefined ? { current: undefined, inserted: false } : { current: executions.fromRow(row), inserted: row[INSERTED] === true };
}
