import { LockMode } from "@mikro-orm/core";
import type { Database } from "../db/orm";
import { Execution } from "../db/entities";

/**
 * Claims the oldest queued execution of one of `runtimeNames` for `runnerId`, or returns
 * undefined when there is none. Two claimers never get the same execution:
 * - PostgreSQL locks the candidate row with FOR UPDATE SKIP LOCKED, so concurrent claimers pass
 *   over each other's candidates instead of queueing behind them;
 * - SQLite has one writer at a time (one connection here) and no row locks (the lock mode
 *   throws there), so it relies on the transaction alone.
 * On both, the status change is conditional on the row still being queued, which keeps the
 * claim correct even against another process sharing the database file.
 */
export async function claimNextExecution(
  db: Database,
  runnerId: string,
  runtimeNames: readonly string[],
  now: Date,
): Promise<Execution | undefined> {
  if (runtimeNames.length === 0) {
    return undefined;
  }
  for (let attempt = 0; attempt < MAX_CLAIM_ATTEMPTS; attempt++) {
    const outcome = await tryClaim(db, runnerId, runtimeNames, now);
    if (outcome === "none") {
      return undefined;
    }
    if (outcome !== "lost") {
      return db.fork().findOneOrFail(Execution, outcome.id);
    }
  }
  // Lost every race; the caller looks again on its next round.
  return undefined;
}

// Only another process sharing the database can win the race; a few tries are plenty.
const MAX_CLAIM_ATTEMPTS = 3;

async function tryClaim(
  db: Database,
  runnerId: string,
  runtimeNames: readonly string[],
  now: Date,
): Promise<{ id: string } | "none" | "lost"> {
  return db.fork().transactional(async (tx) => {
    const candidate = await tx.findOne(
      Execution,
      { status: "queued", runtimeName: { $in: [...runtimeNames] } },
      {
        orderBy: [{ createdAt: "asc" }, { id: "asc" }],
        fields: ["id"],
        lockMode: db.dialect === "postgresql" ? LockMode.PESSIMISTIC_PARTIAL_WRITE : undefined,
      },
    );
    if (candidate === null) {
      return "none";
    }
    const changed = await tx.nativeUpdate(
      Execution,
      { id: candidate.id, status: "queued" },
      { status: "running", runnerId, startedAt: now },
    );
    return changed === 1 ? { id: candidate.id } : "lost";
  });
}

/** Puts an execution back in the queue when its claim could not be handed to the runner. */
export async function releaseClaim(db: Database, executionId: string, runnerId: string): Promise<void> {
  await db
    .fork()
    .nativeUpdate(Execution, { id: executionId, status: "running", runnerId }, { status: "queued", runnerId: null, startedAt: null });
}
