// How a finished execution is told to the user who waited for it: one line, and an exit code.
import { ExecutionStatus } from "@rgrid/proto/execution";
import type { Execution } from "@rgrid/proto/execution";
import { ExitCode } from "./errors";
import { formatDuration, runDuration, shorten } from "./present";

/** The last line of `run --wait`, and one line per execution of `run --batch --wait`. */
export function outcomeLine(execution: Execution): string {
  const subject = `Execution ${execution.id}`;
  const duration = runDuration(execution);
  const reason = execution.errorMessage ? `: ${shorten(execution.errorMessage)}` : "";
  switch (execution.status) {
    case ExecutionStatus.COMPLETED:
      return duration === undefined ? `${subject} completed` : `${subject} completed in ${formatDuration(duration)}`;
    case ExecutionStatus.FAILED:
      return execution.exitCode === undefined
        ? `${subject} failed${reason}`
        : `${subject} failed (exit code ${execution.exitCode})`;
    case ExecutionStatus.TIMED_OUT:
      return `${subject} timed out${reason}`;
    default:
      return `${subject} was cancelled`;
  }
}

/**
 * The script's own exit code when it failed with one, so `rgrid run --wait` composes in shells;
 * 1 for every other way of not completing (timed out, cancelled, the runner lost).
 */
export function exitCodeOf(execution: Execution): number {
  if (execution.status === ExecutionStatus.COMPLETED) {
    return ExitCode.success;
  }
  const code = execution.exitCode;
  // A killed script may carry a signal's code; only a failure's own code is the script's answer.
  // Codes a process cannot exit with (signals reported negative, > 255) become plain failure.
  return execution.status === ExecutionStatus.FAILED && code !== undefined && code >= 1 && code <= 255
    ? code
    : ExitCode.failed;
}
