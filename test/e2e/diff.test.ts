// `rgrid diff` over the real processes: the built CLI against storage-service, execution-service
// and a runner, comparing runs of real scripts.
import { createHash } from "node:crypto";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { bearerAuth } from "@rgrid/common";
import { ExecutionService, ExecutionStatus } from "@rgrid/proto";
import type { Execution } from "@rgrid/proto";
import { REPO_ROOT, pollUntil, runCli, startTestGrid, startedId } from "../support/grid";
import type { TestGrid } from "../support/grid";

jest.setTimeout(90_000);

let grid: TestGrid;
let work: string;

beforeAll(async () => {
  grid = await startTestGrid();
  work = await mkdtemp(join(tmpdir(), "rgrid-diff-"));
});

afterAll(async () => {
  await grid?.shutdown();
  if (work) await rm(work, { recursive: true, force: true });
});

afterEach(() => {
  const state = expect.getState();
  if (state.assertionCalls !== state.numPassingAsserts) {
    process.stderr.write(`grid logs:\n${grid.logs.slice(-80).join("\n")}\n`);
  }
});

const client = () =>
  createClient(
    ExecutionService,
    createConnectTransport({ baseUrl: grid.executionUrl, httpVersion: "1.1", interceptors: [bearerAuth(grid.apiKey)] }),
  );

const TERMINAL = [ExecutionStatus.COMPLETED, ExecutionStatus.FAILED, ExecutionStatus.TIMED_OUT, ExecutionStatus.CANCELLED];

function finished(id: string): Promise<Execution> {
  return pollUntil(
    async () => (await client().getExecution({ executionId: id })).execution!,
    (execution) => TERMINAL.includes(execution.status),
    (execution) => `execution ${id} stayed ${execution.status}`,
  );
}

/** Runs the CLI in `cwd` and returns the new execution once it has finished. */
async function runToEnd(cwd: string, args: string[]): Promise<Execution> {
  const run = await runCli(grid, ["run", ...args], { cwd });
  expect(run.stderr).toBe("");
  return finished(startedId(run.stdout));
}

/** The 1-based position of the first log entry with this text. */
async function lineOf(id: string, text: string): Promise<number> {
  const { entries } = await client().getLogs({ executionId: id });
  const index = entries.findIndex((entry) => entry.line === text);
  expect(index).toBeGreaterThanOrEqual(0);
  return index + 1;
}

const sha = (text: string) => createHash("sha256").update(text).digest("hex");

const JOB = `import os, sys
print("start")
print("mode " + os.environ["MODE"])
print("args " + " ".join(sys.argv[1:]))
`;

async function jobDir(name: string, files: Record<string, string>): Promise<string> {
  const dir = join(work, name);
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, "job.py"), JOB);
  for (const [file, content] of Object.entries(files)) {
    await writeFile(join(dir, file), content);
  }
  return dir;
}

test("two runs with other args, env and inputs: only what differs is printed, the rest summarized; --show-values and --json", async () => {
  const dirA = await jobDir("a", { "data.json": '{"n": 1}' });
  const dirB = await jobDir("b", { "data.json": '{"n": 22}', "extra.txt": "more" });
  const a = await runToEnd(dirA, ["job.py", "--env", "MODE=one", "--env", "KEEP=1", "--env", "GONE=x", "--", "data.json", "--fast"]);
  const b = await runToEnd(dirB, ["job.py", "data.json", "extra.txt", "--env", "MODE=two", "--env", "KEEP=1", "--env", "NEW=y"]);
  expect([a.status, b.status]).toEqual([ExecutionStatus.COMPLETED, ExecutionStatus.COMPLETED]);
  const divergence = await lineOf(a.id, "mode one");
  expect(await lineOf(b.id, "mode two")).toBe(divergence);

  const diff = await runCli(grid, ["diff", a.id, b.id]);
  expect(diff.stderr).toBe("");
  expect(diff.code).toBe(0);
  expect(diff.stdout.split("\n")).toEqual([
    `a: ${a.id} (attempt 1, completed)`,
    `b: ${b.id} (attempt 1, completed)`,
    "",
    "Inputs: 1 changed, 1 added",
    `  changed  data.json: 8 B, sha256 ${sha('{"n": 1}').slice(0, 12)} -> 9 B, sha256 ${sha('{"n": 22}').slice(0, 12)}`,
    `  added    extra.txt: 4 B, sha256 ${sha("more").slice(0, 12)}`,
    "Args: changed",
    "  a: data.json --fast",
    "  b: data.json extra.txt",
    "Env: 1 changed, 1 added, 1 removed, 1 same",
    "  removed  GONE",
    "  changed  MODE",
    "  added    NEW",
    `Logs: differ from line ${divergence}`,
    "  a: [stdout] mode one",
    "  b: [stdout] mode two",
    "Same: Script, Runtime, Timeout, Network, Runner, Sandbox, Outcome",
    "",
  ]);

  const shown = await runCli(grid, ["diff", a.id, b.id, "--show-values"]);
  expect(shown.code).toBe(0);
  expect(shown.stdout).toContain(['  removed  GONE="x"', '  changed  MODE: "one" -> "two"', '  added    NEW="y"'].join("\n"));

  const json = await runCli(grid, ["diff", a.id, b.id, "--json"]);
  expect(json.code).toBe(0);
  const view = JSON.parse(json.stdout);
  expect(Object.keys(view)).toEqual([
    "a",
    "b",
    "script",
    "inputs",
    "args",
    "env",
    "runtime",
    "timeout",
    "network",
    "runner",
    "sandbox_warnings",
    "outcome",
    "logs",
  ]);
  expect(view.a).toMatchObject({ execution_id: a.id, attempt: 1, args: ["data.json", "--fast"], status: "completed", exit_code: 0 });
  expect(view.b).toMatchObject({ execution_id: b.id, args: ["data.json", "extra.txt"], runner_id: b.runnerId });
  expect(view.a.duration_ms).toEqual(expect.any(Number));
  expect(view.inputs).toEqual([
    {
      name: "data.json",
      change: "changed",
      a: { name: "data.json", size_bytes: 8, sha256: sha('{"n": 1}') },
      b: { name: "data.json", size_bytes: 9, sha256: sha('{"n": 22}') },
    },
    { name: "extra.txt", change: "added", a: null, b: { name: "extra.txt", size_bytes: 4, sha256: sha("more") } },
  ]);
  // Without --show-values the JSON carries no values at all.
  expect(view.env).toEqual([
    { key: "GONE", change: "removed" },
    { key: "KEEP", change: "same" },
    { key: "MODE", change: "changed" },
    { key: "NEW", change: "added" },
  ]);
  expect([view.script, view.args, view.runtime, view.timeout, view.network, view.runner, view.sandbox_warnings, view.outcome]).toEqual(
    ["same", "changed", "same", "same", "same", "same", "same", "same"],
  );
  expect(view.logs).toMatchObject({
    result: "diverged",
    reason: null,
    line: divergence,
    a: { stream: "stdout", line: "mode one" },
    b: { stream: "stdout", line: "mode two" },
  });

  const withValues = JSON.parse((await runCli(grid, ["diff", a.id, b.id, "--json", "--show-values"])).stdout);
  expect(withValues.env).toEqual([
    { key: "GONE", change: "removed", value_a: "x", value_b: null },
    { key: "KEEP", change: "same", value_a: "1", value_b: "1" },
    { key: "MODE", change: "changed", value_a: "one", value_b: "two" },
    { key: "NEW", change: "added", value_a: null, value_b: "y" },
  ]);
});

test("a failed run and its retry differ in their outcome and their logs only", async () => {
  // Far enough ahead that the first run fails even on a slow machine.
  const readyAt = Math.floor(Date.now() / 1000) + 6;
  const failed = await runToEnd(REPO_ROOT, ["examples/flaky_fetch.py", "examples/data/orders.json", "--env", `UPSTREAM_READY_AT=${readyAt}`]);
  expect(failed.status).toBe(ExecutionStatus.FAILED);
  await new Promise((resolve) => setTimeout(resolve, Math.max(0, readyAt * 1000 - Date.now() + 200)));
  const retried = await finished(startedId((await runCli(grid, ["retry", failed.id])).stdout));
  expect(retried.status).toBe(ExecutionStatus.COMPLETED);
  const divergence = await lineOf(retried.id, "total: 587.38 EUR over 5 orders (written to totals.json)");

  const diff = await runCli(grid, ["diff", failed.id, retried.id]);
  expect(diff.stderr).toBe("");
  expect(diff.code).toBe(0);
  const lines = diff.stdout.split("\n");
  expect(lines.slice(0, 6)).toEqual([
    `a: ${failed.id} (attempt 1, failed)`,
    `b: ${retried.id} (attempt 2 of ${failed.id}, completed)`,
    "",
    "Inputs: 1 same",
    "Env: 1 same",
    "Outcome: changed",
  ]);
  expect(lines[6]).toMatch(
    /^ {2}a: failed, exit code 1, script failure, [\d.]+m?s: UpstreamUnavailable: rates service answered 503 Service Unavailable/,
  );
  expect(lines[7]).toMatch(/^ {2}b: completed, exit code 0, [\d.]+m?s$/);
  expect(lines[8]).toBe(`Logs: differ from line ${divergence}`);
  expect(lines[9]).toMatch(/^ {2}a: \[stderr\] UpstreamUnavailable: rates service answered 503/);
  expect(lines.slice(10)).toEqual([
    "  b: [stdout] total: 587.38 EUR over 5 orders (written to totals.json)",
    "Same: Script, Args, Runtime, Timeout, Network, Runner, Sandbox",
    "",
  ]);
});

test("an unknown execution is an error naming it, exit code 1; a malformed id names the argument", async () => {
  const known = (await client().listExecutions({ pageSize: 1 })).executions[0]!;
  const unknown = `exec_${"0".repeat(32)}`;
  const missing = await runCli(grid, ["diff", known.id, unknown]);
  expect(missing.code).toBe(1);
  expect(missing.stdout).toBe("");
  expect(missing.stderr).toBe(`Error: execution ${unknown} not found. Check the id with 'rgrid list'.\n`);

  const malformed = await runCli(grid, ["diff", "exec_nope", known.id]);
  expect(malformed.code).toBe(1);
  expect(malformed.stderr).toContain("execution_a");

  const usage = await runCli(grid, ["diff", known.id]);
  expect(usage.code).toBe(2);
});
