// Data that grows without end is pruned: with a retention of N days, a lineage (an execution and
// all its retries) whose every attempt finished more than N days ago is removed — its rows, its
// log lines, then its objects. A lineage with an attempt still uploading, queued or running is
// never touched, and the re-check runs in the deleting transaction, so a retry made meanwhile
// keeps its whole lineage. Objects whose rows are gone but that could not be removed now are
// the janitor's (janitor.ts). The audit keeps its entries: it records who did what, for as long
// as the account's own policy says.
import type { Logger } from "@rgrid/common";
import { Execution } from "../db/entities";
import type { Database } from "../db/orm";
import { rowCodec } from "../db/row-codec";
import { inOrmTransaction } from "../db/orm-transaction";
import { placeholders } from "../db/sql-session";
import type { StorageGateway } from "../storage";

/** Lineages removed per pass; the rest wait for the next. */
const PRUNE_BATCH = 100;

export interface Retention {
  /** Removes up to PRUNE_BATCH expired lineages; the ids of the executions removed. */
  pruneOnce(): Promise<string[]>;
}

export interface RetentionDeps {
  db: Database;
  storage: StorageGateway;
  logger: Logger;
  clock: () => Date;
  days: number;
}

export function createRetention(deps: RetentionDeps): Retention {
  const dayMillis = 24 * 60 * 60 * 1000;

  const pruneLineage = async (rootId: string, cutoff: Date): Promise<string[]> => {
    const removed = await inOrmTransaction(deps.db.fork(), async (tx) => {
      const connection = tx.getConnection();
      const context = tx.getTransactionContext();
      const executions = rowCodec<Pick<Execution, "id" | "finishedAt">>(tx, Execution.name);
      const attempts = (
        await connection.execute<Array<Record<string, unknown>>>(
          `select ${executions.columnsOf(["id", "finishedAt"])} from executions where root_id = ?`,
          [rootId],
          "all",
          context,
        )
      ).map(executions.fromRow);
      if (attempts.length === 0 || !attempts.every((attempt) => attempt.finishedAt !== null && attempt.finishedAt < cutoff)) {
        return []; // retried (or still running) since it was chosen
      }
      const ids = attempts.map((attempt) => attempt.id);
      const idList = placeholders(ids);
      await connection.execute(`delete from log_entries where execution_id in (${idList})`, ids, "run", context);
      // One statement: the retries and the attempts they retried go together.
      await connection.execute(`delete from executions where id in (${idList})`, ids, "run", context);
      return ids;
    });
    for (const id of removed) {
      try {
        await deps.storage.deleteExecutionObjects(id);
      } catch (error) {
        deps.logger.warn("could not remove a pruned execution's objects; the janitor will", { executionId: id, error });
      }
    }
    return removed;
  };

  return {
    async pruneOnce() {
      const cutoff = new Date(deps.clock().getTime() - deps.days * dayMillis);
      // Lineages with no unfinished attempt, whose last attempt finished before the cutoff.
      const expired = await deps.db.fork().getConnection().execute<Array<{ root_id: string }>>(
        `select root_id from executions group by root_id
         having count(*) = count(finished_at) and max(finished_at) < ?
         limit ${PRUNE_BATCH}`,
        [cutoff],
      );
      const removed: string[] = [];
      for (const { root_id: rootId } of expired) {
        try {
          removed.push(...(await pruneLineage(rootId, cutoff)));
        } catch (error) {
          // Retried meanwhile (its new attempt's reference to the original refuses the delete),
          // or the database failed: this lineage waits for the next pass, the others go on.
          deps.logger.warn("could not prune a lineage; the next pass looks again", { rootId, error });
        }
      }
      if (removed.length > 0) {
        deps.logger.info("pruned executions past their retention", { executions: removed.length, days: deps.days });
      }
      return removed;
    },
  };
}
