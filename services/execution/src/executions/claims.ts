import type { Database } from "../db/orm";
import { rowCodec } from "../db/row-codec";
import { inSqlTransaction, placeholders, withSqlSession } from "../db/sql-session";
import type { SqlSession } from "../db/sql-session";
import { Execution } from "../db/entities";

/**
 * Claims the oldest claimable execution of one of `runtimeNames` for `runnerId`, or returns
 * undefined when there is none. Claimable: queued, past its `not_before` (the backoff of an
 * automatic retry), and in no batch whose parallelism is used up. Two claimers never get the
 * same execution:
 * - PostgreSQL locks the candidate row with FOR UPDATE SKIP LOCKED, so concurrent claimers pass
 *   over each other's candidates instead of queueing behind them;
 * - SQLite has one writer at a time (one connection here) and no row locks (the lock mode
 *   throws there), so it relies on the transaction alone.
 * On both, the status change is conditional on the row still being queued, which keeps the
 * claim correct even against another process sharing the database file.
 * The runner's sandbox warnings are recorded with the execution it claims.
 */
export async function claimNextExecution(
  db: Database,
  runnerId: string,
  runtimeNames: readonly string[],
  now: Date,
  sandboxWarnings: readonly string[] = [],
): Promise<Execution | undefined> {
  if (runtimeNames.length === 0) {
    return undefined;
  }
  for (let attempt = 0; attempt < MAX_CLAIM_ATTEMPTS; attempt++) {
    const outcome = await tryClaim(db, { runnerId, runtimeNames, now, sandboxWarnings });
    if (outcome === "none") {
      return undefined;
    }
    if (outcome !== "lost") {
      return outcome;
    }
  }
  // Lost every race; the caller looks again on its next round.
  return undefined;
}

/**
 * When the earliest queued execution of `runtimeNames` still in its backoff becomes claimable,
 * so a waiting claim can wake exactly then; undefined when none is waiting out a backoff.
 */
export async function nextNotBefore(db: Database, runtimeNames: readonly string[], now: Date): Promise<Date | undefined> {
  if (runtimeNames.length === 0) {
    return undefined;
  }
  const [waiting] = await withSqlSession(db, async (sql) => {
    const executions = rowCodec<Execution>(sql, Execution.name);
    return (
      await sql.query(
        `select ${executions.columnsOf(["notBefore"])} from executions ` +
          `where status = 'queued' and runtime_name in (${placeholders(runtimeNames)}) and not_before > ? order by not_before limit 1`,
        [...runtimeNames, now],
      )
    ).map(executions.fromRow);
  });
  return waiting?.notBefore ?? undefined;
}

// Another claimer can win a candidate (another process sharing the database, or a batch filled
// by a concurrent claim); a few tries are plenty, and the caller looks again on its next round.
const MAX_CLAIM_ATTEMPTS = 3;

interface ClaimRequest {
  runnerId: string;
  runtimeNames: readonly string[];
  now: Date;
  sandboxWarnings: readonly string[];
}

// A batch with a parallelism has room while fewer of its executions run than it allows. The
// alias `e` is the candidate's, set in tryClaim.
const BATCH_HAS_ROOM = `(e.batch_parallelism = 0 or e.batch_id is null or (
  select count(*) from executions running
  where running.account_id = e.account_id and running.batch_id = e.batch_id and running.status = 'running'
) < e.batch_parallelism)`;

/** The execution claimed, as its row is after the claim; or why none was. */
async function tryClaim(db: Database, request: ClaimRequest): Promise<Execution | "none" | "lost"> {
  return inSqlTransaction(db, async (sql) => {
    const executions = rowCodec<Execution>(sql, Execution.name);
    // PostgreSQL passes over the candidates other claimers hold (FOR UPDATE SKIP LOCKED).
    const lock = db.dialect === "postgresql" ? " for update skip locked" : "";
    const [candidate] = (
      await sql.query(
        `select ${executions.columnsOf(["id", "accountId", "batchId", "batchParallelism"])} from executions e ` +
          `where e.status = 'queued' and e.runtime_name in (${placeholders(request.runtimeNames)}) ` +
          `and (e.not_before is null or e.not_before <= ?) and ${BATCH_HAS_ROOM} order by e.created_at, e.id limit 1${lock}`,
        [...request.runtimeNames, request.now],
      )
    ).map(executions.fromRow);
    if (candidate === undefined) {
      return "none";
    }
    if (candidate.batchId !== null && candidate.batchParallelism > 0 && !(await batchHasRoom(sql, db, candidate))) {
      return "lost";
    }
    const changes = executions.assignments({
      status: "running",
      runnerId: request.runnerId,
      startedAt: request.now,
      sandboxWarnings: [...request.sandboxWarnings],
    });
    // The claimed row comes back with the update: the runner's assignment needs all of it.
    const [claimed] = (
      await sql.query(`update executions set ${changes.sql} where id = ? and status = 'queued' returning ${executions.columns}`, [...changes.values, candidate.id])
    ).map(executions.fromRow);
    return claimed ?? "lost";
  });
}

/**
 * The exact check of a batch's parallelism, inside the claim's transaction. The candidate query
 * counted without a lock; on PostgreSQL two claimers could each see room for one more, so the
 * claims of one batch take turns on an advisory lock held until commit and count again.
 * SQLite's single writer already excludes a concurrent claim.
 */
async function batchHasRoom(sql: SqlSession, db: Database, candidate: Pick<Execution, "accountId" | "batchId" | "batchParallelism">): Promise<boolean> {
  if (db.dialect === "postgresql") {
    await sql.query("select pg_advisory_xact_lock(hashtext(?))", [`rgrid-batch:${candidate.accountId}:${candidate.batchId}`]);
  }
  const [counted] = await sql.query("select count(*) as running from executions where account_id = ? and batch_id = ? and status = 'running'", [
    candidate.accountId,
    candidate.batchId,
  ]);
  return Number(counted?.["running"] ?? 0) < candidate.batchParallelism;
}

/**
 * How long a claimed execution waited for its claim, for rgrid_claim_latency_seconds: from its
 * creation, or from the end of a retry's backoff. The moment an original's uploads were confirmed
 * (and it was queued) is not recorded, so its wait includes its upload.
 */
export function claimWaitSeconds(claimed: Pick<Execution, "createdAt" | "notBefore" | "startedAt">): number {
  const claimedAt = claimed.startedAt ?? claimed.createdAt;
  const claimable = Math.max(claimed.createdAt.getTime(), claimed.notBefore?.getTime() ?? 0);
  return Math.max(0, claimedAt.getTime() - claimable) / 1000;
}

/**
 * Puts an execution back in the queue when its claim could not be handed to the runner; one
 * whose owner asked to cancel it meanwhile ends cancelled instead, as no runner has it.
 */
export async function releaseClaim(db: Database, executionId: string, runnerId: string, now: Date): Promise<void> {
  const em = db.fork();
  const held = { id: executionId, status: "running" as const, runnerId };
  const cancelled = await em.nativeUpdate(
    Execution,
    { ...held, cancelRequestedAt: { $ne: null } },
    { status: "cancelled", finishedAt: now },
  );
  if (cancelled === 0) {
    await em.nativeUpdate(Execution, held, { status: "queued", runnerId: null, startedAt: null });
  }
}
