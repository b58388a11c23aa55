// The whole path a user takes, over real sockets: the built `rgrid` binary against real
// storage-service, execution-service and runner processes, with real scripts.
import { createHash } from "node:crypto";
import { readFile, readdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { Code, ConnectError } from "@connectrpc/connect";
import { ExecutionService, ExecutionStatus } from "@rgrid/proto";
import type { Execution } from "@rgrid/proto";
import { bearerAuth } from "@rgrid/common";
import { REPO_ROOT, pollUntil, runCli, startTestGrid, startedId } from "../support/grid";
import type { TestGrid } from "../support/grid";
import { runServiceCommand, serviceEntry } from "@rgrid/local";

jest.setTimeout(60_000);

let grid: TestGrid;

beforeAll(async () => {
  grid = await startTestGrid({ runnerEnv: { RGRID_RUNNER_CONCURRENCY: "2" } });
});

afterAll(async () => {
  await grid?.shutdown();
});

afterEach(() => {
  const state = expect.getState();
  if (state.assertionCalls !== state.numPassingAsserts) {
    process.stderr.write(`grid logs:\n${grid.logs.slice(-80).join("\n")}\n`);
  }
});

function client(apiKey = grid.apiKey) {
  return createClient(
    ExecutionService,
    createConnectTransport({ baseUrl: grid.executionUrl, httpVersion: "1.1", interceptors: [bearerAuth(apiKey)] }),
  );
}

function waitForStatus(id: string, wanted: (status: ExecutionStatus) => boolean): Promise<Execution> {
  return pollUntil(
    async () => {
      const { execution } = await client().getExecution({ executionId: id });
      if (!execution) {
        throw new Error(`no execution in the answer for ${id}`);
      }
      return execution;
    },
    (execution) => wanted(execution.status),
    (execution) => `execution ${id} stayed ${execution.status}`,
  );
}

const isTerminal = (status: ExecutionStatus) =>
  [ExecutionStatus.COMPLETED, ExecutionStatus.FAILED, ExecutionStatus.TIMED_OUT, ExecutionStatus.CANCELLED].includes(status);

function objectPath(executionId: string, kind: "script" | "inputs", name: string): string {
  return join(grid.dataDir, "objects", "executions", executionId, kind, name);
}

async function sha256Of(path: string): Promise<string> {
  return createHash("sha256").update(await readFile(path)).digest("hex");
}

async function allExecutionIds(): Promise<string[]> {
  const { executions } = await client().listExecutions({ pageSize: 500 });
  return executions.map((execution) => execution.id);
}

test("a failed run is retried as a new execution with the same script, args, env and inputs, and completes", async () => {
  // Long enough for the original to run and fail on a loaded machine; the retry waits it out.
  const readyAt = Math.floor(Date.now() / 1000) + 6;
  const run = await runCli(grid, [
    "run",
    "examples/flaky_fetch.py",
    "examples/data/orders.json",
    "--env",
    `UPSTREAM_READY_AT=${readyAt}`,
    "--metadata",
    "team=billing",
  ]);
  expect(run.stderr).toBe("");
  expect(run.code).toBe(0);
  const originalId = startedId(run.stdout);

  const original = await waitForStatus(originalId, isTerminal);
  expect(original.status).toBe(ExecutionStatus.FAILED);
  expect(original.exitCode).toBe(1);
  expect(original.errorMessage).toContain("503 Service Unavailable");

  await new Promise((resolve) => setTimeout(resolve, Math.max(0, readyAt * 1000 - Date.now() + 200)));
  const retry = await runCli(grid, ["retry", originalId]);
  expect(retry.code).toBe(0);
  const retryId = startedId(retry.stdout);
  const lines = retry.stdout.split("\n");
  expect(lines[0]).toBe(`Retry started: ${retryId}`);
  expect(lines[1]).toBe(`Original: ${originalId}`);
  expect(lines[2]).toMatch(/^Original error: UpstreamUnavailable: rates service answered 503/);
  expect(lines.slice(3)).toEqual([
    "Status: queued",
    "",
    `Check status: rgrid status ${retryId}`,
    `View logs: rgrid logs ${retryId}`,
    "",
  ]);
  expect(retryId).not.toBe(originalId);

  const retried = await waitForStatus(retryId, isTerminal);
  expect(retried.status).toBe(ExecutionStatus.COMPLETED);
  expect(retried.exitCode).toBe(0);
  expect(retried.retryOf).toBe(originalId);
  expect(retried.rootId).toBe(originalId);
  expect(retried.attempt).toBe(2);
  expect(retried.script).toEqual(original.script);
  expect(retried.args).toEqual(["examples/data/orders.json"]);
  expect(retried.env).toEqual({ UPSTREAM_READY_AT: String(readyAt) });
  expect(retried.metadata).toEqual({ team: "billing" });
  expect(retried.inputs).toEqual(original.inputs);
  expect(retried.outputs.map((output) => output.name)).toEqual(["totals.json"]);

  // The input objects under the new id are byte-identical copies of the original's.
  const inputName = "examples/data/orders.json";
  const copiedDigest = await sha256Of(objectPath(retryId, "inputs", inputName));
  expect(copiedDigest).toBe(await sha256Of(objectPath(originalId, "inputs", inputName)));
  expect(copiedDigest).toBe(await sha256Of(join(REPO_ROOT, inputName)));

  // The original is untouched and now links to its retry.
  const { execution: after } = await client().getExecution({ executionId: originalId });
  expect(after?.status).toBe(ExecutionStatus.FAILED);
  expect(after?.retriedAs).toEqual([retryId]);

  const logs = await runCli(grid, ["logs", retryId]);
  expect(logs.stdout).toContain("total: 587.38 EUR over 5 orders");
});

test("a running execution is not retried without --force; with --force it is", async () => {
  const run = await runCli(grid, ["run", "examples/data/sleep.py", "4"]);
  const runningId = startedId(run.stdout);
  await waitForStatus(runningId, (status) => status === ExecutionStatus.RUNNING);
  const before = await allExecutionIds();

  const refused = await runCli(grid, ["retry", runningId]);
  expect(refused.code).toBe(1);
  expect(refused.stdout + refused.stderr).toContain("Warning: Execution status is 'running'");
  expect(refused.stdout + refused.stderr).toContain("Use --force to retry anyway.");
  expect(await allExecutionIds()).toEqual(before);

  const forced = await runCli(grid, ["retry", runningId, "--force", "--json"]);
  expect(forced.code).toBe(0);
  const created = JSON.parse(forced.stdout) as { id: string; status: string; retry_of: string; attempt: number };
  expect(created.status).toBe("queued");
  expect(created.retry_of).toBe(runningId);
  expect(created.attempt).toBe(2);
  expect(await allExecutionIds()).toEqual([created.id, ...before]);
});

test("a queued execution is not retried without --force", async () => {
  // Two sleepers occupy both runner slots, so the third stays queued.
  const sleepers = await Promise.all([1, 2].map(() => runCli(grid, ["run", "examples/data/sleep.py", "3"])));
  const queued = startedId((await runCli(grid, ["run", "examples/data/sleep.py", "0"])).stdout);
  const { execution } = await client().getExecution({ executionId: queued });
  expect(execution?.status).toBe(ExecutionStatus.QUEUED);

  const refused = await runCli(grid, ["retry", queued]);
  expect(refused.code).toBe(1);
  expect(refused.stdout + refused.stderr).toContain("Warning: Execution status is 'queued'");
  for (const sleeper of sleepers) {
    await waitForStatus(startedId(sleeper.stdout), isTerminal);
  }
});

test("the same request_id twice gives one new execution", async () => {
  const id = startedId((await runCli(grid, ["run", "examples/data/sleep.py", "0"])).stdout);
  await waitForStatus(id, isTerminal);
  const before = await allExecutionIds();
  const first = await client().retryExecution({ executionId: id, requestId: "req-same-twice" });
  const second = await client().retryExecution({ executionId: id, requestId: "req-same-twice" });
  expect(second.execution?.id).toBe(first.execution?.id);
  expect(await allExecutionIds()).toEqual([first.execution?.id, ...before]);
});

test("when an input cannot be copied the retry fails clearly and leaves nothing behind", async () => {
  const run = await runCli(grid, ["run", "examples/word_count.py", "examples/data/poem.txt", "--wait", "--remote-only"]);
  const id = startedId(run.stdout);
  await waitForStatus(id, isTerminal);
  // The source object disappears behind the services' back.
  await rm(objectPath(id, "inputs", "examples/data/poem.txt"));
  const before = await allExecutionIds();
  const objectDirsBefore = await readdir(join(grid.dataDir, "objects", "executions"));

  const retry = await runCli(grid, ["retry", id]);
  expect(retry.code).toBe(1);
  expect(retry.stderr).toMatch(/examples\/data\/poem\.txt/);
  expect(retry.stderr).not.toMatch(/\n\s+at /); // no stack trace
  expect(await allExecutionIds()).toEqual(before);
  expect(await readdir(join(grid.dataDir, "objects", "executions"))).toEqual(objectDirsBefore);
});

test("another account's execution does not exist for the caller", async () => {
  const id = startedId((await runCli(grid, ["run", "examples/data/sleep.py", "0"])).stdout);
  await waitForStatus(id, isTerminal);
  const otherKey = await runServiceCommand(
    serviceEntry("@rgrid/execution"),
    ["create-api-key", "--account", "someone-else"],
    { PATH: process.env.PATH ?? "", RGRID_DATABASE_URL: `sqlite:${join(grid.dataDir, "rgrid.db")}` },
    grid.dataDir,
  );

  const expectNotFound = async (call: Promise<unknown>) => {
    const error = await call.then(() => undefined, (caught: unknown) => caught);
    expect(error).toBeInstanceOf(ConnectError);
    expect((error as ConnectError).code).toBe(Code.NotFound);
    return (error as ConnectError).rawMessage;
  };
  const missingMessage = await expectNotFound(client(otherKey).getExecution({ executionId: "exec_" + "0".repeat(32) }));
  const foreignMessage = await expectNotFound(client(otherKey).getExecution({ executionId: id }));
  expect(foreignMessage.replace(id, "ID")).toBe(missingMessage.replace("exec_" + "0".repeat(32), "ID"));
  await expectNotFound(client(otherKey).retryExecution({ executionId: id, requestId: "foreign" }));

  const status = await runCli(grid, ["status", id], { apiKey: otherKey });
  expect(status.code).toBe(1);
  expect(status.stderr).toContain("not found");
  const before = await allExecutionIds();
  const retry = await runCli(grid, ["retry", id], { apiKey: otherKey });
  expect(retry.code).toBe(1);
  expect(retry.stderr).toContain("not found");
  expect(await allExecutionIds()).toEqual(before);
  expect((await client(otherKey).listExecutions({})).executions).toEqual([]);
});
