import { raw } from "@mikro-orm/core";
import type { EntityManager } from "@mikro-orm/knex";
import { ErrorInfo_Reason } from "@rgrid/proto";
import type { Database } from "../db/orm";
import { rowCodec } from "../db/row-codec";
import { inSqlTransaction, placeholders, withSqlSession } from "../db/sql-session";
import { Execution } from "../db/entities";
import type { ExecutionState } from "../db/entities";
import { NotFoundError } from "../errors";

/**
 * An execution of the caller's account. Another account's execution gets exactly the error a
 * missing one gets, so ids reveal nothing about other accounts.
 */
export async function findOwnedExecution(em: EntityManager, accountId: string, executionId: string): Promise<Execution> {
  const execution = await em.findOne(Execution, { id: executionId, accountId });
  if (execution === null) {
    throw executionNotFound(executionId);
  }
  return execution;
}

/** findOwnedExecution's row, read on a held connection (db/sql-session.ts), for calls that only read it. */
export async function ownedExecutionRow(db: Database, accountId: string, executionId: string): Promise<Execution> {
  const execution = await executionRow(db, executionId);
  if (execution === undefined || execution.accountId !== accountId) {
    throw executionNotFound(executionId);
  }
  return execution;
}

/** The refusal of a call naming an execution that is not there (or is another account's). */
export function executionNotFound(executionId: string): NotFoundError {
  return new NotFoundError(`execution ${executionId} not found`, { reason: ErrorInfo_Reason.NOT_FOUND, executionId });
}

/**
 * An execution's whole row, read on a held connection (db/sql-session.ts) rather than into an
 * EntityManager: for the runners' calls, which only read it, several times per execution.
 */
export async function executionRow(db: Database, executionId: string): Promise<Execution | undefined> {
  return executionWhere(db, "id = ?", [executionId]);
}

/** The execution of the account that a request with this request_id made, if one did. */
export async function executionByRequestId(db: Database, accountId: string, requestId: string): Promise<Execution | undefined> {
  return executionWhere(db, "account_id = ? and request_id = ?", [accountId, requestId]);
}

/** The whole row of the one execution `condition` (on unique columns) picks, on a held connection. */
async function executionWhere(db: Database, condition: string, values: readonly unknown[]): Promise<Execution | undefined> {
  return (await executionsWhere(db, condition, values))[0];
}

/** The executions of the account that requests with these request_ids made, by request_id. */
export async function executionsByRequestIds(db: Database, accountId: string, requestIds: readonly string[]): Promise<Map<string, Execution>> {
  const found = requestIds.length === 0 ? [] : await executionsWhere(db, `account_id = ? and request_id in (${placeholders(requestIds)})`, [accountId, ...requestIds]);
  return new Map(found.map((execution) => [execution.requestId as string, execution]));
}

/** The account's executions among `ids`, by id: another account's are left out, as missing ones are. */
export async function ownedExecutionRows(db: Database, accountId: string, ids: readonly string[]): Promise<Map<string, Execution>> {
  const found = await executionsWhere(db, `account_id = ? and id in (${placeholders(ids)})`, [accountId, ...ids]);
  return new Map(found.map((execution) => [execution.id, execution]));
}

async function executionsWhere(db: Database, condition: string, values: readonly unknown[]): Promise<Execution[]> {
  return withSqlSession(db, async (sql) => {
    const executions = rowCodec<Execution>(sql, Execution.name);
    const rows = await sql.query(`select ${executions.columns} from executions where ${condition}`, values);
    return rows.map((row) => executions.fromRow(row));
  });
}

/** Inserts new executions' whole rows in one transaction: all or none. A request_id taken fails it as a unique violation. */
export async function insertExecutions(db: Database, rows: readonly Execution[]): Promise<void> {
  if (rows.length === 0) {
    return;
  }
  await inSqlTransaction(db, async (sql) => {
    const executions = rowCodec<Execution>(sql, Execution.name);
    for (const row of rows) {
      await sql.query(executions.insertSql, executions.insertValues(row));
    }
  });
}

/** Queues those of `ids` still uploading, in one statement; the ids it queued. */
export async function queueUploading(db: Database, ids: readonly string[]): Promise<Set<string>> {
  if (ids.length === 0) {
    return new Set();
  }
  return withSqlSession(db, async (sql) => {
    const set = rowCodec<Execution>(sql, Execution.name).assignments({ status: "queued" });
    const queued = await sql.query(`update executions set ${set.sql} where status = ? and id in (${placeholders(ids)}) returning id`, [
      ...set.values,
      "uploading",
      ...ids,
    ]);
    return new Set(queued.map((row) => row.id as string));
  });
}

/** Inserts a new execution's whole row. A second row for a request_id fails as a unique violation (isUniqueViolation). */
export async function insertExecution(db: Database, execution: Execution): Promise<void> {
  await withSqlSession(db, async (sql) => {
    const executions = rowCodec<Execution>(sql, Execution.name);
    await sql.query(executions.insertSql, executions.insertValues(execution));
  });
}

/**
 * Sets `changes` on the execution if it is still as `expected` (its status and, when given, the
 * runner holding it), on a held connection; whether it was.
 */
export async function updateExecutionIf(
  db: Database,
  executionId: string,
  expected: { status: ExecutionState; runnerId?: string },
  changes: Partial<Execution>,
): Promise<boolean> {
  return withSqlSession(db, async (sql) => {
    const set = rowCodec<Execution>(sql, Execution.name).assignments(changes);
    const held = expected.runnerId === undefined ? [] : [expected.runnerId];
    const changed = await sql.query(
      `update executions set ${set.sql} where id = ? and status = ?${held.length === 0 ? "" : " and runner_id = ?"} returning id`,
      [...set.values, executionId, expected.status, ...held],
    );
    return changed.length === 1;
  });
}

/** For each id, the executions created as retries of it, oldest first. */
export async function retriedAsByOriginal(em: EntityManager, originalIds: readonly string[]): Promise<Map<string, string[]>> {
  const byOriginal = new Map<string, string[]>();
  if (originalIds.length === 0) {
    return byOriginal;
  }
  const retries = await em.find(
    Execution,
    { retryOf: { $in: [...originalIds] } },
    { fields: ["id", "retryOf", "createdAt"], orderBy: [{ createdAt: "asc" }, { id: "asc" }] },
  );
  for (const retry of retries) {
    const originalId = retry.retryOf as string;
    byOriginal.set(originalId, [...(byOriginal.get(originalId) ?? []), retry.id]);
  }
  return byOriginal;
}

export async function retriedAs(em: EntityManager, originalId: string): Promise<string[]> {
  return (await retriedAsByOriginal(em, [originalId])).get(originalId) ?? [];
}

export interface ExecutionCount {
  status: ExecutionState;
  runtimeName: string;
  count: number;
}

/**
 * How many executions there are of each status and runtime, across accounts: one grouped count,
 * which the claim index (status, runtime_name, created_at) answers without reading the rows.
 */
export async function countExecutions(em: EntityManager): Promise<ExecutionCount[]> {
  const rows: Array<{ status: ExecutionState; runtimeName: string; count: number | string }> = await em
    .createQueryBuilder(Execution)
    .select(["status", "runtimeName", raw("count(*) as count")])
    .groupBy(["status", "runtimeName"])
    .execute();
  // PostgreSQL's count is a bigint, which arrives as a string.
  return rows.map((row) => ({ status: row.status, runtimeName: row.runtimeName, count: Number(row.count) }));
}
