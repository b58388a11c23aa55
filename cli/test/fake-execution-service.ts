// An in-memory ExecutionService for the CLI's tests: it is the server the CLI talks to, not the
// code under test. It keeps requests so tests can check what the CLI sent.
import { createHash } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { create } from "@bufbuild/protobuf";
import { timestampFromMs, timestampNow } from "@bufbuild/protobuf/wkt";
import type { Timestamp } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createRouterTransport } from "@connectrpc/connect";
import type { ConnectRouter, HandlerContext, ServiceImpl, Transport } from "@connectrpc/connect";
import { bearerAuth, newExecutionId } from "@rgrid/common";
import type { MessageInitShape } from "@bufbuild/protobuf";
import {
  ErrorInfo_Reason,
  ErrorInfoSchema,
  BatchRetryItemSchema,
  ExecutionSchema,
  ExecutionService,
  FollowLogsResponseSchema,
  ExecutionStatus,
  FileInfoSchema,
  LogEntry_Stream,
  LogEntrySchema,
  RetryKind,
  TransferGrantSchema,
} from "@rgrid/proto";
import type {
  CancelExecutionRequest,
  CreateExecutionRequest,
  Execution,
  FollowLogsRequest,
  FollowLogsResponse,
  LogEntry,
  RetryBatchRequest,
  RetryExecutionRequest,
  TransferGrant,
} from "@rgrid/proto";
import { requestedBy, retryFieldsOf } from "../../test/support/execution-messages";

type Method = keyof ServiceImpl<typeof ExecutionService>;

const TERMINAL = new Set([
  ExecutionStatus.COMPLETED,
  ExecutionStatus.FAILED,
  ExecutionStatus.TIMED_OUT,
  ExecutionStatus.CANCELLED,
]);

/** How the fake plays a runner once an execution is queued: two polls, then the outcome. */
export interface ScriptedRun {
  lines: Array<[LogEntry_Stream, string]>;
  finalLine: [LogEntry_Stream, string];
  status: ExecutionStatus;
  exitCode?: number;
  /** Files the script leaves behind, collected as a runner does when it ends. */
  outputs?: Array<[name: string, content: string]>;
}

/** Where the fake's grants point; `objects` is the store's content when a test needs outputs. */
export interface GrantTarget {
  url: string;
  objects?: Map<string, Buffer>;
}

export class FakeExecutionService {
  readonly executions = new Map<string, Execution>();
  readonly logs = new Map<string, LogEntry[]>();
  readonly createRequests: CreateExecutionRequest[] = [];
  readonly retryRequests: RetryExecutionRequest[] = [];
  readonly followRequests: FollowLogsRequest[] = [];
  readonly cancelRequests: CancelExecutionRequest[] = [];
  readonly retryBatchRequests: RetryBatchRequest[] = [];
  readonly authorizations: string[] = [];
  /** Calls of a method to answer with Unavailable before serving it normally. */
  readonly outages = new Map<Method, number>();
  /** Calls of a method to serve, then answer with Unavailable as if the answer were lost on the way. */
  readonly lostAnswers = new Map<Method, number>();
  /** Called with each CreateExecution request before it is served; throws to refuse it. */
  onCreate?: (request: CreateExecutionRequest) => void;
  /** Largest GetLogs page, small enough for tests to see paging. */
  logPageSize = 1000;
  /** Most entries per FollowLogs message. */
  followPageSize = 1000;
  /** FollowLogs streams to cut (Unavailable) right after their first message. */
  followDrops = 0;
  /**
   * How many GetExecution calls after a cancel request of a running execution its runner takes to
   * stop it; undefined plays a runner that never does.
   */
  runnerStopsAfterPolls?: number;
  scriptedRun?: ScriptedRun;
  /** A run per execution, for batches whose executions end differently; wins over scriptedRun. */
  scriptedRunOf?: (execution: Execution) => ScriptedRun;
  /** Called when a scripted run ends, e.g. to play the server making an automatic retry. */
  onRunEnded?: (execution: Execution) => void;
  /** Called as each ListExecutions call starts. */
  onList?: () => void;
  /** False plays a server from before BatchCreateExecutions and BatchConfirmUploads: it answers them Unimplemented. */
  batchCalls = true;
  /** The methods called, in order. */
  readonly methodCalls: Method[] = [];
  /** Upload grants for files this picks point at a closed port: their uploads fail. */
  unreachableUploadOf?: (name: string) => boolean;
  private readonly byRequestId = new Map<string, string>();
  private readonly pollsSinceCancel = new Map<string, number>();

  constructor(private readonly storage: GrantTarget = { url: "http://127.0.0.1:9/unused" }) {}

  /** Adds an execution as if it had been created earlier. */
  seed(fields: Partial<Omit<Execution, "$typeName">> = {}): Execution {
    const id = fields.id ?? newExecutionId();
    const execution = create(ExecutionSchema, {
      status: ExecutionStatus.FAILED,
      script: { name: "process.py", sizeBytes: 10n, sha256: "a".repeat(64) },
      runtime: "python",
      attempt: 1,
      rootId: id,
      retryKind: RetryKind.ORIGINAL,
      createdAt: timestampNow(),
      ...fields,
      id,
    });
    this.executions.set(id, execution);
    return execution;
  }

  /** Adds a queued retry of `original`, as the service makes one. */
  private seedRetry(original: Execution, retryKind: RetryKind): Execution {
    return this.seed({ ...retryFieldsOf(original), status: ExecutionStatus.QUEUED, retryKind });
  }

  /**
   * Records an output as the runner would and stores its bytes. `recorded` overrides what the
   * record claims, to play an object that was changed after the runner uploaded it.
   */
  addOutput(execution: Execution, name: string, content: string | Buffer, recorded: { sha256?: string } = {}): void {
    const bytes = Buffer.from(content);
    execution.outputs.push(
      create(FileInfoSchema, {
        name,
        sizeBytes: BigInt(bytes.length),
        sha256: recorded.sha256 ?? createHash("sha256").update(bytes).digest("hex"),
      }),
    );
    if (!this.storage.objects) {
      throw new Error("this fake was built without an object store for outputs");
    }
    this.storage.objects.set(`/executions/${execution.id}/outputs/${name}`, bytes);
  }

  addLog(executionId: string, stream: LogEntry_Stream, line: string): void {
    const entries = this.logs.get(executionId) ?? [];
    entries.push(create(LogEntrySchema, { sequence: BigInt(entries.length + 1), stream, line, time: timestampNow() }));
    this.logs.set(executionId, entries);
  }

  routes(router: ConnectRouter): void {
    router.service(ExecutionService, {
      createExecution: async (request, context) => {
        this.createRequests.push(request);
        this.enter("createExecution", context);
        this.onCreate?.(request);
        const existing = this.byRequestId.get(request.requestId);
        const execution = existing
          ? this.mustGet(existing)
          : this.seed({ ...requestedBy(request), status: ExecutionStatus.UPLOADING });
        this.byRequestId.set(request.requestId, execution.id);
        return {
          execution,
          scriptUpload: this.grant(execution.id, "script", request.script?.name ?? ""),
          inputUploads: request.inputs.map((input) => this.grant(execution.id, "inputs", input.name)),
        };
      },
      confirmUploads: async (request, context) => {
        this.enter("confirmUploads", context);
        const execution = this.mustGet(request.executionId);
        if (execution.status === ExecutionStatus.UPLOADING) {
          execution.status = ExecutionStatus.QUEUED;
        }
        return { execution };
      },
      batchCreateExecutions: async (request, context) => {
        this.enter("batchCreateExecutions", context);
        if (!this.batchCalls) {
          throw new ConnectError("method not implemented", Code.Unimplemented);
        }
        // As the server: a refusal of one refuses the call, and nothing is recorded.
        request.requests.forEach((each) => this.onCreate?.(each));
        const uploaders = new Set<string>();
        const responses = request.requests.map((each) => {
          this.createRequests.push(each);
          const existing = this.byRequestId.get(each.requestId);
          const execution = existing ? this.mustGet(existing) : this.seed({ ...requestedBy(each), status: ExecutionStatus.UPLOADING });
          this.byRequestId.set(each.requestId, execution.id);
          const script = `${each.script?.sha256}/${each.script?.name}`;
          const uploadsScript = execution.status === ExecutionStatus.UPLOADING && !uploaders.has(script);
          uploaders.add(script);
          return {
            execution,
            scriptUpload: uploadsScript ? this.grant(execution.id, "script", each.script?.name ?? "") : undefined,
            inputUploads: each.inputs.map((input) => this.grant(execution.id, "inputs", input.name)),
          };
        });
        return this.deliver("batchCreateExecutions", { responses });
      },
      batchConfirmUploads: async (request, context) => {
        this.enter("batchConfirmUploads", context);
        if (!this.batchCalls) {
          throw new ConnectError("method not implemented", Code.Unimplemented);
        }
        const executions = request.executionIds.map((id) => this.mustGet(id));
        const objects = this.storage.objects;
        const scriptPath = (execution: Execution) => `/executions/${execution.id}/script/${execution.script?.name}`;
        const outcomes = executions.map((execution) => {
          if (execution.status !== ExecutionStatus.UPLOADING) {
            return { execution, refused: "" };
          }
          if (objects) {
            // As the server: a script not uploaded is copied from an execution of the call that has it.
            const source = executions.find((other) => other.script?.sha256 === execution.script?.sha256 && objects.has(scriptPath(other)));
            if (!objects.has(scriptPath(execution)) && source) {
              objects.set(scriptPath(execution), objects.get(scriptPath(source)) as Buffer);
            }
            const missing = [scriptPath(execution), ...execution.inputs.map((input) => `/executions/${execution.id}/inputs/${input.name}`)].find(
              (path) => !objects.has(path),
            );
            if (missing !== undefined) {
              return { execution, refused: `uploads of ${execution.id} are incomplete: ${missing.split("/").slice(4).join("/")} (missing)` };
            }
          }
          execution.status = ExecutionStatus.QUEUED;
          return { execution, refused: "" };
        });
        return this.deliver("batchConfirmUploads", { outcomes });
      },
      getExecution: async (request, context) => {
        this.enter("getExecution", context);
        const execution = this.mustGet(request.executionId);
        this.playScriptedRun(execution);
        this.playRunnerStopping(execution);
        return { execution };
      },
      listExecutions: async (request, context) => {
        this.enter("listExecutions", context);
        this.onList?.();
        const matching = [...this.executions.values()]
          .reverse()
          .filter((execution) => request.statuses.length === 0 || request.statuses.includes(execution.status))
          .filter((execution) => request.batchId === "" || execution.batchId === request.batchId);
        // Runs advance as a batch is polled, the way they advance as one execution is.
        matching.forEach((execution) => this.playScriptedRun(execution));
        const start = request.pageToken === "" ? 0 : Number(request.pageToken);
        const size = request.pageSize || 50;
        const end = start + size;
        return { executions: matching.slice(start, end), nextPageToken: end < matching.length ? String(end) : "" };
      },
      retryExecution: async (request, context) => {
        this.retryRequests.push(request);
        this.enter("retryExecution", context);
        const original = this.mustGet(request.executionId);
        const existing = this.byRequestId.get(request.requestId);
        if (existing) {
          return { execution: this.mustGet(existing), original };
        }
        if (!request.force && !TERMINAL.has(original.status)) {
          // As the real service does: the refusal says why, and the status, in an ErrorInfo.
          throw new ConnectError(`execution ${original.id} is not finished`, Code.FailedPrecondition, undefined, [
            { desc: ErrorInfoSchema, value: create(ErrorInfoSchema, { reason: ErrorInfo_Reason.NOT_TERMINAL, executionId: original.id, status: original.status }) },
          ]);
        }
        const retry = this.seedRetry(original, request.force ? RetryKind.FORCED : RetryKind.MANUAL);
        retry.notBefore = notBeforeOf(request);
        original.retriedAs.push(retry.id);
        this.byRequestId.set(request.requestId, retry.id);
        return { execution: retry, original };
      },
      getLogs: async (request, context) => {
        this.enter("getLogs", context);
        this.mustGet(request.executionId);
        const after = (this.logs.get(request.executionId) ?? []).filter(
          (entry) => entry.sequence > request.afterSequence,
        );
        const page = after.slice(0, this.logPageSize);
        return { entries: page, hasMore: after.length > page.length };
      },
      followLogs: (request, context) => this.followLogs(request, context),
      cancelExecution: async (request, context) => {
        this.cancelRequests.push(request);
        this.enter("cancelExecution", context);
        const execution = this.mustGet(request.executionId);
        if (TERMINAL.has(execution.status)) {
          throw new ConnectError(
            `execution ${execution.id} is already completed; there is nothing to cancel`,
            Code.FailedPrecondition,
          );
        }
        if (execution.status === ExecutionStatus.RUNNING) {
          execution.cancelRequestedAt ??= timestampNow();
        } else {
          execution.status = ExecutionStatus.CANCELLED;
          execution.finishedAt = timestampNow();
        }
        return this.deliver("cancelExecution", { execution });
      },
      retryBatch: async (request, context) => {
        this.retryBatchRequests.push(request);
        this.enter("retryBatch", context);
        const items = [...this.executions.values()]
          .filter((execution) => execution.batchId === request.batchId)
          .filter((execution) => {
            const earlier = this.byRequestId.get(`batch:${request.requestId}:${execution.id}`);
            return execution.retriedAs.length === 0 || (earlier !== undefined && execution.retriedAs.includes(earlier));
          })
          .map((original) => this.retryBatchItem(original, request));
        return {
          items,
          retriedCount: items.filter((item) => item.retry !== undefined).length,
          skippedCount: items.filter((item) => item.retry === undefined).length,
        };
      },
      getOutputDownloads: async (request, context) => {
        this.enter("getOutputDownloads", context);
        const execution = this.mustGet(request.executionId);
        return {
          outputs: execution.outputs,
          downloads: execution.outputs.map((output) => this.grant(execution.id, "outputs", output.name, "GET")),
        };
      },
    });
  }

  /**
   * Plays the server's stream: entries after the requested sequence, then, while the execution
   * is not terminal, the scripted run's next step (or whatever a test changes), ending with a
   * message carrying the terminal status.
   */
  private async *followLogs(
    request: FollowLogsRequest,
    context: HandlerContext,
  ): AsyncGenerator<MessageInitShape<typeof FollowLogsResponseSchema>> {
    this.followRequests.push(request);
    this.enter("followLogs", context);
    const execution = this.mustGet(request.executionId);
    const cutAfterFirstMessage = this.followDrops > 0;
    if (cutAfterFirstMessage) {
      this.followDrops--;
    }
    let after = request.afterSequence;
    for (;;) {
      // Status first: once it is terminal, the entries read after it are all there will be.
      const status = execution.status;
      const pending = (this.logs.get(execution.id) ?? []).filter((entry) => entry.sequence > after);
      const messages: FollowLogsResponse["entries"][] = [];
      for (let start = 0; start < pending.length; start += this.followPageSize) {
        messages.push(pending.slice(start, start + this.followPageSize));
      }
      if (messages.length === 0 && TERMINAL.has(status)) {
        messages.push([]);
      }
      for (const entries of messages) {
        yield { entries, status };
        after = entries.at(-1)?.sequence ?? after;
        if (cutAfterFirstMessage) {
          throw new ConnectError("connection lost", Code.Unavailable);
        }
      }
      if (TERMINAL.has(status)) {
        return;
      }
      if (this.scriptedRun || this.scriptedRunOf) {
        this.playScriptedRun(execution);
      } else {
        await sleep(5);
      }
    }
  }

  private retryBatchItem(original: Execution, request: RetryBatchRequest): MessageInitShape<typeof BatchRetryItemSchema> {
    if (!TERMINAL.has(original.status)) {
      return { original, skipped: original.status === ExecutionStatus.RUNNING ? "still running" : "still queued" };
    }
    const failed = original.status === ExecutionStatus.FAILED || original.status === ExecutionStatus.TIMED_OUT;
    if (request.failedOnly && !failed) {
      return { original, skipped: "completed" };
    }
    const key = `batch:${request.requestId}:${original.id}`;
    const earlier = this.byRequestId.get(key);
    if (earlier !== undefined) {
      return { original, retry: this.mustGet(earlier) };
    }
    const retry = this.seedRetry(original, RetryKind.MANUAL);
    original.retriedAs.push(retry.id);
    this.byRequestId.set(key, retry.id);
    return { original, retry };
  }

  transport(apiKey: string): Transport {
    return createRouterTransport((router) => this.routes(router), {
      transport: { interceptors: [bearerAuth(apiKey)] },
    });
  }

  private enter(method: Method, context: HandlerContext): void {
    this.authorizations.push(context.requestHeader.get("authorization") ?? "");
    this.methodCalls.push(method);
    const outages = this.outages.get(method) ?? 0;
    if (outages > 0) {
      this.outages.set(method, outages - 1);
      throw new ConnectError("connection lost", Code.Unavailable);
    }
  }

  /** The answer, unless a lost answer of `method` is due: then the work is done but the caller hears Unavailable. */
  private deliver<T>(method: Method, answer: T): T {
    const lost = this.lostAnswers.get(method) ?? 0;
    if (lost > 0) {
      this.lostAnswers.set(method, lost - 1);
      throw new ConnectError("connection lost", Code.Unavailable);
    }
    return answer;
  }

  private mustGet(id: string): Execution {
    const execution = this.executions.get(id);
    if (!execution) {
      throw new ConnectError(`execution ${id} not found`, Code.NotFound);
    }
    return execution;
  }

  private grant(executionId: string, kind: string, name: string, method = "PUT"): TransferGrant {
    const base = method === "PUT" && this.unreachableUploadOf?.(name) ? "http://127.0.0.1:9" : this.storage.url;
    return create(TransferGrantSchema, {
      name,
      method,
      url: `${base}/executions/${executionId}/${kind}/${encodeURIComponent(name)}`,
      headers: { "x-grant": "signed" },
    });
  }

  private playRunnerStopping(execution: Execution): void {
    if (execution.status !== ExecutionStatus.RUNNING || !execution.cancelRequestedAt || this.runnerStopsAfterPolls === undefined) {
      return;
    }
    const polls = (this.pollsSinceCancel.get(execution.id) ?? 0) + 1;
    this.pollsSinceCancel.set(execution.id, polls);
    if (polls >= this.runnerStopsAfterPolls) {
      execution.status = ExecutionStatus.CANCELLED;
      execution.finishedAt = timestampNow();
    }
  }

  private playScriptedRun(execution: Execution): void {
    const run = this.scriptedRunOf?.(execution) ?? this.scriptedRun;
    if (!run) {
      return;
    }
    if (execution.status === ExecutionStatus.QUEUED) {
      execution.status = ExecutionStatus.RUNNING;
      execution.startedAt = timestampNow();
      for (const [stream, line] of run.lines) {
        this.addLog(execution.id, stream, line);
      }
    } else if (execution.status === ExecutionStatus.RUNNING) {
      // Logged before the result, as a runner does, so the CLI must drain after seeing the end.
      this.addLog(execution.id, ...run.finalLine);
      execution.status = run.status;
      execution.exitCode = run.exitCode;
      execution.finishedAt = timestampNow();
      for (const [name, content] of run.outputs ?? []) {
        this.addOutput(execution, name, content);
      }
      this.onRunEnded?.(execution);
    }
  }
}

/** A delayed retry's time as the service records it: a delay counts from now on its clock. */
function notBeforeOf(request: RetryExecutionRequest): Timestamp | undefined {
  const { queuedUntil } = request;
  if (queuedUntil.case === "delay") {
    return timestampFromMs(Date.now() + Number(queuedUntil.value.seconds) * 1000 + queuedUntil.value.nanos / 1_000_000);
  }
  return queuedUntil.case === "notBefore" ? queuedUntil.value : undefined;
}
