// An in-memory ExecutionService with real handlers over fake data, served to the console through
// createRouterTransport: the components talk Connect to it exactly as to execution-service.
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createRouterTransport, type Interceptor, type ServiceImpl, type Transport } from "@connectrpc/connect";
import {
  AuditAction,
  AuditEntrySchema,
  DiffChange,
  ExecutionSchema,
  ExecutionService,
  ExecutionStatus,
  LogEntrySchema,
  LogDiff_Result,
  LogEntry_Stream,
  RetryKind,
  type DiffExecutionsResponse,
  type DiffExecutionsResponseSchema,
  type FollowLogsRequest,
  type FollowLogsResponseSchema,
  type RetryBatchResponseSchema,
  type BatchRetryItemSchema,
  type AuditEntry,
  type Execution,
  type LogEntry,
} from "../src/proto";
import { retryFieldsOf } from "../../test/support/execution-messages";

type Handlers = ServiceImpl<typeof ExecutionService>;
/** The fields of an execution as a plain object (nested messages may be plain objects too). */
export type ExecutionInit = Exclude<MessageInitShape<typeof ExecutionSchema>, Execution>;
export type MethodName = keyof Handlers;

export type RecordedRequest = { method: MethodName; request: Record<string, unknown> };

const terminal = new Set([ExecutionStatus.COMPLETED, ExecutionStatus.FAILED, ExecutionStatus.TIMED_OUT, ExecutionStatus.CANCELLED]);

export const VALID_API_KEY = "rgk_test_valid_key";
export const ACCOUNT_NAME = "alice";

let idCounter = 0;
/** Ids shaped like the real ones (exec_ + 32 hex), unique and ordered within a test run. */
export function makeId(prefix: "exec" | "batch" | "audit"): string {
  idCounter++;
  return `${prefix}_${idCounter.toString(16).padStart(32, "0")}`;
}

export class FakeGrid {
  /** In creation order; ListExecutions returns them newest first. */
  readonly executions: Execution[] = [];
  readonly logs = new Map<string, LogEntry[]>();
  /** In the order they were recorded; ListAuditEntries returns them newest first. */
  readonly audit: AuditEntry[] = [];
  readonly requests: RecordedRequest[] = [];
  signedIn = true;
  readonly signInTokens = new Set<string>();
  private readonly retriesByRequestId = new Map<string, string>();
  private readonly batchRetries = new Map<string, MessageInitShape<typeof RetryBatchResponseSchema>>();
  private readonly failures = new Map<MethodName, ConnectError[]>();
  private readonly logWaiters = new Set<() => void>();
  private fetchFailures = 0;
  /** FollowLogs streams break after sending this many messages, once each (then reset). */
  breakStreamAfterMessages: number | undefined;
  private clock = Date.parse("2025-03-04T10:00:00Z");
  /** How DiffExecutions says the two executions compare; every part the same unless a test says otherwise. */
  diffParts: Omit<Exclude<MessageInitShape<typeof DiffExecutionsResponseSchema>, DiffExecutionsResponse>, "a" | "b"> = {};

  now(): number {
    return this.clock;
  }

  add(init: ExecutionInit = {}): Execution {
    this.clock += 1000;
    const id = init.id ?? makeId("exec");
    const status = init.status ?? ExecutionStatus.COMPLETED;
    const execution = create(ExecutionSchema, {
      script: { name: "process.py", sizeBytes: 120n, sha256: "ab12cd34ef56".padEnd(64, "0") },
      runtime: "python",
      args: ["input.json"],
      env: { API_TOKEN: "secret-value", MODE: "fast" },
      inputs: [{ name: "input.json", sizeBytes: 2048n, sha256: "f00d".padEnd(64, "1") }],
      timeoutSeconds: 300,
      createdAt: timestampFromMs(this.clock),
      startedAt: status === ExecutionStatus.QUEUED || status === ExecutionStatus.UPLOADING ? undefined : timestampFromMs(this.clock + 500),
      finishedAt: terminal.has(status) ? timestampFromMs(this.clock + 2500) : undefined,
      exitCode: status === ExecutionStatus.COMPLETED ? 0 : status === ExecutionStatus.FAILED ? 1 : undefined,
      attempt: 1,
      retryKind: RetryKind.ORIGINAL,
      runnerId: "runner-1",
      ...init,
      id,
      status,
      rootId: init.rootId ?? id,
    });
    this.executions.push(execution);
    return execution;
  }

  /** Records an entry about `executionId`'s lineage, as the service does for each action. */
  record(action: AuditAction, executionId: string, fields: { actor?: string; reason?: string; outcome?: string; requestId?: string } = {}): AuditEntry {
    this.clock += 1000;
    const execution = this.find(executionId);
    const entry = create(AuditEntrySchema, {
      id: makeId("audit"),
      accountId: "acct_1",
      actor: "key_alice",
      action,
      executionId,
      rootId: execution.rootId,
      requestId: crypto.randomUUID(),
      createdAt: timestampFromMs(this.clock),
      ...fields,
    });
    this.audit.push(entry);
    return entry;
  }

  find(id: string): Execution {
    const execution = this.executions.find((candidate) => candidate.id === id);
    if (!execution) throw new ConnectError(`execution ${id} not found`, Code.NotFound);
    return execution;
  }

  appendLogs(executionId: string, lines: Array<{ stream?: LogEntry_Stream; line: string }>): void {
    const entries = this.logs.get(executionId) ?? [];
    for (const { stream = LogEntry_Stream.STDOUT, line } of lines) {
      entries.push(create(LogEntrySchema, { sequence: BigInt(entries.length + 1), stream, line, time: timestampFromMs(this.clock) }));
    }
    this.logs.set(executionId, entries);
    this.wakeLogs();
  }

  finish(executionId: string, status: ExecutionStatus, exitCode?: number): void {
    const execution = this.find(executionId);
    execution.status = status;
    execution.exitCode = exitCode;
    execution.finishedAt = timestampFromMs(this.clock);
    this.wakeLogs();
  }

  /** The next calls of `method` fail with these errors, one each, before it answers again. */
  failNext(method: MethodName, ...errors: ConnectError[]): void {
    this.failures.set(method, [...(this.failures.get(method) ?? []), ...errors]);
  }

  requestsOf(method: MethodName): Array<Record<string, unknown>> {
    return this.requests.filter((recorded) => recorded.method === method).map((recorded) => recorded.request);
  }

  /** The next calls fail in the client as fetch does when the network is down (a TypeError). */
  failFetchNext(count: number): void {
    this.fetchFailures += count;
  }

  transport(): Transport {
    const networkDown: Interceptor = (next) => (request) => {
      if (this.fetchFailures > 0) {
        this.fetchFailures--;
        throw new TypeError("Failed to fetch");
      }
      return next(request);
    };
    return createRouterTransport(({ service }) => service(ExecutionService, this.handlers()), {
      transport: { interceptors: [networkDown] },
    });
  }

  private wakeLogs(): void {
    for (const wake of [...this.logWaiters]) wake();
  }

  private waitForLogs(signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const wake = () => {
        this.logWaiters.delete(wake);
        resolve();
      };
      this.logWaiters.add(wake);
      signal.addEventListener("abort", wake, { once: true });
    });
  }

  /** Called as each request arrives, before it is answered. */
  onRequest: ((method: MethodName) => void) | undefined;

  private enter(method: MethodName, request: object, authenticated = true): void {
    this.requests.push({ method, request: { ...request } as Record<string, unknown> });
    this.onRequest?.(method);
    const failure = this.failures.get(method)?.shift();
    if (failure) throw failure;
    if (authenticated && !this.signedIn) throw new ConnectError("sign in to use the console", Code.Unauthenticated);
  }

  private withRetriedAs(execution: Execution): Execution {
    const copy = create(ExecutionSchema, execution);
    copy.retriedAs = this.executions.filter((candidate) => candidate.retryOf === execution.id).map((candidate) => candidate.id);
    return copy;
  }

  private createRetry(original: Execution, kind: RetryKind): Execution {
    return this.add({ ...retryFieldsOf(original), status: ExecutionStatus.QUEUED, runnerId: "", retryKind: kind, retriedBy: "key_alice" });
  }

  /** The ExecutionService implementation over this grid. */
  handlers(): Partial<Handlers> {
    return {
      createSession: async (request) => {
        this.enter("createSession", request, false);
        const credential = request.credential;
        if (credential.case === "apiKey" && credential.value === VALID_API_KEY) {
          this.signedIn = true;
        } else if (credential.case === "signInToken" && this.signInTokens.delete(credential.value)) {
          this.signedIn = true;
        } else if (credential.case === "signInToken") {
          throw new ConnectError("sign-in link already used or expired", Code.Unauthenticated);
        } else {
          throw new ConnectError("unknown API key", Code.Unauthenticated);
        }
        return { session: { accountId: "acct_1", accountName: ACCOUNT_NAME, expiresAt: timestampFromMs(this.clock + 3_600_000) } };
      },
      getSession: async (request) => {
        this.enter("getSession", request);
        return { session: { accountId: "acct_1", accountName: ACCOUNT_NAME } };
      },
      deleteSession: async (request) => {
        this.enter("deleteSession", request);
        this.signedIn = false;
        return {};
      },
      getExecution: async (request) => {
        this.enter("getExecution", request);
        return { execution: this.withRetriedAs(this.find(request.executionId)) };
      },
      listExecutions: async (request) => {
        this.enter("listExecutions", request);
        const pageSize = request.pageSize || 50;
        let matching = [...this.executions].reverse();
        if (request.statuses.length) matching = matching.filter((e) => request.statuses.includes(e.status));
        if (request.batchId) matching = matching.filter((e) => e.batchId === request.batchId);
        if (request.scriptName) matching = matching.filter((e) => e.script?.name.includes(request.scriptName));
        if (request.rootId) matching = matching.filter((e) => e.rootId === request.rootId);
        if (request.unresolved) {
          matching = matching.filter(
            (e) =>
              (e.status === ExecutionStatus.FAILED || e.status === ExecutionStatus.TIMED_OUT) &&
              !this.executions.some((other) => other.rootId === e.rootId && other.status === ExecutionStatus.COMPLETED),
          );
        }
        // Keyset: the token names the last execution of the previous page.
        let start = 0;
        if (request.pageToken) {
          const after = request.pageToken.replace(/^after:/, "");
          start = matching.findIndex((e) => e.id === after) + 1;
          if (start === 0) throw new ConnectError("page_token: not a token of this listing", Code.InvalidArgument);
        }
        const page = matching.slice(start, start + pageSize);
        const more = start + pageSize < matching.length;
        return { executions: page, nextPageToken: more ? `after:${page[page.length - 1]?.id}` : "" };
      },
      retryExecution: async (request) => {
        this.enter("retryExecution", request);
        const previous = this.retriesByRequestId.get(request.requestId);
        const original = this.find(request.executionId);
        if (previous) return { execution: this.find(previous), original };
        if (!terminal.has(original.status) && !request.force) {
          throw new ConnectError(`execution ${original.id} is not finished; retry with force to run it again anyway`, Code.FailedPrecondition);
        }
        const forced = request.force && !terminal.has(original.status);
        const retry = this.createRetry(original, forced ? RetryKind.FORCED : RetryKind.MANUAL);
        this.retriesByRequestId.set(request.requestId, retry.id);
        this.record(forced ? AuditAction.FORCED_RETRY : AuditAction.RETRY, original.id, {
          reason: request.reason,
          outcome: retry.id,
          requestId: request.requestId,
        });
        return { execution: retry, original };
      },
      cancelExecution: async (request) => {
        this.enter("cancelExecution", request);
        const execution = this.find(request.executionId);
        if (terminal.has(execution.status)) {
          throw new ConnectError(`execution ${execution.id} already finished`, Code.FailedPrecondition);
        }
        if (execution.status === ExecutionStatus.RUNNING) execution.cancelRequestedAt = timestampFromMs(this.clock);
        else this.finish(execution.id, ExecutionStatus.CANCELLED);
        return { execution };
      },
      listAuditEntries: async (request) => {
        this.enter("listAuditEntries", request);
        const pageSize = request.pageSize || 50;
        let matching = [...this.audit].reverse();
        if (request.action) matching = matching.filter((entry) => entry.action === request.action);
        if (request.executionId) {
          const rootId = this.find(request.executionId).rootId;
          matching = matching.filter((entry) => entry.rootId === rootId);
        }
        let start = 0;
        if (request.pageToken) {
          const after = request.pageToken.replace(/^after:/, "");
          start = matching.findIndex((entry) => entry.id === after) + 1;
          if (start === 0) throw new ConnectError("page_token: not a token of this listing", Code.InvalidArgument);
        }
        const page = matching.slice(start, start + pageSize);
        const more = start + pageSize < matching.length;
        return { entries: page, nextPageToken: more ? `after:${page[page.length - 1]?.id}` : "" };
      },
      diffExecutions: async (request) => {
        this.enter("diffExecutions", request);
        const side = (execution: Execution) => ({
          executionId: execution.id,
          rootId: execution.rootId,
          attempt: execution.attempt,
          script: execution.script,
          args: execution.args,
          runtime: execution.runtime,
          timeoutSeconds: execution.timeoutSeconds,
          network: execution.network,
          runnerId: execution.runnerId,
          sandboxWarnings: execution.sandboxWarnings,
          status: execution.status,
          exitCode: execution.exitCode,
          failureKind: execution.failureKind,
          errorMessage: execution.errorMessage,
          duration: { seconds: 2n },
        });
        const same = DiffChange.SAME;
        return {
          a: side(this.find(request.executionA)),
          b: side(this.find(request.executionB)),
          script: same,
          args: same,
          runtime: same,
          timeout: same,
          network: same,
          runner: same,
          sandboxWarnings: same,
          outcome: same,
          logs: { result: LogDiff_Result.SAME },
          ...this.diffParts,
        };
      },
      getBatch: async (request) => {
        this.enter("getBatch", request);
        const members = this.executions.filter((e) => e.batchId === request.batchId);
        if (members.length === 0) throw new ConnectError(`batch ${request.batchId} not found`, Code.NotFound);
        const counts = new Map<ExecutionStatus, number>();
        for (const member of members) counts.set(member.status, (counts.get(member.status) ?? 0) + 1);
        return {
          batchId: request.batchId,
          total: members.length,
          counts: [...counts.entries()].sort(([a], [b]) => a - b).map(([status, count]) => ({ status, count })),
          createdAt: members[0]?.createdAt,
        };
      },
      retryBatch: async (request) => {
        this.enter("retryBatch", request);
        const previous = this.batchRetries.get(request.requestId);
        if (previous) return previous;
        const members = this.executions.filter((e) => e.batchId === request.batchId);
        const items: Array<MessageInitShape<typeof BatchRetryItemSchema>> = [];
        let retried = 0;
        for (const original of members) {
          if (original.status !== ExecutionStatus.FAILED && original.status !== ExecutionStatus.TIMED_OUT) continue;
          const existing = this.executions.find((e) => e.retryOf === original.id);
          if (existing) {
            items.push({ original, skipped: `already retried as ${existing.id}` });
            continue;
          }
          items.push({ original, retry: this.createRetry(original, RetryKind.MANUAL) });
          retried++;
        }
        const response = { items, retriedCount: retried, skippedCount: items.length - retried };
        this.batchRetries.set(request.requestId, response);
        return response;
      },
      getOutputDownloads: async (request) => {
        this.enter("getOutputDownloads", request);
        const execution = this.find(request.executionId);
        return {
          outputs: execution.outputs,
          downloads: execution.outputs.map((output) => ({
            name: output.name,
            method: "GET",
            url: `https://storage.test/${execution.id}/outputs/${output.name}?signature=abc`,
            expiresAt: timestampFromMs(Date.now() + 15 * 60_000),
          })),
        };
      },
      followLogs: (request, context) => this.followLogs(request, context.signal),
    };
  }

  private async *followLogs(request: FollowLogsRequest, signal: AbortSignal): AsyncGenerator<MessageInitShape<typeof FollowLogsResponseSchema>> {
    this.enter("followLogs", request);
    this.find(request.executionId);
    let after = request.afterSequence;
    let sent = 0;
    for (;;) {
      const entries = (this.logs.get(request.executionId) ?? []).filter((entry) => entry.sequence > after);
      const status = this.find(request.executionId).status;
      if (entries.length > 0) {
        if (this.breakStreamAfterMessages !== undefined && sent >= this.breakStreamAfterMessages) {
          this.breakStreamAfterMessages = undefined;
          throw new ConnectError("stream reset by peer", Code.Unavailable);
        }
        // Small messages, so that a broken stream can break between them.
        const batch = entries.slice(0, 100);
        after = batch[batch.length - 1]?.sequence ?? after;
        sent++;
        yield { entries: batch, status };
        continue;
      }
      if (terminal.has(status)) return;
      await this.waitForLogs(signal);
      if (signal.aborted) return;
    }
  }
}
