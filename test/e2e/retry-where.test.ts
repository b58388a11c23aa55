// `rgrid retry --where …` over the real processes: the built CLI against storage-service,
// execution-service and a runner, on SQLite and on PostgreSQL. Twelve runs of a failing script
// (one batch) are found by cause, previewed, refused without --yes where nobody can be asked,
// asked about on a terminal, and retried server-side as one operation.
import { spawn } from "node:child_process";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ExecutionStatus } from "@rgrid/proto";
import { REPO_ROOT, runCli, startTestGrid, printGridLogsOnFailure } from "../support/grid";
import type { TestGrid } from "../support/grid";
import { GRID_DATABASES } from "../support/postgres";
import type { ScratchDatabase } from "../support/postgres";
import { executionClient, isTerminal, waitForExecution } from "../support/runner-api";
import type { ExecutionClient } from "../support/runner-api";

jest.setTimeout(180_000);

const RUNS = 12;
const FAILING = `import sys
n = open(sys.argv[1]).read().strip()
sys.exit("UpstreamUnavailable: shard " + n + " answered 503")
`;

describe.each(GRID_DATABASES)("$name", ({ name, enabled, open }) => {
  const maybe = enabled ? test : test.skip;
  let database: ScratchDatabase | undefined;
  let grid: TestGrid | undefined;
  let client: ExecutionClient;
  let work: string;
  let batchId: string;
  let where: string;

  beforeAll(async () => {
    if (!enabled) return;
    database = await open();
    grid = await startTestGrid({ databaseUrl: database?.url });
    client = executionClient(grid);
    work = await mkdtemp(join(tmpdir(), "rgrid-where-"));
    await writeFile(join(work, "shard.py"), FAILING);
    await mkdir(join(work, "shards"));
    for (let index = 0; index < RUNS; index++) {
      await writeFile(join(work, "shards", `${index}.txt`), `${index}\n`);
    }
    const run = await runCli(grid, ["run", "shard.py", "--batch", "shards/*.txt", "--json"], { cwd: work });
    expect(run.stderr).toBe("");
    const started = JSON.parse(run.stdout) as { batch_id: string; executions: Array<{ id: string }> };
    batchId = started.batch_id;
    where = `cause=script batch=${batchId}`;
    await allFinished();
  });

  afterAll(async () => {
    await grid?.shutdown();
    await database?.drop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  printGridLogsOnFailure(() => grid);

  async function batchExecutions() {
    return (await client.listExecutions({ batchId, pageSize: 500 })).executions;
  }

  async function allFinished(): Promise<void> {
    for (const execution of await batchExecutions()) {
      await waitForExecution(client, execution.id, isTerminal, "finished");
    }
  }

  maybe("--dry-run lists what matches and retries nothing; without --yes and no terminal, more than 10 are refused", async () => {
    const preview = await runCli(grid!, ["retry", "--where", where, "--dry-run"]);

    expect(preview.code).toBe(0);
    const lines = preview.stdout.split("\n");
    expect(lines[0]).toBe(`${RUNS} lineages match; the latest attempt of each would be retried:`);
    expect(lines[2]).toMatch(/^EXECUTION\s+STATUS\s+EXIT\s+FINISHED\s+SCRIPT\s+ERROR$/);
    expect(lines.filter((line) => line.includes("UpstreamUnavailable: shard"))).toHaveLength(RUNS);
    expect(await batchExecutions()).toHaveLength(RUNS);

    const refused = await runCli(grid!, ["retry", "--where", where]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain(`${RUNS} lineages match; retrying more than 10 needs --yes`);
    expect(await batchExecutions()).toHaveLength(RUNS);

    const unknown = await runCli(grid!, ["retry", "--where", "cause=flaky"]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain("--where: cause=flaky is not one of script, timeout, runner_lost, infrastructure");
  });

  maybe("--yes retries the latest attempt of each lineage server-side, lists original → retry, and only those", async () => {
    const originals = (await batchExecutions()).map((execution) => execution.id).sort();

    const retried = await runCli(grid!, ["retry", "--where", where, "--yes", "--json", "--reason", "shards back"]);

    expect(retried.stderr).toBe("");
    expect(retried.code).toBe(0);
    const result = JSON.parse(retried.stdout) as {
      operation_id: string;
      total: number;
      retried: number;
      skipped: number;
      items: Array<{ original_id: string; retry_id: string | null; skipped: string | null }>;
    };
    expect(result).toMatchObject({ total: RUNS, retried: RUNS, skipped: 0 });
    expect(result.items.map((item) => item.original_id).sort()).toEqual(originals);
    for (const item of result.items) {
      const { execution: retry } = await client.getExecution({ executionId: item.retry_id! });
      const { execution: original } = await client.getExecution({ executionId: item.original_id });
      expect(retry).toMatchObject({ retryOf: item.original_id, batchId, attempt: 2 });
      expect(retry!.inputs).toEqual(original!.inputs);
    }
    const audit = await runCli(grid!, ["audit", "--action", "batch_retry", "--json"]);
    const entries = JSON.parse(audit.stdout) as Array<{ reason: string }>;
    expect(entries.filter((entry) => entry.reason === "shards back")).toHaveLength(RUNS);

    // The retries are the latest attempts now: until they finish, nothing matches; the originals never do again.
    const meanwhile = await runCli(grid!, ["retry", "--where", where, "--dry-run", "--json"]);
    const unfinished = JSON.parse(meanwhile.stdout) as { matched: number; first_matches: Array<{ id: string }> };
    expect(unfinished.first_matches.map((execution) => execution.id).filter((id) => originals.includes(id))).toEqual([]);
    await allFinished();
    const after = JSON.parse((await runCli(grid!, ["retry", "--where", where, "--dry-run", "--json"])).stdout) as { matched: number };
    expect(after.matched).toBe(RUNS);
  });

  // Once is enough to show the terminal's part: the question, the answer, the progress bar.
  (name === "SQLite" ? maybe : test.skip)("on a terminal it asks before retrying more than 10, shows progress, and a no retries nothing", async () => {
    const declined = await onTerminal(["retry", "--where", where], "n");
    expect(declined.output).toContain(`Retry the latest attempt of these ${RUNS} lineages? [y/N]`);
    expect(declined.output).toContain("Nothing was retried.");
    expect(declined.code).toBe(1);
    expect((await batchExecutions()).filter((execution) => execution.status === ExecutionStatus.QUEUED)).toHaveLength(0);

    const accepted = await onTerminal(["retry", "--where", where], "y");
    expect(accepted.code).toBe(0);
    expect(accepted.output).toMatch(/Retrying: \[[#·]+\] \d+\/12, \d+ retried, \d+ skipped/);
    expect(accepted.output).toContain(`Retried ${RUNS} of ${RUNS} lineages; 0 skipped.`);
  });

  /** Runs the CLI on a pseudo-terminal (util-linux `script`), answering its question with `answer`. */
  function onTerminal(args: string[], answer: string): Promise<{ code: number | null; output: string }> {
    const command = [process.execPath, join(REPO_ROOT, "cli", "bin", "rgrid.js"), ...args].map(shellQuote).join(" ");
    const child = spawn("script", ["-qec", command, "/dev/null"], {
      cwd: work,
      env: {
        PATH: process.env.PATH,
        HOME: grid!.dataDir,
        TERM: "dumb",
        RGRID_CONFIG: join(grid!.dataDir, "cli-config.json"),
        RGRID_API_URL: grid!.executionUrl,
        RGRID_API_KEY: grid!.apiKey,
      },
      stdio: ["pipe", "pipe", "pipe"],
    });
    let output = "";
    let answered = false;
    child.stdout.on("data", (chunk: Buffer) => {
      output += chunk.toString("utf8");
      if (!answered && output.includes("[y/N]")) {
        answered = true;
        child.stdin.write(`${answer}\n`);
      }
    });
    return new Promise((resolve) => child.once("close", (code) => resolve({ code, output })));
  }
});

function shellQuote(word: string): string {
  return `'${word.replace(/'/g, "'\\''")}'`;
}
