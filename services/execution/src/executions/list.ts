import { Code, ConnectError } from "@connectrpc/connect";
import type { EntityManager, QueryBuilder } from "@mikro-orm/knex";
import type { ListExecutionsRequest } from "@rgrid/proto";
import type { Dialect } from "../db/orm";
import { Execution } from "../db/entities";
import type { ExecutionState } from "../db/entities";
import { stateFromWire } from "./convert";
import { afterPosition, decodePageToken, encodePageToken } from "./page-token";

const DEFAULT_PAGE_SIZE = 50;

/** Failures nobody has fixed: these statuses, with no completed execution in their lineage. */
const UNRESOLVED_STATES: readonly ExecutionState[] = ["failed", "timed_out"];

export interface ExecutionPage {
  executions: Execution[];
  nextPageToken: string;
}

/**
 * One page of the account's executions, newest first, filtered in the database: every filter is
 * a condition of the query, so a page costs the same at any depth and with any filter.
 */
export async function listExecutionPage(
  em: EntityManager,
  dialect: Dialect,
  accountId: string,
  request: ListExecutionsRequest,
): Promise<ExecutionPage> {
  const pageSize = request.pageSize === 0 ? DEFAULT_PAGE_SIZE : request.pageSize;
  const query = em.createQueryBuilder(Execution, "e").where({ accountId });
  const states = request.statuses.map(requireState);
  if (states.length > 0) {
    query.andWhere({ status: { $in: states } });
  }
  if (request.batchId !== "") {
    query.andWhere({ batchId: request.batchId });
  }
  if (request.rootId !== "") {
    query.andWhere({ rootId: request.rootId });
  }
  if (request.scriptName !== "") {
    whereScriptNameContains(query, dialect, request.scriptName);
  }
  if (request.unresolved) {
    query.andWhere({ status: { $in: [...UNRESOLVED_STATES] } });
    whereLineageUnresolved(query);
  }
  if (request.pageToken !== "") {
    const after = afterPosition("e", dialect, decodePageToken(request.pageToken));
    query.andWhere(after.sql, after.values);
  }
  const rows = await query.orderBy([{ createdAt: "desc" }, { id: "desc" }]).limit(pageSize + 1).getResultList();
  const page = rows.slice(0, pageSize);
  const last = page[page.length - 1];
  return { executions: page, nextPageToken: rows.length > pageSize && last ? encodePageToken(last) : "" };
}

function requireState(status: number): ExecutionState {
  const state = stateFromWire(status);
  if (state === undefined) {
    throw new ConnectError(`invalid statuses: ${status} is not an execution status`, Code.InvalidArgument);
  }
  return state;
}

/** No attempt of the lineage of `e` (the query's alias) has completed: "unresolved" in listings and retry filters. */
export function whereLineageUnresolved(query: QueryBuilder<Execution>): void {
  query.andWhere("not exists (select 1 from executions as resolved where resolved.root_id = e.root_id and resolved.status = ?)", ["completed"]);
}

/** Case-insensitive "contains", with no wildcard characters: `_` and `%` in names mean themselves. */
function whereScriptNameContains(query: QueryBuilder<Execution>, dialect: Dialect, text: string): void {
  const position = dialect === "postgresql" ? "strpos(lower(e.script_name), lower(?))" : "instr(lower(e.script_name), lower(?))";
  query.andWhere(`${position} > 0`, [text]);
}
