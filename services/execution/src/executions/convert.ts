import { create } from "@bufbuild/protobuf";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import {
  ExecutionSchema,
  ExecutionStatus,
  FailureKind,
  FileInfoSchema,
  LogEntry_Stream,
  LogEntrySchema,
  RetryKind,
} from "@rgrid/proto";
import type { Execution as ExecutionMessage, ExecutionOverridesSchema, FileInfo, LogEntry } from "@rgrid/proto";
import type {
  Execution,
  ExecutionState,
  FailureKindName,
  LogLine,
  LogStreamName,
  RetryKindName,
  StoredFile,
  StoredOverrides,
} from "../db/entities";

// Between the stored records and the wire messages, in one place.

const STATUS_TO_WIRE: Record<ExecutionState, ExecutionStatus> = {
  uploading: ExecutionStatus.UPLOADING,
  queued: ExecutionStatus.QUEUED,
  running: ExecutionStatus.RUNNING,
  completed: ExecutionStatus.COMPLETED,
  failed: ExecutionStatus.FAILED,
  timed_out: ExecutionStatus.TIMED_OUT,
  cancelled: ExecutionStatus.CANCELLED,
};

const RETRY_KIND_TO_WIRE: Record<RetryKindName, RetryKind> = {
  original: RetryKind.ORIGINAL,
  manual: RetryKind.MANUAL,
  forced: RetryKind.FORCED,
  automatic: RetryKind.AUTOMATIC,
};

const FAILURE_KIND_TO_WIRE: Record<FailureKindName, FailureKind> = {
  script: FailureKind.SCRIPT,
  infrastructure: FailureKind.INFRASTRUCTURE,
  runner_lost: FailureKind.RUNNER_LOST,
};

const STREAM_TO_WIRE: Record<LogStreamName, LogEntry_Stream> = {
  stdout: LogEntry_Stream.STDOUT,
  stderr: LogEntry_Stream.STDERR,
  system: LogEntry_Stream.SYSTEM,
};

export function statusToWire(state: ExecutionState): ExecutionStatus {
  return STATUS_TO_WIRE[state];
}

export function stateFromWire(status: ExecutionStatus): ExecutionState | undefined {
  const entry = Object.entries(STATUS_TO_WIRE).find(([, wire]) => wire === status);
  return entry?.[0] as ExecutionState | undefined;
}

export function streamFromWire(stream: LogEntry_Stream): LogStreamName | undefined {
  const entry = Object.entries(STREAM_TO_WIRE).find(([, wire]) => wire === stream);
  return entry?.[0] as LogStreamName | undefined;
}

export function storedFile(file: FileInfo): StoredFile {
  return { name: file.name, sizeBytes: Number(file.sizeBytes), sha256: file.sha256 };
}

export function fileMessage(file: StoredFile): FileInfo {
  return create(FileInfoSchema, { name: file.name, sizeBytes: BigInt(file.sizeBytes), sha256: file.sha256 });
}

/** What the wire message shows of an execution: its bookkeeping columns stay inside. */
export type ExecutionOnTheWire = Omit<Execution, "accountId" | "runtimeName" | "requestId" | "logBytes" | "logsTruncated" | "autoRetryPending">;

export function executionMessage(execution: ExecutionOnTheWire, retriedAs: readonly string[] = []): ExecutionMessage {
  return create(ExecutionSchema, {
    id: execution.id,
    status: STATUS_TO_WIRE[execution.status],
    script: fileMessage({
      name: execution.scriptName,
      sizeBytes: execution.scriptSizeBytes,
      sha256: execution.scriptSha256,
    }),
    runtime: execution.runtime,
    args: execution.args,
    env: execution.env,
    inputs: execution.inputs.map(fileMessage),
    metadata: execution.metadata,
    timeoutSeconds: execution.timeoutSeconds,
    createdAt: timestampFromDate(execution.createdAt),
    startedAt: execution.startedAt ? timestampFromDate(execution.startedAt) : undefined,
    finishedAt: execution.finishedAt ? timestampFromDate(execution.finishedAt) : undefined,
    exitCode: execution.exitCode ?? undefined,
    errorMessage: execution.errorMessage,
    runnerId: execution.runnerId ?? "",
    retryOf: execution.retryOf ?? "",
    rootId: execution.rootId,
    attempt: execution.attempt,
    retryKind: RETRY_KIND_TO_WIRE[execution.retryKind],
    retriedBy: execution.retriedBy ?? "",
    retriedAs: [...retriedAs],
    outputs: execution.outputs.map(fileMessage),
    network: execution.network,
    maxRetries: execution.maxRetries,
    retryOnExitCodes: execution.retryOnExitCodes,
    batchId: execution.batchId ?? "",
    batchParallelism: execution.batchParallelism,
    failureKind: execution.failureKind ? FAILURE_KIND_TO_WIRE[execution.failureKind] : FailureKind.UNSPECIFIED,
    autoRetryNumber: execution.autoRetryNumber,
    retryReason: execution.retryReason,
    sandboxWarnings: execution.sandboxWarnings,
    cancelRequestedAt: execution.cancelRequestedAt ? timestampFromDate(execution.cancelRequestedAt) : undefined,
    notBefore: execution.notBefore ? timestampFromDate(execution.notBefore) : undefined,
    overrides: execution.overrides === null ? undefined : overridesMessage(execution.overrides),
  });
}

function overridesMessage(overrides: StoredOverrides): MessageInitShape<typeof ExecutionOverridesSchema> {
  return {
    env: (overrides.env ?? []).map((change) => ({ key: change.key, before: change.before ?? undefined, after: change.after ?? undefined })),
    args: overrides.args,
    timeout: overrides.timeout,
    runtime: overrides.runtime,
    script: overrides.script && { before: fileMessage(overrides.script.before), after: fileMessage(overrides.script.after) },
  };
}

export function logEntryMessage(line: LogLine): LogEntry {
  return create(LogEntrySchema, {
    sequence: BigInt(line.sequence),
    stream: STREAM_TO_WIRE[line.stream],
    line: line.line,
    time: timestampFromDate(line.time),
  });
}
