// How a run ended, in the terms CompleteExecution reports.

import { Outcome } from "@rgrid/proto";
import type { ProcessResult } from "./process-runner";
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

export function reportFromProcess(result: ProcessResult, timeoutMs: number): ExecutionReport {
  const termination = result.termination;
  switch (termination.kind) {
    case "exited":
      if (termination.exitCode === 0) {
        return { outcome: Outcome.COMPLETED, exitCode: 0, errorMessage: "" };
      }
      return {
        outcome: Outcome.FAILED,
        exitCode: termination.exitCode,
        errorMessage: shorten(result.lastStderrLine?.trim() ?? `exited with code ${termination.exitCode}`),
      };
    case "signaled":
      return { outcome: Outcome.FAILED, errorMessage: `killed by ${termination.signal}` };
    case "timed_out":
      return { outcome: Outcome.TIMED_OUT, errorMessage: `timed out after ${formatSeconds(timeoutMs)}` };
    case "aborted":
      return { outcome: Outcome.FAILED, errorMessage: SHUTTING_DOWN_MESSAGE };
    case "spawn_failed":
      return infrastructureFailure(`could not start the script: ${termination.message}`);
  }
}

/** The runner could not run the script at all, so there is no exit code to report. */
export function infrastructureFailure(message: string): ExecutionReport {
  return { outcome: Outcome.FAILED, errorMessage: shorten(message) };
}

export function shorten(message: string): string {
  return message.length > MAX_ERROR_MESSAGE_CHARS ? `${message.slice(0, MAX_ERROR_MESSAGE_CHARS - 1)}…` : message;
}
