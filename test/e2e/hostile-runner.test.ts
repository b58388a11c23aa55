// Hostile input to RunnerService over the real process: a sample of malformed requests per RPC
// over gRPC and Connect, some with no credential or an API key instead of a runner token. (The
// request rules meet a thousand of each in process: test/validation/hostile-rules.)
// Every answer must be a client error — never Internal or Unknown — the service must stay up, and
// nothing may change: no runner registered, no execution claimed, logged, given outputs or ended.
// Seeded; replay a failing run with RGRID_FUZZ_SEED.
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { mapWithLimit } from "@rgrid/common";
import { ExecutionService, ExecutionStatus, Health, HealthCheckResponse_ServingStatus, RunnerService } from "@rgrid/proto";
import { openDatabase } from "@rgrid/execution";
import { startCluster } from "../support/cluster";
import type { Cluster } from "../support/cluster";
import { FUZZ_PROTOCOLS, fuzzTransport, sendHostile } from "../support/fuzz-clients";
import { withRunnerCredentials } from "../support/fuzz-credentials";
import { fuzzReport } from "../support/fuzz-report";
import type { FuzzProtocol } from "../support/fuzz-clients";
import { allExecutionIds, clientFor, createUploadedExecution, objectDirs } from "../support/executions";
import type { ExecutionClient } from "../support/executions";
import { RUNNER_RPCS, hostileRunnerRequest } from "../support/hostile-runner-requests";
import type { RunnerClient, RunnerTargets } from "../support/hostile-runner-requests";
import { seededRandom } from "../support/seeded-random";

jest.setTimeout(300_000);

const SEED = Number(process.env.RGRID_FUZZ_SEED ?? 20_261_127);
/** Per RPC, spread over the three protocols: enough for every kind of case to cross the wire. */
const PER_RPC = 150;
const CONCURRENCY = 8;

let cluster: Cluster;
let executions: ExecutionClient;
let targets: RunnerTargets;


async function runnerCount(): Promise<number> {
  const db = await openDatabase({ dialect: "sqlite", file: cluster.databaseUrl.slice("sqlite:".length) });
  try {
    const rows = await db.fork().getConnection().execute<Array<{ count: number }>>("select count(*) as count from runners");
    return Number(rows[0]?.count);
  } finally {
    await db.close();
  }
}

beforeAll(async () => {
  cluster = await startCluster();
  executions = clientFor(ExecutionService, cluster.execution.url, cluster.apiKey);
  const runner = clientFor(RunnerService, cluster.execution.url, cluster.runnerToken);
  const { runnerId } = await runner.registerRunner({ name: "fuzz-target", runtimes: ["node"], version: "test" });
  const executionId = await createUploadedExecution(executions, {
    script: { name: "main.py", bytes: Buffer.from("print('target')\n") },
    inputs: [{ name: "in.txt", bytes: Buffer.from("in") }],
    requestId: "runner-fuzz-target",
  });
  targets = { runnerId, executionId };
});

afterAll(async () => {
  await cluster?.shutdown();
});

test("every RunnerService RPC answers malformed requests with client errors only, stays up and changes nothing", async () => {
  const random = seededRandom(SEED);
  const runnersBefore = await runnerCount();
  const idsBefore = await allExecutionIds(executions);
  const dirsBefore = await objectDirs(cluster.objectsDir);
  const clients = Object.fromEntries(
    FUZZ_PROTOCOLS.map((protocol) => [protocol, createClient(RunnerService, fuzzTransport(protocol, cluster.execution.url))]),
  ) as Record<FuzzProtocol, RunnerClient>;

  const jobs = RUNNER_RPCS.flatMap((rpc) => Array.from({ length: PER_RPC }, (_, index) => ({ rpc, index })));
  const outcomes = await mapWithLimit(jobs, CONCURRENCY, async (job) => {
    const protocol = FUZZ_PROTOCOLS[job.index % FUZZ_PROTOCOLS.length] as FuzzProtocol;
    const { hostile, options } = withRunnerCredentials(random, hostileRunnerRequest(job.rpc, job.index, random, targets), cluster);
    return sendHostile(hostile, options, protocol, {
      shared: clients[protocol],
      isolated: () => createClient(RunnerService, fuzzTransport(protocol, cluster.execution.url, { isolated: true })),
    });
  });

  const { codes, unexpected, summary } = fuzzReport("runner hostile input", SEED, outcomes);
  console.log(summary);

  expect(cluster.execution.isRunning()).toBe(true);
  const health = createClient(Health, createGrpcTransport({ baseUrl: cluster.execution.url }));
  expect((await health.check({ service: "" })).status).toBe(HealthCheckResponse_ServingStatus.SERVING);
  expect(await runnerCount()).toBe(runnersBefore);
  expect(await allExecutionIds(executions)).toEqual(idsBefore);
  expect(await objectDirs(cluster.objectsDir)).toEqual(dirsBefore);
  const { execution } = await executions.getExecution({ executionId: targets.executionId });
  expect(execution?.status).toBe(ExecutionStatus.QUEUED);
  expect(execution?.outputs).toEqual([]);
  expect((await executions.getLogs({ executionId: targets.executionId })).entries).toEqual([]);

  for (const rpc of RUNNER_RPCS) {
    const perRpc = outcomes.filter((outcome) => outcome.rpc === rpc);
    expect(perRpc.length).toBeGreaterThanOrEqual(PER_RPC);
    for (const protocol of FUZZ_PROTOCOLS) {
      expect(perRpc.some((outcome) => outcome.protocol === protocol)).toBe(true);
    }
  }
  expect(codes.Internal ?? 0).toBe(0);
  expect(codes.Unknown ?? 0).toBe(0);
  expect(unexpected).toEqual([]);
});
