// `rgrid retry <id> --env … --unset-env … --args … --timeout … --runtime … --script …` over the real
// processes: the built CLI against storage-service, execution-service and a runner, on SQLite and
// on PostgreSQL. The retry runs with the changes, records exactly them, and `rgrid status` shows
// them without the values of env variables unless asked.
import { createHash } from "node:crypto";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ExecutionStatus } from "@rgrid/proto";
import type { Execution } from "@rgrid/proto";
import { runCli, startTestGrid, startedId, printGridLogsOnFailure } from "../support/grid";
import type { TestGrid } from "../support/grid";
import { GRID_DATABASES } from "../support/postgres";
import type { ScratchDatabase } from "../support/postgres";
import { executionClient, isTerminal, waitForExecution } from "../support/runner-api";

jest.setTimeout(120_000);

// Fails unless FIXED is set; prints its input, its args, and whether TOKEN reached it.
const JOB = `import os, sys
print("data " + open("data.txt").read().strip())
print("args " + " ".join(sys.argv[1:]))
print("token " + ("set" if "TOKEN" in os.environ else "unset"))
sys.exit(0 if os.environ.get("FIXED") == "yes" else 3)
`;

// The new version: succeeds whatever the environment says.
const FIXED_JOB = `import sys
print("fixed version, data " + open("data.txt").read().strip())
print("args " + " ".join(sys.argv[1:]))
`;

const sha = (text: string) => createHash("sha256").update(text).digest("hex");

describe.each(GRID_DATABASES)("$name", ({ enabled, open }) => {
  const maybe = enabled ? test : test.skip;
  let database: ScratchDatabase | undefined;
  let grid: TestGrid | undefined;
  let work: string;
  let failedId: string;

  beforeAll(async () => {
    if (!enabled) return;
    database = await open();
    grid = await startTestGrid({ databaseUrl: database?.url });
    work = await mkdtemp(join(tmpdir(), "rgrid-overrides-"));
    await writeFile(join(work, "job.py"), JOB);
    await writeFile(join(work, "data.txt"), "42\n");
    await mkdir(join(work, "fixed"));
    await writeFile(join(work, "fixed", "job.py"), FIXED_JOB);
    const run = await runCli(grid, ["run", "job.py", "data.txt", "--env", "TOKEN=s3cret-value"], { cwd: work });
    expect(run.stderr).toBe("");
    failedId = startedId(run.stdout);
    expect((await finished(failedId)).status).toBe(ExecutionStatus.FAILED);
  });

  afterAll(async () => {
    await grid?.shutdown();
    await database?.drop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  printGridLogsOnFailure(() => grid);

  const finished = (id: string): Promise<Execution> => waitForExecution(executionClient(grid!), id, isTerminal, "terminal");

  async function logLines(id: string): Promise<string[]> {
    const { entries } = await executionClient(grid!).getLogs({ executionId: id });
    return entries.map((entry) => entry.line);
  }

  maybe("--env, --unset-env and --timeout: the retry runs with them, and status names what changed but not the values", async () => {
    const retry = await runCli(grid!, ["retry", failedId, "--env", "FIXED=yes", "--unset-env", "TOKEN", "--timeout", "120"], { cwd: work });

    expect(retry.stderr).toBe("");
    expect(retry.code).toBe(0);
    const retryId = startedId(retry.stdout);
    const changes = "Overrides: env FIXED added, env TOKEN removed, timeout default → 120s";
    expect(retry.stdout.split("\n")).toContain(changes);
    const done = await finished(retryId);
    expect(done.status).toBe(ExecutionStatus.COMPLETED);
    expect(await logLines(retryId)).toEqual(["data 42", "args data.txt", "token unset"]);
    // The inputs are the original's, copied server-side.
    const original = (await executionClient(grid!).getExecution({ executionId: failedId })).execution!;
    expect(done.inputs).toEqual(original.inputs);

    const status = await runCli(grid!, ["status", retryId]);
    expect(status.stdout.split("\n")).toContain(changes);
    expect(status.stdout).not.toContain("s3cret-value");
    const shown = await runCli(grid!, ["status", retryId, "--show-values"]);
    expect(shown.stdout.split("\n")).toContain('Overrides: env FIXED added ("yes"), env TOKEN removed (was "s3cret-value"), timeout default → 120s');
    const json = JSON.parse((await runCli(grid!, ["status", retryId, "--json"])).stdout);
    expect(json.overrides).toEqual({
      env: [
        { key: "FIXED", before: null, after: "yes" },
        { key: "TOKEN", before: "s3cret-value", after: null },
      ],
      args: null,
      timeout_seconds: { before: 0, after: 120 },
      runtime: null,
      script: null,
    });
  });

  maybe("--script and --args: the new version is uploaded and run on the original's inputs", async () => {
    const retry = await runCli(grid!, ["retry", failedId, "--script", "fixed/job.py", "--args", "data.txt", "again"], { cwd: work });

    expect(retry.stderr).toBe("");
    expect(retry.code).toBe(0);
    const retryId = startedId(retry.stdout);
    const changes = `Overrides: args ["data.txt"] → ["data.txt","again"], script replaced (sha256 ${sha(JOB).slice(0, 4)}… → ${sha(FIXED_JOB).slice(0, 4)}…)`;
    expect(retry.stdout.split("\n")).toContain(changes);
    const done = await finished(retryId);
    expect(done.status).toBe(ExecutionStatus.COMPLETED);
    expect(done.script).toMatchObject({ name: "job.py", sha256: sha(FIXED_JOB) });
    expect(done.retryOf).toBe(failedId);
    expect(await logLines(retryId)).toEqual(["fixed version, data 42", "args data.txt again"]);
    expect((await runCli(grid!, ["status", retryId])).stdout.split("\n")).toContain(changes);
  });

  maybe("an override that cannot apply is refused with the reason, and nothing is created", async () => {
    const client = executionClient(grid!);
    const before = (await client.listExecutions({ pageSize: 500 })).executions.length;

    const refused = await runCli(grid!, ["retry", failedId, "--unset-env", "NOT_SET"], { cwd: work });

    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain(`cannot retry ${failedId} with these overrides: it does not set NOT_SET, so it cannot be unset; nothing was created`);
    expect((await client.listExecutions({ pageSize: 500 })).executions.length).toBe(before);
  });
});
