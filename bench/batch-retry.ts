// Retrying a whole batch in one call: 1,000 executions of one batch fail (a script exiting 3,
// run by real runners), then one RetryBatch(failed_only) retries them all; its wall time is the
// figure, with the runners stopped so the retries stay queued, beside its floor measured in the
// same run: 1,000 single retries' statements on the raw driver, each with its copy. Three rounds,
// interleaved with the floor: after the first, the previous round's retries are cancelled and
// retried in turn (the latest attempt of each lineage); medians. On the embedded defaults and on
// the production backends (PostgreSQL, S3 via s3rver; skipped when PostgreSQL is unreachable).
//
//   node bench/dist/batch-retry.js [embedded|production]     (both when not told)
import { randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Code, ConnectError } from "@connectrpc/connect";
import { mapWithLimit, newBatchId } from "@rgrid/common";
import { ExecutionStatus } from "@rgrid/proto";
import { onChosenBackends } from "./backends";
import type { Backend } from "./backends";
import { startBenchGrid } from "./bench-grid";
import type { BenchGrid, ExecutionClient } from "./bench-grid";
import { runBenchmark } from "./entry";
import { sleep, submitBatch, writeScript } from "./executions";
import { linkFloor, rawPostgres, rawSqlite } from "./raw-floor";
import { ms, percentile, printTable } from "./stats";

const EXECUTIONS = 1000;
/** Cancels sent at once. */
const CANCEL_CONCURRENCY = 16;
// More runners than cores: each spends much of a run waiting on the services, not computing.
const RUNNERS = 3;
const FAILING_WITHIN_MILLIS = 240_000;
const ROUNDS = 3;


async function benchmarkBatchRetry(backend: Backend): Promise<void> {
  const bench = await startBenchGrid({ runners: RUNNERS, backend });
  try {
    const { client } = bench;
    const script = await writeScript(bench.dataDir, "fail.py", "import sys\nsys.exit(3)\n");
    const batchId = newBatchId();

    const submitStarted = performance.now();
    await submitBatch(client, script, EXECUTIONS, batchId, { maxRetries: 0 });
    const submitMillis = performance.now() - submitStarted;
    await waitUntilNoneUnfinished(client, batchId);
    const failedAfterMillis = performance.now() - submitStarted;
    const failed = await countInBatch(client, batchId, ExecutionStatus.FAILED);
    if (failed !== EXECUTIONS) {
      throw new Error(`expected ${EXECUTIONS} failed executions in the batch, found ${failed}`);
    }
    // Retries must stay queued: runners would run them on the cores being measured.
    await bench.stopRunners();

    const floor = await retryFloor(bench, backend, await anyIdInBatch(client, batchId), Number(script.info.sizeBytes));
    const rounds: Round[] = [];
    try {
      // The archiver moves the failed executions' logs to storage within seconds of their end;
      // measured meanwhile, RetryBatch would share the cores with it.
      await floor.untilLogsArchived();
      for (let round = 0; round < ROUNDS; round++) {
        if (round > 0) {
          // The last round's retries, cancelled, are the lineages' latest attempts to retry next.
          await cancelQueued(client, batchId);
          // Cancelled, they have ended: the archiver archives their (empty) logs next.
          await floor.untilLogsArchived();
        }
        rounds.push({ floorMillis: await floor.measure(), ...(await retryWholeBatch(client, { batchId, failedOnly: round === 0, requestId: randomUUID() })) });
      }
    } catch (error) {
      if (error instanceof ConnectError && error.code === Code.Unimplemented) {
        process.stdout.write(`\nRetryBatch, ${backend.label}: SKIPPED, not implemented by this execution-service\n`);
        return;
      }
      throw error;
    } finally {
      await floor.close();
    }
    const queued = await countInBatch(client, batchId, ExecutionStatus.QUEUED);

    const median = (pick: (round: Round) => number) => percentile(rounds.map(pick), 50);
    const each = (pick: (round: Round) => number) => `rounds: ${rounds.map((round) => ms(pick(round))).join(", ")}`;
    process.stdout.write(`\nRetryBatch of ${EXECUTIONS} finished executions, ${backend.label} (medians of ${ROUNDS} interleaved rounds)\n\n`);
    printTable([
      ["measure", "value", "note"],
      ["RetryBatch wall time", ms(median((r) => r.retryMillis)), `one RPC; ${each((r) => r.retryMillis)}`],
      [`floor: ${EXECUTIONS} × one retry's ${floor.what}`, ms(median((r) => r.floorMillis)), each((r) => r.floorMillis)],
      [
        "RetryBatch / floor",
        `${(median((r) => r.retryMillis) / median((r) => r.floorMillis)).toFixed(2)}×`,
        backend.kind === "embedded" ? "target ≤ 2.00×" : "",
      ],
      ["RetryBatch re-sent (same request_id)", ms(median((r) => r.resendMillis)), "same answer, nothing new"],
      ["retries queued afterwards", String(queued), `of ${EXECUTIONS}`],
      [`submitting ${EXECUTIONS} (as rgrid run --batch)`, ms(submitMillis), "100 a call"],
      ["submit start -> all failed", ms(failedAfterMillis), `${RUNNERS} runners`],
      ["peak RSS execution-service", bench.peakRss("execution"), ""],
    ]);
  } finally {
    await bench.stop();
  }
}

interface Round {
  retryMillis: number;
  resendMillis: number;
  floorMillis: number;
}

/** One RetryBatch that must retry every lineage of the batch, then the same request again, which must answer the same. */
async function retryWholeBatch(client: ExecutionClient, request: { batchId: string; failedOnly: boolean; requestId: string }): Promise<Omit<Round, "floorMillis">> {
  let started = performance.now();
  const answer = await client.retryBatch(request);
  const retryMillis = performance.now() - started;
  if (answer.retriedCount !== EXECUTIONS) {
    throw new Error(`RetryBatch retried ${answer.retriedCount} of ${EXECUTIONS} (skipped ${answer.skippedCount})`);
  }
  started = performance.now();
  const again = await client.retryBatch(request);
  const resendMillis = performance.now() - started;
  if (again.retriedCount !== EXECUTIONS || again.items.some((item, index) => item.retry?.id !== answer.items[index]?.retry?.id)) {
    throw new Error(`the re-sent RetryBatch did not answer with the first answer's ${EXECUTIONS} retries`);
  }
  return { retryMillis, resendMillis };
}

async function cancelQueued(client: ExecutionClient, batchId: string): Promise<void> {
  const queued: string[] = [];
  let pageToken = "";
  do {
    const page = await client.listExecutions({ batchId, statuses: [ExecutionStatus.QUEUED], pageSize: 500, pageToken });
    queued.push(...page.executions.map((execution) => execution.id));
    pageToken = page.nextPageToken;
  } while (pageToken !== "");
  await mapWithLimit(queued, CANCEL_CONCURRENCY, (executionId) => client.cancelExecution({ executionId }));
}

async function anyIdInBatch(client: ExecutionClient, batchId: string): Promise<string> {
  const [execution] = (await client.listExecutions({ batchId, pageSize: 1 })).executions;
  if (execution === undefined) {
    throw new Error(`batch ${batchId} has no executions`);
  }
  return execution.id;
}

/**
 * The floor of retrying EXECUTIONS executions: as many single retries' statements on the raw
 * driver, one after another, each with the hard link of its script on the local-file store (on
 * S3 the copies are the store's own, and only the statements are counted).
 */
async function retryFloor(
  bench: BenchGrid,
  backend: Backend,
  originalId: string,
  scriptBytes: number,
): Promise<{ measure(): Promise<number>; untilLogsArchived(): Promise<void>; close(): Promise<void>; what: string }> {
  const work = await mkdtemp(join(tmpdir(), "rgrid-batch-floor-"));
  const raw = backend.kind === "embedded" ? await rawSqlite(bench, originalId, work) : await rawPostgres(bench, originalId, 1);
  const copy = backend.kind === "embedded" ? await linkFloor(work, { "fail.py": scriptBytes }) : async () => undefined;
  const once = async () => {
    await raw.retryOnce();
    await copy();
  };
  for (let i = 0; i < 50; i++) {
    await once();
  }
  return {
    what: backend.kind === "embedded" ? "statements (better-sqlite3) + link" : "statements (pg)",
    async untilLogsArchived() {
      for (const deadline = Date.now() + 120_000; (await raw.logsAwaitingArchive()) > 0; ) {
        if (Date.now() > deadline) {
          throw new Error("the log archiver did not archive the failed executions' logs within 2 minutes");
        }
        await sleep(200);
      }
    },
    async measure() {
      const started = performance.now();
      for (let i = 0; i < EXECUTIONS; i++) {
        await once();
      }
      return performance.now() - started;
    },
    async close() {
      await raw.close();
      await rm(work, { recursive: true, force: true });
    },
  };
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
