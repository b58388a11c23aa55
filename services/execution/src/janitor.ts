import type { Logger } from "@rgrid/common";
import { Execution } from "./db/entities";
import type { Database } from "./db/orm";
import type { StorageGateway } from "./storage";

export interface JanitorDeps {
  db: Database;
  storage: StorageGateway;
  logger: Logger;
  clock: () => Date;
  /**
   * Objects stored more recently than this are left alone even without an execution: a retry
   * copies its inputs before it records the new execution, so for a moment they have none.
   */
  graceMillis: number;
  /** Stored executions looked at per storage call and database query; 1000, storage's largest page, by default. */
  pageSize?: number;
}

export interface JanitorPass {
  removedExecutions: number;
  removedIds: string[];
}

export interface Janitor {
  /** One pass over everything stored; an id whose removal fails is logged and left for the next pass. */
  runOnce(): Promise<JanitorPass>;
}

const DEFAULT_PAGE_SIZE = 1000;

/** Removes the objects of executions that do not exist, e.g. left by a retry that failed after copying. */
export function createJanitor(deps: JanitorDeps): Janitor {
  const { db, storage, logger, clock, graceMillis } = deps;
  const pageSize = deps.pageSize ?? DEFAULT_PAGE_SIZE;

  const existingIds = async (ids: readonly string[]): Promise<Set<string>> => {
    if (ids.length === 0) {
      return new Set();
    }
    const rows = await db.fork().find(Execution, { id: { $in: [...ids] } }, { fields: ["id"] });
    return new Set(rows.map((row) => row.id));
  };

  return {
    async runOnce() {
      // An empty database is a wrong one (a new file at a relative path, another deployment's
      // bucket): every stored object would look orphaned.
      if ((await db.fork().count(Execution, {})) === 0) {
        logger.warn("janitor pass skipped: the database has no executions, so it is probably not this storage's");
        return { removedExecutions: 0, removedIds: [] };
      }
      const removedIds: string[] = [];
      let failures = 0;
      let after = "";
      for (;;) {
        const page = await storage.listStoredExecutions(after, pageSize);
        const existing = await existingIds(page.executions.map((stored) => stored.executionId));
        // Read after the lookup, so an object counts as old only if it was already old when
        // the database said its execution does not exist.
        const cutoff = clock().getTime() - graceMillis;
        for (const { executionId, newestObjectAt } of page.executions) {
          if (existing.has(executionId) || newestObjectAt.getTime() > cutoff) {
            continue;
          }
          try {
            await storage.deleteExecutionObjects(executionId);
            removedIds.push(executionId);
            logger.info("removed the objects of an execution that does not exist", {
              executionId,
              newestObjectAt: newestObjectAt.toISOString(),
            });
          } catch (error) {
            failures++;
            logger.warn("could not remove the objects of an execution that does not exist; the next pass tries again", {
              executionId,
              error,
            });
          }
        }
        const last = page.executions[page.executions.length - 1];
        if (!page.hasMore || last === undefined) {
          break;
        }
        after = last.executionId;
      }
      logger.info("janitor pass finished", { removedExecutions: removedIds.length, failures });
      return { removedExecutions: removedIds.length, removedIds };
    },
  };
}

/**
 * Runs a pass every `intervalMillis` (the first one interval after start, so a restart loop
 * does not hammer storage) until the returned stop function is called; stop waits for a pass
 * in progress. A tick while a pass still runs is skipped, so slow passes never pile up. A
 * failed pass is logged and the next one tries again.
 */
export function startJanitor(janitor: Janitor, intervalMillis: number, logger: Logger, isLeader: () => boolean = () => true): () => Promise<void> {
  let current: Promise<unknown> | undefined;
  const timer = setInterval(() => {
    if (!isLeader()) {
      return; // the replica that leads maintenance does it (cluster/leadership.ts)
    }
    if (current !== undefined) {
      logger.info("janitor pass skipped: the previous one is still running");
      return;
    }
    current = janitor
      .runOnce()
      .catch((error: unknown) => logger.warn("janitor pass failed; the next one tries again", { error }))
      .finally(() => {
        current = undefined;
      });
  }, intervalMillis);
  timer.unref();
  return async () => {
    clearInterval(timer);
    await current;
  };
}
