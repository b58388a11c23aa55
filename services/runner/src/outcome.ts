// How a run ended, in the terms CompleteExecution reports.

import { Outcome } from "@rgrid/proto";
import type { LimitFindings } from "./cgroup";
import type { ResourceLimits } from "./config";
import type { ProcessResult, StopReason } from "./process-runner";
import { formatSeconds } from "./process-runner";

export interface ExecutionReport {
  outcome: Outcome;
  /** Absent when the script never ran or was killed by a signal. */
  exitCode?: number;
  errorMessage: string;
}

/** Error messages are shown in one line of `rgrid status`; the full text is in the logs. */
export const MAX_ERROR_MESSAGE_CHARS = 300;

export const SHUTTING_DOWN_MESSAGE = "runner shutting down";

export interface RunContext {
  timeoutMs: number;
  /** The limits the sandbox applied; absent when none were. */
  limits?: ResourceLimits;
  /** What the execution's cgroup saw; absent without one. */
  findings?: LimitFindings;
}

export const STOPPED: Record<StopReason, ExecutionReport> = {
  cancelled: { outcome: Outcome.CANCELLED, errorMessage: "cancelled by its owner" },
  // Not the script's fault: reported so that execution-service may retry it elsewhere.
  shutdown: { outcome: Outcome.INFRASTRUCTURE_ERROR, errorMessage: SHUTTING_DOWN_MESSAGE },
  lost: { outcome: Outcome.INFRASTRUCTURE_ERROR, errorMessage: "the runner lost the execution" },
};

export function reportFromProcess(result: ProcessResult, context: RunContext): ExecutionReport {
  const termination = result.termination;
  switch (termination.kind) {
    case "timed_out":
      return { outcome: Outcome.TIMED_OUT, errorMessage: `timed out after ${formatSeconds(context.timeoutMs)}` };
    case "stopped":
      return STOPPED[termination.reason];
    case "spawn_failed":
      return infrastructureFailure(`could not start the script: ${termination.message}`);
    case "setup_failed":
      return infrastructureFailure(`the sandbox could not start the script: ${termination.message}`);
    case "exited":
      if (termination.exitCode === 0) {
        return { outcome: Outcome.COMPLETED, exitCode: 0, errorMessage: "" };
      }
      return {
        outcome: Outcome.FAILED,
        exitCode: termination.exitCode,
        errorMessage: limitExceeded(result, context) ?? shorten(result.lastStderrLine?.trim() ?? `exited with code ${termination.exitCode}`),
      };
    case "signaled":
      return { outcome: Outcome.FAILED, errorMessage: limitExceeded(result, context) ?? `killed by ${termination.signal}` };
  }
}

/** Names the resource limit a failed run ran into, if it was one. */
function limitExceeded(result: ProcessResult, context: RunContext): string | undefined {
  const { limits, findings } = context;
  if (limits === undefined) {
    return undefined;
  }
  const termination = result.termination;
  const signal = termination.kind === "signaled" ? termination.signal : undefined;
  if (findings?.memoryExceeded === true) {
    return `memory limit of ${formatBytes(limits.memoryBytes)} exceeded`;
  }
  if (signal === "SIGXCPU") {
    return `CPU time limit of ${limits.cpuSeconds} s exceeded`;
  }
  // Python and Node ignore SIGXFSZ, so the write fails with EFBIG and their error says so.
  if (signal === "SIGXFSZ" || result.stderrTail.some((line) => /\bEFBIG\b|\[Errno 27\] File too large/.test(line))) {
    return `file size limit of ${formatBytes(limits.maxFileBytes)} exceeded`;
  }
  if (findings?.processLimitReached === true) {
    return `process limit of ${limits.maxProcesses} reached`;
  }
  return undefined;
}

/** "256 MiB", "1 GiB", "1536 KiB": the largest binary unit that divides the size exactly. */
export function formatBytes(bytes: number): string {
  for (const [unit, size] of [["GiB", 1024 ** 3], ["MiB", 1024 ** 2], ["KiB", 1024]] as const) {
    if (bytes >= size && bytes % size === 0) {
      return `${bytes / size} ${unit}`;
    }
  }
  return `${bytes} bytes`;
}

/** The runner could not prepare or finish the run, so there is no exit code to report. */
export function infrastructureFailure(message: string): ExecutionReport {
  return { outcome: Outcome.INFRASTRUCTURE_ERROR, errorMessage: shorten(message) };
}

export function shorten(message: string): string {
  return message.length > MAX_ERROR_MESSAGE_CHARS ? `${message.slice(0, MAX_ERROR_MESSAGE_CHARS - 1)}…` : message;
}
