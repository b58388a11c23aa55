import type { EntityManager } from "@mikro-orm/knex";
import { ErrorInfo_Reason } from "@rgrid/proto";
import { Execution } from "../db/entities";
import { NotFoundError } from "../errors";

/**
 * An execution of the caller's account. Another account's execution gets exactly the error a
 * missing one gets, so ids reveal nothing about other accounts.
 */
export async function findOwnedExecution(em: EntityManager, accountId: string, executionId: string): Promise<Execution> {
  const execution = await em.findOne(Execution, { id: executionId, accountId });
  if (execution === null) {
    throw new NotFoundError(`execution ${executionId} not found`, { reason: ErrorInfo_Reason.NOT_FOUND, executionId });
  }
  return execution;
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
