import { Code, ConnectError } from "@connectrpc/connect";
import { ErrorInfo_Reason } from "@rgrid/proto";
import type { Caller } from "../auth";
import type { Database } from "../db/orm";
import { Execution, isTerminal } from "../db/entities";
import { PreconditionError } from "../errors";
import { statusToWire } from "./convert";
import { findOwnedExecution } from "./queries";
import type { ExecutionActivity } from "./execution-activity";

export interface CancelDeps {
  db: Database;
  /** Woken when a cancel ends an execution, so FollowLogs streams end promptly. */
  logActivity: ExecutionActivity;
  clock: () => Date;
}

export type CancelExecution = (caller: Caller, executionId: string) => Promise<Execution>;

// States only move forward (uploading → queued → running → terminal; a claim that could not
// be handed over goes back to queued), so a cancel that keeps losing races is rare; a few
// rounds settle it, and the caller may re-send if not.
const MAX_ROUNDS = 5;

/**
 * Cancels an execution of the caller's account. Every change is one conditional update on the
 * status just read, so a cancel racing a claim or a completion changes the row only if it still
 * is what the cancel saw; otherwise it looks again. Exactly one of the racers wins.
 */
export function createCancelExecution(deps: CancelDeps): CancelExecution {
  const { db, logActivity, clock } = deps;

  return async (caller, executionId) => {
    const em = db.fork();
    for (let round = 0; round < MAX_ROUNDS; round++) {
      em.clear();
      const execution = await findOwnedExecution(em, caller.accountId, executionId);
      if (isTerminal(execution.status)) {
        throw new PreconditionError(`execution ${execution.id} is already ${execution.status}; there is nothing to cancel`, {
          reason: ErrorInfo_Reason.ALREADY_TERMINAL,
          executionId: execution.id,
          status: statusToWire(execution.status),
        });
      }
      if (execution.status === "running") {
        if (execution.cancelRequestedAt !== null) {
          return execution; // asked before; the runner has been or will be told
        }
        // The runner learns of the request on its next heartbeat and reports the execution
        // cancelled; until then it is still running.
        const requested = await em.nativeUpdate(
          Execution,
          { id: execution.id, status: "running", cancelRequestedAt: null },
          { cancelRequestedAt: clock() },
        );
        if (requested === 1) {
          return refetch(db, execution.id);
        }
        continue;
      }
      // Uploading or queued: no runner has it, so it ends here and now.
      const cancelled = await em.nativeUpdate(
        Execution,
        { id: execution.id, status: execution.status },
        { status: "cancelled", finishedAt: clock() },
      );
      if (cancelled === 1) {
        logActivity.notify(execution.id);
        return refetch(db, execution.id);
      }
    }
    throw new ConnectError(`execution ${executionId} kept changing while being cancelled; try again`, Code.Aborted);
  };
}

function refetch(db: Database, executionId: string): Promise<Execution> {
  return db.fork().findOneOrFail(Execution, executionId);
}
