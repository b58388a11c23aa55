// RetryExecution through the real services: an original with three 1 MiB inputs, retried over
// and over. Prints latency at concurrency 1, throughput at concurrency 16, the wall time of the
// `rgrid retry` command and peak memory — on the embedded defaults (SQLite, local files) and on
// the production backends (PostgreSQL, S3 via s3rver; skipped when PostgreSQL is unreachable).
//
//   node bench/dist/retry.js [embedded|production]     (both when not told)
import { randomUUID } from "node:crypto";
import { ExecutionStatus } from "@rgrid/proto";
import { onChosenBackends } from "./backends";
import type { Backend } from "./backends";
import { CLI, failedOriginalWithThreeInputs, startBenchGrid } from "./bench-grid";
import type { ExecutionClient } from "./bench-grid";
import { runCommand } from "./command";
import { runBenchmark } from "./entry";
import { ms, percentile, printTable, target } from "./stats";

const CONCURRENCY = 16;

interface Workload {
  sequentialRetries: number;
  concurrentRetries: number;
  cliRuns: number;
  /** The goals to report against, where this backend has any. */
  targets?: { p50Millis: number; retriesPerSecond: number; cliMedianMillis: number };
}

const EMBEDDED: Workload = {
  sequentialRetries: 500,
  concurrentRetries: 3000,
  cliRuns: 20,
  targets: { p50Millis: 5, retriesPerSecond: 400, cliMedianMillis: 250 },
};
// Every retry copies 3 MiB inside s3rver (files on disk): fewer of them keep the run short.
const PRODUCTION: Workload = { sequentialRetries: 150, concurrentRetries: 400, cliRuns: 10 };

async function benchmarkRetries(backend: Backend): Promise<void> {
  const workload = backend.kind === "embedded" ? EMBEDDED : PRODUCTION;
  const bench = await startBenchGrid({ runners: 1, backend });
  try {
    const originalId = await failedOriginalWithThreeInputs(bench.dataDir, bench.cliEnv);
    // The runner would start running every retry and compete for the two cores being measured.
    await bench.stopRunners();

    const retry = () => bench.client.retryExecution({ executionId: originalId, requestId: randomUUID() });
    for (let i = 0; i < 50; i++) {
      await retry(); // warm-up: JIT, connection, database page cache
    }

    const latencies: number[] = [];
    for (let i = 0; i < workload.sequentialRetries; i++) {
      const started = performance.now();
      await retry();
      latencies.push(performance.now() - started);
    }

    const throughput = await measureThroughput(bench.client, originalId, workload.concurrentRetries);

    const cliTimes: number[] = [];
    for (let i = 0; i < workload.cliRuns; i++) {
      const result = await runCommand(process.execPath, [CLI, "retry", originalId], { env: bench.cliEnv });
      cliTimes.push(result.wallMillis);
      if (result.code !== 0) {
        throw new Error(`rgrid retry failed: ${result.stderr}`);
      }
    }

    const p50 = percentile(latencies, 50);
    const cliMedian = percentile(cliTimes, 50);
    const goals = workload.targets;
    process.stdout.write(`\nRetryExecution, 3 inputs of 1 MiB, ${backend.label}\n\n`);
    printTable([
      ["measure", "value", "target"],
      [`p50 latency, concurrency 1 (${workload.sequentialRetries} retries)`, ms(p50), goals ? target(p50, "<=", goals.p50Millis, "ms") : ""],
      ["p99 latency, concurrency 1", ms(percentile(latencies, 99)), ""],
      [
        `throughput, concurrency ${CONCURRENCY} (${workload.concurrentRetries} retries)`,
        `${throughput.toFixed(0)} retries/s`,
        goals ? target(throughput, ">=", goals.retriesPerSecond, "/s") : "",
      ],
      [`\`rgrid retry\` wall time, median of ${workload.cliRuns}`, ms(cliMedian), goals ? target(cliMedian, "<=", goals.cliMedianMillis, "ms") : ""],
      ["`rgrid retry` wall time, p90", ms(percentile(cliTimes, 90)), ""],
      ["peak RSS execution-service", bench.peakRss("execution"), ""],
      ["peak RSS storage-service", bench.peakRss("storage"), ""],
    ]);
  } finally {
    await bench.stop();
  }
}

async function measureThroughput(client: ExecutionClient, originalId: string, retries: number): Promise<number> {
  let remaining = retries;
  const worker = async () => {
    while (remaining-- > 0) {
      const { execution } = await client.retryExecution({ executionId: originalId, requestId: randomUUID() });
      if (execution?.status !== ExecutionStatus.QUEUED) {
        throw new Error(`unexpected status ${execution?.status}`);
      }
    }
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  return retries / ((performance.now() - started) / 1000);
}

runBenchmark(() => onChosenBackends("RetryExecution", benchmarkRetries));
