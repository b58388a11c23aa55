import type { Logger } from "@rgrid/common";
import type { Database } from "../db/orm";
import { Execution, Runner } from "../db/entities";
import type { AutoRetry } from "./auto-retry";
import { automaticRetryReason } from "./auto-retry";
import type { WorkNotifier } from "./work-notifier";

export interface LeaseSweeperDeps {
  db: Database;
  /** Notified when executions end here, so FollowLogs streams finish promptly. */
  logActivity: WorkNotifier;
  autoRetry: AutoRetry;
  clock: () => Date;
  logger: Logger;
  /** A runner silent for longer than this has lost the executions it held. */
  leaseTimeoutMillis: number;
  sweepIntervalMillis: number;
}

export interface SweepResult {
  /** Executions given up because their runner went silent (failed, or cancelled if asked). */
  lost: string[];
  /** Automatic retries made by this sweep. */
  retried: string[];
}

export interface LeaseSweeper {
  sweepOnce(): Promise<SweepResult>;
  /** Sweeps every interval until stopped. */
  start(): void;
  /** Stops the loop and waits for a sweep in progress. */
  stop(): Promise<void>;
}

/** Failed executions older than this are no longer looked at for a missing automatic retry. */
const PENDING_RETRY_HORIZON_MILLIS = 24 * 3600 * 1000;
/** Bounds one sweep's work; the rest waits for the next sweep. */
const PENDING_RETRY_BATCH = 100;

// Failed executions that may be due an automatic retry but have none (their retry failed, or the
// process stopped between recording the failure and making it). Only a script failure with
// declared retry codes can qualify among script failures; the codes themselves are checked in
// code. CAST(... AS TEXT) reads the JSON column the same way on SQLite and PostgreSQL.
const MAY_BE_DUE_A_RETRY = `e.auto_retry_number < e.max_retries
  and (e.failure_kind in ('runner_lost', 'infrastructure') or cast(e.retry_on_exit_codes as text) <> '[]')
  and not exists (select 1 from executions retry where retry.retry_of = e.id)`;

/**
 * Ends a running execution its runner no longer runs: failed "runner lost: <reason>" (so it is
 * retried automatically), or cancelled if its owner had asked for that. True when this call
 * changed it; conditional on the row still being running on that runner, so another replica or
 * a late report getting there first is harmless.
 */
export async function giveUpExecution(
  db: Database,
  execution: Pick<Execution, "id" | "runnerId">,
  reason: string,
  now: Date,
): Promise<boolean> {
  const em = db.fork();
  const held = { id: execution.id, status: "running" as const, runnerId: execution.runnerId };
  const failed = await em.nativeUpdate(
    Execution,
    { ...held, cancelRequestedAt: null },
    { status: "failed", failureKind: "runner_lost", errorMessage: `runner lost: ${reason}`, finishedAt: now },
  );
  if (failed === 1) {
    return true;
  }
  // Its owner had asked to cancel it: what they asked for is what happened.
  const cancelled = await em.nativeUpdate(
    Execution,
    { ...held, cancelRequestedAt: { $ne: null } },
    {
      status: "cancelled",
      errorMessage: `cancelled; runner ${execution.runnerId} was lost before it confirmed the cancellation`,
      finishedAt: now,
    },
  );
  return cancelled === 1;
}

/**
 * Gives up the running executions of runners that stopped heartbeating, then makes the
 * automatic retries still missing. Safe with several replicas sweeping one database: each
 * status change is conditional on the row still being running on that runner, and each
 * automatic retry is keyed by the failed execution's id.
 */
export function createLeaseSweeper(deps: LeaseSweeperDeps): LeaseSweeper {
  const { db, clock, logger } = deps;
  let timer: NodeJS.Timeout | undefined;
  let inProgress: Promise<unknown> | undefined;
  let stopped = false;

  async function giveUpLostExecutions(now: Date): Promise<string[]> {
    const em = db.fork();
    const running = await em.find(Execution, { status: "running" }, { fields: ["id", "runnerId"] });
    if (running.length === 0) {
      return [];
    }
    const runnerIds = [...new Set(running.map((execution) => execution.runnerId as string))];
    const cutoff = new Date(now.getTime() - deps.leaseTimeoutMillis);
    const alive = await em.find(Runner, { id: { $in: runnerIds }, lastSeenAt: { $gte: cutoff } }, { fields: ["id"] });
    const aliveIds = new Set(alive.map((runner) => runner.id));
    const lost: string[] = [];
    const silence = `sent no heartbeat for more than ${deps.leaseTimeoutMillis / 1000} s`;
    for (const execution of running) {
      const reason = `runner ${execution.runnerId} ${silence}`;
      if (!aliveIds.has(execution.runnerId as string) && (await giveUpExecution(db, execution, reason, now))) {
        lost.push(execution.id);
      }
    }
    if (lost.length > 0) {
      deps.logActivity.notify();
      logger.warn("gave up executions of silent runners", { executionIds: lost });
    }
    return lost;
  }

  async function makeMissingRetries(now: Date): Promise<string[]> {
    const candidates = await db
      .fork()
      .createQueryBuilder(Execution, "e")
      .select(["id", "accountId", "status", "failureKind", "exitCode", "retryOnExitCodes", "autoRetryNumber", "maxRetries"])
      .where({ status: "failed", finishedAt: { $gte: new Date(now.getTime() - PENDING_RETRY_HORIZON_MILLIS) } })
      .andWhere(MAY_BE_DUE_A_RETRY)
      .orderBy({ finishedAt: "asc" })
      .limit(PENDING_RETRY_BATCH)
      .getResultList();
    const retried: string[] = [];
    for (const candidate of candidates.filter((execution) => automaticRetryReason(execution) !== undefined)) {
      const retryId = await deps.autoRetry(candidate);
      if (retryId !== undefined) {
        retried.push(retryId);
      }
    }
    return retried;
  }

  async function sweepOnce(): Promise<SweepResult> {
    const now = clock();
    const lost = await giveUpLostExecutions(now);
    const retried = await makeMissingRetries(now);
    return { lost, retried };
  }

  function schedule(): void {
    timer = setTimeout(() => {
      inProgress = sweepOnce()
        .catch((error: unknown) => logger.error("lease sweep failed; trying again next interval", { error }))
        .finally(() => {
          inProgress = undefined;
          if (!stopped) {
            schedule();
          }
        });
    }, deps.sweepIntervalMillis);
  }

  return {
    sweepOnce,
    start() {
      if (timer === undefined && !stopped) {
        schedule();
      }
    },
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await inProgress;
    },
  };
}
