// Data that grows without end, on PostgreSQL and S3 (s3rver): a finished execution's log lines
// move out of the database into one object, and are served from there exactly as before (pages,
// resumed streams, the CLI); a retention of one day removes lineages finished longer ago — rows,
// log lines and objects — but never one with an attempt still running.
import { Code, ConnectError } from "@connectrpc/connect";
import { ExecutionStatus, LogEntry_Stream } from "@rgrid/proto";
import type { Client as MinioClient } from "minio";
import { Client as PgClient } from "pg";
import { keysUnder as keysUnderOf } from "../support/bucket";
import { printGridLogsOnFailure, runCli } from "../support/grid";
import type { TestGrid } from "../support/grid";
import { postgresServerUrl } from "../support/postgres";
import { startProductionGrid } from "../support/production-grid";
import type { ProductionGrid } from "../support/production-grid";
import { createQueuedExecution, executionClient, isTerminal, storedLogs, waitForExecution } from "../support/runner-api";
import type { ExecutionClient } from "../support/runner-api";

jest.setTimeout(120_000);

const BUCKET = "rgrid-archive";
const LINES = 50;

const suite = postgresServerUrl ? describe : describe.skip;

suite("logs archived to storage and retention, on PostgreSQL and S3 (set RGRID_TEST_POSTGRES_URL to run)", () => {
  let production: ProductionGrid;
  let bucket: MinioClient;
  let grid: TestGrid;
  let client: ExecutionClient;
  let sql: PgClient;

  beforeAll(async () => {
    production = await startProductionGrid(BUCKET, {
      RGRID_EXECUTION_LOG_ARCHIVE_SECONDS: "1",
      RGRID_RETENTION_DAYS: "1",
      RGRID_RETENTION_INTERVAL_SECONDS: "1",
    });
    ({ grid, bucket } = production);
    client = executionClient(grid);
    sql = new PgClient({ connectionString: production.databaseUrl });
    await sql.connect();
  });

  afterAll(async () => {
    await sql?.end();
    await production?.stop();
  });

  printGridLogsOnFailure(() => grid);

  const run = async (script: string): Promise<string> =>
    createQueuedExecution(client, { script: { name: "script.py", content: script }, runtime: "python" }, `request-${Math.random()}`);

  const finished = (id: string) => waitForExecution(client, id, isTerminal, "finished");

  async function waitUntilArchived(id: string): Promise<void> {
    for (const deadline = Date.now() + 30_000; ; ) {
      const { rows } = await sql.query<{ archived: boolean; lines: string }>(
        "select logs_archived as archived, (select count(*) from log_entries where execution_id = $1) as lines from executions where id = $1",
        [id],
      );
      if (rows[0]?.archived === true && rows[0].lines === "0") {
        return;
      }
      if (Date.now() > deadline) {
        throw new Error(`${id} was not archived: ${JSON.stringify(rows[0])}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }

  const keysUnder = (prefix: string) => keysUnderOf(bucket, BUCKET, prefix);


  test("a finished execution's lines leave the database and are served from storage as before", async () => {
    const id = await run(`for n in range(1, ${LINES + 1}):\n    print("line", n, flush=True)\n`);
    expect((await finished(id)).status).toBe(ExecutionStatus.COMPLETED);
    await waitUntilArchived(id);
    expect(await keysUnder(`executions/${id}/logs/`)).toEqual([`executions/${id}/logs/log.jsonl`]);

    const entries = await storedLogs(client, id);
    const stdout = entries.filter((entry) => entry.stream === LogEntry_Stream.STDOUT).map((entry) => entry.line);
    expect(stdout).toEqual(Array.from({ length: LINES }, (_, index) => `line ${index + 1}`));
    const sequences = entries.map((entry) => Number(entry.sequence));
    expect(sequences).toEqual(Array.from({ length: entries.length }, (_, index) => sequences[0]! + index));

    // A page from the middle, as a client paging through sees it.
    const middle = Number(entries[19]!.sequence);
    const page = await client.getLogs({ executionId: id, afterSequence: BigInt(middle), limit: 10 });
    expect(page.entries.map((entry) => entry.line)).toEqual(entries.slice(20, 30).map((entry) => entry.line));
    expect(page.hasMore).toBe(true);

    // A stream resumed after the fifth-last line sends the last five, then ends.
    const resumed: string[] = [];
    for await (const message of client.followLogs({ executionId: id, afterSequence: entries[entries.length - 6]!.sequence })) {
      resumed.push(...message.entries.map((entry) => entry.line));
    }
    expect(resumed).toEqual(entries.slice(-5).map((entry) => entry.line));

    const cli = await runCli(grid, ["logs", id]);
    expect(cli.code).toBe(0);
    expect(cli.stdout).toContain(`line 1\n`);
    expect(cli.stdout).toContain(`line ${LINES}\n`);
  });

  test("retention removes lineages finished before it, with their lines and objects, and keeps a running one", async () => {
    // Lineage A: a failure and its retry, both finished, then made three days old.
    const failing = "import os, sys, time\nprint('attempt', flush=True)\nif os.environ.get('SLEEP'):\n    time.sleep(60)\nsys.exit(1)\n";
    const oldOriginal = await run(failing);
    await finished(oldOriginal);
    const { execution: oldRetry } = await client.retryExecution({ executionId: oldOriginal });
    await finished(oldRetry!.id);
    // Lineage B: finished three days ago too, but retried now with a retry that runs for a minute.
    const kept = await run(failing);
    await finished(kept);
    const { execution: running } = await client.retryExecution({ executionId: kept, overrides: { setEnv: { SLEEP: "1" } } });
    await waitForExecution(client, running!.id, (execution) => execution.status === ExecutionStatus.RUNNING, "running");
    // Lineage C: recent, finished.
    const recent = await run("print('recent')\n");
    await finished(recent);
    await sql.query(
      "update executions set created_at = now() - interval '3 days', started_at = now() - interval '3 days', finished_at = now() - interval '3 days' where root_id = any($1) and finished_at is not null",
      [[oldOriginal, kept]],
    );

    await waitForGone(oldOriginal);
    await waitForGone(oldRetry!.id);
    const { rows } = await sql.query("select execution_id from log_entries where execution_id = any($1) limit 1", [[oldOriginal, oldRetry!.id]]);
    expect(rows).toEqual([]);
    // The objects go right after the rows.
    for (const id of [oldOriginal, oldRetry!.id]) {
      for (const deadline = Date.now() + 10_000; (await keysUnder(`executions/${id}/`)).length > 0; ) {
        if (Date.now() > deadline) throw new Error(`the objects of ${id} are still there: ${(await keysUnder(`executions/${id}/`)).join(", ")}`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }

    // Several passes later, the lineage with a running attempt and the recent one are all there.
    await new Promise((resolve) => setTimeout(resolve, 2_500));
    for (const id of [kept, running!.id, recent]) {
      expect((await client.getExecution({ executionId: id })).execution?.id).toBe(id);
    }
    expect((await keysUnder(`executions/${kept}/inputs/`)).length + (await keysUnder(`executions/${kept}/script/`)).length).toBeGreaterThan(0);
    await client.cancelExecution({ executionId: running!.id });
  });

  async function waitForGone(id: string): Promise<void> {
    for (const deadline = Date.now() + 30_000; ; ) {
      try {
        await client.getExecution({ executionId: id });
      } catch (error) {
        if (ConnectError.from(error).code === Code.NotFound) {
          return;
        }
        throw error;
      }
      if (Date.now() > deadline) {
        throw new Error(`${id} was not pruned`);
      }
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
});
