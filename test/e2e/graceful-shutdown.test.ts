// SIGTERM to execution-service while slow requests are in flight: retries whose copies are held
// at the S3 server's door, and runners' long-polling claims. The in-flight ones must finish
// normally, new connections must be refused meanwhile, the process must exit 0 without cutting
// anything, and what the clients were told must match what the database holds afterwards.
import * as net from "node:net";
import { ConnectError } from "@connectrpc/connect";
import { ExecutionService, RunnerService } from "@rgrid/proto";
import { startCluster } from "../support/cluster";
import type { Cluster } from "../support/cluster";
import { allExecutionIds, clientFor, createUploadedExecution, failExecution } from "../support/executions";
import { pollUntil } from "../support/grid";
import { startS3Gate } from "../support/s3-gate";
import type { S3Gate } from "../support/s3-gate";
import { startS3rver } from "../../services/storage/test/helpers";
import type { S3rverFixture } from "../../services/storage/test/helpers";
import { printLogsOnFailure } from "../support/failure-logs";

jest.setTimeout(180_000);

const RETRIES = 12;
const CLAIMS = 3;

let s3: S3rverFixture;
let gate: S3Gate;
let cluster: Cluster;

beforeAll(async () => {
  s3 = await startS3rver();
  gate = await startS3Gate(s3.endpoint);
  cluster = await startCluster({
    storageEnv: {
      RGRID_STORAGE_BACKEND: "s3",
      RGRID_S3_ENDPOINT: gate.endpoint,
      RGRID_S3_ACCESS_KEY: "S3RVER",
      RGRID_S3_SECRET_KEY: "S3RVER-secret",
      RGRID_S3_BUCKET: "rgrid-shutdown",
    },
  });
});

afterAll(async () => {
  await cluster?.shutdown();
  await gate?.close();
  await s3?.stop();
});

printLogsOnFailure("cluster", () => cluster?.logs);

/** Whether a new TCP connection to the URL's port is refused. */
function refusesConnections(url: string): Promise<boolean> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = net.connect(Number(port), hostname);
    socket.once("connect", () => {
      socket.destroy();
      resolve(false);
    });
    socket.once("error", (error: NodeJS.ErrnoException) => resolve(error.code === "ECONNREFUSED"));
  });
}

const settle = <T>(promise: Promise<T>) =>
  promise.then(
    (value) => ({ ok: true as const, value }),
    (error: unknown) => ({ ok: false as const, error: ConnectError.from(error) }),
  );

test("in-flight retries and long-polls finish, new connections are refused, and the process exits 0", async () => {
  const url = cluster.execution.url;
  const client = clientFor(ExecutionService, url, cluster.apiKey);
  // Script only: each retry copies exactly one object, so held copies count retries in flight.
  const originalId = await createUploadedExecution(client, {
    script: { name: "main.py", bytes: Buffer.from("raise SystemExit(1)\n") },
    requestId: "create-shutdown",
  });
  const runner = clientFor(RunnerService, url, cluster.runnerToken, { grpc: true });
  await failExecution(runner, originalId);
  const before = await allExecutionIds(client);

  // Runners that can run nothing queued here, so their claims wait out the whole poll.
  const { runnerId } = await runner.registerRunner({ name: "idle", runtimes: ["node"], version: "test" });
  const claims = Array.from({ length: CLAIMS }, () => settle(runner.claimExecution({ runnerId, waitMillis: 25_000 }, { timeoutMs: 60_000 })));

  gate.holdCopiesAfter(0);
  const retries = Array.from({ length: RETRIES }, (_, index) =>
    settle(clientFor(ExecutionService, url, cluster.apiKey).retryExecution({ executionId: originalId, requestId: `shutdown-${index}` })),
  );
  await gate.held(RETRIES);

  cluster.execution.signal("SIGTERM");
  await pollUntil(
    () => refusesConnections(url),
    (refused) => refused,
    () => "execution-service still accepts new connections after SIGTERM",
  );
  // Still draining: the held copies keep the retries open.
  expect(cluster.execution.isRunning()).toBe(true);
  gate.open();

  const retryAnswers = await Promise.all(retries);
  const claimAnswers = await Promise.all(claims);
  const exit = await cluster.execution.exited();

  expect(retryAnswers.filter((answer) => !answer.ok)).toEqual([]);
  for (const answer of claimAnswers) {
    expect(answer).toMatchObject({ ok: true });
    expect(answer.ok && answer.value.assignment).toBeUndefined();
  }
  expect(exit).toEqual({ code: 0, signal: null });
  expect(cluster.logs.join("\n")).not.toContain("cutting open requests");

  await cluster.execution.restart();
  const retryIds = retryAnswers.map((answer) => (answer.ok ? answer.value.execution?.id : undefined));
  expect((await allExecutionIds(client)).sort()).toEqual([...before, ...retryIds].sort());
});
