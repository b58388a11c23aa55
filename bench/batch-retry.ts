// Retrying a whole batch in one call: 1,000 executions of one batch fail (a script exiting 3,
// run by real runners), then one RetryBatch(failed_only) retries them all; its wall time is the
// figure, with the runners stopped so the retries stay queued. On the embedded defaults and on
// the production backends (PostgreSQL, S3 via s3rver; skipped when PostgreSQL is unreachable).
//
//   node bench/dist/batch-retry.js [embedded|production]     (both when not told)
import { randomUUID } from "node:crypto";
import { Code, ConnectError } from "@connectrpc/connect";
import { mapWithLimit, newBatchId } from "@rgrid/common";
import { ExecutionStatus } from "@rgrid/proto";
import { onChosenBackends } from "./backends";
import type { Backend } from "./backends";
import { startBenchGrid } from "./bench-grid";
import type { ExecutionClient } from "./bench-grid";
import { runBenchmark } from "./entry";
import { createUploaded, sleep, writeScript } from "./executions";
import { ms, printTable } from "./stats";

const EXECUTIONS = 1000;
const SUBMIT_CONCURRENCY = 16;
// More runners than cores: each spends much of a run waiting on the services, not computing.
const RUNNERS = 3;
const FAILING_WITHIN_MILLIS = 240_000;


async function benchmarkBatchRetry(backend: Backend): Promise<void> {
  const bench = await startBenchGrid({ runners: RUNNERS, backend });
  try {
    const { client } = bench;
    const script = await writeScript(bench.dataDir, "fail.py", "import sys\nsys.exit(3)\n");
    const batchId = newBatchId();

    const submitStarted = performance.now();
    await mapWithLimit(Array.from({ length: EXECUTIONS }), SUBMIT_CONCURRENCY, async () => {
      const executionId = await createUploaded(client, script, { batchId, maxRetries: 0 });
      await client.confirmUploads({ executionId });
    });
    const submitMillis = performance.now() - submitStarted;
    await waitUntilNoneUnfinished(client, batchId);
    const failedAfterMillis = performance.now() - submitStarted;
    const failed = await countInBatch(client, batchId, ExecutionStatus.FAILED);
    if (failed !== EXECUTIONS) {
      throw new Error(`expected ${EXECUTIONS} failed executions in the batch, found ${failed}`);
    }
    // Retries must stay queued: runners would run them on the cores being measured.
    await bench.stopRunners();

    const request = { batchId, failedOnly: true, requestId: randomUUID() };
    let retryMillis: number;
    let resendMillis: number;
    try {
      let started = performance.now();
      const answer = await client.retryBatch(request);
      retryMillis = performance.now() - started;
      if (answer.retriedCount !== EXECUTIONS) {
        throw new Error(`RetryBatch retried ${answer.retriedCount} of ${EXECUTIONS} (skipped ${answer.skippedCount})`);
      }
      started = performance.now();
      const again = await client.retryBatch(request);
      resendMillis = performance.now() - started;
      if (again.retriedCount !== EXECUTIONS) {
        throw new Error(`the re-sent RetryBatch reported ${again.retriedCount} retries, not the first answer's ${EXECUTIONS}`);
      }
    } catch (error) {
      if (error instanceof ConnectError && error.code === Code.Unimplemented) {
        process.stdout.write(`\nRetryBatch, ${backend.label}: SKIPPED, not implemented by this execution-service\n`);
        return;
      }
      throw error;
    }
    const queued = await countInBatch(client, batchId, ExecutionStatus.QUEUED);

    process.stdout.write(`\nRetryBatch(failed_only) of ${EXECUTIONS} failed executions, ${backend.label}\n\n`);
    printTable([
      ["measure", "value", "note"],
      ["RetryBatch wall time", ms(retryMillis), "one RPC"],
      ["RetryBatch re-sent (same request_id)", ms(resendMillis), "same answer, nothing new"],
      ["retries queued afterwards", String(queued), `of ${EXECUTIONS}`],
      [`submitting ${EXECUTIONS} (create, upload, confirm)`, ms(submitMillis), `concurrency ${SUBMIT_CONCURRENCY}`],
      ["submit start -> all failed", ms(failedAfterMillis), `${RUNNERS} runners`],
      ["peak RSS execution-service", bench.peakRss("execution"), ""],
    ]);
  } finally {
    await bench.stop();
  }
}

async function waitUntilNoneUnfinished(client: ExecutionClient, batchId: string): Promise<void> {
  const deadline = Date.now() + FAILING_WITHIN_MILLIS;
  const unfinished = [ExecutionStatus.UPLOADING, ExecutionStatus.QUEUED, ExecutionStatus.RUNNING];
  for (;;) {
    const page = await client.listExecutions({ batchId, statuses: unfinished, pageSize: 1 });
    if (page.executions.length === 0) {
      return;
    }
    if (Date.now() > deadline) {
      throw new Error(`the batch's executions were still not finished after ${FAILING_WITHIN_MILLIS / 1000} s`);
    }
    await sleep(500);
  }
}

async function countInBatch(client: ExecutionClient, batchId: string, status: ExecutionStatus): Promise<number> {
  let count = 0;
  let pageToken = "";
  do {
    const page = await client.listExecutions({ batchId, statuses: [status], pageSize: 500, pageToken });
    count += page.executions.length;
    pageToken = page.nextPageToken;
  } while (pageToken !== "");
  return count;
}

runBenchmark(() => onChosenBackends("RetryBatch", benchmarkBatchRetry));
