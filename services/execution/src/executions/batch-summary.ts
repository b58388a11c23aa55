import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { raw } from "@mikro-orm/core";
import type { EntityManager } from "@mikro-orm/knex";
import { BatchStatusCountSchema, ErrorInfo_Reason } from "@rgrid/proto";
import type { GetBatchResponse } from "@rgrid/proto";
import { Execution } from "../db/entities";
import type { ExecutionState } from "../db/entities";
import { NotFoundError } from "../errors";
import { statusToWire } from "./convert";

/** How many of a batch's executions are in each status, counted by the database. */
export async function batchSummary(
  em: EntityManager,
  accountId: string,
  batchId: string,
): Promise<Omit<GetBatchResponse, "$typeName">> {
  const where = { accountId, batchId };
  const rows: Array<{ status: ExecutionState; count: number | string }> = await em
    .createQueryBuilder(Execution)
    .select(["status", raw("count(*) as count")])
    .where(where)
    .groupBy("status")
    .execute();
  const first = await em.findOne(Execution, where, { fields: ["createdAt"], orderBy: [{ createdAt: "asc" }, { id: "asc" }] });
  if (first === null) {
    // Another account's batch is as missing as one that never existed.
    throw new NotFoundError(`batch ${batchId} not found`, { reason: ErrorInfo_Reason.NOT_FOUND, batchId });
  }
  const counts = rows
    .map((row) => create(BatchStatusCountSchema, { status: statusToWire(row.status), count: Number(row.count) }))
    .sort((a, b) => a.status - b.status);
  return {
    batchId,
    total: counts.reduce((sum, entry) => sum + entry.count, 0),
    counts,
    createdAt: timestampFromDate(first.createdAt),
  };
}
