// `rgrid run --batch` through the real processes and the built CLI: a batch is created and
// confirmed a call's worth at a time with one upload of its script, its runners take each next
// execution with their last report, and every execution still runs its own copy of the script
// with its own input.
import { readFile, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { LogEntry_Stream } from "@rgrid/proto";
import { rpcCallCounts } from "../../bench/stats";
import { printGridLogsOnFailure, runCli, startTestGrid } from "../support/grid";
import type { TestGrid } from "../support/grid";
import { executionClient } from "../support/runner-api";

jest.setTimeout(120_000);

const FILES = 12;
// Changes its own file after reading its input: no later execution of the batch may see that.
const SCRIPT = [
  "import json, os, sys",
  "print(open(sys.argv[1]).read().strip(), json.load(open('lookup.json'))['unit'], os.path.getsize(__file__))",
  "open(__file__, 'a').write('# changed by a run\\n')",
  "",
].join("\n");

describe("rgrid run --batch on the real grid", () => {
  let grid: TestGrid | undefined;
  let work: string;

  beforeAll(async () => {
    grid = await startTestGrid({ runners: 2 });
    work = await mkdtemp(join(tmpdir(), "rgrid-batch-run-"));
    await writeFile(join(work, "echo.py"), SCRIPT);
    await writeFile(join(work, "lookup.json"), JSON.stringify({ unit: "kg" }));
    await mkdir(join(work, "items"));
    for (let index = 0; index < FILES; index++) {
      await writeFile(join(work, "items", `${String(index).padStart(2, "0")}.txt`), `item ${index}\n`);
    }
  });

  afterAll(async () => {
    await grid?.shutdown();
    if (work) await rm(work, { recursive: true, force: true });
  });

  printGridLogsOnFailure(() => grid);

  test("runs every file with its own copy of the script, from one upload of it and few calls", async () => {
    const before = await rpcCallCounts(grid!.executionUrl);

    const run = await runCli(grid!, ["run", "echo.py", "--batch", "items/*.txt", "lookup.json", "--wait", "--json"], { cwd: work });

    expect(run.stderr).toBe("");
    expect(run.code).toBe(0);
    const printed = JSON.parse(run.stdout) as { batch_id: string; executions: Array<{ id: string; status: string; args: string[] }> };
    expect(printed.executions).toHaveLength(FILES);
    expect(new Set(printed.executions.map((execution) => execution.status))).toEqual(new Set(["completed"]));

    const client = executionClient(grid!);
    const scriptSize = Buffer.byteLength(SCRIPT);
    for (const execution of printed.executions) {
      const { entries } = await client.getLogs({ executionId: execution.id });
      const stdout = entries.filter((entry) => entry.stream === LogEntry_Stream.STDOUT).map((entry) => entry.line);
      const index = Number(execution.args[0]?.slice("items/".length, -".txt".length));
      expect(stdout).toEqual([`item ${index} kg ${scriptSize}`]);
      // Storage holds each execution's own script, the bytes uploaded once.
      const stored = await readFile(join(grid!.dataDir, "objects", "executions", execution.id, "script", "echo.py"), "utf8");
      expect(stored).toBe(SCRIPT);
    }

    const after = await rpcCallCounts(grid!.executionUrl);
    const calls = (method: string) => (after.get(method) ?? 0) - (before.get(method) ?? 0);
    expect(calls("BatchCreateExecutions")).toBe(1);
    expect(calls("BatchConfirmUploads")).toBe(1);
    expect(calls("CreateExecution")).toBe(0);
    expect(calls("ConfirmUploads")).toBe(0);
    expect(calls("CompleteExecution")).toBe(FILES);
    // Two runners of one slot each claim the first two; the rest come with reports.
    expect(calls("ClaimExecution")).toBeLessThan(FILES);
    const storageCalls = await rpcCallCounts(grid!.storageUrl);
    expect(storageCalls.get("CreateUploadGrantsBatch")).toBe(1);
    expect(storageCalls.get("CommitUploadsBatch")).toBe(1);
  });
});
