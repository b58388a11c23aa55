import type { ServiceImpl } from "@connectrpc/connect";
import { newExecutionId } from "@rgrid/common";
import type { Logger } from "@rgrid/common";
import type { ExecutionMetrics } from "../metrics";
import type { ExecutionService, FileInfo, TransferGrant } from "@rgrid/proto";
import { linkSignals } from "../abort-signals";
import { rpcRequestId } from "../audit/record";
import { callerOf } from "../auth";
import type { Caller } from "../auth";
import type { Database } from "../db/orm";
import { Execution } from "../db/entities";
import { isUniqueViolation } from "../errors";
import { executionObjects, inputObject, outputObject, scriptObject } from "../storage";
import type { StorageGateway } from "../storage";
import { createBatchConfirmUploads } from "./batch-confirm";
import { createBatchCreateExecutions } from "./batch-create";
import { batchRetryResponse, createRetryBatch } from "./batch-retry";
import { batchSummary } from "./batch-summary";
import type { BulkRetries } from "./bulk-retry";
import { createCancelExecution } from "./cancel";
import { diffExecutions } from "./diff";
import { executionMessage, fileMessage, logEntryMessage } from "./convert";
import { createFollowLogs } from "./follow-logs";
import { listExecutionPage } from "./list";
import { originalRecord, requireCreated } from "./new-executions";
import {
  executionByRequestId,
  findOwnedExecution,
  insertExecution,
  ownedExecutionRow,
  retriedAs,
  retriedAsByOriginal,
  updateExecutionIf,
} from "./queries";
import { serverRequestId } from "./request-ids";
import { incompleteUploads, uploadProblems } from "./uploads";
import { createRetryExecution } from "./retry";
import { createRetryMany } from "./retry-many";
import { requestedNotBefore } from "./retry-delay";
import type { ExecutionActivity } from "./execution-activity";
import type { DownloadGrants } from "./download-grants";
import type { LogArchive } from "./log-archive";
import type { WorkNotifier } from "./work-notifier";

export interface ExecutionHandlerDeps {
  db: Database;
  storage: StorageGateway;
  notifier: WorkNotifier;
  /** Notified per execution when its log lines are stored or it ends; wakes its FollowLogs streams. */
  logActivity: ExecutionActivity;
  clock: () => Date;
  logger: Logger;
  /** Aborted when the service shuts down: log streams then end, and their clients reconnect. */
  stopping?: AbortSignal;
  /** Bulk retries by cause (RetryWhere), whose workers outlive the call. */
  bulkRetries: BulkRetries;
  metrics: Pick<ExecutionMetrics, "retryCreated">;
  /** Where an execution's log lines are: the database while it runs, storage once archived. */
  logArchive: LogArchive;
  /** Asked ahead for the download grants of executions queued together, which runners claim next. */
  downloadGrants: DownloadGrants;
}

const DEFAULT_LOG_LIMIT = 1000;

type ExecutionHandlers = Omit<
  ServiceImpl<typeof ExecutionService>,
  "createSession" | "getSession" | "deleteSession" | "listAuditEntries"
>;

export function createExecutionHandlers(deps: ExecutionHandlerDeps): ExecutionHandlers {
  const { db, storage, notifier, clock } = deps;
  const retryExecution = createRetryExecution(deps);
  const cancelExecution = createCancelExecution(deps);
  const followLogs = createFollowLogs(deps);
  const batchCreateExecutions = createBatchCreateExecutions(deps);
  const batchConfirmUploads = createBatchConfirmUploads(deps);
  const retryBatch = createRetryBatch({ db, retryMany: createRetryMany({ ...deps, retryExecution }) });

  /** The upload grants of an execution still waiting for its files; none once they are in. */
  async function uploadGrantsFor(execution: Execution): Promise<{ scriptUpload?: TransferGrant; inputUploads: TransferGrant[] }> {
    if (execution.status !== "uploading") {
      return { inputUploads: [] };
    }
    const grants = await storage.uploadGrants(execution.id, executionObjects(execution));
    return { scriptUpload: grants[0], inputUploads: grants.slice(1) };
  }

  /** A retry waiting for its new script version: the grant to upload it (its inputs were copied). */
  async function scriptUploadFor(retry: Execution): Promise<TransferGrant | undefined> {
    if (retry.status !== "uploading") {
      return undefined;
    }
    const [grant] = await storage.uploadGrants(retry.id, [scriptObject(retry.scriptName, retry.scriptSha256)]);
    return grant;
  }

  return {
    async createExecution(request, ctx) {
      const caller = callerOf(ctx);
      const script = request.script as FileInfo;
      const requestId = request.requestId === "" ? null : request.requestId;
      if (requestId !== null) {
        const earlier = await executionByRequestId(db, caller.accountId, requestId);
        if (earlier !== undefined) {
          return { execution: executionMessage(requireCreated(earlier, requestId)), ...(await uploadGrantsFor(earlier)) };
        }
      }

      const id = newExecutionId();
      // Grants first: if storage is down nothing is recorded, and a grant for an id that is
      // never used is harmless.
      const grants = await storage.uploadGrants(id, [
        scriptObject(script.name, script.sha256),
        ...request.inputs.map((input) => inputObject(input.name, input.sha256)),
      ]);
      const execution = originalRecord(request, { id, accountId: caller.accountId, createdAt: clock() });
      try {
        await insertExecution(db, execution);
      } catch (error) {
        const winner = requestId !== null && isUniqueViolation(error) ? await executionByRequestId(db, caller.accountId, requestId) : undefined;
        if (winner === undefined) {
          throw error;
        }
        // A concurrent create with the same request_id won; answer with its execution.
        return { execution: executionMessage(requireCreated(winner, requestId as string)), ...(await uploadGrantsFor(winner)) };
      }
      return { execution: executionMessage(execution), scriptUpload: grants[0], inputUploads: grants.slice(1) };
    },

    async confirmUploads(request, ctx) {
      const caller = callerOf(ctx);
      let execution = await ownedExecutionRow(db, caller.accountId, request.executionId);
      if (execution.status === "uploading") {
        await requireUploaded(storage, execution);
        if (await updateExecutionIf(db, execution.id, { status: "uploading" }, { status: "queued" })) {
          notifier.notify();
          // The update changed nothing but the status, and an execution queued this instant
          // has not been retried: the row already read answers, without reading it again.
          execution.status = "queued";
          return { execution: executionMessage(execution) };
        }
        // A concurrent confirm queued it first (and a runner may have claimed it since).
        execution = await db.fork().findOneOrFail(Execution, execution.id);
      }
      return { execution: executionMessage(execution, await retriedAs(db.fork(), execution.id)) };
    },

    async batchCreateExecutions(request, ctx) {
      return { responses: await batchCreateExecutions(request, callerOf(ctx).accountId) };
    },

    async batchConfirmUploads(request, ctx) {
      return { outcomes: await batchConfirmUploads(request, callerOf(ctx).accountId) };
    },

    async getExecution(request, ctx) {
      const em = db.fork();
      const execution = await findOwnedExecution(em, callerOf(ctx).accountId, request.executionId);
      return { execution: executionMessage(execution, await retriedAs(em, execution.id)) };
    },

    async listExecutions(request, ctx) {
      const em = db.fork();
      const page = await listExecutionPage(em, db.dialect, callerOf(ctx).accountId, request);
      const retries = await retriedAsByOriginal(em, page.executions.map((execution) => execution.id));
      return {
        executions: page.executions.map((execution) => executionMessage(execution, retries.get(execution.id))),
        nextPageToken: page.nextPageToken,
      };
    },

    async retryExecution(request, ctx) {
      const caller: Caller = callerOf(ctx);
      // Named field by field: a key added to a spread of the request would cost V8 a new hidden
      // class on every call (new-executions.ts).
      const result = await retryExecution(caller, {
        executionId: request.executionId,
        force: request.force,
        requestId: request.requestId || serverRequestId(),
        reason: request.reason,
        notBefore: requestedNotBefore(request, clock()),
        overrides: request.overrides,
      });
      // A retry just made has not been retried itself; only a replayed one may have been.
      const retriedAsIds = result.replayed ? await retriedAs(db.fork(), result.execution.id) : [];
      return {
        execution: executionMessage(result.execution, retriedAsIds),
        original: executionMessage(result.original),
        // A re-send gets a fresh grant for as long as the script is awaited.
        scriptUpload: await scriptUploadFor(result.execution),
      };
    },

    async getLogs(request, ctx) {
      const em = db.fork();
      const execution = await findOwnedExecution(em, callerOf(ctx).accountId, request.executionId);
      // At most 10000: GetLogsRequest's rule.
      const limit = request.limit === 0 ? DEFAULT_LOG_LIMIT : request.limit;
      const lines = await deps.logArchive.readLines(em, execution, Number(request.afterSequence), limit + 1);
      return { entries: lines.slice(0, limit).map(logEntryMessage), hasMore: lines.length > limit };
    },

    async getOutputDownloads(request, ctx) {
      const execution = await findOwnedExecution(db.fork(), callerOf(ctx).accountId, request.executionId);
      if (execution.outputs.length === 0) {
        return { outputs: [], downloads: [] };
      }
      const downloads = await storage.downloadGrants(
        execution.id,
        execution.outputs.map((output) => outputObject(output.name)),
      );
      return { outputs: execution.outputs.map(fileMessage), downloads };
    },

    async *followLogs(request, ctx) {
      const stopStreaming = linkSignals(ctx.signal, deps.stopping);
      try {
        yield* followLogs(callerOf(ctx), request, stopStreaming.signal);
      } finally {
        stopStreaming.release();
      }
    },

    async cancelExecution(request, ctx) {
      const execution = await cancelExecution(callerOf(ctx), {
        executionId: request.executionId,
        reason: request.reason,
        requestId: rpcRequestId(ctx),
      });
      return { execution: executionMessage(execution, await retriedAs(db.fork(), execution.id)) };
    },

    async retryBatch(request, ctx) {
      return batchRetryResponse(await retryBatch(callerOf(ctx), { ...request, requestId: request.requestId || serverRequestId() }));
    },

    async retryWhere(request, ctx) {
      return deps.bulkRetries.retryWhere(callerOf(ctx), { ...request, requestId: request.requestId || serverRequestId() });
    },

    async getRetryOperation(request, ctx) {
      return deps.bulkRetries.getOperation(callerOf(ctx), request);
    },

    async getBatch(request, ctx) {
      return batchSummary(db.fork(), callerOf(ctx).accountId, request.batchId);
    },

    async diffExecutions(request, ctx) {
      return diffExecutions(db.fork(), deps.logArchive, callerOf(ctx).accountId, request);
    },
  };
}

/** Fails naming every file that is missing or has a size other than the declared one. */
async function requireUploaded(storage: StorageGateway, execution: Execution): Promise<void> {
  // Committing puts the uploads in place for good: no grant can change them afterwards.
  const problems = uploadProblems(execution, await storage.commitUploads(execution.id, executionObjects(execution)));
  if (problems.length > 0) {
    throw incompleteUploads(execution.id, problems);
  }
}
