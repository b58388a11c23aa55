import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Client } from "@connectrpc/connect";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { bearerAuth, createJsonLogger, createMetricsRegistry, newBatchId } from "@rgrid/common";
import type { Logger, Registry, RunningServer } from "@rgrid/common";
import { ExecutionService, LogEntry_Stream, Outcome, RunnerService } from "@rgrid/proto";
import { issueApiKey } from "../src/accounts";
import { loadConsoleFiles } from "../src/console";
import { openDatabase } from "../src/db/orm";
import type { Database } from "../src/db/orm";
import { createExecutionServer } from "../src/server";
import { FakeStorage } from "./fake-storage";
import { finishedExecution, queuedExecution, registeredRunner } from "./flows";
import type { Harness } from "./harness";
import { RUNNER_TOKEN, TEST_SERVICE_SETTINGS, executionRequest, startHarness, uploadAll } from "./harness";

// execution-service's metrics and RPC log lines, over the wire on a real SQLite database: what
// GET /metrics reports as executions are created, queued, claimed and retried, and who may read it.

const METRICS_TOKEN = "metrics-token-0123456789";

/** The value of the sample line starting with `series`, or undefined when there is none. */
function sample(text: string, series: string): number | undefined {
  const line = text.split("\n").find((candidate) => candidate.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

const executions = (status: string) => `rgrid_executions{status="${status}"}`;

async function waitUntil(condition: () => boolean): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!condition()) {
    if (Date.now() > deadline) {
      throw new Error("timed out");
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe("over the wire", () => {
  let db: Database;
  let storage: FakeStorage;
  let server: RunningServer;
  let consoleDir: string;
  let alice: Client<typeof ExecutionService>;
  let runner: Client<typeof RunnerService>;
  let logLines: string[];

  beforeEach(async () => {
    db = await openDatabase({ dialect: "sqlite", file: ":memory:" });
    await db.migrate();
    storage = new FakeStorage();
    consoleDir = await mkdtemp(join(tmpdir(), "rgrid-console-"));
    await writeFile(join(consoleDir, "index.html"), "<!doctype html><title>console</title>");
    logLines = [];
    const logger: Logger = createJsonLogger("execution", { write: (chunk) => logLines.push(...chunk.split("\n").filter((line) => line !== "")) });
    server = await createExecutionServer({
      db,
      storage: storage.client(),
      ...TEST_SERVICE_SETTINGS,
      logger,
      consoleFiles: loadConsoleFiles(consoleDir),
      metrics: { registry: createMetricsRegistry(), token: METRICS_TOKEN },
    }).listen(0, "127.0.0.1");
    const aliceKey = (await issueApiKey(db.fork(), "alice", new Date())).key;
    const transport = (token: string) => createConnectTransport({ baseUrl: server.url, httpVersion: "1.1", interceptors: [bearerAuth(token)] });
    alice = createClient(ExecutionService, transport(aliceKey));
    runner = createClient(RunnerService, transport(RUNNER_TOKEN));
  });

  afterEach(async () => {
    await server.close(1000);
    await db.close();
    await rm(consoleDir, { recursive: true, force: true });
  });

  async function scrape(): Promise<string> {
    const response = await fetch(`${server.url}/metrics`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } });
    expect(response.status).toBe(200);
    return response.text();
  }

  test("the executions gauges follow an execution from creation to its claim and retry", async () => {
    const empty = await scrape();
    for (const status of ["uploading", "queued", "running", "completed", "failed", "timed_out", "cancelled"]) {
      expect(sample(empty, executions(status))).toBe(0);
    }
    for (const kind of ["manual", "batch", "automatic"]) {
      expect(sample(empty, `rgrid_retries_total{kind="${kind}"}`)).toBe(0);
    }
    expect(sample(empty, "rgrid_claim_latency_seconds_count")).toBe(0);

    const request = executionRequest();
    const created = (await alice.createExecution(request)).execution!;
    const afterCreate = await scrape();
    expect(sample(afterCreate, executions("uploading"))).toBe(1);
    expect(sample(afterCreate, 'rgrid_rpc_requests_total{service="rgrid.v1.ExecutionService",method="CreateExecution",code="ok"}')).toBe(1);

    uploadAll(storage, created, request);
    await alice.confirmUploads({ executionId: created.id });
    const afterConfirm = await scrape();
    expect(sample(afterConfirm, executions("uploading"))).toBe(0);
    expect(sample(afterConfirm, executions("queued"))).toBe(1);
    expect(sample(afterConfirm, 'rgrid_execution_queue_depth{runtime="python"}')).toBe(1);

    const { runnerId } = await runner.registerRunner({ name: "metrics-runner", runtimes: ["python"] });
    expect((await runner.claimExecution({ runnerId, waitMillis: 0 })).assignment?.execution?.id).toBe(created.id);
    const afterClaim = await scrape();
    expect(sample(afterClaim, executions("running"))).toBe(1);
    expect(sample(afterClaim, 'rgrid_execution_queue_depth{runtime="python"}')).toBeUndefined();
    expect(sample(afterClaim, "rgrid_claim_latency_seconds_count")).toBe(1);
    expect(sample(afterClaim, 'rgrid_rpc_requests_total{service="rgrid.v1.RunnerService",method="ClaimExecution",code="ok"}')).toBe(1);

    await runner.completeExecution({ runnerId, executionId: created.id, outcome: Outcome.FAILED, exitCode: 3, errorMessage: "boom" });
    await alice.retryExecution({ executionId: created.id, requestId: "retry-1" });
    const afterRetry = await scrape();
    expect(sample(afterRetry, executions("failed"))).toBe(1);
    expect(sample(afterRetry, executions("queued"))).toBe(1);
    expect(sample(afterRetry, 'rgrid_retries_total{kind="manual"}')).toBe(1);
  });

  test("a sent x-request-id comes back and names the RPC's JSON log line", async () => {
    let echoed: string | null = null;
    await alice.listExecutions({}, { headers: { "x-request-id": "cli-42" }, onHeader: (header) => (echoed = header.get("x-request-id")) });
    expect(echoed).toBe("cli-42");
    const records = logLines.map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(records.filter((record) => record["requestId"] === "cli-42")).toEqual([
      expect.objectContaining({
        level: "info",
        component: "execution/rpc",
        msg: "rpc",
        rpc: "rgrid.v1.ExecutionService/ListExecutions",
        code: "ok",
        durationMs: expect.any(Number),
      }),
    ]);
  });

  test("a refused call is counted and logged under its code", async () => {
    await expect(alice.getExecution({ executionId: `exec_${"0".repeat(32)}` }, { headers: { "x-request-id": "missing-1" } })).rejects.toMatchObject({
      code: 5,
    });
    expect(sample(await scrape(), 'rgrid_rpc_requests_total{service="rgrid.v1.ExecutionService",method="GetExecution",code="not_found"}')).toBe(1);
    const record = logLines.map((line) => JSON.parse(line) as Record<string, unknown>).find((entry) => entry["requestId"] === "missing-1");
    expect(record).toMatchObject({ rpc: "rgrid.v1.ExecutionService/GetExecution", code: "not_found" });
  });

  test("a log stream is logged when it ends: ok when the execution finished, canceled when the client left", async () => {
    const request = executionRequest();
    const created = (await alice.createExecution(request)).execution!;
    uploadAll(storage, created, request);
    await alice.confirmUploads({ executionId: created.id });
    const { runnerId } = await runner.registerRunner({ name: "metrics-runner", runtimes: ["python"] });
    await runner.claimExecution({ runnerId, waitMillis: 0 });
    await runner.appendLogs({ runnerId, executionId: created.id, entries: [{ sequence: 1n, stream: LogEntry_Stream.STDOUT, line: "hello" }] });
    const records = () => logLines.map((line) => JSON.parse(line) as Record<string, unknown>);
    const streamLine = (requestId: string) => records().find((record) => record["requestId"] === requestId);

    const leaving = new AbortController();
    const left = (async () => {
      for await (const message of alice.followLogs({ executionId: created.id }, { signal: leaving.signal, headers: { "x-request-id": "leaves-1" } })) {
        if (message.entries.length > 0) {
          leaving.abort();
        }
      }
    })().catch(() => undefined);
    await left;
    await waitUntil(() => streamLine("leaves-1") !== undefined);
    expect(streamLine("leaves-1")).toMatchObject({ rpc: "rgrid.v1.ExecutionService/FollowLogs", code: "canceled" });

    const followed = (async () => {
      for await (const message of alice.followLogs({ executionId: created.id }, { headers: { "x-request-id": "stays-1" } })) {
        if (message.entries.length > 0) {
          await runner.completeExecution({ runnerId, executionId: created.id, outcome: Outcome.COMPLETED, exitCode: 0 });
        }
      }
    })();
    await followed;
    await waitUntil(() => streamLine("stays-1") !== undefined);
    expect(streamLine("stays-1")).toMatchObject({ rpc: "rgrid.v1.ExecutionService/FollowLogs", code: "ok" });
    const text = await scrape();
    expect(sample(text, 'rgrid_rpc_requests_total{service="rgrid.v1.ExecutionService",method="FollowLogs",code="ok"}')).toBe(1);
    expect(sample(text, 'rgrid_rpc_requests_total{service="rgrid.v1.ExecutionService",method="FollowLogs",code="canceled"}')).toBe(1);
  });

  test("the public port answers /metrics only with the token, and the console keeps its other pages", async () => {
    const bare = await fetch(`${server.url}/metrics`);
    expect(bare.status).toBe(401);
    expect(await bare.text()).not.toContain("rgrid_executions");
    const wrong = await fetch(`${server.url}/metrics`, { headers: { authorization: "Bearer not-the-metrics-token" } });
    expect(wrong.status).toBe(401);
    // An API key is not the metrics token.
    const key = (await issueApiKey(db.fork(), "bob", new Date())).key;
    expect((await fetch(`${server.url}/metrics`, { headers: { authorization: `Bearer ${key}` } })).status).toBe(401);

    expect(await scrape()).toContain("# TYPE rgrid_executions gauge");
    const appPage = await fetch(`${server.url}/executions`);
    expect(await appPage.text()).toContain("<title>console</title>");
  });
});

describe("counted in the service", () => {
  let h: Harness;
  let registry: Registry;

  beforeEach(async () => {
    registry = createMetricsRegistry();
    h = await startHarness({ metrics: { registry } });
  });
  afterEach(() => h.close());

  const retries = async (kind: string) => sample(await registry.metrics(), `rgrid_retries_total{kind="${kind}"}`);

  test("each retry is counted once, under who asked for it; a replayed request is not counted again", async () => {
    const failed = await finishedExecution(h);
    await h.alice.retryExecution({ executionId: failed.id, requestId: "manual-1" });
    await h.alice.retryExecution({ executionId: failed.id, requestId: "manual-1" });
    expect(await retries("manual")).toBe(1);

    // Each step on a runtime of its own, so that a runner claims the execution meant and not a
    // retry queued by the step before.
    const batchId = newBatchId();
    const runnerId = await registeredRunner(h, ["node"]);
    for (let index = 0; index < 2; index++) {
      const request = executionRequest({ batchId, runtime: "node" });
      const created = (await h.alice.createExecution(request)).execution!;
      uploadAll(h.storage, created, request);
      await h.alice.confirmUploads({ executionId: created.id });
      await h.runner.claimExecution({ runnerId, waitMillis: 0 });
      await h.runner.completeExecution({ runnerId, executionId: created.id, outcome: Outcome.FAILED, exitCode: 1, errorMessage: "x" });
    }
    await h.alice.retryBatch({ batchId, failedOnly: true, requestId: "batch-1" });
    await h.alice.retryBatch({ batchId, failedOnly: true, requestId: "batch-1" });
    expect(await retries("batch")).toBe(2);

    const lost = await queuedExecution(h, "ruby");
    const rubyRunnerId = await registeredRunner(h, ["ruby"]);
    await h.runner.claimExecution({ runnerId: rubyRunnerId, waitMillis: 0 });
    await h.runner.completeExecution({ runnerId: rubyRunnerId, executionId: lost.id, outcome: Outcome.INFRASTRUCTURE_ERROR, errorMessage: "disk gone" });
    expect(await retries("automatic")).toBe(1);
    expect(await retries("manual")).toBe(1);
  });

  test("a scrape goes on without the execution gauges when the database cannot count", async () => {
    await h.db.close();
    const text = await registry.metrics();
    expect(text).toContain("# TYPE rgrid_executions gauge");
    expect(text).not.toContain("rgrid_executions{");
    expect(text).toContain('rgrid_retries_total{kind="manual"} 0');
  });
});
