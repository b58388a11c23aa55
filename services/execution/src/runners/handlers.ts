import { randomBytes } from "node:crypto";
import { create } from "@bufbuild/protobuf";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import { Code, ConnectError } from "@connectrpc/connect";
import { validateRequest } from "@rgrid/common";
import { AssignmentSchema, Outcome } from "@rgrid/proto";
import type { Assignment, RunnerService } from "@rgrid/proto";
import type { EntityManager } from "@mikro-orm/knex";
import type { Database } from "../db/orm";
import { Execution, LogLine, Runner, isTerminal } from "../db/entities";
import type { ExecutionState } from "../db/entities";
import { NotFoundError, PreconditionError } from "../errors";
import { claimNextExecution, releaseClaim } from "../executions/claims";
import { executionMessage, storedFile, streamFromWire } from "../executions/convert";
import type { WorkNotifier } from "../executions/work-notifier";
import { executionObjects, outputObject } from "../storage";
import type { StorageGateway } from "../storage";
import {
  appendLogsRules,
  claimExecutionRules,
  completeExecutionRules,
  createOutputUploadsRules,
  registerRunnerRules,
} from "../validation";

export interface RunnerHandlerDeps {
  db: Database;
  storage: StorageGateway;
  notifier: WorkNotifier;
  /** Notified when log lines are stored or an execution ends; wakes FollowLogs streams. */
  logActivity: WorkNotifier;
  clock: () => Date;
  defaultTimeoutSeconds: number;
  /** How often a waiting claim looks again for work queued by other replicas. */
  recheckMillis?: number;
}

export const MAX_CLAIM_WAIT_MILLIS = 30_000;
const LOG_INSERT_BATCH = 500;

const OUTCOME_STATE: Partial<Record<Outcome, ExecutionState>> = {
  [Outcome.COMPLETED]: "completed",
  [Outcome.FAILED]: "failed",
  [Outcome.TIMED_OUT]: "timed_out",
};

export function createRunnerHandlers(deps: RunnerHandlerDeps): ServiceImpl<typeof RunnerService> {
  const { db, storage, notifier, clock } = deps;
  const recheckMillis = deps.recheckMillis ?? 1000;

  /** Everything the runner needs; if it cannot be handed over, the execution goes back. */
  async function assignmentFor(execution: Execution, runnerId: string, ctx: HandlerContext): Promise<Assignment> {
    try {
      const grants = await storage.downloadGrants(execution.id, executionObjects(execution));
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
      await releaseClaim(db, execution.id, runnerId);
      notifier.notify();
      throw error;
    }
  }

  return {
    async registerRunner(request) {
      validateRequest(request, registerRunnerRules);
      const em = db.fork();
      const now = clock();
      const runner = em.create(Runner, {
        id: `runner_${randomBytes(16).toString("hex")}`,
        name: request.name,
        // Claims match on the runtime's name; a runner offering "python:3.11" runs "python".
        runtimes: [...new Set(request.runtimes.map((runtime) => runtime.split(":")[0] as string))],
        registeredAt: now,
        lastSeenAt: now,
        sandboxWarnings: request.sandboxWarnings,
      });
      await em.flush();
      return { runnerId: runner.id };
    },

    async claimExecution(request, ctx) {
      validateRequest(request, claimExecutionRules);
      const em = db.fork();
      const runner = await em.findOne(Runner, request.runnerId);
      if (runner === null) {
        throw new NotFoundError(`runner ${request.runnerId} is not registered; register again`);
      }
      runner.lastSeenAt = clock();
      await em.flush();

      const deadline = Date.now() + Math.min(request.waitMillis, MAX_CLAIM_WAIT_MILLIS);
      for (;;) {
        const seenVersion = notifier.version;
        const claimed = await claimNextExecution(db, runner.id, runner.runtimes, clock());
        if (claimed !== undefined) {
          return { assignment: await assignmentFor(claimed, runner.id, ctx) };
        }
        const remaining = deadline - Date.now();
        if (remaining <= 0 || ctx.signal.aborted) {
          return {};
        }
        await notifier.waitForChange(seenVersion, Math.min(remaining, recheckMillis), ctx.signal);
      }
    },

    async appendLogs(request) {
      validateRequest(request, appendLogsRules);
      const em = db.fork();
      await findHeldExecution(em, request.executionId, request.runnerId);
      const now = clock();
      const rows = request.entries.map((entry) => ({
        executionId: request.executionId,
        sequence: Number(entry.sequence),
        stream: streamFromWire(entry.stream) ?? "system",
        line: entry.line,
        time: entry.time ? timestampDate(entry.time) : now,
      }));
      for (let start = 0; start < rows.length; start += LOG_INSERT_BATCH) {
        // A resent batch carries sequence numbers already stored: those rows are skipped.
        await em
          .createQueryBuilder(LogLine)
          .insert(rows.slice(start, start + LOG_INSERT_BATCH))
          .onConflict(["executionId", "sequence"])
          .ignore()
          .execute();
      }
      return {};
    },

    async createOutputUploads(request) {
      validateRequest(request, createOutputUploadsRules);
      const execution = await findHeldExecution(db.fork(), request.executionId, request.runnerId);
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

    async completeExecution(request) {
      validateRequest(request, completeExecutionRules);
      const target = OUTCOME_STATE[request.outcome] as ExecutionState;
      const em = db.fork();
      const execution = await findHeldExecution(em, request.executionId, request.runnerId);
      if (execution.status === target) {
        return {}; // a resend of a report already recorded
      }
      requireRunning(execution);
      const changed = await em.nativeUpdate(
        Execution,
        { id: execution.id, status: "running", runnerId: request.runnerId },
        {
          status: target,
          exitCode: request.exitCode ?? null,
          errorMessage: request.errorMessage,
          outputs: request.outputs.map(storedFile),
          finishedAt: request.finishedAt ? timestampDate(request.finishedAt) : clock(),
        },
      );
      if (changed === 0) {
        // Changed between our read and the update (a concurrent resend, or a cancel).
        const current = await db.fork().findOneOrFail(Execution, execution.id);
        if (current.status !== target) {
          requireRunning(current);
        }
      }
      return {};
    },

    // PLACEHOLDER until implemented
    async heartbeat() {
      throw new ConnectError("not implemented yet", Code.Unimplemented);
    },
  };
}

/** The execution, if the runner holds it (claimed it); a stale or foreign runner is refused. */
async function findHeldExecution(em: EntityManager, executionId: string, runnerId: string): Promise<Execution> {
  const execution = await em.findOne(Execution, executionId);
  if (execution === null) {
    throw new NotFoundError(`execution ${executionId} not found`);
  }
  if (execution.runnerId !== runnerId) {
    throw new PreconditionError(`execution ${executionId} is not held by runner ${runnerId}`);
  }
  return execution;
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
