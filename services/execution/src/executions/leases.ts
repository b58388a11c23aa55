import type { EntityManager } from "@mikro-orm/knex";
import type { Logger } from "@rgrid/common";
import type { Database } from "../db/orm";
import { Execution, Runner } from "../db/entities";
import { RETRY_CANDIDATE_FIELDS } from "./auto-retry";
import type { AutoRetry } from "./auto-retry";
import type { ExecutionActivity } from "./execution-activity";
import type { WorkNotifier } from "./work-notifier";

export interface LeaseSweeperDeps {
  db: Database;
  /** Notified when executions end here, so FollowLogs streams finish promptly. */
  logActivity: ExecutionActivity;
  /** Notified when executions end here, so claims waiting for a batch's parallelism look again. */
  notifier: WorkNotifier;
  autoRetry: AutoRetry;
  clock: () => Date;
  logger: Logger;
  /** A runner silent for longer than this has lost the executions it held. */
  leaseTimeoutMillis: number;
  sweepIntervalMillis: number;
  /** Whether this replica runs the scheduled sweeps (cluster/leadership.ts); sweepOnce always sweeps. */
  isLeader: () => boolean;
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

/** Bounds one sweep's work; the rest waits for the next sweep. */
const SWEEP_BATCH = 100;

/** What giving up an execution needs to know of it. */
export type HeldExecution = Pick<Execution, "id" | "runnerId" | "autoRetryNumber" | "maxRetries">;
const HELD_FIELDS = ["id", "runnerId", "autoRetryNumber", "maxRetries"] as const;

/**
 * Ends a running execution its runner no longer runs: failed "runner lost: <reason>" (so it is
 * retried automatically), or cancelled if its owner had asked for that. True when this call
 * changed it; conditional on the row still being running on that runner (and, with
 * `runnerSilentSince`, on that runner still not having been seen since then), so another
 * replica, a late report or a heartbeat getting there first is harmless.
 */
export async function giveUpExecution(
  db: Database,
  execution: HeldExecution,
  reason: string,
  now: Date,
  runnerSilentSince?: Date,
): Promise<boolean> {
  const em = db.fork();
  const held = {
    id: execution.id,
    status: "running" as const,
    runnerId: runnerSilentSince === undefined ? execution.runnerId : { $in: silentRunners(em, runnerSilentSince) },
  };
  const failed = await em.nativeUpdate(
    Execution,
    { ...held, cancelRequestedAt: null },
    {
      status: "failed",
      failureKind: "runner_lost",
      errorMessage: `runner lost: ${reason}`,
      finishedAt: now,
      autoRetryPending: execution.autoRetryNumber < execution.maxRetries,
    },
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
 * The ids of the runners not seen since `cutoff`, as a subquery for `$in` (which MikroORM
 * accepts at run time; its filter types only know lists).
 */
function silentRunners(em: EntityManager, cutoff: Date): string[] {
  const subquery: unknown = em.createQueryBuilder(Runner, "r").select("r.id").where({ lastSeenAt: { $lt: cutoff } }).getKnexQuery();
  return subquery as string[];
}

export function createLeaseSweeper(deps: LeaseSweeperDeps): LeaseSweeper {
  const { db, clock, logger } = deps;
  let timer: NodeJS.Timeout | undefined;
  let inProgress: Promise<unknown> | undefined;
  let stopped = false;

  // A sweep gives nothing up until a whole lease has passed since it could last not reach the
  // database (or since this process started): runners could not heartbeat meanwhile either, and
  // deserve a lease to show they are alive.
  let trustedSince: Date | undefined = clock();

  async function giveUpLostExecutions(now: Date): Promise<string[]> {
    const em = db.fork();
    const cutoff = new Date(now.getTime() - deps.leaseTimeoutMillis);
    const silentHolders = await em.find(
      Execution,
      { status: "running", runnerId: { $in: silentRunners(em, cutoff) } },
      { fields: [...HELD_FIELDS], limit: SWEEP_BATCH, orderBy: { startedAt: "asc" } },
    );
    if (trustedSince === undefined) {
      trustedSince = now; // the database answered again
    }
    if (silentHolders.length === 0 || now.getTime() - trustedSince.getTime() < deps.leaseTimeoutMillis) {
      return [];
    }
    const lost: string[] = [];
    const silence = `sent no heartbeat for more than ${deps.leaseTimeoutMillis / 1000} s`;
    for (const execution of silentHolders) {
      const reason = `runner ${execution.runnerId} ${silence}`;
      if (await giveUpExecution(db, execution, reason, now, cutoff)) {
        lost.push(execution.id);
        deps.logActivity.notify(execution.id);
      }
    }
    if (lost.length > 0) {
      deps.notifier.notify();
      logger.warn("gave up executions of silent runners", { executionIds: lost });
    }
    return lost;
  }

  async function makeMissingRetries(): Promise<string[]> {
    const candidates = await db.fork().find(
      Execution,
      { autoRetryPending: true },
      {
        fields: [...RETRY_CANDIDATE_FIELDS],
        orderBy: { finishedAt: "asc" },
        limit: SWEEP_BATCH,
      },
    );
    const retried: string[] = [];
    for (const candidate of candidates) {
      const retryId = await deps.autoRetry(candidate);
      if (retryId !== undefined) {
        retried.push(retryId);
      }
    }
    return retried;
  }

  async function sweepOnce(): Promise<SweepResult> {
    const now = clock();
    try {
      const lost = await giveUpLostExecutions(now);
      const retried = await makeMissingRetries();
      return { lost, retried };
    } catch (error) {
      trustedSince = undefined;
      throw error;
    }
  }

  function schedule(): void {
    timer = setTimeout(() => {
      if (!deps.isLeader()) {
        schedule();
        return;
      }
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
