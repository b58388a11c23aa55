import { newExecutionId, sharedWhileRunning } from "@rgrid/common";
import type { Logger } from "@rgrid/common";
import { ErrorInfo_Reason, ObjectKind } from "@rgrid/proto";
import type { ObjectInfo, RetryOverrides } from "@rgrid/proto";
import { recordAudit } from "../audit/record";
import type { AuditFacts } from "../audit/record";
import type { Caller } from "../auth";
import { rowCodec } from "../db/row-codec";
import { inSqlTransaction } from "../db/sql-session";
import type { Database } from "../db/orm";
import { Execution, isTerminal } from "../db/entities";
import type { AuditActionName, StoredFile } from "../db/entities";
import {
  NotFoundError,
  PreconditionError,
  StorageRejectedError,
  StorageUnavailableError,
  isUniqueViolation,
} from "../errors";
import type { ExecutionMetrics, RetryMetricKind } from "../metrics";
import type { StorageGateway } from "../storage";
import { statusToWire } from "./convert";
import { executionNotFound } from "./queries";
import { retryRecordOf } from "./new-executions";
import type { AutomaticRetry, NewRetry } from "./new-executions";
import { applyOverrides } from "./overrides";
import type { AppliedOverrides } from "./overrides";
import { coalescedRetryLookups } from "./retry-lookups";
import type { LookupRetryRows } from "./retry-lookups";
import { coalescedPlainRetries } from "./retry-statement";
import type { InsertPlainRetry } from "./retry-statement";
import type { WorkNotifier } from "./work-notifier";

export interface RetryDeps {
  db: Database;
  storage: StorageGateway;
  notifier: WorkNotifier;
  clock: () => Date;
  logger: Logger;
  metrics: Pick<ExecutionMetrics, "retryCreated">;
}

export interface RetryRequest {
  executionId: string;
  force: boolean;
  requestId: string;
  /** The caller's reason (`--reason`), recorded in the audit with the retry. */
  reason?: string;
  /**
   * The request id the audit shows when it is not requestId: a batch's own, for the retries of
   * its items (each of which has a request id derived from it).
   */
  auditRequestId?: string;
  /** Set when the system retries on its own after a transient failure (contracts: automatic retry). */
  automatic?: AutomaticRetry;
  /**
   * Refuse with AlreadyRetriedError when the execution has a retry made by another request
   * (RetryBatch; always so for automatic retries), re-checked atomically with the insert.
   */
  onlyIfNotYetRetried?: boolean;
  /** Made by RetryBatch for one of its items: counted as a batch retry (rgrid_retries_total). */
  batch?: boolean;
  /** A delayed retry (`rgrid retry --in`): made now, but not claimed before this time. */
  notBefore?: Date;
  /** What the retry asks for differently (`rgrid retry --env …`); recorded with it. */
  overrides?: RetryOverrides;
}

export interface RetryResult {
  execution: Execution;
  /** The original as it is after the retry was recorded. */
  original: Execution;
  /** True when the request_id had been seen and the earlier retry is returned. */
  replayed: boolean;
}

export type RetryExecution = (caller: Caller, request: RetryRequest) => Promise<RetryResult>;

/** The execution already has a retry, and the request asked for one only if it had none. */
export class AlreadyRetriedError extends PreconditionError {
  override name = "AlreadyRetriedError";

  constructor(readonly retryId: string) {
    super(`already retried as ${retryId}`);
  }
}

/**
 * The retry rules (docs/architecture.md, "The retry rules"). The order matters: storage copies
 * the objects first, with no transaction open; only then does one short transaction re-check the
 * original and insert the retry. Whatever fails after the copy removes the copies, so nothing
 * half-made remains.
 */
export function createRetryExecution(deps: RetryDeps): RetryExecution {
  // Identical requests arriving together (a client re-sending after a transport error) share
  // one attempt, so storage copies once; the unique index covers other replicas. The execution
  // is part of the key: a request_id reused for another execution must not be handed this
  // one's retry, but lose the insert race and be refused like any other reuse.
  const shared = sharedWhileRunning<RetryResult>();
  // Retries arriving together share their statements (retry-lookups.ts, retry-statement.ts).
  const statements: RetryStatements = { lookupRows: coalescedRetryLookups(deps.db), insertPlainRetry: coalescedPlainRetries(deps.db) };
  return (caller, request) =>
    shared([caller.accountId, request.requestId, request.executionId].join("\u0000"), () => retryOnce(deps, statements, caller, request));
}

/** The statements of a retry that retries made at the same time share. */
interface RetryStatements {
  lookupRows: LookupRetryRows;
  /** PostgreSQL only. */
  insertPlainRetry: InsertPlainRetry;
}

async function retryOnce(deps: RetryDeps, statements: RetryStatements, caller: Caller, request: RetryRequest): Promise<RetryResult> {
  const onlyIfNotYetRetried = request.onlyIfNotYetRetried === true || request.automatic !== undefined;
  // One read for the original, an earlier retry made under this request_id and, when it
  // matters, any other retry of the original.
  const rows = await statements.lookupRows({
    accountId: caller.accountId,
    executionId: request.executionId,
    requestId: request.requestId,
    otherRetries: onlyIfNotYetRetried,
  });
  const original = rows.find((row) => row.id === request.executionId);
  if (original === undefined) {
    throw executionNotFound(request.executionId);
  }
  const earlier = rows.find((row) => row.requestId === request.requestId);
  if (earlier !== undefined) {
    return { execution: requireRetryOf(earlier, original, request.requestId), original, replayed: true };
  }
  const other = rows.find((row) => row.retryOf === original.id);
  if (onlyIfNotYetRetried && other !== undefined) {
    throw new AlreadyRetriedError(other.id);
  }

  if (!request.force) {
    requireTerminal(original);
  }
  const overrides = applyOverrides(original, request.overrides);

  const newId = newExecutionId();
  const copied = await copyObjects(deps, original, newId, overrides);
  let made: { retry: Execution; original: Execution };
  try {
    requireSameSizes(original, copied, overrides);
    made = await insertRetry(deps, statements.insertPlainRetry, caller, request, { original, newId, overrides, onlyIfNotYetRetried });
  } catch (error) {
    const settled = await afterFailedInsert(deps, caller, request, { original, newId }, error);
    if (settled.replayed) {
      return settled;
    }
    made = { retry: settled.execution, original };
  }
  // Counted here, where a retry is recorded, and nowhere else: never a replay, never twice.
  deps.metrics.retryCreated(retryMetricKindOf(request));
  deps.notifier.notify();
  return { execution: made.retry, original: made.original, replayed: false };
}

/**
 * After the insert of retry `newId` failed, or seemed to. When it went in after all (the
 * statement committed and its answer was lost with the connection), that retry, as made by this
 * request. When a concurrent request with the same request_id (another replica) won, its
 * retry, as an idempotent re-send's answer. Otherwise the error, and the copies removed; but
 * when whether the retry went in cannot be told (the database unreachable), the copies stay for
 * the janitor, which removes objects of executions that do not exist.
 */
async function afterFailedInsert(
  deps: RetryDeps,
  caller: Caller,
  request: RetryRequest,
  { original, newId }: { original: Execution; newId: string },
  error: unknown,
): Promise<RetryResult> {
  if (isUniqueViolation(error) || error instanceof AlreadyRetriedError) {
    const winner = await deps.db.fork().findOne(Execution, { accountId: caller.accountId, requestId: request.requestId });
    if (winner?.id === newId) {
      return { execution: winner, original, replayed: false };
    }
    await removeCopies(deps, newId);
    if (winner !== null) {
      return { execution: requireRetryOf(winner, original, request.requestId), original, replayed: true };
    }
    throw error;
  }
  if (!(error instanceof PreconditionError || error instanceof NotFoundError)) {
    const inserted = await deps.db
      .fork()
      .findOne(Execution, { id: newId, accountId: caller.accountId })
      .catch(() => "unknown" as const);
    if (inserted === "unknown") {
      throw error;
    }
    if (inserted !== null) {
      return { execution: inserted, original, replayed: false };
    }
  }
  await removeCopies(deps, newId);
  throw error;
}

/**
 * Why a retry of one execution of many (RetryBatch, RetryWhere) was not made, when the reason is
 * that execution's own (already retried, an input gone, no longer finished): reported, and the
 * others go on. Undefined for anything else (storage unreachable), which stops the caller.
 */
export function skipReasonOf(error: unknown): string | undefined {
  return error instanceof PreconditionError || error instanceof NotFoundError ? error.message : undefined;
}

/** A request_id names one request: reusing it for a different one is refused, not answered. */
function requireRetryOf(earlier: Execution, original: Execution, requestId: string): Execution {
  if (earlier.retryOf !== original.id) {
    throw new PreconditionError(`request_id ${JSON.stringify(requestId)} was already used for another request; use a new one`, {
      reason: ErrorInfo_Reason.REQUEST_ID_REUSED,
      executionId: original.id,
    });
  }
  return earlier;
}

export function requireTerminal(original: Pick<Execution, "id" | "status">): void {
  if (!isTerminal(original.status)) {
    throw new PreconditionError(
      `execution ${original.id} is ${original.status}; only completed, failed, timed_out or cancelled ` +
        `executions can be retried without force`,
      { reason: ErrorInfo_Reason.NOT_TERMINAL, executionId: original.id, status: statusToWire(original.status) },
    );
  }
}

async function copyObjects(deps: RetryDeps, original: Execution, newId: string, overrides: AppliedOverrides): Promise<ObjectInfo[]> {
  try {
    return await deps.storage.copyInputs(
      original.id,
      newId,
      original.inputs.map((input) => input.name),
      // A new script version is uploaded by the caller instead.
      overrides.newScript ? "" : original.scriptName,
    );
  } catch (error) {
    // Storage undoes a copy it reports as failed, but a lost answer (connection dropped after
    // the copy) can leave objects behind that only this call knows about.
    await removeCopies(deps, newId);
    throw asRetryCopyError(original.id, error);
  }
}

/** A failed copy of `originalId`'s objects as a retry reports it: nothing was created. */
function asRetryCopyError(originalId: string, error: unknown): unknown {
  if (error instanceof StorageRejectedError) {
    return copyRefusedError(originalId, error.message, error);
  }
  return error instanceof StorageUnavailableError
    ? new StorageUnavailableError("storage is unavailable; nothing was created, try again", { cause: error })
    : error;
}

/** Storage refused to copy `originalId`'s objects, for the reason it gave. */
export function copyRefusedError(originalId: string, why: string, cause?: unknown): PreconditionError {
  return new PreconditionError(
    `cannot retry ${originalId}: ${why}; nothing was created`,
    { reason: ErrorInfo_Reason.INPUT_MISSING, executionId: originalId },
    { cause },
  );
}

/** A retry never runs with inputs (or, unless replaced, a script) that differ from the original's. */
export function requireSameSizes(original: Execution, copied: readonly ObjectInfo[], overrides: AppliedOverrides): void {
  const script = { name: original.scriptName, sizeBytes: original.scriptSizeBytes, sha256: original.scriptSha256 };
  const expected: Array<{ kind: ObjectKind; file: StoredFile }> = [
    ...(overrides.newScript ? [] : [{ kind: ObjectKind.SCRIPT, file: script }]),
    ...original.inputs.map((file) => ({ kind: ObjectKind.INPUT, file })),
  ];
  for (const { kind, file } of expected) {
    const found = copied.find((info) => info.ref?.kind === kind && info.ref.name === file.name);
    if (found === undefined || !found.exists) {
      throw new PreconditionError(`cannot retry ${original.id}: ${file.name} was not copied; nothing was created`, {
        reason: ErrorInfo_Reason.INPUT_MISSING,
        executionId: original.id,
        file: file.name,
      });
    }
    if (Number(found.sizeBytes) !== file.sizeBytes) {
      throw new PreconditionError(
        `cannot retry ${original.id}: ${file.name} has ${found.sizeBytes} bytes in storage but ` +
          `${file.sizeBytes} were recorded; nothing was created`,
        { reason: ErrorInfo_Reason.INPUT_MISSING, executionId: original.id, file: file.name },
      );
    }
  }
}

/** What retryOnce has settled before the insert: the original it read, the retry's id and changes, and whether it must be the only retry. */
interface RetryPlan {
  original: Execution;
  newId: string;
  overrides: AppliedOverrides;
  onlyIfNotYetRetried: boolean;
}

async function insertRetry(
  deps: RetryDeps,
  insertPlainRetry: InsertPlainRetry,
  caller: Caller,
  request: RetryRequest,
  { original, newId, overrides, onlyIfNotYetRetried }: RetryPlan,
): Promise<{ retry: Execution; original: Execution }> {
  const retry = retryRecordOf(original, {
    id: newId,
    createdAt: deps.clock(),
    kind: retryKindOf(request, original),
    // Nobody asked for an automatic retry.
    retriedBy: request.automatic === undefined ? caller.actorId : null,
    requestId: request.requestId,
    automatic: request.automatic,
    notBefore: request.notBefore,
    overrides,
  });
  // Recorded with the retry, so the two are committed together; a replay returns before reaching
  // here and adds none.
  const audit = (execution: Execution): AuditFacts => ({
    action: auditActionOf(request, retry.retryKind),
    execution,
    requestId: request.auditRequestId ?? request.requestId,
    reason: request.reason ?? request.automatic?.reason ?? "",
    outcome: retry.id,
  });
  if (deps.db.dialect === "postgresql" && !onlyIfNotYetRetried) {
    // The original's id, root and batch, which the entry names, never change.
    const inserted = await insertPlainRetry({ caller, original, retry, force: request.force, audit: audit(original) });
    if (inserted.current === undefined) {
      throw executionNotFound(original.id);
    }
    if (!inserted.inserted) {
      requireTerminal(inserted.current);
      throw new Error(`the retry of ${original.id} was not inserted, for no reason the statement tells`);
    }
    return { retry, original: inserted.current };
  }
  return inSqlTransaction(deps.db, async (sql) => {
    // Re-checked atomically with the insert: PostgreSQL locks the row until the commit, SQLite's
    // single writer already excludes concurrent changes (and has no row locks). Only a retry
    // that must be the original's only one takes turns with the others (an exclusive lock);
    // plain retries of one original share theirs (retry-statement.ts), which still keeps the
    // original from changing or going away under them.
    // Nothing of the original is written by a retry, but for the automatic retry flag below.
    const executions = rowCodec<Execution>(sql, Execution.name);
    const lock = deps.db.dialect === "postgresql" ? (onlyIfNotYetRetried ? " for update" : " for share") : "";
    const [current] = (await sql.query(`select ${executions.columns} from executions where id = ?${lock}`, [original.id])).map(executions.fromRow);
    if (current === undefined) {
      throw executionNotFound(original.id);
    }
    if (!request.force) {
      requireTerminal(current);
    }
    if (onlyIfNotYetRetried) {
      const [other] = await sql.query("select id from executions where retry_of = ? limit 1", [original.id]);
      if (other !== undefined) {
        throw new AlreadyRetriedError(other["id"] as string);
      }
    }
    if (request.automatic !== undefined) {
      // The failure has its retry: the lease sweep stops looking at it.
      await sql.query("update executions set auto_retry_pending = ? where id = ?", [false, original.id]);
    }
    await sql.query(executions.insertSql, executions.insertValues(retry));
    await recordAudit(sql, caller, retry.createdAt, audit(current));
    return { retry, original: current };
  });
}

function auditActionOf(request: RetryRequest, kind: Execution["retryKind"]): AuditActionName {
  if (request.automatic !== undefined) {
    return "automatic_retry";
  }
  if (request.batch === true) {
    return "batch_retry";
  }
  return kind === "forced" ? "forced_retry" : "retry";
}

function retryKindOf(request: RetryRequest, original: Execution): NewRetry["kind"] {
  if (request.automatic !== undefined) {
    return "automatic";
  }
  // Forced means the original was not finished when asked; --force on a finished one is an
  // ordinary retry.
  return isTerminal(original.status) ? "manual" : "forced";
}

function retryMetricKindOf(request: RetryRequest): RetryMetricKind {
  if (request.automatic !== undefined) {
    return "automatic";
  }
  return request.batch === true ? "batch" : "manual";
}

export async function removeCopies(deps: Pick<RetryDeps, "storage" | "logger">, newId: string): Promise<void> {
  try {
    await deps.storage.deleteExecutionObjects(newId);
  } catch (error) {
    // The RPC still fails with its own error; the orphaned objects are named for an operator.
    deps.logger.error("could not remove objects copied for a failed retry", { executionId: newId, error });
  }
}
