import { setTimeout as sleep } from "node:timers/promises";
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { mapWithLimit, randomHex } from "@rgrid/common";
import type { Logger } from "@rgrid/common";
import {
  ErrorInfo_Reason,
  GetRetryOperationResponseSchema,
  RetryOperation_State,
  RetryOperationSchema,
  RetryWhereResponseSchema,
} from "@rgrid/proto";
import type {
  GetRetryOperationRequest,
  GetRetryOperationResponse,
  RetryOperation as RetryOperationMessage,
  RetryWhereRequest,
  RetryWhereResponse,
} from "@rgrid/proto";
import type { Caller } from "../auth";
import { Execution, RetryOperation, RetryOperationItem } from "../db/entities";
import type { StoredRetryFilter } from "../db/entities";
import type { Database } from "../db/orm";
import { inOrmTransaction } from "../db/orm-transaction";
import { NotFoundError, PreconditionError, isUniqueViolation } from "../errors";
import { bulkItemRequestId } from "./request-ids";
import { skipReasonOf } from "./retry";
import type { RetryExecution } from "./retry";
import { filterMessage, latestAttemptsMatching, sameFilter, storedFilter } from "./retry-filter";
import { SUMMARY_FIELDS, summaryMessage } from "./summary";

// Bulk retries by cause (RetryWhere): the lineages are chosen when the operation is made and
// stored as its items; the retries then run on the service, one RetryExecution per item with all
// of its rules, at a limited pace, so that a thousand retries do not swamp storage and runners.
// The operation survives its replica: its worker holds a lease, renewed as it goes, and a replica
// that finds the lease expired carries on from the first item without an outcome. Each item's
// retry has a request id derived from the operation, so an item retried twice (its worker died
// between the retry and recording it) replays its first retry instead of making a second.

/** The most lineages one operation takes. */
export const MAX_OPERATION_ITEMS = 10_000;
/** How many matches a RetryWhere answer lists. */
const FIRST_MATCHES = 20;
const DEFAULT_ITEMS_PAGE = 100;
/** Items read and retried per round; the lease is renewed between rounds. */
const ROUND_ITEMS = 50;
/** Rows per insert: SQLite takes at most 32766 bound values in one statement. */
const INSERT_CHUNK = 500;

export interface BulkRetryDeps {
  db: Database;
  retryExecution: RetryExecution;
  clock: () => Date;
  logger: Logger;
  /** Retries started per second, across an operation's items. */
  retriesPerSecond: number;
  /** Retries in flight at once within an operation. */
  concurrency?: number;
  /** How long a worker holds an operation without renewing; another replica takes it over after. */
  leaseMillis?: number;
  /** How often started replicas look for operations whose worker stopped. */
  resumeIntervalMillis?: number;
  /** How long a worker waits after an unexpected failure (storage unreachable) before going on. */
  pauseAfterFailureMillis?: number;
}

export interface BulkRetries {
  retryWhere(caller: Caller, request: RetryWhereRequest & { requestId: string }): Promise<RetryWhereResponse>;
  getOperation(caller: Caller, request: GetRetryOperationRequest): Promise<GetRetryOperationResponse>;
  /** Looks, every resumeIntervalMillis, for operations whose worker stopped, and carries them on. */
  start(): void;
  /** Stops every worker of this process after its current item; their operations stay running for another. */
  stop(): Promise<void>;
}

export function createBulkRetries(deps: BulkRetryDeps): BulkRetries {
  const leaseMillis = deps.leaseMillis ?? 30_000;
  const concurrency = deps.concurrency ?? 4;
  const resumeIntervalMillis = deps.resumeIntervalMillis ?? 5_000;
  const pauseAfterFailureMillis = deps.pauseAfterFailureMillis ?? 2_000;
  const stopping = new AbortController();
  const working = new Map<string, Promise<void>>();
  let resumeTimer: NodeJS.Timeout | undefined;
  const pace = createPacer(deps.retriesPerSecond);

  function work(operation: RetryOperation): void {
    if (working.has(operation.id) || stopping.signal.aborted) {
      return;
    }
    const done = workThrough(operation)
      .catch((error: unknown) => {
        if (!stopping.signal.aborted) {
          deps.logger.error("bulk retry stopped; another pass carries it on", { operationId: operation.id, error });
        }
      })
      .finally(() => working.delete(operation.id));
    working.set(operation.id, done);
  }

  async function workThrough(operation: RetryOperation): Promise<void> {
    const caller: Caller = { accountId: operation.accountId, actorId: operation.actor };
    // The lease this worker holds: renewing is conditional on it, so a worker whose lease ran
    // out and was taken by another replica stops instead of working beside it.
    let lease: Date | null | undefined = operation.leaseUntil;
    for (;;) {
      lease = stopping.signal.aborted ? undefined : await renewLease(operation.id, lease);
      if (lease === undefined) {
        return;
      }
      const items = await deps.db
        .fork()
        .find(RetryOperationItem, { operationId: operation.id, done: false }, { orderBy: { position: "asc" }, limit: ROUND_ITEMS });
      if (items.length === 0) {
        await deps.db
          .fork()
          .nativeUpdate(RetryOperation, { id: operation.id, state: "running" }, { state: "done", finishedAt: deps.clock(), leaseUntil: null });
        return;
      }
      try {
        await mapWithLimit(items, concurrency, async (item) => {
          if (stopping.signal.aborted) {
            return;
          }
          await pace(stopping.signal);
          await recordOutcome(item, await retryItem(caller, operation, item));
        });
      } catch (error) {
        if (stopping.signal.aborted) {
          return;
        }
        // Not an item's own problem (those are outcomes): storage unreachable, say. The items
        // stay without an outcome, and are tried again after a pause.
        deps.logger.warn("bulk retry paused after a failure", { operationId: operation.id, error });
        await sleep(pauseAfterFailureMillis, undefined, { signal: stopping.signal }).catch(() => undefined);
      }
    }
  }

  async function retryItem(caller: Caller, operation: RetryOperation, item: RetryOperationItem): Promise<Outcome> {
    try {
      const result = await deps.retryExecution(caller, {
        executionId: item.originalId,
        force: false,
        requestId: bulkItemRequestId(operation.id, item.originalId),
        // The audit shows the operation's request id, the one the caller knows.
        auditRequestId: operation.requestId,
        reason: operation.reason,
        // Retried meanwhile (automatically, or by someone else): reported, not retried twice.
        onlyIfNotYetRetried: true,
        batch: true,
      });
      return { retryId: result.execution.id, skipped: "" };
    } catch (error) {
      const skipped = skipReasonOf(error);
      if (skipped === undefined) {
        throw error;
      }
      return { retryId: null, skipped };
    }
  }

  async function recordOutcome(item: RetryOperationItem, outcome: Outcome): Promise<void> {
    await deps.db
      .fork()
      .nativeUpdate(
        RetryOperationItem,
        { operationId: item.operationId, position: item.position, done: false },
        { done: true, retryId: outcome.retryId, skipped: outcome.skipped },
      );
  }

  /** Holds the operation for another lease; false when it is done or another worker has it. */
  /** The renewed lease, or undefined when the operation is over or another worker took it. */
  async function renewLease(operationId: string, held: Date | null): Promise<Date | undefined> {
    const renewed = new Date(deps.clock().getTime() + leaseMillis);
    const updated = await deps.db
      .fork()
      .nativeUpdate(RetryOperation, { id: operationId, state: "running", leaseUntil: held }, { leaseUntil: renewed });
    return updated === 1 ? renewed : undefined;
  }

  /** Operations whose worker stopped (its lease ran out): each is taken by one replica. */
  async function resumeStopped(): Promise<void> {
    const now = deps.clock();
    const stopped = await deps.db
      .fork()
      .find(RetryOperation, { state: "running", leaseUntil: { $lt: now } }, { orderBy: { createdAt: "asc" }, limit: 10 });
    for (const operation of stopped) {
      if (working.has(operation.id)) {
        continue;
      }
      // Conditional on the lease it saw, so that two replicas never both take it.
      const lease = new Date(now.getTime() + leaseMillis);
      const taken = await deps.db
        .fork()
        .nativeUpdate(RetryOperation, { id: operation.id, state: "running", leaseUntil: operation.leaseUntil }, { leaseUntil: lease });
      if (taken === 1) {
        deps.logger.info("carrying on a bulk retry whose worker stopped", { operationId: operation.id });
        work({ ...operation, leaseUntil: lease });
      }
    }
  }

  async function operationMessage(operation: RetryOperation): Promise<RetryOperationMessage> {
    const em = deps.db.fork();
    const [retried, skipped] = await Promise.all([
      em.count(RetryOperationItem, { operationId: operation.id, done: true, retryId: { $ne: null } }),
      em.count(RetryOperationItem, { operationId: operation.id, done: true, retryId: null }),
    ]);
    return create(RetryOperationSchema, {
      id: operation.id,
      state: operation.state === "done" ? RetryOperation_State.DONE : RetryOperation_State.RUNNING,
      total: operation.total,
      retried,
      skipped,
      where: filterMessage(operation.filter),
      reason: operation.reason,
      createdAt: timestampFromDate(operation.createdAt),
      finishedAt: operation.finishedAt ? timestampFromDate(operation.finishedAt) : undefined,
    });
  }

  /** The answer for an operation already made: its first items' originals stand for the first matches. */
  async function existingOperationResponse(operation: RetryOperation): Promise<RetryWhereResponse> {
    const em = deps.db.fork();
    const first = await em.find(RetryOperationItem, { operationId: operation.id }, { orderBy: { position: "asc" }, limit: FIRST_MATCHES });
    const originals = await em.find(Execution, { id: { $in: first.map((item) => item.originalId) } }, { fields: [...SUMMARY_FIELDS] });
    const byId = new Map(originals.map((execution) => [execution.id, execution]));
    return create(RetryWhereResponseSchema, {
      matched: operation.total,
      firstMatches: first.flatMap((item) => {
        const original = byId.get(item.originalId);
        return original === undefined ? [] : [summaryMessage(original)];
      }),
      operation: await operationMessage(operation),
    });
  }

  return {
    async retryWhere(caller, request) {
      const filter = storedFilter(request.where!);
      if (!request.dryRun) {
        const existing = await deps.db.fork().findOne(RetryOperation, { accountId: caller.accountId, requestId: request.requestId });
        if (existing !== null) {
          return existingOperationResponse(requireSameFilter(existing, filter, request.requestId));
        }
      }
      const matches = await latestAttemptsMatching(deps.db.fork(), deps.db.dialect, caller.accountId, filter, MAX_OPERATION_ITEMS + 1);
      requireWithinBounds(matches.length, request.atMost);
      const firstMatches = matches.slice(0, FIRST_MATCHES).map(summaryMessage);
      if (request.dryRun) {
        return create(RetryWhereResponseSchema, { matched: matches.length, firstMatches });
      }

      const now = deps.clock();
      const operation: RetryOperation = {
        id: `op_${randomHex(16)}`,
        accountId: caller.accountId,
        actor: caller.actorId,
        requestId: request.requestId,
        filter,
        reason: request.reason,
        state: matches.length === 0 ? "done" : "running",
        total: matches.length,
        createdAt: now,
        finishedAt: matches.length === 0 ? now : null,
        leaseUntil: matches.length === 0 ? null : new Date(now.getTime() + leaseMillis),
      };
      try {
        await inOrmTransaction(deps.db.fork(), async (tx) => {
          await tx.insert(RetryOperation, operation);
          const items = matches.map((match, position) => ({
            operationId: operation.id,
            position,
            originalId: match.id,
            retryId: null,
            skipped: "",
            done: false,
          }));
          for (let start = 0; start < items.length; start += INSERT_CHUNK) {
            await tx.insertMany(RetryOperationItem, items.slice(start, start + INSERT_CHUNK));
          }
        });
      } catch (error) {
        if (isUniqueViolation(error)) {
          // A concurrent request with the same request_id (another replica) made it first.
          const winner = await deps.db.fork().findOneOrFail(RetryOperation, { accountId: caller.accountId, requestId: request.requestId });
          return existingOperationResponse(requireSameFilter(winner, filter, request.requestId));
        }
        throw error;
      }
      if (operation.state === "running") {
        work(operation);
      }
      return create(RetryWhereResponseSchema, { matched: matches.length, firstMatches, operation: await operationMessage(operation) });
    },

    async getOperation(caller, request) {
      const pageSize = request.pageSize === 0 ? DEFAULT_ITEMS_PAGE : request.pageSize;
      const after = request.pageToken === "" ? -1 : positionOfToken(request.pageToken);
      const em = deps.db.fork();
      const operation = await em.findOne(RetryOperation, { id: request.operationId, accountId: caller.accountId });
      if (operation === null) {
        throw new NotFoundError(`operation ${request.operationId} not found`, { reason: ErrorInfo_Reason.NOT_FOUND });
      }
      const items = await em.find(
        RetryOperationItem,
        { operationId: operation.id, position: { $gt: after } },
        { orderBy: { position: "asc" }, limit: pageSize + 1 },
      );
      const page = items.slice(0, pageSize);
      const last = page[page.length - 1];
      return create(GetRetryOperationResponseSchema, {
        operation: await operationMessage(operation),
        items: page.map((item) => ({ originalId: item.originalId, retryId: item.retryId ?? "", skipped: item.skipped, done: item.done })),
        nextPageToken: items.length > pageSize && last ? String(last.position) : "",
      });
    },

    start() {
      const tick = () => {
        resumeStopped()
          .catch((error: unknown) => deps.logger.error("could not look for stopped bulk retries", { error }))
          .finally(() => {
            if (!stopping.signal.aborted) {
              resumeTimer = setTimeout(tick, resumeIntervalMillis);
            }
          });
      };
      tick();
    },

    async stop() {
      stopping.abort();
      clearTimeout(resumeTimer);
      await Promise.all(working.values());
    },
  };
}

interface Outcome {
  retryId: string | null;
  skipped: string;
}

/** A request_id names one request: reusing it with another filter is refused, not answered. */
function requireSameFilter(operation: RetryOperation, filter: StoredRetryFilter, requestId: string): RetryOperation {
  if (!sameFilter(operation.filter, filter)) {
    throw new PreconditionError(`request_id ${JSON.stringify(requestId)} was already used for another request; use a new one`, {
      reason: ErrorInfo_Reason.REQUEST_ID_REUSED,
    });
  }
  return operation;
}

function requireWithinBounds(matched: number, atMost: number): void {
  if (matched > MAX_OPERATION_ITEMS) {
    throw new PreconditionError(
      `more than ${MAX_OPERATION_ITEMS} lineages match, more than one operation takes; nothing was retried. Narrow the filter`,
      { reason: ErrorInfo_Reason.OPERATION_TOO_LARGE },
    );
  }
  if (atMost > 0 && matched > atMost) {
    throw new PreconditionError(`${matched} lineages match now, more than the ${atMost} agreed to; nothing was retried`, {
      reason: ErrorInfo_Reason.OPERATION_TOO_LARGE,
    });
  }
}

function positionOfToken(token: string): number {
  if (!/^\d{1,9}$/.test(token)) {
    throw new ConnectError("invalid page_token: not one this service gave out; start again without one", Code.InvalidArgument);
  }
  return Number(token);
}

/**
 * Spaces out the retries of every operation of this process: at most `perSecond` start in any
 * second, however many operations and items are in flight.
 */
function createPacer(perSecond: number): (signal: AbortSignal) => Promise<void> {
  const intervalMillis = 1000 / perSecond;
  let nextStart = 0;
  return async (signal) => {
    const now = performance.now();
    const start = Math.max(now, nextStart);
    nextStart = start + intervalMillis;
    if (start > now) {
      await sleep(start - now, undefined, { signal });
    }
  };
}
