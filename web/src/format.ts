import type { Timestamp } from "@bufbuild/protobuf/wkt";
import { timestampMs } from "@bufbuild/protobuf/wkt";
import { ExecutionStatus, FailureKind, LogEntry_Stream, RetryKind, type Execution } from "./proto";

// Status names exactly as the CLI prints them; they are also the `status` URL parameter.
export const statusNames = {
  [ExecutionStatus.UNSPECIFIED]: "unknown",
  [ExecutionStatus.UPLOADING]: "uploading",
  [ExecutionStatus.QUEUED]: "queued",
  [ExecutionStatus.RUNNING]: "running",
  [ExecutionStatus.COMPLETED]: "completed",
  [ExecutionStatus.FAILED]: "failed",
  [ExecutionStatus.TIMED_OUT]: "timed_out",
  [ExecutionStatus.CANCELLED]: "cancelled",
} as const satisfies Record<ExecutionStatus, string>;

/** The statuses a user can filter by, in the order of the Status select. */
export const filterableStatuses: readonly ExecutionStatus[] = [
  ExecutionStatus.QUEUED,
  ExecutionStatus.RUNNING,
  ExecutionStatus.COMPLETED,
  ExecutionStatus.FAILED,
  ExecutionStatus.TIMED_OUT,
  ExecutionStatus.CANCELLED,
  ExecutionStatus.UPLOADING,
];

export function statusName(status: ExecutionStatus): string {
  return statusNames[status] ?? "unknown";
}

/** The status named by a URL parameter; undefined for an empty or unknown name. */
export function statusFromName(name: string): ExecutionStatus | undefined {
  return filterableStatuses.find((status) => statusNames[status] === name);
}

/** Terminal executions never change again; only they can be retried without force. */
export function isTerminal(status: ExecutionStatus): boolean {
  return (
    status === ExecutionStatus.COMPLETED ||
    status === ExecutionStatus.FAILED ||
    status === ExecutionStatus.TIMED_OUT ||
    status === ExecutionStatus.CANCELLED
  );
}

/** Uploading, queued and running executions can be cancelled. */
export function isCancellable(status: ExecutionStatus): boolean {
  return (
    status === ExecutionStatus.UPLOADING || status === ExecutionStatus.QUEUED || status === ExecutionStatus.RUNNING
  );
}

export type RetryKindName = "original" | "manual" | "forced" | "automatic";

export function retryKindName(execution: Pick<Execution, "retryKind" | "retryOf">): RetryKindName {
  switch (execution.retryKind) {
    case RetryKind.MANUAL:
      return "manual";
    case RetryKind.FORCED:
      return "forced";
    case RetryKind.AUTOMATIC:
      return "automatic";
    case RetryKind.ORIGINAL:
      return "original";
    default:
      // Records from before retry kinds were kept: a retry is at least a manual one.
      return execution.retryOf ? "manual" : "original";
  }
}

export const retryKindLabels: Record<RetryKindName, string> = {
  original: "original",
  manual: "manual retry",
  forced: "forced retry",
  automatic: "automatic retry",
};

export function failureKindLabel(kind: FailureKind): string {
  switch (kind) {
    case FailureKind.SCRIPT:
      return "script";
    case FailureKind.INFRASTRUCTURE:
      return "infrastructure";
    case FailureKind.RUNNER_LOST:
      return "runner lost";
    default:
      return "";
  }
}

export type StreamName = "stdout" | "stderr" | "system";

export function streamName(stream: LogEntry_Stream): StreamName {
  if (stream === LogEntry_Stream.STDERR) return "stderr";
  if (stream === LogEntry_Stream.SYSTEM) return "system";
  return "stdout";
}

export function toMs(timestamp: Timestamp | undefined): number | undefined {
  return timestamp ? timestampMs(timestamp) : undefined;
}

const timeOfDay = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit" });
const dayAndTime = new Intl.DateTimeFormat(undefined, {
  month: "short",
  day: "numeric",
  hour: "2-digit",
  minute: "2-digit",
});
const fullDateTime = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" });

/** Compact: the time of day for today, the day and time otherwise. */
export function formatShortTime(ms: number | undefined, now = Date.now()): string {
  if (ms === undefined) return "—";
  const sameDay = new Date(ms).toDateString() === new Date(now).toDateString();
  return sameDay ? timeOfDay.format(ms) : dayAndTime.format(ms);
}

export function formatFullTime(ms: number | undefined): string {
  return ms === undefined ? "—" : fullDateTime.format(ms);
}

export function isoTime(ms: number | undefined): string | undefined {
  return ms === undefined ? undefined : new Date(ms).toISOString();
}

export function formatDuration(ms: number): string {
  if (ms < 0) ms = 0;
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const seconds = ms / 1000;
  if (seconds < 60) return `${seconds.toFixed(seconds < 10 ? 1 : 0)} s`;
  const totalSeconds = Math.floor(seconds);
  const hours = Math.floor(totalSeconds / 3600);
  const minutes = Math.floor((totalSeconds % 3600) / 60);
  const rest = totalSeconds % 60;
  const pad = (n: number) => String(n).padStart(2, "0");
  return hours > 0 ? `${hours}h ${pad(minutes)}m` : `${minutes}m ${pad(rest)}s`;
}

/** How long the execution ran: to its end, or until now while it runs; undefined before it starts. */
export function runDurationMs(execution: Execution, now = Date.now()): number | undefined {
  const started = toMs(execution.startedAt);
  if (started === undefined) return undefined;
  const finished = toMs(execution.finishedAt);
  if (finished !== undefined) return finished - started;
  return execution.status === ExecutionStatus.RUNNING ? now - started : undefined;
}

/** A timeout as the CLI words it in changes and comparisons; zero is the service default. */
export { timeoutText } from "../../packages/common/src/override-changes";

export function formatBytes(size: bigint | number): string {
  const bytes = Number(size);
  if (bytes < 1024) return `${bytes} B`;
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

/** A long id shortened for narrow columns; the full id goes in a title. */
export function shortId(id: string, keep = 8): string {
  const underscore = id.indexOf("_");
  const prefixLength = underscore >= 0 ? underscore + 1 : 0;
  return id.length > prefixLength + keep ? `${id.slice(0, prefixLength + keep)}…` : id;
}
