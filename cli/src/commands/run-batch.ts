import { newBatchId } from "@rgrid/common/ids";
import { mapWithLimit } from "@rgrid/common/concurrency";
import { digestFile } from "@rgrid/common/transfer";
import type { FileDigest } from "@rgrid/common/transfer";
import { ExecutionStatus } from "@rgrid/proto/execution";
import type { Execution } from "@rgrid/proto/execution";
import { AUTO_RETRY_GRACE_MS, awaitsAutomaticRetry } from "../auto-retry";
import type { Output, ServerContext } from "../context";
import { ExitCode, UsageError } from "../errors";
import { expandGlob } from "../glob";
import { planInputs } from "../inputs";
import { toJson } from "../json";
import { outcomeLine } from "../outcome";
import { executionView, isTerminal, readableStatus } from "../present";
import { problemOf } from "../failures";
import { digestInputs, newSubmissionRequestId, requireDistinctNames } from "../submit";
import type { ExecutionSettings, LocalFile, PreparedScript } from "../submit";
import { submitAll } from "../batch-submit";

/** Files planned and digested at once. */
const PLAN_CONCURRENCY = 4;

/** The order the summary names outcomes in. */
const SUMMARY_ORDER = [ExecutionStatus.COMPLETED, ExecutionStatus.FAILED, ExecutionStatus.TIMED_OUT, ExecutionStatus.CANCELLED];

export interface BatchOptions {
  /** The file pattern; each match is one execution's first argument and input. */
  batch: string;
  /** Zero: no limit. */
  parallel: number;
  args: string[];
  settings: Omit<ExecutionSettings, "batchId" | "batchParallelism">;
  wait: boolean;
  json: boolean;
  cwd: string;
  pollIntervalMs: number;
}

/** One matched file, checked and digested: everything its execution needs but the server. */
interface PlannedItem {
  file: string;
  args: string[];
  inputs: LocalFile[];
}

interface Submitted {
  file: string;
  execution: Execution;
}

interface NotSubmitted {
  file: string;
  error: unknown;
}

type ItemResult = Submitted | NotSubmitted;

/** A file that was not submitted, and why, as printed. */
interface Failure {
  file: string;
  error: string;
}

/**
 * `rgrid run <script> --batch <pattern> [--parallel N]`: one execution per matching file, all in
 * one batch the server limits to N running at once. With --wait, waits for every one to finish.
 */
export async function runBatch(options: BatchOptions, script: PreparedScript, context: ServerContext): Promise<number> {
  const { output } = context;
  const files = await expandGlob(options.batch, options.cwd);
  if (files.length === 0) {
    throw new UsageError(`--batch ${options.batch} matches no files (patterns are relative to ${options.cwd})`);
  }
  // Every problem that can be seen here stops the batch before any execution of it exists.
  const planned = await planBatch(files, options, script);
  const batchId = newBatchId();
  const settings: ExecutionSettings = { ...options.settings, batchId, batchParallelism: options.parallel };

  if (!options.json) {
    output.stdout(`Batch started: ${batchId} (${files.length} ${files.length === 1 ? "execution" : "executions"})`);
  }
  const printInOrder = inFileOrder<ItemResult>(files.length, (result) => {
    // A file that was not submitted is reported with the others at the end.
    if (!options.json && "execution" in result) {
      output.stdout(`Execution started: ${result.execution.id} ${result.file}`);
    }
  });
  const results = new Array<ItemResult>(planned.length);
  const submissions = planned.map((item) => ({ script, args: item.args, inputs: item.inputs, settings, requestId: newSubmissionRequestId() }));
  await submitAll(context, submissions, (index, result) => {
    const file = (planned[index] as PlannedItem).file;
    results[index] = "execution" in result ? { file, execution: result.execution } : { file, error: result.error };
    printInOrder(index, results[index]);
  });
  const submitted = results.filter((result): result is Submitted => "execution" in result);
  const failures = results
    .filter((result): result is NotSubmitted => "error" in result)
    .map(({ file, error }): Failure => ({ file, error: problemOf(error) }));
  if (failures.length > 0) {
    reportFailures(output, batchId, files.length, failures);
  }

  if (!options.wait || submitted.length === 0) {
    if (options.json) {
      const executions = submitted.map(({ execution }) => executionView(execution));
      output.stdout(toJson({ batch_id: batchId, executions, failures }));
    }
    return failures.length === 0 ? ExitCode.success : ExitCode.failed;
  }
  const finished = await waitForBatch(context, batchId, submitted, options.pollIntervalMs, (execution) => {
    if (!options.json) {
      output.stdout(outcomeLine(execution));
    }
  });
  if (options.json) {
    output.stdout(toJson({ batch_id: batchId, executions: finished.map(executionView), failures }));
  } else {
    output.stdout([summaryLine(finished), ...(failures.length > 0 ? [`${failures.length} not submitted`] : [])].join(", "));
  }
  const allCompleted = failures.length === 0 && finished.every((execution) => execution.status === ExecutionStatus.COMPLETED);
  return allCompleted ? ExitCode.success : ExitCode.failed;
}

/**
 * Plans and digests the execution of every file, failing on the first problem: a usage problem
 * (an input that cannot be sent, a name clash) names the file it is about.
 */
async function planBatch(files: readonly string[], options: BatchOptions, script: PreparedScript): Promise<PlannedItem[]> {
  // Arguments other than the batch file are the same for every execution: digest each file once.
  const digests = new Map<string, Promise<FileDigest>>();
  const digestOnce = (path: string): Promise<FileDigest> => {
    const digest = digests.get(path) ?? digestFile(path);
    digests.set(path, digest);
    return digest;
  };
  return mapWithLimit(files, PLAN_CONCURRENCY, async (file): Promise<PlannedItem> => {
    try {
      const plan = await planInputs([file, ...options.args], options.cwd);
      requireDistinctNames(script, plan);
      return { file, args: plan.args, inputs: await digestInputs(plan, digestOnce) };
    } catch (error) {
      if (error instanceof UsageError) {
        throw new UsageError(`--batch file ${file}: ${error.message}. Nothing was submitted`);
      }
      throw error;
    }
  });
}

/** Which files were not submitted and why, and how to see or stop the ones that were. */
function reportFailures(output: Output, batchId: string, fileCount: number, failures: readonly Failure[]): void {
  const submittedCount = fileCount - failures.length;
  const were = (count: number): string => (count === 1 ? "was" : "were");
  output.stderr(`Error: ${failures.length} of ${fileCount} files of batch ${batchId} ${were(failures.length)} not submitted:`);
  for (const { file, error } of failures) {
    output.stderr(`  ${file}: ${error}`);
  }
  if (submittedCount > 0) {
    output.stderr(`The other ${submittedCount} ${were(submittedCount)} submitted and will run.`);
    output.stderr(`See them with: rgrid list --batch ${batchId}`);
    output.stderr("Cancel one with: rgrid cancel <id>");
  }
}

/**
 * Results arrive in any order; lines read best in the order of the files. Each result is printed
 * as soon as every earlier one has been.
 */
function inFileOrder<T>(count: number, print: (item: T) => void): (index: number, item: T) => void {
  const ready = new Array<T | undefined>(count);
  let next = 0;
  return (index, item) => {
    ready[index] = item;
    while (next < count && ready[next] !== undefined) {
      print(ready[next] as T);
      ready[next] = undefined;
      next++;
    }
  };
}

/**
 * Polls the batch until each submitted execution's lineage has finished; returns the latest
 * execution of each, in submission order. An automatic retry joins its original's batch and
 * lineage, so it, not the failure it replaced, is what counts; a failure the server is about to
 * retry is given AUTO_RETRY_GRACE_MS for that retry to appear.
 */
async function waitForBatch(
  context: ServerContext,
  batchId: string,
  submitted: readonly Submitted[],
  pollIntervalMs: number,
  onFinished: (execution: Execution) => void,
): Promise<Execution[]> {
  const { output, clock } = context;
  const reported = new Set<string>();
  const waitedForRetryMs = new Map<string, number>();
  const isSettled = (execution: Execution): boolean =>
    isTerminal(execution.status) &&
    !(awaitsAutomaticRetry(execution) && (waitedForRetryMs.get(execution.id) ?? 0) < AUTO_RETRY_GRACE_MS);
  for (;;) {
    const latestByRoot = latestOfEachLineage(await listBatch(context, batchId));
    const latest = submitted.map(({ execution }) => latestByRoot.get(execution.rootId || execution.id) ?? execution);
    const settled = latest.filter(isSettled);
    for (const execution of settled) {
      if (!reported.has(execution.id)) {
        reported.add(execution.id);
        onFinished(execution);
      }
    }
    if (settled.length === latest.length) {
      output.status?.clear();
      return latest;
    }
    output.status?.show(`Waiting for ${batchId}: ${settled.length} of ${latest.length} finished`);
    await clock.sleep(pollIntervalMs);
    for (const execution of latest.filter((each) => isTerminal(each.status) && !isSettled(each))) {
      waitedForRetryMs.set(execution.id, (waitedForRetryMs.get(execution.id) ?? 0) + pollIntervalMs);
    }
  }
}

async function listBatch(context: ServerContext, batchId: string): Promise<Execution[]> {
  const { client, resend } = context;
  const executions: Execution[] = [];
  let pageToken = "";
  do {
    const page = await resend(() => client.listExecutions({ batchId, pageSize: 500, pageToken }));
    executions.push(...page.executions);
    pageToken = page.nextPageToken;
  } while (pageToken !== "");
  return executions;
}

function latestOfEachLineage(executions: readonly Execution[]): Map<string, Execution> {
  const latest = new Map<string, Execution>();
  for (const execution of executions) {
    const root = execution.rootId || execution.id;
    const known = latest.get(root);
    if (!known || execution.attempt > known.attempt) {
      latest.set(root, execution);
    }
  }
  return latest;
}

/** "12 completed, 3 failed": each outcome that occurred, in lifecycle order. */
export function summaryLine(executions: readonly Execution[]): string {
  return SUMMARY_ORDER.map((status) => [status, executions.filter((execution) => execution.status === status).length] as const)
    .filter(([, count]) => count > 0)
    .map(([status, count]) => `${count} ${readableStatus(status)}`)
    .join(", ");
}
