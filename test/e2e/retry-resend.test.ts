// A retry whose answer is lost on the way back: the server made the retry, the connection broke
// before the CLI saw it, and the CLI's re-send with the same request_id must get that same retry
// rather than a second one.
import { ExecutionService, RunnerService } from "@rgrid/proto";
import { runCli } from "../support/grid";
import { startCluster } from "../support/cluster";
import type { Cluster } from "../support/cluster";
import { startCuttingProxy } from "../support/cutting-proxy";
import type { CuttingProxy } from "../support/cutting-proxy";
import { allExecutionIds, clientFor, createUploadedExecution, failExecution } from "../support/executions";
import { printLogsOnFailure } from "../support/failure-logs";

jest.setTimeout(120_000);

let cluster: Cluster;
let proxy: CuttingProxy;

beforeAll(async () => {
  cluster = await startCluster();
  proxy = await startCuttingProxy(cluster.execution.url, "/rgrid.v1.ExecutionService/RetryExecution");
});

afterAll(async () => {
  await proxy?.close();
  await cluster?.shutdown();
});

printLogsOnFailure("cluster", () => cluster?.logs, 60);

test("rgrid retry re-sends after the connection is cut mid-answer and makes exactly one retry", async () => {
  const client = clientFor(ExecutionService, cluster.execution.url, cluster.apiKey);
  const originalId = await createUploadedExecution(client, {
    script: { name: "main.py", bytes: Buffer.from("raise SystemExit(1)\n") },
    requestId: "create-resend",
  });
  await failExecution(clientFor(RunnerService, cluster.execution.url, cluster.runnerToken), originalId);
  const before = await allExecutionIds(client);

  const retry = await runCli({ executionUrl: proxy.url, apiKey: cluster.apiKey, dataDir: cluster.dataDir }, ["retry", originalId]);

  expect(proxy.cuts).toBe(1);
  const after = await allExecutionIds(client);
  const created = after.filter((id) => !before.includes(id));
  expect(created).toHaveLength(1);
  const retryId = created[0] as string;
  expect(retry.stderr).toMatch(/^Connection lost\. Retrying\.\.\./m);
  expect(retry.code).toBe(0);
  expect(retry.stdout.split("\n")).toEqual([
    `Retry started: ${retryId}`,
    `Original: ${originalId}`,
    "Original error: failed on purpose by the test",
    "Status: queued",
    "",
    `Check status: rgrid status ${retryId}`,
    `View logs: rgrid logs ${retryId}`,
    "",
  ]);
  const { execution } = await client.getExecution({ executionId: originalId });
  expect(execution?.retriedAs).toEqual([retryId]);
});
