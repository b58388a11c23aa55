import { newBatchId } from "@rgrid/common/ids";
import { mapWithLimit } from "@rgrid/common/concurrency";
import { digestFile } from "@rgrid/common/transfer";
import type { FileDigest } from "@rgrid/common/transfer";
import { ExecutionStatus } from "@rgrid/proto";
import type { Execution } from "@rgrid/proto";
import { AUTO_RETRY_GRACE_MS, awaitsAutomaticRetry } from "../auto-retry";
import type { ServerContext } from "../context";
import { ExitCode, UsageError } from "../errors";
import { expandGlob } from "../glob";
import { planInputs } from "../inputs";
import { toJson } from "../json";
import { outcomeLine } from "../outcome";
import { executionView, isTerminal, readableStatus } from "../present";
import { digestInputs, submitExecution } from "../submit";
import type { ExecutionSettings, PreparedScript } from "../submit";

/** Executions submitted at once: each uploads a few files at a time itself. */
const SUBMIT_CONCURRENCY = 4;

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

interface Submitted {
  file: string;
  execution: Execution;
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
  const batchId = newBatchId();
  const settings: ExecutionSettings = { ...options.settings, batchId, batchParallelism: options.parallel };
  // Arguments other than the batch file are the same for every execution: digest each file once.
  const digests = new Map<string, Promise<FileDigest>>();
  const digestOnce = (path: string): Promise<FileDigest> => {
    const digest = digests.get(path) ?? digestFile(path);
    digests.set(path, digest);
    return digest;
  };

  if (!options.json) {
    output.stdout(`Batch started: ${batchId} (${files.length} ${files.length === 1 ? "execution" : "executions"})`);
  }
  const printInOrder = inFileOrder<Submitted>(files.length, ({ file, execution }) => {
    if (!options.json) {
      output.stdout(`Execution started: ${execution.id} ${file}`);
    }
  });
  const numbered = files.map((file, index) => ({ file, index }));
  const submitted = await mapWithLimit(numbered, SUBMIT_CONCURRENCY, async ({ file, index }): Promise<Submitted> => {
    const plan = await planInputs([file, ...options.args], options.cwd);
    const execution = await submitExecution(context, {
      script,
      args: plan.args,
      inputs: await digestInputs(plan, digestOnce),
      settings,
    });
    const result = { file, execution };
    printInOrder(index, result);
    return result;
  });

  if (!options.wait) {
    if (options.json) {
      output.stdout(toJson({ batch_id: batchId, executions: submitted.map(({ execution }) => executionView(execution)) }));
    }
    return ExitCode.success;
  }
  const finished = await waitForBatch(context, batchId, submitted, options.pollIntervalMs, (execution) => {
    if (!options.json) {
      output.stdout(outcomeLine(execution));
    }
  });
  if (options.json) {
    output.stdout(toJson({ batch_id: batchId, executions: finished.map(executionView) }));
  } else {
    output.stdout(summaryLine(finished));
  }
  return finished.every((execution) => execution.status === ExecutionStatus.COMPLETED) ? ExitCode.success : ExitCode.failed;
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
