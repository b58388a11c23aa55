// `npm run bench:replicas`: two execution-service replicas on one PostgreSQL database (with the
// local-file store), measured as a runner and a user see them:
// - an execution queued through replica B → claimed by a runner waiting on replica A;
// - a log line stored through A → received by a FollowLogs stream on B;
// - database transactions per idle runner per minute, with the cluster channel and without it
//   (RGRID_CLUSTER_CHANNEL=off: polling every second, as every replica did before);
// - RetryExecution throughput at c=16 against one replica and spread over two;
// - create + run of trivial scripts by three runners, submitted through one replica or two.
//
//   node bench/dist/replicas.js
import { randomUUID } from "node:crypto";
import { create } from "@bufbuild/protobuf";
import { createClient } from "@connectrpc/connect";
import type { Client } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { bearerAuth, mapWithLimit } from "@rgrid/common";
import { openDatabase } from "@rgrid/execution";
import { ExecutionService, ExecutionStatus, LogEntry_Stream, LogEntrySchema, Outcome, RunnerService } from "@rgrid/proto";
import type { Backend } from "./backends";
import { postgresFilesBackend } from "./backends";
import { failedOriginalWithThreeInputs, startBenchGrid } from "./bench-grid";
import type { BenchGrid } from "./bench-grid";
import { runBenchmark } from "./entry";
import { createUploaded, sleep, waitUntilTerminal, writeScript } from "./executions";
import { ms, percentile, printTable, target } from "./stats";

const SAMPLES = 100;
const IDLE_RUNNERS = 4;
const IDLE_SECONDS = 20;
const CONCURRENCY = 16;
const RETRIES = 1_000;
const TRIVIAL = 200;
const RUNNERS = 3;
const SLOTS = 2;

type Executions = Client<typeof ExecutionService>;
type Runners = Client<typeof RunnerService>;

async function main(): Promise<void> {
  const backend = await postgresFilesBackend();
  if ("unavailable" in backend) {
    process.stdout.write(`skipped: ${backend.unavailable}\n`);
    return;
  }
  try {
    const rows: Array<[string, string, string]> = [["measure", "value", "target"]];
    // First, while the database holds no queued work the idle runners could take.
    const polling = await startBenchGrid({ runners: 0, backend, replicas: 2, executionEnv: { RGRID_CLUSTER_CHANNEL: "off" } });
    let idleBefore: number;
    try {
      idleBefore = await idleTransactions(clientsOf(polling)[0]!, backend);
    } finally {
      await polling.stop();
    }
    const clustered = await startBenchGrid({ runners: 0, backend, replicas: 2 });
    try {
      const [a, b] = clientsOf(clustered);
      const idleNow = await idleTransactions(a!, backend);
      rows.push(["database transactions per idle runner per minute, polling (before)", idleBefore.toFixed(1), ""]);
      rows.push(["database transactions per idle runner per minute, cluster channel", idleNow.toFixed(1), `${(idleBefore / idleNow).toFixed(1)}× fewer`]);
      const wake = await wakeUpLatency(clustered, a!, b!);
      rows.push(["queued through B → claimed by a runner waiting on A, p50", ms(percentile(wake, 50)), target(percentile(wake, 50), "<=", 30, "ms")]);
      rows.push(["  p99", ms(percentile(wake, 99)), ""]);
      const logs = await logLatency(clustered, a!, b!);
      rows.push(["log line stored through A → FollowLogs on B, p50", ms(percentile(logs, 50)), target(percentile(logs, 50), "<=", 100, "ms")]);
      rows.push(["  p99", ms(percentile(logs, 99)), ""]);
    } finally {
      await clustered.stop();
    }
    // Before the retries below: their 2,000 queued executions would be run first.
    const runOne = await createAndRunThroughput(backend, 1);
    const runTwo = await createAndRunThroughput(backend, 2);
    rows.push([`create + run of ${TRIVIAL} trivial scripts, ${RUNNERS} runners × ${SLOTS} slots, one replica`, `${runOne.toFixed(1)}/s`, ""]);
    rows.push([`create + run of ${TRIVIAL} trivial scripts, submitted through two replicas`, `${runTwo.toFixed(1)}/s (${(runTwo / runOne).toFixed(2)}×)`, ""]);
    const retrying = await startBenchGrid({ runners: 0, backend, replicas: 2 });
    try {
      const [a, b] = clientsOf(retrying);
      const throughput = await retryThroughput(retrying, [a!.executions], [a!.executions, b!.executions]);
      rows.push([`RetryExecution throughput, c=${CONCURRENCY}, one replica`, `${throughput.one.toFixed(0)}/s`, ""]);
      rows.push([`RetryExecution throughput, c=${CONCURRENCY}, two replicas`, `${throughput.two.toFixed(0)}/s (${(throughput.two / throughput.one).toFixed(2)}×)`, ""]);
    } finally {
      await retrying.stop();
    }
    process.stdout.write(`\nTwo execution-service replicas, ${backend.label}\n\n`);
    printTable(rows);
  } finally {
    await backend.close();
  }
}

interface ReplicaClients {
  executions: Executions;
  runners: Runners;
}

function clientsOf(bench: BenchGrid): ReplicaClients[] {
  return bench.grid.replicaUrls.map((baseUrl) => ({
    executions: createClient(ExecutionService, createConnectTransport({ baseUrl, httpVersion: "2", useBinaryFormat: true, interceptors: [bearerAuth(bench.grid.apiKey)] })),
    runners: createClient(RunnerService, createConnectTransport({ baseUrl, httpVersion: "2", useBinaryFormat: true, interceptors: [bearerAuth(bench.grid.runnerToken)] })),
  }));
}

/** From ConfirmUploads answering on B (the execution is queued) to the claim waiting on A answering. */
async function wakeUpLatency(bench: BenchGrid, a: ReplicaClients, b: ReplicaClients): Promise<number[]> {
  const script = await writeScript(bench.dataDir, "noop.py", "pass\n");
  const { runnerId } = await a.runners.registerRunner({ name: "bench", runtimes: ["python"], version: "bench" });
  const samples: number[] = [];
  for (let i = 0; i < SAMPLES + 5; i++) {
    const id = await createUploaded(b.executions, script);
    const claim = a.runners.claimExecution({ runnerId, waitMillis: 30_000 });
    await sleep(20); // the claim is waiting
    await b.executions.confirmUploads({ executionId: id });
    const queuedAt = performance.now();
    const { assignment } = await claim;
    const latency = performance.now() - queuedAt;
    if (assignment?.execution?.id !== id) {
      throw new Error(`the claim on A took ${assignment?.execution?.id ?? "nothing"}, not ${id}`);
    }
    if (i >= 5) samples.push(latency);
    await a.runners.completeExecution({ runnerId, executionId: id, outcome: Outcome.COMPLETED, exitCode: 0 });
  }
  return samples;
}

/** From AppendLogs answering on A to the line arriving on a FollowLogs stream on B. */
async function logLatency(bench: BenchGrid, a: ReplicaClients, b: ReplicaClients): Promise<number[]> {
  const script = await writeScript(bench.dataDir, "noop.py", "pass\n");
  const { runnerId } = await a.runners.registerRunner({ name: "bench-logs", runtimes: ["python"], version: "bench" });
  const id = await createUploaded(a.executions, script);
  await a.executions.confirmUploads({ executionId: id });
  const { assignment } = await a.runners.claimExecution({ runnerId, waitMillis: 5_000 });
  if (assignment?.execution?.id !== id) throw new Error("could not claim the execution to log for");
  const arrivals = new Map<bigint, number>();
  let arrived: (() => void) | undefined;
  const stream = (async () => {
    for await (const message of b.executions.followLogs({ executionId: id })) {
      for (const entry of message.entries) arrivals.set(entry.sequence, performance.now());
      arrived?.();
    }
  })();
  await sleep(200);
  const samples: number[] = [];
  for (let sequence = 1n; sequence <= BigInt(SAMPLES + 5); sequence++) {
    let received = new Promise<void>((resolve) => (arrived = resolve));
    await a.runners.appendLogs({ runnerId, executionId: id, entries: [create(LogEntrySchema, { sequence, stream: LogEntry_Stream.STDOUT, line: `line ${sequence}` })] });
    const storedAt = performance.now();
    while (!arrivals.has(sequence)) {
      // A message without it (an idle one) resolved the last wait: wait for the next.
      await received;
      received = new Promise<void>((resolve) => (arrived = resolve));
    }
    if (sequence > 5n) samples.push(arrivals.get(sequence)! - storedAt);
  }
  await a.runners.completeExecution({ runnerId, executionId: id, outcome: Outcome.COMPLETED, exitCode: 0 });
  await stream;
  return samples;
}

/**
 * Transactions the database commits per minute for each of IDLE_RUNNERS runners waiting on A for
 * work that never comes: the rate while they wait, less the rate of the replicas on their own
 * (lease sweeps, the bulk retry worker), measured just before.
 */
async function idleTransactions(a: ReplicaClients, backend: Backend): Promise<number> {
  const admin = await openDatabase({ dialect: "postgresql", url: backend.gridOptions.databaseUrl! });
  const committed = async () => {
    const [row] = await admin.fork().getConnection().execute<Array<{ count: string }>>(
      "select xact_commit + xact_rollback as count from pg_stat_database where datname = current_database()",
    );
    return Number(row!.count);
  };
  // pg_stat_database hears of a backend's transactions when it goes idle, at most every 500 ms.
  const ratePerMinute = async (during: () => Promise<unknown>) => {
    await sleep(1_000);
    const before = await committed();
    const from = Date.now();
    await during();
    await sleep(1_000);
    return ((await committed()) - before - 1) / ((Date.now() - from) / 60_000);
  };
  try {
    const runnerIds = await Promise.all(
      Array.from({ length: IDLE_RUNNERS }, async (_, index) => (await a.runners.registerRunner({ name: `idle-${index}`, runtimes: ["python"], version: "bench" })).runnerId),
    );
    const baseline = await ratePerMinute(() => sleep(IDLE_SECONDS * 500));
    const waiting = await ratePerMinute(async () => {
      const stop = Date.now() + IDLE_SECONDS * 1000;
      await Promise.all(runnerIds.map(async (runnerId) => {
        while (Date.now() < stop) await a.runners.claimExecution({ runnerId, waitMillis: Math.max(1, Math.min(30_000, stop - Date.now())) });
      }));
    });
    return Math.max(0, waiting - baseline) / IDLE_RUNNERS;
  } finally {
    await admin.close();
  }
}

/**
 * Trivial executions (`print(1)`) per second, submitted round-robin through `replicas` replicas
 * (create, upload, confirm) and run by RUNNERS runners, from the first submission to the last end.
 */
async function createAndRunThroughput(backend: Backend, replicas: number): Promise<number> {
  const bench = await startBenchGrid({ runners: RUNNERS, backend, replicas, runnerEnv: { RGRID_RUNNER_CONCURRENCY: String(SLOTS) } });
  try {
    const clients = clientsOf(bench).map((replica) => replica.executions);
    const script = await writeScript(bench.dataDir, "t.py", "print(1)\n");
    let next = 0;
    const started = performance.now();
    const ids = await mapWithLimit(Array.from({ length: TRIVIAL }), CONCURRENCY, async () => {
      const client = clients[next++ % clients.length]!;
      const id = await createUploaded(client, script);
      await client.confirmUploads({ executionId: id });
      return id;
    });
    for (const id of ids) {
      const execution = await waitUntilTerminal(clients[0]!, id, 250);
      if (execution.status !== ExecutionStatus.COMPLETED) {
        throw new Error(`trivial execution ${id} ended ${ExecutionStatus[execution.status]}: ${execution.errorMessage}`);
      }
    }
    return TRIVIAL / ((performance.now() - started) / 1000);
  } finally {
    await bench.stop();
  }
}

/** RetryExecution at c=16 against `one` replica, then spread round-robin over `two`. */
async function retryThroughput(bench: BenchGrid, one: Executions[], two: Executions[]): Promise<{ one: number; two: number }> {
  const originalId = await failedOriginalWithThreeInputsThrough(bench);
  const measure = async (clients: Executions[]) => {
    let next = 0;
    const started = performance.now();
    await mapWithLimit(Array.from({ length: RETRIES }), CONCURRENCY, async () => {
      const client = clients[next++ % clients.length]!;
      await client.retryExecution({ executionId: originalId, requestId: randomUUID() });
    });
    return RETRIES / ((performance.now() - started) / 1000);
  };
  await measure(two); // warm both
  return { one: await measure(one), two: await measure(two) };
}

/** A failed execution with three inputs of 1 MiB, failed by a runner of the bench's own. */
async function failedOriginalWithThreeInputsThrough(bench: BenchGrid): Promise<string> {
  const runners = clientsOf(bench)[0]!.runners;
  const { runnerId } = await runners.registerRunner({ name: "bench-fail", runtimes: ["python"], version: "bench" });
  const failing = (async () => {
    for (;;) {
      const { assignment } = await runners.claimExecution({ runnerId, waitMillis: 30_000 });
      const id = assignment?.execution?.id;
      if (id !== undefined) {
        await runners.completeExecution({ runnerId, executionId: id, outcome: Outcome.FAILED, exitCode: 1, errorMessage: "failing on purpose" });
        return;
      }
    }
  })();
  const id = await failedOriginalWithThreeInputs(bench.dataDir, bench.cliEnv);
  await failing;
  return id;
}

runBenchmark(main);
