import { Account, Execution } from "../src/db/entities";
import { runRaw } from "../src/db/raw-query";
import { rowCodec } from "../src/db/row-codec";
import { describeOnEachDatabase, openScratchDatabase } from "./databases";
import type { ScratchDatabase } from "./databases";

// The hand-written rows of a retry's hot path (row-codec.ts) must mean what MikroORM's do: a row
// written by one reads back identically through the other, every field and type, on each
// database.

describeOnEachDatabase("execution rows by hand", (driver) => {
  let scratch: ScratchDatabase;

  beforeEach(async () => {
    scratch = await openScratchDatabase(driver);
    await scratch.db.fork().insert(Account, { id: "acct_1", name: "one", createdAt: new Date() });
  });
  afterEach(async () => {
    await scratch.close();
  });

  test("a row written by hand reads back through MikroORM as it was, and the other way round", async () => {
    const em = scratch.db.fork();
    const codec = rowCodec<Execution>(em, Execution.name);
    const byHand = record("exec_byhand");
    await runRaw(em, codec.insertSql, codec.insertValues(byHand));
    const readByOrm = await scratch.db.fork().findOneOrFail(Execution, byHand.id);
    expect({ ...readByOrm }).toEqual(byHand);

    const byOrm = record("exec_byorm");
    await scratch.db.fork().insert(Execution, byOrm);
    const [row] = await runRaw(scratch.db.fork(), "select * from executions where id = ?", [byOrm.id]);
    expect(codec.fromRow(row!)).toEqual(byOrm);
  });

  test("an update by hand writes what MikroORM reads back, and names only columns of the table", async () => {
    const em = scratch.db.fork();
    const codec = rowCodec<Execution>(em, Execution.name);
    await scratch.db.fork().insert(Execution, record("exec_updated"));
    const changes = { sandboxWarnings: ["no network namespace"], startedAt: new Date("2026-03-04T05:06:07.089Z"), status: "running" as const, autoRetryPending: true };
    const set = codec.assignments(changes);
    // Column order, whatever the order of the changes: the same properties make the same statement.
    expect(set.sql).toBe(codec.assignments({ autoRetryPending: false, status: "queued", startedAt: null, sandboxWarnings: [] }).sql);
    await runRaw(em, `update executions set ${set.sql} where id = ?`, [...set.values, "exec_updated"]);

    const read = await scratch.db.fork().findOneOrFail(Execution, "exec_updated");
    expect({ ...read }).toEqual({ ...record("exec_updated"), ...changes });
    expect(() => codec.assignments({ notAColumn: 1 } as Partial<Execution>)).toThrow("not all of notAColumn are columns of executions");
  });
});

/** An execution with a value of its type in every field, nulls and falsy values included. */
function record(id: string): Execution {
  return {
    id,
    accountId: "acct_1",
    status: "failed",
    scriptName: "dir/job.py",
    scriptSizeBytes: 9_007_199_254,
    scriptSha256: "a".repeat(64),
    runtime: "python:3.12",
    runtimeName: "python",
    args: ["--x", "ü ö", ""],
    env: { A: "1", EMPTY: "" },
    inputs: [{ name: "in.csv", sizeBytes: 3, sha256: "b".repeat(64) }],
    metadata: { team: "data" },
    outputs: [],
    timeoutSeconds: 0,
    createdAt: new Date("2026-01-02T03:04:05.678Z"),
    startedAt: new Date("2026-01-02T03:04:06.001Z"),
    finishedAt: null,
    exitCode: 0,
    errorMessage: "line 1\nline 2 'quoted'",
    runnerId: null,
    retryOf: null,
    rootId: id,
    attempt: 2,
    retryKind: "manual",
    retriedBy: "key_1",
    requestId: `request-${id}`,
    network: true,
    maxRetries: 2,
    retryOnExitCodes: [75],
    batchId: null,
    batchParallelism: 0,
    failureKind: "script",
    autoRetryNumber: 0,
    retryReason: "",
    sandboxWarnings: ["no network namespace"],
    cancelRequestedAt: null,
    notBefore: new Date("2026-01-02T03:05:00.000Z"),
    logBytes: 0,
    logsTruncated: false,
    logsArchived: true,
    autoRetryPending: true,
    overrides: { env: [{ key: "A", before: null, after: "1" }] },
  };
}
