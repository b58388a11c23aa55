import { Code, ConnectError } from "@connectrpc/connect";
import { ErrorInfo_Reason } from "@rgrid/proto";
import type { EntityManager } from "@mikro-orm/knex";
import { recordAudit } from "../audit/record";
import type { Caller } from "../auth";
import type { Database } from "../db/orm";
import { sqlSessionOf } from "../db/raw-query";
import { Execution, isTerminal } from "../db/entities";
import { inOrmTransaction } from "../db/orm-transaction";
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

export interface CancelRequest {
  executionId: string;
  /** The caller's reason (`--reason`), recorded in the audit with the cancel. */
  reason: string;
  /** The RPC's request id, for the audit. */
  requestId: string;
}

export type CancelExecution = (caller: Caller, request: CancelRequest) => Promise<Execution>;

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

  return async (caller, request) => {
    const { executionId } = request;
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
        const requested = await changeAndRecord(em, caller, request, execution, "cancel requested", (tx, now) =>
          tx.nativeUpdate(Execution, { id: execution.id, status: "running", cancelRequestedAt: null }, { cancelRequestedAt: now }),
        );
        if (requested) {
          return refetch(db, execution.id);
        }
        continue;
      }
      // Uploading or queued: no runner has it, so it ends here and now.
      const cancelled = await changeAndRecord(em, caller, request, execution, "cancelled", (tx, now) =>
        tx.nativeUpdate(Execution, { id: execution.id, status: execution.status }, { status: "cancelled", finishedAt: now }),
      );
      if (cancelled) {
        logActivity.notify(execution.id);
        return refetch(db, execution.id);
      }
    }
    throw new ConnectError(`execution ${executionId} kept changing while being cancelled; try again`, Code.Aborted);
  };

  /**
   * Makes the conditional update and, when it changed the row, its audit entry, in one
   * transaction: a cancel that lost its race (or asked again) changes nothing and records
   * nothing.
   */
  async function changeAndRecord(
    em: EntityManager,
    caller: Caller,
    request: CancelRequest,
    execution: Execution,
    outcome: string,
    update: (tx: EntityManager, now: Date) => Promise<number>,
  ): Promise<boolean> {
    return inOrmTransaction(em, async (tx) => {
      const now = clock();
      if ((await update(tx, now)) !== 1) {
        return false;
      }
      await recordAudit(sqlSessionOf(tx), caller, now, { action: "cancel", execution, requestId: request.requestId, reason: request.reason, outcome });
      return true;
    });
  }
}

function refetch(db: Database, executionId: string): Promise<Execution> {
  return db.fork().findOneOrFail(Execution, executionId);
}
