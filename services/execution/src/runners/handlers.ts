import { randomHex } from "@rgrid/common";
import { create } from "@bufbuild/protobuf";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import { AssignmentSchema, Outcome } from "@rgrid/proto";
import type { Assignment, LogEntry, RunnerService } from "@rgrid/proto";
import type { Database } from "../db/orm";
import { Execution, Runner, isTerminal } from "../db/entities";
import type { ExecutionState, FailureKindName } from "../db/entities";
import { NotFoundError, PreconditionError } from "../errors";
import { isDueAutomaticRetry } from "../executions/auto-retry";
import type { AutoRetry } from "../executions/auto-retry";
import { claimNextExecution, claimWaitSeconds, nextNotBefore, releaseClaim } from "../executions/claims";
import { executionRow, updateExecutionIf } from "../executions/queries";
import { giveUpExecution } from "../executions/leases";
import type { HeldExecution } from "../executions/leases";
import { executionMessage, storedFile, streamFromWire } from "../executions/convert";
import type { ExecutionActivity } from "../executions/execution-activity";
import type { WorkNotifier } from "../executions/work-notifier";
import { linkSignals } from "../abort-signals";
import type { ExecutionMetrics } from "../metrics";
import type { DownloadGrants } from "../executions/download-grants";
import { outputObject } from "../storage";
import type { StorageGateway } from "../storage";
import { appendCappedLogs } from "./log-cap";
import { touchRunner } from "./runner-rows";

export interface RunnerHandlerDeps {
  db: Database;
  storage: StorageGateway;
  /** Where a claim's download grants come from: asked ahead for executions queued together. */
  downloadGrants: DownloadGrants;
  notifier: WorkNotifier;
  /** Notified per execution when its log lines are stored or it ends; wakes its FollowLogs streams. */
  logActivity: ExecutionActivity;
  clock: () => Date;
  defaultTimeoutSeconds: number;
  /** How long a waiting claim may wait before it looks again, in case it missed work queued by other replicas; asked before each wait. */
  recheckMillis?: () => number;
  /** Told to runners when they register. */
  lease: LeaseSettings;
  /** Log text stored per execution; later lines are dropped and one line says so. */
  maxLogBytes: number;
  /** Makes the automatic retry a failed execution is due, if any. */
  autoRetry: AutoRetry;
  /** Aborted when the service shuts down: waiting claims then answer at once, empty. */
  stopping?: AbortSignal;
  metrics: Pick<ExecutionMetrics, "claimed">;
}

export interface LeaseSettings {
  /** A runner silent for longer than this loses the executions it holds. */
  timeoutMillis: number;
  heartbeatIntervalMillis: number;
}

export const MAX_CLAIM_WAIT_MILLIS = 30_000;

/** What each reportable outcome records (validation refuses the others). */
const OUTCOME_RESULT: Partial<Record<Outcome, { status: ExecutionState; failureKind: FailureKindName | null }>> = {
  [Outcome.COMPLETED]: { status: "completed", failureKind: null },
  [Outcome.FAILED]: { status: "failed", failureKind: "script" },
  [Outcome.INFRASTRUCTURE_ERROR]: { status: "failed", failureKind: "infrastructure" },
  [Outcome.TIMED_OUT]: { status: "timed_out", failureKind: null },
  [Outcome.CANCELLED]: { status: "cancelled", failureKind: null },
};

export function createRunnerHandlers(deps: RunnerHandlerDeps): ServiceImpl<typeof RunnerService> {
  const { db, storage, notifier, logActivity, clock } = deps;
  const recheckMillis = deps.recheckMillis ?? (() => 1000);

  /** Everything the runner needs; if it cannot be handed over, the execution goes back. */
  async function assignmentFor(execution: Execution, runnerId: string, ctx: HandlerContext): Promise<Assignment> {
    try {
      const grants = await deps.downloadGrants.grantsFor(execution);
      if (ctx.signal.aborted) {
        throw new Error("claim abandoned by the runner");
      }
      return create(AssignmentSchema, {
        execution: executionMessage(execution),
        scriptDownload: grants[0],
        inputDownloads: grants.slice(1),
        runtimeName: execution.runtimeName,
        timeoutSeconds: execution.timeoutSeconds === 0 ? deps.defaultTimeoutSeconds : execution.timeoutSeconds,
      });
    } catch (error) {
      await releaseClaim(db, execution.id, runnerId, clock());
      notifier.notify();
      logActivity.notify(execution.id); // it may have ended cancelled
      throw error;
    }
  }

  /** The runner's row, seen now; NotFound (register again) for a runner this service does not know. */
  async function registeredRunner(runnerId: string): Promise<Runner> {
    const runner = await touchRunner(db, runnerId, clock());
    if (runner === undefined) {
      throw new NotFoundError(`runner ${runnerId} is not registered; register again`);
    }
    return runner;
  }

  /** Claims the runner's next execution, if one is claimable now, and hands it over. */
  async function claimNow(runner: Runner, now: Date, ctx: HandlerContext): Promise<Assignment | undefined> {
    const claimed = await claimNextExecution(db, runner.id, runner.runtimes, now, runner.sandboxWarnings);
    if (claimed === undefined) {
      return undefined;
    }
    const assignment = await assignmentFor(claimed, runner.id, ctx);
    // Only a claim handed to its runner counts; one that could not be went back to the queue.
    deps.metrics.claimed(claimWaitSeconds(claimed));
    return assignment;
  }

  /**
   * Executions this runner holds but has not listed for a whole lease: their claim's answer never
   * reached it, or it gave up reporting their end. Nothing would ever finish them, so they are
   * given up like a lost runner's (and retried automatically by the next sweep). A claim answered
   * moments ago may not be listed yet; the lease is the grace.
   */
  async function giveUpForgotten(
    held: readonly (HeldExecution & Pick<Execution, "startedAt">)[],
    listed: ReadonlySet<string>,
    runnerId: string,
    now: Date,
  ): Promise<void> {
    const graceEnd = now.getTime() - deps.lease.timeoutMillis;
    const forgotten = held.filter(
      (execution) => !listed.has(execution.id) && execution.startedAt !== null && execution.startedAt.getTime() < graceEnd,
    );
    let changed = false;
    for (const execution of forgotten) {
      if (await giveUpExecution(db, execution, `runner ${runnerId} is no longer running it`, now)) {
        logActivity.notify(execution.id);
        changed = true;
      }
    }
    if (changed) {
      notifier.notify();
    }
  }

  /** Stores a runner's log entries (those of a running execution: callers check). */
  async function storeLogEntries(executionId: string, entries: readonly LogEntry[]): Promise<void> {
    if (entries.length === 0) {
      return;
    }
    const now = clock();
    const lines = entries.map((entry) => ({
      sequence: Number(entry.sequence),
      stream: streamFromWire(entry.stream) ?? "system",
      line: entry.line,
      time: entry.time ? timestampDate(entry.time) : now,
    }));
    // A resend of stored lines changes nothing, so it wakes nobody.
    if ((await appendCappedLogs(db, executionId, lines, deps.maxLogBytes)) > 0) {
      logActivity.notify(executionId);
    }
  }

  return {
    async registerRunner(request) {
      const now = clock();
      const runner: Runner = {
        id: `runner_${randomHex(16)}`,
        name: request.name,
        // Claims match on the runtime's name; a runner offering "python:3.11" runs "python".
        runtimes: [...new Set(request.runtimes.map((runtime) => runtime.split(":")[0] as string))],
        registeredAt: now,
        lastSeenAt: now,
        sandboxWarnings: request.sandboxWarnings,
      };
      await db.fork().insert(Runner, runner);
      return {
        runnerId: runner.id,
        heartbeatIntervalMillis: deps.lease.heartbeatIntervalMillis,
        leaseTimeoutMillis: deps.lease.timeoutMillis,
        completionStoresLogs: true,
      };
    },

    async claimExecution(request, ctx) {
      const runner = await registeredRunner(request.runnerId);
      const deadline = Date.now() + Math.min(request.waitMillis, MAX_CLAIM_WAIT_MILLIS);
      const stopWaiting = linkSignals(ctx.signal, deps.stopping);
      try {
        for (;;) {
          const seenVersion = notifier.version;
          const now = clock();
          const assignment = await claimNow(runner, now, ctx);
          if (assignment !== undefined) {
            return { assignment };
          }
          const remaining = deadline - Date.now();
          if (remaining <= 0 || stopWaiting.signal.aborted) {
            return {};
          }
          // Nothing queues an execution when its backoff ends: wake for that moment ourselves.
          const backoffEnds = await nextNotBefore(db, runner.runtimes, now);
          const untilBackoffEnds = backoffEnds === undefined ? Infinity : backoffEnds.getTime() - now.getTime();
          await notifier.waitForChange(seenVersion, Math.min(remaining, recheckMillis(), untilBackoffEnds), stopWaiting.signal);
        }
      } finally {
        stopWaiting.release();
      }
    },

    async appendLogs(request) {
      const execution = await findHeldExecution(db, request.executionId, request.runnerId);
      if (execution.status !== "running") {
        // Ended without this runner (given up as lost, or its report already recorded): nothing
        // is stored after the end, and the runner, told by its heartbeat, stops sending.
        return {};
      }
      await storeLogEntries(request.executionId, request.entries);
      return {};
    },

    async createOutputUploads(request) {
      const execution = await findHeldExecution(db, request.executionId, request.runnerId);
      requireRunning(execution);
      if (request.outputs.length === 0) {
        return { uploads: [] };
      }
      const uploads = await storage.uploadGrants(
        execution.id,
        request.outputs.map((output) => outputObject(output.name)),
      );
      return { uploads };
    },

    async completeExecution(request, ctx) {
      const result = OUTCOME_RESULT[request.outcome] as { status: ExecutionState; failureKind: FailureKindName | null };
      const execution = await findHeldExecution(db, request.executionId, request.runnerId);
      const exitCode = request.exitCode ?? null;
      if (isSameOutcome(execution, result, exitCode)) {
        return {}; // a resend of a report already recorded
      }
      requireRunning(execution);
      // Before the end, which AppendLogs would refuse them after.
      await storeLogEntries(execution.id, request.finalEntries);
      const outcome = { ...result, exitCode };
      const changes = {
        ...outcome,
        errorMessage: request.errorMessage,
        outputs: request.outputs.map(storedFile),
        finishedAt: request.finishedAt ? timestampDate(request.finishedAt) : clock(),
        // Set with the failure, so the lease sweep makes the retry if this process cannot.
        autoRetryPending: isDueAutomaticRetry({ ...execution, ...outcome }),
      };
      if (!(await updateExecutionIf(db, execution.id, { status: "running", runnerId: request.runnerId }, changes))) {
        // Changed between our read and the update (a concurrent resend, or the lease sweep).
        const current = await db.fork().findOneOrFail(Execution, execution.id);
        if (!isSameOutcome(current, result, exitCode)) {
          requireRunning(current);
        }
        return {};
      }
      logActivity.notify(execution.id);
      if (execution.batchId !== null && execution.batchParallelism > 0) {
        notifier.notify(); // the batch has room for one more: waiting claims look again
      }
      // Awaited so the retry exists when the runner hears back; a failure to make it is logged
      // and left to the lease sweep, never reported to the runner, whose report is recorded.
      if (changes.autoRetryPending) {
        await deps.autoRetry({ ...execution, ...changes });
      }
      if (!request.claimNext) {
        return {};
      }
      return { next: await claimNow(await registeredRunner(request.runnerId), clock(), ctx) };
    },

    async heartbeat(request) {
      if ((await touchRunner(db, request.runnerId, clock())) === undefined) {
        throw new NotFoundError(`runner ${request.runnerId} is not registered; register again`);
      }
      const now = clock();
      const held = await db.fork().find(
        Execution,
        { runnerId: request.runnerId, status: "running" },
        { fields: ["id", "runnerId", "autoRetryNumber", "maxRetries", "cancelRequestedAt", "startedAt"] },
      );
      const heldIds = new Set(held.map((execution) => execution.id));
      await giveUpForgotten(held, new Set(request.executionIds), request.runnerId, now);
      return {
        cancelExecutionIds: held.filter((execution) => execution.cancelRequestedAt !== null).map((execution) => execution.id),
        lostExecutionIds: [...new Set(request.executionIds)].filter((id) => !heldIds.has(id)),
      };
    },
  };
}

/** The execution, if the runner holds it (claimed it); a stale or foreign runner is refused. */
async function findHeldExecution(db: Database, executionId: string, runnerId: string): Promise<Execution> {
  const execution = await executionRow(db, executionId);
  if (execution === undefined) {
    throw new NotFoundError(`execution ${executionId} not found`);
  }
  if (execution.runnerId !== runnerId) {
    throw new PreconditionError(`execution ${executionId} is not held by runner ${runnerId}`);
  }
  return execution;
}

/**
 * Whether `execution` already records this report's outcome, i.e. the report is a resend. A
 * different outcome of the same status (the sweep recorded "runner lost" before the runner's
 * own failure arrived) is not: it is refused, and the runner learns its report was not used.
 */
function isSameOutcome(
  execution: Execution,
  result: { status: ExecutionState; failureKind: FailureKindName | null },
  exitCode: number | null,
): boolean {
  return execution.status === result.status && execution.failureKind === result.failureKind && execution.exitCode === exitCode;
}

function requireRunning(execution: Execution): void {
  if (execution.status !== "running") {
    throw new PreconditionError(
      isTerminal(execution.status)
        ? `execution ${execution.id} is already ${execution.status} and cannot change`
        : `execution ${execution.id} is ${execution.status}, not running`,
    );
  }
}
