// The audit as a user meets it, over real sockets: the built `rgrid` binary against real
// storage-service, execution-service and runner processes. A retry and a cancel, each with a
// reason, then `rgrid history` and `rgrid audit` tell who did what, why, and what came of it.
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { bearerAuth } from "@rgrid/common";
import { ExecutionService, ExecutionStatus } from "@rgrid/proto";
import { pollUntil, runCli, startTestGrid, startedId } from "../support/grid";
import type { TestGrid } from "../support/grid";

jest.setTimeout(90_000);

let grid: TestGrid;
let scripts: string;

beforeAll(async () => {
  grid = await startTestGrid();
  scripts = await mkdtemp(join(tmpdir(), "rgrid-audit-scripts-"));
  await writeFile(join(scripts, "fails.py"), "import sys\nprint('no luck')\nsys.exit(3)\n");
  await writeFile(join(scripts, "sleeps.py"), "import time\nprint('sleeping', flush=True)\ntime.sleep(60)\n");
});

afterAll(async () => {
  await grid?.shutdown();
  await rm(scripts, { recursive: true, force: true });
});

afterEach(() => {
  const state = expect.getState();
  if (state.assertionCalls !== state.numPassingAsserts) {
    process.stderr.write(`grid logs:\n${grid.logs.slice(-80).join("\n")}\n`);
  }
});

function statusOf(id: string): Promise<ExecutionStatus> {
  const client = createClient(
    ExecutionService,
    createConnectTransport({ baseUrl: grid.executionUrl, httpVersion: "1.1", interceptors: [bearerAuth(grid.apiKey)] }),
  );
  return pollUntil(
    async () => (await client.getExecution({ executionId: id })).execution?.status ?? ExecutionStatus.UNSPECIFIED,
    (status) => status !== ExecutionStatus.UPLOADING && status !== ExecutionStatus.QUEUED,
    (status) => `execution ${id} stayed ${status}`,
  );
}

async function waitUntil(id: string, wanted: ExecutionStatus): Promise<void> {
  await pollUntil(
    () => statusOf(id),
    (status) => status === wanted,
    (status) => `execution ${id} is ${status}, not ${wanted}`,
  );
}

test("retry --reason and cancel --reason are told by rgrid history and rgrid audit", async () => {
  const run = await runCli(grid, ["run", "fails.py"], { cwd: scripts });
  expect(run.code).toBe(0);
  const originalId = startedId(run.stdout);
  await waitUntil(originalId, ExecutionStatus.FAILED);

  const retry = await runCli(grid, ["retry", originalId, "--reason", "flaky disk on the runner (INC-7)"]);
  expect(retry.stderr).toBe("");
  expect(retry.code).toBe(0);
  const retryId = startedId(retry.stdout);
  await waitUntil(retryId, ExecutionStatus.FAILED);

  const sleeper = startedId((await runCli(grid, ["run", "sleeps.py"], { cwd: scripts })).stdout);
  await waitUntil(sleeper, ExecutionStatus.RUNNING);
  const cancel = await runCli(grid, ["cancel", sleeper, "--reason", "wrong input file"]);
  expect(cancel.stderr).toBe("");
  expect(cancel.code).toBe(0);

  // Who: the id of the grid's API key (the key itself is never shown).
  const all = JSON.parse((await runCli(grid, ["audit", "--json"])).stdout);
  const keyId: string = all[0].actor;
  expect(keyId).toMatch(/^key_[0-9a-f]{32}$/);

  // Named by its second attempt, the whole lineage: attempt 1, the retry asked for, attempt 2.
  const history = await runCli(grid, ["history", retryId]);
  expect(history.code).toBe(0);
  const lines = history.stdout.trimEnd().split("\n");
  expect(lines[0]).toBe(`History of ${retryId} (lineage ${originalId}, 2 attempts)`);
  expect(lines[2]).toMatch(/^TIME\s+EVENT\s+EXECUTION\s+DETAILS$/);
  expect(lines.slice(3).map((line) => line.replace(/^\S+ \S+ UTC\s+/, "").replace(/\s+/g, " "))).toEqual([
    `attempt 1 ${originalId} original, failed`,
    `retry ${originalId} by ${keyId} "flaky disk on the runner (INC-7)" -> ${retryId}`,
    `attempt 2 ${retryId} manual, failed`,
  ]);

  const historyJson = JSON.parse((await runCli(grid, ["history", originalId, "--json"])).stdout);
  expect(historyJson.events.map((event: { type: string }) => event.type)).toEqual(["attempt", "audit", "attempt"]);
  expect(historyJson.events[1]).toMatchObject({ action: "retry", reason: "flaky disk on the runner (INC-7)", outcome: retryId });

  // The account's audit, newest first: the cancel, then the retry.
  const audit = await runCli(grid, ["audit", "--since", "10m"]);
  expect(audit.code).toBe(0);
  const rows = audit.stdout.trimEnd().split("\n");
  expect(rows[0]).toMatch(/^TIME\s+ACTION\s+BY\s+EXECUTION\s+REASON\s+OUTCOME$/);
  expect(rows.slice(1).map((row) => row.replace(/^\S+ \S+ UTC\s+/, "").replace(/\s+/g, " "))).toEqual([
    `cancel ${keyId} ${sleeper} wrong input file cancel requested`,
    `retry ${keyId} ${originalId} flaky disk on the runner (INC-7) ${retryId}`,
  ]);

  const cancels = JSON.parse((await runCli(grid, ["audit", "--action", "cancel", "--json"])).stdout);
  expect(cancels).toHaveLength(1);
  expect(cancels[0]).toMatchObject({ action: "cancel", actor: keyId, execution_id: sleeper, reason: "wrong input file" });
  expect(cancels[0].request_id).not.toBe("");
  expect((await runCli(grid, ["audit", "--since", "2000-01-01T00:00:00Z", "--action", "batch_retry"])).stdout).toBe(
    "No audit entries found.\n",
  );

  // Usage errors, before anything is sent.
  expect((await runCli(grid, ["audit", "--action", "delete"])).code).toBe(2);
  expect((await runCli(grid, ["audit", "--since", "yesterday"])).code).toBe(2);
  expect((await runCli(grid, ["retry", originalId, "--reason", "x".repeat(501)])).code).toBe(2);
});
