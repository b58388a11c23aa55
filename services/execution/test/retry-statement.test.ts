import { newExecutionId } from "@rgrid/common";
import { Client } from "pg";
import { issueApiKey } from "../src/accounts";
import type { Execution } from "../src/db/entities";
import type { Database } from "../src/db/orm";
import { isUniqueViolation } from "../src/errors";
import { retryRecordOf } from "../src/executions/new-executions";
import { coalescedPlainRetries } from "../src/executions/retry-statement";
import type { PlainRetryInsert, PlainRetryOutcome } from "../src/executions/retry-statement";
import { connectionsAcquiredDuring, describeOnPostgres, insertRows, openScratchDatabase, queuedExecutionRow } from "./databases";
import type { ScratchDatabase } from "./databases";
import { finishedExecution } from "./flows";
import { startHarnessOn } from "./harness";
import type { Harness } from "./harness";

// Plain retries on PostgreSQL (retry-statement.ts): those made together go in one statement, and
// each meets exactly the outcome its own statement would have given it.

describeOnPostgres("plain retries made together", (driver) => {
  let scratch: ScratchDatabase;
  let db: Database;
  let accountId: string;

  beforeEach(async () => {
    scratch = await openScratchDatabase(driver);
    db = scratch.db;
    accountId = (await issueApiKey(db.fork(), "acme", new Date())).accountId;
  });
  afterEach(() => scratch.close());

  const insert = (...executions: Execution[]) => insertRows(db, executions);

  function retryOf(original: Execution, requestId: string, force = false): PlainRetryInsert {
    const retry = retryRecordOf(original, { id: newExecutionId(), createdAt: new Date(), kind: "manual", retriedBy: "key_test", requestId });
    return {
      caller: { accountId, actorId: "key_test" },
      original,
      retry,
      force,
      audit: { action: "retry", execution: original, requestId, reason: "", outcome: retry.id },
    };
  }

  /** The retries recorded, each with its audit entries' outcomes: request_id → [retry_of, audited ids]. */
  async function recorded(): Promise<Record<string, [string, string[]]>> {
    const connection = db.fork().getConnection();
    const retries = await connection.execute<Array<{ id: string; request_id: string; retry_of: string }>>(
      "select id, request_id, retry_of from executions where retry_of is not null",
    );
    const audits = await connection.execute<Array<{ outcome: string }>>("select outcome from audit_entries where action = 'retry'");
    return Object.fromEntries(
      retries.map((row) => [row.request_id, [row.retry_of, audits.filter((audit) => audit.outcome === row.id).map((audit) => audit.outcome)]]),
    );
  }

  test("go in one statement, each inserted or not as its own original allows", async () => {
    const [finished, other, running] = [
      queuedExecutionRow(accountId, { status: "failed" }),
      queuedExecutionRow(accountId, { status: "completed" }),
      queuedExecutionRow(accountId, { status: "running" }),
    ];
    const gone = queuedExecutionRow(accountId, { status: "failed" });
    await insert(finished, other, running);
    const inserts = [
      retryOf(finished, "first"),
      retryOf(finished, "second"),
      retryOf(other, "third"),
      retryOf(running, "unforced"),
      retryOf(running, "forced", true),
      retryOf(gone, "of-nothing"),
    ];
    const insertPlainRetry = coalescedPlainRetries(db);
    let outcomes: PlainRetryOutcome[] = [];
    const connections = await connectionsAcquiredDuring(db, async () => {
      outcomes = await Promise.all(inserts.map((one) => insertPlainRetry(one)));
    });
    // The first goes at once; the other five wait for it and go together.
    expect(connections).toBe(2);
    expect(outcomes.map((outcome) => [outcome.current?.id, outcome.current?.status, outcome.inserted])).toEqual([
      [finished.id, "failed", true],
      [finished.id, "failed", true],
      [other.id, "completed", true],
      [running.id, "running", false],
      [running.id, "running", true],
      [undefined, undefined, false],
    ]);
    const ids = Object.fromEntries(inserts.map((one) => [one.retry.requestId, one.retry.id]));
    expect(await recorded()).toEqual({
      first: [finished.id, [ids["first"]]],
      second: [finished.id, [ids["second"]]],
      third: [other.id, [ids["third"]]],
      forced: [running.id, [ids["forced"]]],
    });
  });

  test("a request_id already taken fails the shared statement, and each retry then meets its own outcome", async () => {
    const original = queuedExecutionRow(accountId, { status: "failed" });
    await insert(original, queuedExecutionRow(accountId, { requestId: "taken" }));
    const insertPlainRetry = coalescedPlainRetries(db);
    const outcomes = await Promise.allSettled(["before", "after", "taken", "last"].map((requestId) => insertPlainRetry(retryOf(original, requestId))));
    expect(outcomes.map((outcome) => outcome.status)).toEqual(["fulfilled", "fulfilled", "rejected", "fulfilled"]);
    expect(isUniqueViolation((outcomes[2] as PromiseRejectedResult).reason)).toBe(true);
    expect(Object.keys(await recorded()).sort()).toEqual(["after", "before", "last"]);
  });
});

describeOnPostgres("a retry statement whose answer is lost", (driver) => {
  let h: Harness;
  beforeEach(async () => {
    h = await startHarnessOn(await driver.scratch());
  });
  afterEach(async () => {
    jest.restoreAllMocks();
    await h.close();
  });

  test("leaves the retries it committed standing, with their copies, alone or made together", async () => {
    const original = await finishedExecution(h);
    // The statement commits; its answer never arrives, as when the connection drops right then.
    let lost = 0;
    const query = Client.prototype.query;
    jest.spyOn(Client.prototype, "query").mockImplementation(function (this: Client, ...args: unknown[]) {
      const [config] = args as [{ text?: unknown } | undefined];
      const answer = (query as (...all: unknown[]) => unknown).apply(this, args);
      // The retry statements are sent as one config object, with no callback (db/sql-session.ts).
      if (args.length === 1 && String(config?.text).startsWith('with "original"')) {
        return (answer as Promise<unknown>).then(() => {
          lost++;
          throw new Error("Connection terminated unexpectedly");
        });
      }
      return answer;
    } as typeof Client.prototype.query);

    const alone = await h.alice.retryExecution({ executionId: original.id, requestId: "alone" });
    const together = await Promise.all(["one", "two", "three"].map((requestId) => h.alice.retryExecution({ executionId: original.id, requestId })));
    const made = [alone, ...together].map((answer) => answer.execution!.id);
    expect(lost).toBeGreaterThanOrEqual(2);

    const rows = await h.db.fork().getConnection().execute<Array<{ id: string; request_id: string }>>(
      `select id, request_id from executions where retry_of = '${original.id}' order by request_id`,
    );
    expect(rows.map((row) => [row.request_id, row.id])).toEqual(
      ["alone", "one", "three", "two"].map((requestId) => [requestId, made[["alone", "one", "two", "three"].indexOf(requestId)]]),
    );
    for (const id of made) {
      expect(h.storage.keysUnder(id)).toHaveLength(h.storage.keysUnder(original.id).length);
    }
  });
});
