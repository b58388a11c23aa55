// Delayed retries over the real processes: the built `rgrid` binary against storage-service,
// execution-service and a runner, each its own process.
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { ExecutionService, ExecutionStatus } from "@rgrid/proto";
import type { Execution } from "@rgrid/proto";
import { bearerAuth } from "@rgrid/common";
import { pollUntil, runCli, startTestGrid, startedId } from "../support/grid";
import type { TestGrid } from "../support/grid";

jest.setTimeout(60_000);

let grid: TestGrid;
let finishedId: string;

beforeAll(async () => {
  grid = await startTestGrid();
  finishedId = startedId((await runCli(grid, ["run", "examples/data/sleep.py", "0"])).stdout);
  await waitFor(finishedId, (execution) => execution.status === ExecutionStatus.COMPLETED);
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

function client() {
  return createClient(
    ExecutionService,
    createConnectTransport({ baseUrl: grid.executionUrl, httpVersion: "1.1", interceptors: [bearerAuth(grid.apiKey)] }),
  );
}

async function read(id: string): Promise<Execution> {
  const { execution } = await client().getExecution({ executionId: id });
  if (!execution) {
    throw new Error(`no execution in the answer for ${id}`);
  }
  return execution;
}

function waitFor(id: string, done: (execution: Execution) => boolean): Promise<Execution> {
  return pollUntil(() => read(id), done, (execution) => `execution ${id} stayed ${ExecutionStatus[execution.status]}`);
}

const millis = (execution: Execution, field: "notBefore" | "startedAt") => timestampDate(execution[field]!).getTime();

test("retry --in 3s: made at once, shown as queued until its time, started by the runner only then", async () => {
  const retry = await runCli(grid, ["retry", finishedId, "--in", "3s"]);
  expect(retry.stderr).toBe("");
  expect(retry.code).toBe(0);
  const retryId = startedId(retry.stdout);
  const lines = retry.stdout.split("\n");
  expect(lines.slice(0, 3)).toEqual([`Retry started: ${retryId}`, `Original: ${finishedId}`, "Status: queued"]);
  expect(lines[3]).toMatch(/^Queued until \d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d\d:\d\d$/);

  const status = await runCli(grid, ["status", retryId]);
  expect(status.stdout).toContain("Status: queued");
  expect(status.stdout).toContain(lines[3]);

  // Nothing starts it before its time, though the runner is idle and waiting for work.
  const queued = await read(retryId);
  const notBefore = millis(queued, "notBefore");
  await new Promise((resolve) => setTimeout(resolve, Math.max(0, notBefore - Date.now() - 300)));
  expect((await read(retryId)).status).toBe(ExecutionStatus.QUEUED);

  const done = await waitFor(retryId, (execution) => execution.status === ExecutionStatus.COMPLETED);
  const late = millis(done, "startedAt") - notBefore;
  process.stdout.write(`delayed retry started ${late} ms after its not_before\n`);
  expect(late).toBeGreaterThanOrEqual(0);
  expect(late).toBeLessThan(1000);
  // Once it has run, its status says nothing of a queue time.
  expect((await runCli(grid, ["status", retryId])).stdout).not.toContain("Queued until");
});

test("retry --at a time in the past is refused, and nothing is created", async () => {
  const before = (await client().listExecutions({})).executions.length;

  const refused = await runCli(grid, ["retry", finishedId, "--at", "2020-01-01T00:00:00Z"]);

  expect(refused.code).toBe(2);
  expect(refused.stderr).toContain("2020-01-01T00:00:00Z is in the past; give a later time, or a delay with --in.");
  expect((await client().listExecutions({})).executions.length).toBe(before);
});

test("a delayed retry cancelled while it waits ends cancelled and never runs", async () => {
  const retryId = startedId((await runCli(grid, ["retry", finishedId, "--in", "2s"])).stdout);

  const cancel = await runCli(grid, ["cancel", retryId]);

  expect(cancel.code).toBe(0);
  const cancelled = await read(retryId);
  expect(cancelled.status).toBe(ExecutionStatus.CANCELLED);
  await new Promise((resolve) => setTimeout(resolve, Math.max(0, millis(cancelled, "notBefore") - Date.now() + 1500)));
  const after = await read(retryId);
  expect(after.status).toBe(ExecutionStatus.CANCELLED);
  expect(after.startedAt).toBeUndefined();
  expect(after.runnerId).toBe("");
});

test("the same request_id re-sent returns the same delayed retry, with the first request's time", async () => {
  const request = { executionId: finishedId, requestId: "delayed-once" };
  const first = await client().retryExecution({ ...request, queuedUntil: { case: "delay", value: { seconds: 600n } } });
  const again = await client().retryExecution({ ...request, queuedUntil: { case: "delay", value: { seconds: 5n } } });

  expect(again.execution?.id).toBe(first.execution?.id);
  expect(again.execution?.notBefore).toEqual(first.execution?.notBefore);
  const { executions } = await client().listExecutions({ pageSize: 500 });
  expect(executions.filter((execution) => execution.id === first.execution?.id)).toHaveLength(1);
  await client().cancelExecution({ executionId: first.execution!.id });
});
