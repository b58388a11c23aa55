import { isDeepStrictEqual } from "node:util";
import { create } from "@bufbuild/protobuf";
import { timestampDate, timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { EntityManager } from "@mikro-orm/knex";
import { FailureCause, RetryFilterSchema } from "@rgrid/proto";
import type { RetryFilter } from "@rgrid/proto";
import { Execution } from "../db/entities";
import type { ExecutionState, FailureKindName, StoredRetryFilter } from "../db/entities";
import type { Dialect } from "../db/orm";
import { stateFromWire, statusToWire } from "./convert";
import { whereLineageUnresolved } from "./list";
import { SUMMARY_FIELDS } from "./summary";
import type { ExecutionSummary } from "./summary";

// Which lineages a bulk retry (RetryWhere) takes, and the filter as an operation stores it.

/** What a filter without statuses takes: the failures. */
const DEFAULT_STATES: readonly ExecutionState[] = ["failed", "timed_out"];

type CauseName = "script" | "timeout" | "runner_lost" | "infrastructure";

const CAUSE_NAMES: ReadonlyMap<FailureCause, CauseName> = new Map([
  [FailureCause.SCRIPT, "script"],
  [FailureCause.TIMEOUT, "timeout"],
  [FailureCause.RUNNER_LOST, "runner_lost"],
  [FailureCause.INFRASTRUCTURE, "infrastructure"],
]);

/** Each cause as a condition on the record: a timeout is a status, the others a failure kind. */
const CAUSE_CONDITIONS: Record<CauseName, { status: ExecutionState; failureKind?: FailureKindName }> = {
  script: { status: "failed", failureKind: "script" },
  timeout: { status: "timed_out" },
  runner_lost: { status: "failed", failureKind: "runner_lost" },
  infrastructure: { status: "failed", failureKind: "infrastructure" },
};

/**
 * The filter as stored with its operation: canonical (lists sorted, defaults filled in), so that a
 * re-sent request with the same filter in another order is recognised as the same.
 */
export function storedFilter(filter: RetryFilter): StoredRetryFilter {
  const states = filter.statuses.map((status) => stateFromWire(status) as ExecutionState);
  return {
    statuses: [...(states.length > 0 ? states : DEFAULT_STATES)].sort(),
    exitCodes: [...filter.exitCodes].sort((a, b) => a - b),
    causes: filter.causes.map((cause) => CAUSE_NAMES.get(cause) as CauseName).sort(),
    errorContains: filter.errorContains,
    scriptName: filter.scriptName,
    batchId: filter.batchId,
    finishedAfter: filter.finishedAfter ? timestampDate(filter.finishedAfter).toISOString() : null,
    finishedBefore: filter.finishedBefore ? timestampDate(filter.finishedBefore).toISOString() : null,
    unresolved: filter.unresolved,
  };
}

/** Whether two stored filters ask the same; the order of keys (which a JSON column need not keep) does not count. */
export function sameFilter(a: StoredRetryFilter, b: StoredRetryFilter): boolean {
  return isDeepStrictEqual(a, b);
}

export function filterMessage(filter: StoredRetryFilter): RetryFilter {
  const causeOf = (name: string) => [...CAUSE_NAMES].find(([, cause]) => cause === name)?.[0] ?? FailureCause.UNSPECIFIED;
  return create(RetryFilterSchema, {
    statuses: filter.statuses.map((state) => statusToWire(state as ExecutionState)),
    exitCodes: filter.exitCodes,
    causes: filter.causes.map(causeOf),
    errorContains: filter.errorContains,
    scriptName: filter.scriptName,
    batchId: filter.batchId,
    finishedAfter: filter.finishedAfter === null ? undefined : timestampFromDate(new Date(filter.finishedAfter)),
    finishedBefore: filter.finishedBefore === null ? undefined : timestampFromDate(new Date(filter.finishedBefore)),
    unresolved: filter.unresolved,
  });
}

/**
 * The latest attempt of each of the account's lineages that meets the filter, earliest finished
 * first, at most `limit`. Only a lineage's latest attempt is ever taken: an older failure whose
 * lineage has gone on (retried, and perhaps fixed) is history, not work.
 */
export async function latestAttemptsMatching(
  em: EntityManager,
  dialect: Dialect,
  accountId: string,
  filter: StoredRetryFilter,
  limit: number,
): Promise<ExecutionSummary[]> {
  const query = em.createQueryBuilder(Execution, "e").select([...SUMMARY_FIELDS]).where({ accountId });
  query.andWhere({ status: { $in: filter.statuses as ExecutionState[] } });
  query.andWhere(
    "not exists (select 1 from executions as later where later.root_id = e.root_id and " +
      "(later.created_at > e.created_at or (later.created_at = e.created_at and later.id > e.id)))",
  );
  if (filter.exitCodes.length > 0) {
    query.andWhere({ exitCode: { $in: filter.exitCodes } });
  }
  if (filter.causes.length > 0) {
    query.andWhere({ $or: filter.causes.map((cause) => CAUSE_CONDITIONS[cause as CauseName]) });
  }
  if (filter.errorContains !== "") {
    const position = dialect === "postgresql" ? "strpos(lower(e.error_message), lower(?))" : "instr(lower(e.error_message), lower(?))";
    query.andWhere(`${position} > 0`, [filter.errorContains]);
  }
  if (filter.scriptName !== "") {
    query.andWhere({ scriptName: filter.scriptName });
  }
  if (filter.batchId !== "") {
    query.andWhere({ batchId: filter.batchId });
  }
  if (filter.finishedAfter !== null) {
    query.andWhere({ finishedAt: { $gte: new Date(filter.finishedAfter) } });
  }
  if (filter.finishedBefore !== null) {
    query.andWhere({ finishedAt: { $lt: new Date(filter.finishedBefore) } });
  }
  if (filter.unresolved) {
    whereLineageUnresolved(query);
  }
  return query.orderBy([{ finishedAt: "asc" }, { id: "asc" }]).limit(limit).getResultList();
}
