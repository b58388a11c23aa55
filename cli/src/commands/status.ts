import type { Execution } from "@rgrid/proto";
import { fetchExecution } from "../context";
import type { ServerContext } from "../context";
import { ExitCode } from "../errors";
import { displayTime, executionView, formatDuration, runDuration, statusName } from "../present";
import { toJson } from "../json";

export interface StatusOptions {
  executionId: string;
  json: boolean;
}

/** `rgrid status <id>`. */
export async function statusCommand(options: StatusOptions, context: ServerContext): Promise<number> {
  const { output } = context;
  const { executionId } = options;
  const execution = await fetchExecution(context, executionId);
  if (options.json) {
    output.stdout(toJson(executionView(execution)));
  } else {
    for (const line of statusLines(execution)) {
      output.stdout(line);
    }
  }
  return ExitCode.success;
}

/** The readable report: identity, state, times, outcome, then lineage; absent facts are left out. */
export function statusLines(execution: Execution): string[] {
  const lines = [`Execution: ${execution.id}`, `Status: ${statusName(execution.status)}`];
  const add = (label: string, value: string | undefined): void => {
    if (value !== undefined && value !== "") {
      lines.push(`${label}: ${value}`);
    }
  };
  add("Runtime", execution.runtime);
  add("Script", execution.script?.name);
  add("Args", execution.args.join(" "));
  add("Inputs", execution.inputs.map((file) => file.name).join(", "));
  add("Created", displayTime(execution.createdAt));
  add("Started", displayTime(execution.startedAt));
  add("Finished", displayTime(execution.finishedAt));
  const duration = runDuration(execution);
  add("Duration", duration === undefined ? undefined : formatDuration(duration));
  add("Exit code", execution.exitCode === undefined ? undefined : String(execution.exitCode));
  add("Error", execution.errorMessage);
  add("Outputs", execution.outputs.map((file) => file.name).join(", "));
  add("Attempt", execution.attempt > 0 ? String(execution.attempt) : undefined);
  add("Retry of", execution.retryOf);
  // An original is its own root; repeating its id says nothing.
  add("Root", execution.rootId === execution.id ? undefined : execution.rootId);
  add("Retried as", execution.retriedAs.join(", "));
  return lines;
}
