// Many retries at once, for RetryBatch: the rules of RetryExecution for each item (as an
// onlyIfNotYetRetried batch retry), but with one CopyInputsBatch and one short transaction per
// MAX_COPIES_PER_BATCH items instead of an RPC and a transaction each. The order is a single
// retry's: copies first, with no transaction open; then one transaction re-checks every original
// and inserts the retries with their audit entries; whatever is not recorded has its copies
// removed. Should the transaction meet a request_id already taken (an identical request on
// another replica), it makes nothing, and its items go through RetryExecution one by one, which
// answers each with the retry already made.
import { mapWithLimit, newExecutionId } from "@rgrid/common";
import { recordAudit } from "../audit/record";
import type { Caller } from "../auth";
import { rowCodec } from "../db/row-codec";
import { inSqlTransaction, placeholders, withSqlSession } from "../db/sql-session";
import type { SqlSession } from "../db/sql-session";
import { Execution } from "../db/entities";
import { StorageUnavailableError, isUniqueViolation } from "../errors";
import { MAX_COPIES_PER_BATCH } from "../storage";
import { retryRecordOf } from "./new-executions";
import { executionNotFound } from "./queries";
import { SUMMARY_FIELDS } from "./summary";
import type { ExecutionSummary } from "./summary";
import { applyOverrides } from "./overrides";
import {
  AlreadyRetriedError,
  copyRefusedError,
  removeCopies,
  requireSameSizes,
  requireTerminal,
  skipReasonOf,
} from "./retry";
import type { RetryDeps, RetryExecution } from "./retry";

export interface ManyRetriesRequest {
  /** The originals, each with the request id of its own retry. */
  items: ReadonlyArray<{ executionId: string; requestId: string }>;
  /** The request id the audit shows for every retry: the one the caller knows. */
  auditRequestId: string;
  /** The caller's reason (`--reason`), recorded in the audit with each retry. */
  reason?: string;
}

/** An item's retry and its original as it was when the retry was recorded (their summaries), or why none was made. */
export type ManyRetryOutcome = { retry: ExecutionSummary; original: ExecutionSummary } | { skipped: string };

/**
 * One outcome per item, in order. An item's own problem (already retried, an input gone, no
 * longer finished) is its outcome; anything else (storage or the database unreachable) fails the
 * call, with every item not yet recorded left as it was.
 */
export type RetryMany = (caller: Caller, request: ManyRetriesRequest) => Promise<ManyRetryOutcome[]>;

export interface RetryManyDeps extends RetryDeps {
  /** For the items of a group whose transaction met an identical request's retries. */
  retryExecution: RetryExecution;
}

/**
 * Groups in flight at once: some groups' copies are made while another's transaction runs, and
 * storage, which runs a bounded number of backend operations per call, gets several calls.
 */
const GROUPS_IN_FLIGHT = 4;
/** RetryExecutions in flight at once for a group that goes one by one; each makes its own copy call. */
const ONE_BY_ONE_CONCURRENCY = 8;

/** An item on its way: its original, and the id its retry will have. */
interface Planned {
  index: number;
  original: Execution;
  requestId: string;
  retryId: string;
}

export function createRetryMany(deps: RetryManyDeps): RetryMany {
  return async (caller, request) => {
    const groups: Array<ManyRetriesRequest["items"]> = [];
    for (let start = 0; start < request.items.length; start += MAX_COPIES_PER_BATCH) {
      groups.push(request.items.slice(start, start + MAX_COPIES_PER_BATCH));
    }
    return (await mapWithLimit(groups, GROUPS_IN_FLIGHT, (group) => retryGroup(deps, caller, request, group))).flat();
  };
}

async function retryGroup(
  deps: RetryManyDeps,
  caller: Caller,
  request: ManyRetriesRequest,
  items: ManyRetriesRequest["items"],
): Promise<ManyRetryOutcome[]> {
  const outcomes = new Array<ManyRetryOutcome>(items.length);
  // Looked at before copying, so that nothing is copied for an item already decided; looked at
  // again, atomically with the inserts, after.
  const before = await withSqlSession(deps.db, (sql) =>
    lineagesOf(sql, caller.accountId, items.map((item) => item.executionId), { wholeOriginals: true, lock: false }),
  );
  const planned: Planned[] = [];
  // An original listed again in the group is copied once (CopyInputsBatch names each execution
  // once); its later items are answered from the first's outcome at the end.
  const firstPlanned = new Map<string, Planned>();
  const repeats: Array<{ index: number; requestId: string; first: Planned }> = [];
  items.forEach((item, index) => {
    const decided = decidedAlready(before, item.executionId, item.requestId);
    const first = firstPlanned.get(item.executionId);
    if (decided !== undefined) {
      outcomes[index] = decided;
    } else if (first !== undefined) {
      repeats.push({ index, requestId: item.requestId, first });
    } else {
      const plan = { index, original: before.originals.get(item.executionId) as Execution, requestId: item.requestId, retryId: newExecutionId() };
      firstPlanned.set(item.executionId, plan);
      planned.push(plan);
    }
  });

  const copied = await copyAll(deps, planned, outcomes);
  let made: Planned[];
  try {
    made = await insertRetries(deps, caller, request, copied, outcomes);
  } catch (error) {
    await removeAllCopies(deps, copied);
    if (!isUniqueViolation(error)) {
      throw error;
    }
    await mapWithLimit(copied, ONE_BY_ONE_CONCURRENCY, async (item) => {
      outcomes[item.index] = await retryOneByOne(deps, caller, request, item);
    });
    return answerRepeats(outcomes, repeats);
  }
  // Copies of items the transaction refused (retried meanwhile, say) are not anyone's.
  await removeAllCopies(deps, copied.filter((item) => !made.includes(item)));
  made.forEach(() => deps.metrics.retryCreated("batch"));
  if (made.length > 0) {
    deps.notifier.notify();
  }
  return answerRepeats(outcomes, repeats);
}

/**
 * A repeated item answers as a single retry would after the first: the same retry under the
 * same request id, else already retried by it; or the first's refusal.
 */
function answerRepeats(outcomes: ManyRetryOutcome[], repeats: ReadonlyArray<{ index: number; requestId: string; first: Planned }>): ManyRetryOutcome[] {
  for (const { index, requestId, first } of repeats) {
    const outcome = outcomes[first.index] as ManyRetryOutcome;
    outcomes[index] =
      "retry" in outcome && requestId !== first.requestId ? { skipped: new AlreadyRetriedError(outcome.retry.id).message } : outcome;
  }
  return outcomes;
}

/** Copies the planned items' objects in one call; answers those copied whole, and records why for the others. */
async function copyAll(deps: RetryManyDeps, planned: Planned[], outcomes: ManyRetryOutcome[]): Promise<Planned[]> {
  if (planned.length === 0) {
    return [];
  }
  let results;
  try {
    results = await deps.storage.copyInputsBatch(
      planned.map((item) => ({
        sourceId: item.original.id,
        targetId: item.retryId,
        inputNames: item.original.inputs.map((input) => input.name),
        scriptName: item.original.scriptName,
      })),
    );
  } catch (error) {
    // As for one retry: a lost answer can leave copies only this call knows about.
    await removeAllCopies(deps, planned);
    throw error instanceof StorageUnavailableError
      ? new StorageUnavailableError(
          "storage is unavailable; some retries may not have been made: send the same request (same request_id) again to make the rest",
          { cause: error },
        )
      : error;
  }
  const copied: Planned[] = [];
  const discarded: Planned[] = [];
  planned.forEach((item, position) => {
    const result = results[position] as (typeof results)[number];
    const skipped =
      result.refused !== ""
        ? copyRefusedError(item.original.id, result.refused).message
        : refusalOf(() => requireSameSizes(item.original, result.copied, applyOverrides(item.original, undefined)));
    if (skipped === undefined) {
      copied.push(item);
    } else {
      outcomes[item.index] = { skipped };
      discarded.push(item);
    }
  });
  // Removed even when refused: storage removes a refused copy's objects, but only logs a removal
  // that fails, as a single retry's removal would catch.
  await removeAllCopies(deps, discarded);
  return copied;
}

/**
 * One transaction: each original re-checked as a single retry re-checks it (still finished, not
 * retried by anyone meanwhile), then its retry and audit entry inserted. Answers the items made.
 */
async function insertRetries(
  deps: RetryManyDeps,
  caller: Caller,
  request: ManyRetriesRequest,
  copied: Planned[],
  outcomes: ManyRetryOutcome[],
): Promise<Planned[]> {
  if (copied.length === 0) {
    return [];
  }
  return inSqlTransaction(deps.db, async (sql) => {
    const executions = rowCodec<Execution>(sql, Execution.name);
    // PostgreSQL holds the originals, in id order so that two groups never wait on each other.
    const now = await lineagesOf(sql, caller.accountId, copied.map((item) => item.original.id), {
      wholeOriginals: false,
      lock: deps.db.dialect === "postgresql",
    });
    const made: Planned[] = [];
    for (const item of copied) {
      const decided = decidedAlready(now, item.original.id, item.requestId);
      if (decided !== undefined) {
        outcomes[item.index] = decided;
        continue;
      }
      const current = now.originals.get(item.original.id) as ExecutionSummary;
      const retry = retryRecordOf(item.original, {
        id: item.retryId,
        createdAt: deps.clock(),
        kind: "manual",
        retriedBy: caller.actorId,
        requestId: item.requestId,
        overrides: applyOverrides(item.original, undefined),
      });
      await sql.query(executions.insertSql, executions.insertValues(retry));
      await recordAudit(sql, caller, retry.createdAt, {
        action: "batch_retry",
        execution: current,
        requestId: request.auditRequestId,
        reason: request.reason ?? "",
        outcome: retry.id,
      });
      outcomes[item.index] = { retry, original: current };
      made.push(item);
      // An original listed twice is retried once: its second item finds this retry.
      now.retries.set(item.original.id, [...(now.retries.get(item.original.id) ?? []), retry]);
    }
    return made;
  });
}

async function retryOneByOne(deps: RetryManyDeps, caller: Caller, request: ManyRetriesRequest, item: Planned): Promise<ManyRetryOutcome> {
  try {
    const result = await deps.retryExecution(caller, {
      executionId: item.original.id,
      force: false,
      requestId: item.requestId,
      auditRequestId: request.auditRequestId,
      reason: request.reason,
      // Retried meanwhile (automatically, or by another request): reported, not retried twice.
      onlyIfNotYetRetried: true,
      batch: true,
    });
    return { retry: result.execution, original: result.original };
  } catch (error) {
    const skipped = skipReasonOf(error);
    if (skipped === undefined) {
      throw error;
    }
    return { skipped };
  }
}

/** Why `check` refuses an item (its skip reason), or undefined when it passes; any other failure is thrown. */
function refusalOf(check: () => void): string | undefined {
  try {
    check();
    return undefined;
  } catch (error) {
    const reason = skipReasonOf(error);
    if (reason === undefined) {
      throw error;
    }
    return reason;
  }
}

/** Originals by id, and the retries of each (their summaries), oldest first. */
interface Lineages<Original extends ExecutionSummary> {
  originals: Map<string, Original>;
  retries: Map<string, ExecutionSummary[]>;
}

/**
 * What a single retry would answer for the item before copying anything, or undefined when its
 * retry is to be made: the retry its request_id already made (a re-send), or why none is made.
 */
function decidedAlready(lineages: Lineages<ExecutionSummary>, executionId: string, requestId: string): ManyRetryOutcome | undefined {
  const original = lineages.originals.get(executionId);
  const retries = lineages.retries.get(executionId) ?? [];
  const earlier = retries.find((retry) => retry.requestId === requestId);
  if (original !== undefined && earlier !== undefined) {
    return { retry: earlier, original };
  }
  const skipped = refusalOf(() => {
    if (original === undefined) {
      throw executionNotFound(executionId);
    }
    const [other] = retries;
    if (other !== undefined) {
      throw new AlreadyRetriedError(other.id);
    }
    requireTerminal(original);
  });
  return skipped === undefined ? undefined : { skipped };
}

/**
 * The account's executions among `ids` (at most MAX_COPIES_PER_BATCH), whole or their summaries,
 * and their retries' summaries. The id list is padded to its full length with nulls, which match
 * nothing, so that every call is the same statement, prepared once. With `lock`, the originals
 * are held (PostgreSQL), in id order so that two groups never wait on each other.
 */
async function lineagesOf(sql: SqlSession, accountId: string, ids: readonly string[], options: { wholeOriginals: true; lock: boolean }): Promise<Lineages<Execution>>;
async function lineagesOf(
  sql: SqlSession,
  accountId: string,
  ids: readonly string[],
  options: { wholeOriginals: false; lock: boolean },
): Promise<Lineages<ExecutionSummary>>;
async function lineagesOf<Original extends ExecutionSummary>(
  sql: SqlSession,
  accountId: string,
  ids: readonly string[],
  options: { wholeOriginals: boolean; lock: boolean },
): Promise<Lineages<Original>> {
  const executions = rowCodec<Original>(sql, Execution.name);
  const summaries = executions.columnsOf(SUMMARY_FIELDS);
  const paddedIds = padded(ids);
  const idList = placeholders(paddedIds);
  const values = [accountId, ...paddedIds];
  const originals = (
    await sql.query(
      `select ${options.wholeOriginals ? executions.columns : summaries} from executions ` +
        `where account_id = ? and id in (${idList})${options.lock ? " order by id for update" : ""}`,
      values,
    )
  ).map(executions.fromRow);
  const retries = (
    await sql.query(`select ${summaries} from executions where account_id = ? and retry_of in (${idList}) order by created_at, id`, values)
  ).map(executions.fromRow);
  const retriesByOriginal = new Map<string, ExecutionSummary[]>();
  for (const retry of retries) {
    const of = retry.retryOf as string;
    retriesByOriginal.set(of, [...(retriesByOriginal.get(of) ?? []), retry]);
  }
  return { originals: new Map(originals.map((original) => [original.id, original])), retries: retriesByOriginal };
}

function padded(ids: readonly string[]): Array<string | null> {
  return [...ids, ...Array.from({ length: MAX_COPIES_PER_BATCH - ids.length }, () => null)];
}

async function removeAllCopies(deps: RetryManyDeps, items: readonly Planned[]): Promise<void> {
  await Promise.all(items.map((item) => removeCopies(deps, item.retryId)));
}
