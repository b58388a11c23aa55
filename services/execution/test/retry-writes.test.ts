import { Code, ConnectError } from "@connectrpc/connect";
import { FailureCause, ObjectKind, Outcome, RetryOperation_State } from "@rgrid/proto";
import type { Database } from "../src/db/orm";
import { describeOnEachDatabase } from "./databases";
import { finishedExecution, queuedExecution, registeredRunner } from "./flows";
import { sha256Of, startHarnessOn } from "./harness";
import type { Harness } from "./harness";

// A retry never writes to the row of the execution it retries: the original stays exactly as it
// finished, and the only change any retry may make to it is clearing the automatic retry flag
// once an automatic retry exists. A database trigger records every update of an executions row
// with the columns it changed, so no write, however it is issued, goes unseen.

describeOnEachDatabase("writes to the original of a retry", (driver) => {
  let h: Harness;

  beforeEach(async () => {
    h = await startHarnessOn(await driver.scratch(), { bulkRetriesPerSecond: 500 });
  });
  afterEach(async () => {
    await h.close();
  });

  test("none by a manual, forced, overridden, batch or bulk retry", async () => {
    const finished = await finishedExecution(h);
    const running = await queuedExecution(h);
    await h.runner.claimExecution({ runnerId: await registeredRunner(h), waitMillis: 0 });
    const batched = await finishedInBatch(h);
    const lone = await finishedExecution(h);
    await recordUpdates(h.db);

    await h.alice.retryExecution({ executionId: finished.id, requestId: "manual" });
    await h.alice.retryExecution({ executionId: running.id, requestId: "forced", force: true });
    await h.alice.retryExecution({
      executionId: finished.id,
      requestId: "overridden",
      overrides: { setEnv: { MODE: "debug" }, script: { name: "fixed.py", sizeBytes: 3n, sha256: sha256Of("x=1") } },
    });
    await h.alice.retryBatch({ batchId: batched.batchId, requestId: "batch" });
    // Only the lone failure is still its lineage's latest attempt.
    const { operation } = await h.alice.retryWhere({ where: { causes: [FailureCause.SCRIPT] }, requestId: "bulk" });
    await untilDone(h, operation!.id);
    expect(operation!.total).toBe(1);

    expect(await updatesOf(h.db, [finished.id, running.id, batched.id, lone.id])).toEqual([]);
  });

  test("an automatic retry changes only the automatic retry flag", async () => {
    // The first attempt to retry automatically meets storage down: the failure keeps its flag,
    // and the lease sweep makes the retry later.
    const queued = await queuedExecution(h);
    const runnerId = await registeredRunner(h);
    await h.runner.claimExecution({ runnerId, waitMillis: 0 });
    h.storage.failWith("copyInputs", new ConnectError("storage down", Code.Unavailable));
    await h.runner.completeExecution({ runnerId, executionId: queued.id, outcome: Outcome.INFRASTRUCTURE_ERROR, errorMessage: "input fetch failed" });
    h.storage.recover("copyInputs");
    await recordUpdates(h.db);

    await h.service.leases.sweepOnce();

    expect((await h.alice.getExecution({ executionId: queued.id })).execution!.retriedAs).toHaveLength(1);
    expect(await updatesOf(h.db, [queued.id])).toEqual([{ id: queued.id, changed: "auto_retry_pending" }]);
  });
});

async function finishedInBatch(h: Harness) {
  const batchId = `batch_${"b".repeat(32)}`;
  const { execution } = await h.alice.createExecution({
    script: { name: "process.py", sizeBytes: 12n, sha256: sha256Of("print('hi')\n") },
    runtime: "python",
    batchId,
    requestId: "in-batch",
  });
  h.storage.put(execution!.id, ObjectKind.SCRIPT, "process.py", 12);
  await h.alice.confirmUploads({ executionId: execution!.id });
  const runnerId = await registeredRunner(h);
  await h.runner.claimExecution({ runnerId, waitMillis: 0 });
  await h.runner.completeExecution({ runnerId, executionId: execution!.id, outcome: Outcome.FAILED, exitCode: 1, errorMessage: "boom" });
  return { id: execution!.id, batchId };
}

async function untilDone(h: Harness, operationId: string): Promise<void> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const { operation } = await h.alice.getRetryOperation({ operationId });
    if (operation?.state === RetryOperation_State.DONE) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`operation ${operationId} never finished`);
}

/**
 * (Re)starts recording: a table of updates to executions rows, filled by a trigger with the
 * columns each update changed, emptied.
 */
async function recordUpdates(db: Database): Promise<void> {
  const connection = db.fork().getConnection();
  const columns =
    db.dialect === "sqlite"
      ? (await connection.execute<Array<{ name: string }>>("select name from pragma_table_info('executions')")).map((row) => row.name)
      : (
          await connection.execute<Array<{ column_name: string }>>(
            "select column_name from information_schema.columns where table_name = 'executions' and table_schema = current_schema()",
          )
        ).map((row) => row.column_name);
  await connection.execute("create table if not exists execution_updates (id text, changed text)");
  await connection.execute("delete from execution_updates");
  if (db.dialect === "sqlite") {
    const changed = columns.map((column) => `(case when old.${column} is not new.${column} then '${column},' else '' end)`).join(" || ");
    await connection.execute("drop trigger if exists record_execution_updates");
    await connection.execute(
      `create trigger record_execution_updates after update on executions begin insert into execution_updates values (old.id, ${changed}); end`,
    );
  } else {
    // As text: json has no equality operator.
    const changed = columns
      .map((column) => `case when old.${column}::text is distinct from new.${column}::text then '${column},' else '' end`)
      .join(" || ");
    await connection.execute(
      `create or replace function record_execution_update() returns trigger language plpgsql as $$ begin insert into execution_updates values (old.id, ${changed}); return new; end $$`,
    );
    await connection.execute("drop trigger if exists record_execution_updates on executions");
    await connection.execute("create trigger record_execution_updates after update on executions for each row execute function record_execution_update()");
  }
}

/** The recorded updates of these rows, each with the columns it changed. */
async function updatesOf(db: Database, ids: string[]): Promise<Array<{ id: string; changed: string }>> {
  const rows = await db.fork().getConnection().execute<Array<{ id: string; changed: string }>>("select id, changed from execution_updates");
  return rows.filter((row) => ids.includes(row.id)).map((row) => ({ id: row.id, changed: row.changed.replace(/,$/, "") }));
}
