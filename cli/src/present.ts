// The one mapping from protobuf messages to what users read: status names, the JSON view of an
// execution, times and durations.
import { timestampDate } from "@bufbuild/protobuf/wkt";
import type { Timestamp } from "@bufbuild/protobuf/wkt";
import { ExecutionStatus, FailureKind, LogEntry_Stream, RetryKind } from "@rgrid/proto/execution";
import type { Execution, ExecutionOverrides, FileInfo, LogEntry } from "@rgrid/proto/execution";
import { STATUS_CHOICES } from "./status-names";
import type { StatusChoice } from "./status-names";

// Each name is the enum member's own name in lower case, so the two cannot drift apart unnoticed:
// a renamed member fails the type check of this line.
const STATUS_BY_NAME: ReadonlyMap<string, ExecutionStatus> = new Map(
  STATUS_CHOICES.map((name) => [name, ExecutionStatus[name.toUpperCase() as Uppercase<StatusChoice>]]),
);

const STATUS_NAMES: ReadonlyMap<ExecutionStatus, string> = new Map([
  [ExecutionStatus.UNSPECIFIED, "unspecified"],
  ...[...STATUS_BY_NAME].map(([name, status]): [ExecutionStatus, string] => [status, name]),
]);

const TERMINAL: ReadonlySet<ExecutionStatus> = new Set([
  ExecutionStatus.COMPLETED,
  ExecutionStatus.FAILED,
  ExecutionStatus.TIMED_OUT,
  ExecutionStatus.CANCELLED,
]);

const RETRY_KIND_NAMES: ReadonlyMap<RetryKind, string> = new Map([
  [RetryKind.ORIGINAL, "original"],
  [RetryKind.MANUAL, "manual"],
  [RetryKind.FORCED, "forced"],
  [RetryKind.AUTOMATIC, "automatic"],
]);

const FAILURE_KIND_NAMES: ReadonlyMap<FailureKind, string> = new Map([
  [FailureKind.SCRIPT, "script"],
  [FailureKind.INFRASTRUCTURE, "infrastructure"],
  [FailureKind.RUNNER_LOST, "runner_lost"],
]);

const STREAM_NAMES: ReadonlyMap<LogEntry_Stream, string> = new Map([
  [LogEntry_Stream.STDOUT, "stdout"],
  [LogEntry_Stream.STDERR, "stderr"],
  [LogEntry_Stream.SYSTEM, "system"],
]);

export function statusName(status: ExecutionStatus): string {
  // A status added to the proto after this CLI was built still prints as something readable.
  return STATUS_NAMES.get(status) ?? `status_${status}`;
}

/** The status in a sentence: "timed out" rather than "timed_out". */
export function readableStatus(status: ExecutionStatus): string {
  return statusName(status).replace(/_/g, " ");
}

/** The failure kind as `--json` and `status` name it, or undefined when the execution has none. */
export function failureKindName(kind: FailureKind): string | undefined {
  return FAILURE_KIND_NAMES.get(kind);
}

/** The status for a `--status` name, or undefined when the name is not one of STATUS_CHOICES. */
export function parseStatusName(name: string): ExecutionStatus | undefined {
  return STATUS_BY_NAME.get(name);
}

export function isTerminal(status: ExecutionStatus): boolean {
  return TERMINAL.has(status);
}

export interface FileView {
  name: string;
  size_bytes: number;
  sha256: string;
}

/**
 * The plain JSON form of an execution that every `--json` output uses: a key per field of the
 * message, named as in the proto (all but retried_by, which it has never shown). Its test checks
 * the keys against the proto, so a field added there is not left out here unnoticed.
 */
export function executionView(execution: Execution) {
  return {
    id: execution.id,
    status: statusName(execution.status),
    script: execution.script?.name ?? "",
    runtime: execution.runtime,
    args: [...execution.args],
    env: { ...execution.env },
    inputs: execution.inputs.map(fileView),
    metadata: { ...execution.metadata },
    timeout_seconds: execution.timeoutSeconds,
    created_at: isoTime(execution.createdAt),
    started_at: isoTime(execution.startedAt),
    finished_at: isoTime(execution.finishedAt),
    exit_code: execution.exitCode ?? null,
    error_message: execution.errorMessage || null,
    runner_id: execution.runnerId || null,
    retry_of: execution.retryOf || null,
    root_id: execution.rootId || null,
    attempt: execution.attempt,
    retry_kind: RETRY_KIND_NAMES.get(execution.retryKind) ?? null,
    retried_as: [...execution.retriedAs],
    outputs: execution.outputs.map(fileView),
    network: execution.network,
    max_retries: execution.maxRetries,
    retry_on_exit_codes: [...execution.retryOnExitCodes],
    batch_id: execution.batchId || null,
    batch_parallelism: execution.batchParallelism,
    failure_kind: failureKindName(execution.failureKind) ?? null,
    auto_retry_number: execution.autoRetryNumber,
    retry_reason: execution.retryReason || null,
    sandbox_warnings: [...execution.sandboxWarnings],
    cancel_requested_at: isoTime(execution.cancelRequestedAt),
    not_before: isoTime(execution.notBefore),
    overrides: overridesView(execution.overrides),
  };
}

/** A retry's changes with their values, as the server recorded them; null for none. */
function overridesView(overrides: ExecutionOverrides | undefined) {
  if (overrides === undefined) {
    return null;
  }
  const { args, timeout, runtime, script } = overrides;
  const file = (info: FileInfo | undefined) => (info === undefined ? null : fileView(info));
  return {
    env: overrides.env.map((change) => ({ key: change.key, before: change.before ?? null, after: change.after ?? null })),
    args: args ? { before: [...args.before], after: [...args.after] } : null,
    timeout_seconds: timeout ? { before: timeout.before, after: timeout.after } : null,
    runtime: runtime ? { before: runtime.before, after: runtime.after } : null,
    script: script ? { before: file(script.before), after: file(script.after) } : null,
  };
}

export type ExecutionView = ReturnType<typeof executionView>;

export interface LogEntryView {
  sequence: number;
  stream: string;
  line: string;
  time: string | null;
}

export function logEntryView(entry: LogEntry): LogEntryView {
  return {
    sequence: Number(entry.sequence),
    stream: STREAM_NAMES.get(entry.stream) ?? "unspecified",
    line: entry.line,
    time: isoTime(entry.time),
  };
}

function fileView(file: FileInfo): FileView {
  return { name: file.name, size_bytes: Number(file.sizeBytes), sha256: file.sha256 };
}

function isoTime(timestamp: Timestamp | undefined): string | null {
  return timestamp ? timestampDate(timestamp).toISOString() : null;
}

/** "2025-01-31 14:05:09 UTC": ISO order, readable, no milliseconds. */
export function displayTime(timestamp: Timestamp | undefined): string | undefined {
  if (!timestamp) {
    return undefined;
  }
  return `${timestampDate(timestamp).toISOString().slice(0, 19).replace("T", " ")} UTC`;
}

/**
 * "2025-03-01 15:05:09 +01:00": the local time, for times a user chose in local time
 * (`retry --at 15:05`), with its offset so that it is never read as another zone's.
 */
export function localTime(timestamp: Timestamp): string {
  const date = timestampDate(timestamp);
  const offsetMinutes = -date.getTimezoneOffset();
  const offset = `${offsetMinutes < 0 ? "-" : "+"}${pad2(Math.floor(Math.abs(offsetMinutes) / 60))}:${pad2(Math.abs(offsetMinutes) % 60)}`;
  const day = `${date.getFullYear()}-${pad2(date.getMonth() + 1)}-${pad2(date.getDate())}`;
  return `${day} ${pad2(date.getHours())}:${pad2(date.getMinutes())}:${pad2(date.getSeconds())} ${offset}`;
}

/**
 * "Queued until 2025-03-01 15:05:09 +01:00" for a queued execution that may not start yet (a
 * delayed retry, an automatic retry's backoff), so it does not look stuck; undefined otherwise.
 */
export function queuedUntilLine(execution: Execution, now: Date): string | undefined {
  if (execution.status !== ExecutionStatus.QUEUED || !execution.notBefore) {
    return undefined;
  }
  return timestampDate(execution.notBefore).getTime() > now.getTime() ? `Queued until ${localTime(execution.notBefore)}` : undefined;
}

/** "850ms", "1.2s", "3m 05s", "2h 01m". */
export function formatDuration(milliseconds: number): string {
  const ms = Math.max(0, Math.round(milliseconds));
  if (ms < 1000) {
    return `${ms}ms`;
  }
  if (ms < 60_000) {
    return `${(ms / 1000).toFixed(1)}s`;
  }
  const totalSeconds = Math.floor(ms / 1000);
  const hours = Math.floor(totalSeconds / 3600);
  const minutes = Math.floor((totalSeconds % 3600) / 60);
  const seconds = totalSeconds % 60;
  return hours > 0 ? `${hours}h ${pad2(minutes)}m` : `${minutes}m ${pad2(seconds)}s`;
}

/** How long an execution ran, when it has started and finished. */
export function runDuration(execution: Execution): number | undefined {
  if (!execution.startedAt || !execution.finishedAt) {
    return undefined;
  }
  return timestampDate(execution.finishedAt).getTime() - timestampDate(execution.startedAt).getTime();
}

/** "Auto-retry 1/2 after runner lost": which automatic retry this is, of how many, and why. */
export function autoRetryLine(execution: Execution): string {
  const reason = execution.retryReason ? ` after ${execution.retryReason}` : "";
  return `Auto-retry ${execution.autoRetryNumber}/${execution.maxRetries}${reason}`;
}

/** One line, at most `limit` characters, for messages shown next to other output. */
export function shorten(text: string, limit = 100): string {
  const oneLine = text.replace(/\s+/g, " ").trim();
  return oneLine.length <= limit ? oneLine : `${oneLine.slice(0, limit - 3).trimEnd()}...`;
}

function pad2(value: number): string {
  return String(value).padStart(2, "0");
}

/** "12 B", "3.4 KiB", "1.0 GiB": exact below a KiB, one decimal above. */
export function formatBytes(bytes: number): string {
  if (bytes < 1024) {
    return `${bytes} B`;
  }
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(1)} ${units[unit]}`;
}
