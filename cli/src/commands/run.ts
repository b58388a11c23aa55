import type { LogEntry } from "@rgrid/proto/execution";
import { findAutomaticRetry } from "../auto-retry";
import type { ServerContext } from "../context";
import { ExitCode, OutputsNotDownloadedError, UsageError } from "../errors";
import { followExecution, printLogEntry } from "../follow";
import { planInputs } from "../inputs";
import { downloadOutputs, downloadedLine } from "../outputs";
import { exitCodeOf, outcomeLine } from "../outcome";
import { autoRetryLine, executionView } from "../present";
import { toJson } from "../json";
import { digestInputs, newSubmissionRequestId, prepareScript, requireDistinctNames, submitExecution } from "../submit";
import type { ExecutionSettings } from "../submit";
import { runBatch } from "./run-batch";

export interface RunOptions {
  script: string;
  args: string[];
  /** Inferred from the script's extension when absent. */
  runtime?: string;
  settings: Omit<ExecutionSettings, "batchId" | "batchParallelism">;
  /** A file pattern: run the script once per matching file (`--batch`). */
  batch?: string;
  /** With batch: how many of its executions may run at once; zero or absent means no limit. */
  parallel?: number;
  wait: boolean;
  /** With wait: leave the outputs on the server instead of downloading them into cwd. */
  remoteOnly: boolean;
  json: boolean;
  /** Relative script and input paths are resolved against this directory; outputs land here. */
  cwd: string;
  /** Pause between status polls while waiting for a batch, or for an automatic retry to appear. */
  pollIntervalMs: number;
}

/** `rgrid run <script> [args...]`: upload script and inputs through grants, then queue. */
export async function runCommand(options: RunOptions, context: ServerContext): Promise<number> {
  if (options.parallel !== undefined && options.batch === undefined) {
    throw new UsageError("--parallel limits the executions of a batch; use it with --batch <pattern>");
  }
  const script = await prepareScript(options.script, options.runtime, options.cwd);
  if (options.batch !== undefined) {
    return runBatch({ ...options, batch: options.batch, parallel: options.parallel ?? 0 }, script, context);
  }
  const { output } = context;
  const plan = await planInputs(options.args, options.cwd);
  requireDistinctNames(script, plan);
  const submitted = await submitExecution(
    context,
    { script, args: plan.args, inputs: await digestInputs(plan), settings: options.settings, requestId: newSubmissionRequestId() },
    // One run has the status line to itself; a batch shows its own progress instead.
    { progress: options.json ? undefined : context.output.status },
  );
  const executionId = submitted.id;

  if (!options.wait) {
    output.stdout(options.json ? toJson(executionView(submitted)) : `Execution started: ${executionId}`);
    return ExitCode.success;
  }

  if (!options.json) {
    output.stdout(`Execution started: ${executionId}`);
  }
  const printEntry = (entry: LogEntry): void => {
    // JSON output is the final execution alone; log lines would break it.
    if (!options.json) {
      printLogEntry(output, entry);
    }
  };
  let finished = await followExecution(context, executionId, printEntry);
  // A transient failure the server retries by itself is not the run's outcome: follow the retry.
  for (;;) {
    const retry = await findAutomaticRetry(context, finished, options.pollIntervalMs);
    if (!retry) {
      break;
    }
    output.stderr(outcomeLine(finished));
    output.stderr(`${autoRetryLine(retry)}: ${retry.id}`);
    finished = await followExecution(context, retry.id, printEntry);
  }
  output.stdout(options.json ? toJson(executionView(finished)) : outcomeLine(finished));
  const exitCode = exitCodeOf(finished);
  if (!options.remoteOnly) {
    await downloadAfterRun(context, finished.id, options.cwd, exitCode);
  }
  return exitCode;
}

/**
 * Outputs are collected whether the script succeeded or not, so they are fetched either way.
 * Their lines go to stderr: stdout stays the script's output and the outcome line.
 */
async function downloadAfterRun(
  context: ServerContext,
  executionId: string,
  cwd: string,
  scriptExitCode: number,
): Promise<void> {
  const { output } = context;
  try {
    await downloadOutputs(context, executionId, cwd, (file) => output.stderr(downloadedLine(file)), output.status);
  } catch (error) {
    throw new OutputsNotDownloadedError(executionId, error, scriptExitCode);
  }
}
