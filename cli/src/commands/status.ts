import { FailureKind, RetryKind } from "@rgrid/proto/execution";
import type { Execution } from "@rgrid/proto/execution";
import { fetchExecution } from "../context";
import type { ServerContext } from "../context";
import { ExitCode } from "../errors";
import {
  autoRetryLine,
  displayTime,
  executionView,
  formatDuration,
  isTerminal,
  queuedUntilLine,
  runDuration,
  statusName,
} from "../present";
import { toJson } from "../json";
import { overridesSummary } from "../overrides-view";

export interface StatusOptions {
  executionId: string;
  /** Print the values of the env variables a retry changed (they may be secrets). */
  showValues?: boolean;
  json: boolean;
}

/** `rgrid status <id>`. */
export async function statusCommand(options: StatusOptions, context: ServerContext): Promise<number> {
  const { output, clock } = context;
  const { executionId } = options;
  const execution = await fetchExecution(context, executionId);
  if (options.json) {
    output.stdout(toJson(executionView(execution)));
  } else {
    for (const line of statusLines(execution, clock.now(), options.showValues === true)) {
      output.stdout(line);
    }
  }
  return ExitCode.success;
}

/**
 * The readable report: identity, state, what it runs, times, outcome, then lineage; absent facts
 * are left out.
 */
export function statusLines(execution: Execution, now: Date, showValues = false): string[] {
  const lines = [`Execution: ${execution.id}`, `Status: ${statusName(execution.status)}`];
  const add = (label: string, value: string | undefined): void => {
    if (value !== undefined && value !== "") {
      lines.push(`${label}: ${value}`);
    }
  };
  const terminal = isTerminal(execution.status);
  const queuedUntil = queuedUntilLine(execution, now);
  if (queuedUntil !== undefined) {
    lines.push(queuedUntil);
  }
  if (!terminal && execution.cancelRequestedAt) {
    add("Cancel requested", `${displayTime(execution.cancelRequestedAt)} (the runner stops it at its next heartbeat)`);
  }
  add("Runtime", execution.runtime);
  add("Script", execution.script?.name);
  add("Args", execution.args.join(" "));
  add("Inputs", execution.inputs.map((file) => file.name).join(", "));
  add("Network", execution.network ? "enabled" : undefined);
  add("Batch", batchLine(execution));
  add("Created", displayTime(execution.createdAt));
  add("Started", displayTime(execution.startedAt));
  add("Finished", displayTime(execution.finishedAt));
  const duration = runDuration(execution);
  add("Duration", duration === undefined ? undefined : formatDuration(duration));
  add("Runner", execution.runnerId);
  for (const warning of execution.sandboxWarnings) {
    add("Sandbox", warning);
  }
  add("Exit code", execution.exitCode === undefined ? undefined : String(execution.exitCode));
  add("Error", execution.errorMessage);
  // A script's failure speaks through its exit code and error; the other kinds explain a retry.
  add("Failure", FAILURE_EXPLANATIONS.get(execution.failureKind));
  add("Outputs", execution.outputs.map((file) => file.name).join(", "));
  add("Retry on exit codes", execution.retryOnExitCodes.join(", "));
  add("Attempt", execution.attempt > 0 ? String(execution.attempt) : undefined);
  if (execution.retryKind === RetryKind.AUTOMATIC && execution.autoRetryNumber > 0) {
    lines.push(autoRetryLine(execution));
  }
  add("Retry of", execution.retryOf);
  add("Overrides", overridesSummary(execution.overrides, showValues));
  // An original is its own root; repeating its id says nothing.
  add("Root", execution.rootId === execution.id ? undefined : execution.rootId);
  add("Retried as", execution.retriedAs.join(", "));
  return lines;
}

const FAILURE_EXPLANATIONS: ReadonlyMap<FailureKind, string> = new Map([
  [FailureKind.RUNNER_LOST, "runner lost (it stopped reporting while running the script)"],
  [FailureKind.INFRASTRUCTURE, "infrastructure error (the runner could not prepare or finish the run)"],
]);

function batchLine(execution: Execution): string | undefined {
  if (execution.batchId === "") {
    return undefined;
  }
  const limit = execution.batchParallelism > 0 ? ` (at most ${execution.batchParallelism} running at once)` : "";
  return `${execution.batchId}${limit}`;
}
