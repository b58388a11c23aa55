// Hostile input to RunnerService over the real process: at least 1,000 malformed requests per
// RPC over gRPC and Connect, some with no credential or an API key instead of a runner token.
// Every answer must be a client error — never Internal or Unknown — the service must stay up, and
// nothing may change: no runner registered, no execution claimed, logged, given outputs or ended.
// Seeded; replay a failing run with RGRID_FUZZ_SEED.
import { Code, createClient } from "@connectrpc/connect";
import type { CallOptions } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { mapWithLimit } from "@rgrid/common";
import { ExecutionService, ExecutionStatus, Health, HealthCheckResponse_ServingStatus, RunnerService } from "@rgrid/proto";
import { openDatabase } from "@rgrid/execution";
import { startCluster } from "../support/cluster";
import type { Cluster } from "../support/cluster";
import { FUZZ_PROTOCOLS, bearer, fuzzTransport, sendHostile } from "../support/fuzz-clients";
import type { FuzzProtocol } from "../support/fuzz-clients";
import { allExecutionIds, clientFor, createUploadedExecution, objectDirs } from "../support/executions";
import type { ExecutionClient } from "../support/executions";
import { RUNNER_RPCS, hostileRunnerRequest } from "../support/hostile-runner-requests";
import type { RunnerClient, RunnerHostileCase, RunnerTargets } from "../support/hostile-runner-requests";
import { seededRandom } from "../support/seeded-random";
import type { SeededRandom } from "../support/seeded-random";

jest.setTimeout(300_000);

const SEED = Number(process.env.RGRID_FUZZ_SEED ?? 20_261_127);
const PER_RPC = 1000;
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

/** Swaps the runner token of some requests for none, an API key, or a wrong token. */
function withCredentials(random: SeededRandom, hostile: RunnerHostileCase): { hostile: RunnerHostileCase; options: CallOptions } {
  if (hostile.expected.includes(Code.ResourceExhausted)) return { hostile, options: bearer(cluster.runnerToken) };
  // A body that cannot be decoded may be refused before the credentials are looked at.
  const undecodable = hostile.expected.includes(Code.InvalidArgument) ? [Code.InvalidArgument] : [];
  const refused = (kind: string, options: CallOptions) => ({
    hostile: { ...hostile, kind: `${kind} (${hostile.kind})`, expected: [Code.Unauthenticated, Code.PermissionDenied, ...undecodable] },
    options,
  });
  const roll = random.next();
  if (roll < 0.04) return refused("no authorization", {});
  if (roll < 0.08) return refused("api key", bearer(cluster.apiKey));
  if (roll < 0.1) return refused("tampered token", bearer(`${cluster.runnerToken.slice(0, -1)}${cluster.runnerToken.endsWith("A") ? "B" : "A"}`));
  return { hostile, options: bearer(cluster.runnerToken) };
}


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
    const { hostile, options } = withCredentials(random, hostileRunnerRequest(job.rpc, job.index, random, targets));
    return sendHostile(hostile, options, protocol, {
      shared: clients[protocol],
      isolated: () => createClient(RunnerService, fuzzTransport(protocol, cluster.execution.url, { isolated: true })),
    });
  });

  const codes: Record<string, number> = {};
  for (const outcome of outcomes) codes[outcome.got] = (codes[outcome.got] ?? 0) + 1;
  const unexpected = outcomes.filter((outcome) => !outcome.expected.includes(outcome.got));
  const groups = new Map<string, { count: number; example: string }>();
  for (const o of unexpected) {
    const key = `${o.rpc} ${o.protocol} [${o.kind}] expected ${o.expected.join("|")} got ${o.got}`;
    const group = groups.get(key) ?? { count: 0, example: o.message };
    group.count++;
    groups.set(key, group);
  }
  console.log(
    [
      `runner hostile input: seed ${SEED}, ${outcomes.length} requests`,
      `  codes: ${JSON.stringify(codes)}`,
      `  unexpected: ${unexpected.length}`,
      ...[...groups].slice(0, 100).map(([key, { count, example }]) => `    ${count}x ${key}: ${example}`),
    ].join("\n"),
  );

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
    expect(perRpc.length).toBeGreaterThanOrEqual(1000);
    for (const protocol of FUZZ_PROTOCOLS) {
      expect(perRpc.some((outcome) => outcome.protocol === protocol)).toBe(true);
    }
  }
  expect(codes.Internal ?? 0).toBe(0);
  expect(codes.Unknown ?? 0).toBe(0);
  expect(unexpected).toEqual([]);
});
