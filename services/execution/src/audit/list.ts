import { timestampDate } from "@bufbuild/protobuf/wkt";
import type { EntityManager } from "@mikro-orm/knex";
import type { FilterQuery } from "@mikro-orm/core";
import type { ListAuditEntriesRequest } from "@rgrid/proto";
import { AuditEntry } from "../db/entities";
import type { Dialect } from "../db/orm";
import { afterPosition, decodePageToken, encodePageToken } from "../executions/page-token";
import { findOwnedExecution } from "../executions/queries";
import { AUDIT_ENTRY_ID_PATTERN } from "./record";
import { actionFromWire } from "./convert";

const DEFAULT_PAGE_SIZE = 50;

export interface AuditPage {
  entries: AuditEntry[];
  nextPageToken: string;
}

/**
 * One page of the account's audit entries, newest first. Every filter is a condition of one
 * query on an index that starts with the account, so a page costs the same at any depth.
 */
export async function listAuditPage(
  em: EntityManager,
  dialect: Dialect,
  accountId: string,
  request: ListAuditEntriesRequest,
): Promise<AuditPage> {
  const pageSize = request.pageSize === 0 ? DEFAULT_PAGE_SIZE : request.pageSize;
  const conditions: Array<FilterQuery<AuditEntry>> = [{ accountId }];
  if (request.executionId !== "") {
    // The whole lineage, whichever attempt is named; another account's execution is NotFound.
    const execution = await findOwnedExecution(em, accountId, request.executionId);
    conditions.push({ rootId: execution.rootId });
  }
  const action = actionFromWire(request.action);
  if (action !== undefined) {
    conditions.push({ action });
  }
  if (request.since !== undefined) {
    conditions.push({ createdAt: { $gte: timestampDate(request.since) } });
  }
  const query = em.createQueryBuilder(AuditEntry, "a").where({ $and: conditions });
  if (request.pageToken !== "") {
    const after = afterPosition("a", dialect, decodePageToken(request.pageToken, AUDIT_ENTRY_ID_PATTERN));
    query.andWhere(after.sql, after.values);
  }
  const rows = await query.orderBy([{ createdAt: "desc" }, { id: "desc" }]).limit(pageSize + 1).getResultList();
  const page = rows.slice(0, pageSize);
  const last = page[page.length - 1];
  return { entries: page, nextPageToken: rows.length > pageSize && last ? encodePageToken(last) : "" };
}
