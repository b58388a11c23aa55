import { issueApiKey } from "../src/accounts";
import type { Execution } from "../src/db/entities";
import type { Database } from "../src/db/orm";
import { coalescedRetryLookups } from "../src/executions/retry-lookups";
import type { RetryLookup } from "../src/executions/retry-lookups";
import { connectionPoolOf, connectionsAcquiredDuring, describeOnEachDatabase, insertRows, openScratchDatabase, queuedExecutionRow } from "./databases";
import type { ScratchDatabase } from "./databases";

// A retry's first read, coalesced (retry-lookups.ts): lookups that arrive while a statement is
// on its way share the next one, and each gets exactly the rows it would have read alone.

describeOnEachDatabase("retry lookups", (driver) => {
  let scratch: ScratchDatabase;
  let db: Database;
  let alice: string;
  let bob: string;

  beforeEach(async () => {
    scratch = await openScratchDatabase(driver);
    db = scratch.db;
    alice = (await issueApiKey(db.fork(), "alice", new Date())).accountId;
    bob = (await issueApiKey(db.fork(), "bob", new Date())).accountId;
  });
  afterEach(() => scratch.close());

  const insert = (...executions: Execution[]) => insertRows(db, executions);

  const ids = (rows: readonly Execution[]) => rows.map((row) => row.id).sort();

  test("lookups made together share a statement, and each gets the rows its own would have read", async () => {
    const originals = Array.from({ length: 6 }, () => queuedExecutionRow(alice, { status: "failed" }));
    const [first, second] = originals as [Execution, Execution];
    const earlierRetry = queuedExecutionRow(alice, { retryOf: first.id, requestId: "re-sent" });
    const otherRetry = queuedExecutionRow(alice, { retryOf: second.id, requestId: "someone else's" });
    const bobs = queuedExecutionRow(bob, { status: "failed", requestId: "re-sent" });
    await insert(...originals, earlierRetry, otherRetry, bobs);

    const lookups: RetryLookup[] = [
      ...originals.map((original, index) => ({ accountId: alice, executionId: original.id, requestId: `new-${index}`, otherRetries: false })),
      // A re-sent request finds its earlier retry; a retry that must be the only one finds the others.
      { accountId: alice, executionId: first.id, requestId: "re-sent", otherRetries: false },
      { accountId: alice, executionId: second.id, requestId: "new-only", otherRetries: true },
      // Another account's execution and request_id are not alice's, nor alice's bob's.
      { accountId: alice, executionId: bobs.id, requestId: "new-x", otherRetries: true },
      { accountId: bob, executionId: first.id, requestId: "re-sent", otherRetries: true },
    ];
    const alone = coalescedRetryLookups(db);
    const expected: string[][] = [];
    for (const lookup of lookups) {
      expected.push(ids(await alone(lookup)));
    }
    expect(expected.slice(6)).toEqual([
      [earlierRetry.id, first.id].sort(),
      [otherRetry.id, second.id].sort(),
      [],
      [bobs.id],
    ]);

    const together = coalescedRetryLookups(db);
    let results: Execution[][] = [];
    const statements = await connectionsAcquiredDuring(db, async () => {
      results = await Promise.all(lookups.map((lookup) => together(lookup)));
    });
    expect(results.map(ids)).toEqual(expected);
    // The first goes at once; the rest wait for it and go together.
    expect(statements).toBe(2);
    // Rows two lookups share are each lookup's own objects.
    const [firstAgain] = results[6]!.filter((row) => row.id === first.id);
    expect(firstAgain).toEqual(results[0]![0]);
    expect(firstAgain).not.toBe(results[0]![0]);
  });

  test("a failed statement fails every lookup it carried, and the next ones go on", async () => {
    const original = queuedExecutionRow(alice, { status: "failed" });
    await insert(original);
    const lookup = coalescedRetryLookups(db);
    const client = connectionPoolOf(db);
    const refused = new Error("no connection to be had");
    // The first statement gets its connection; then the pool fails, as with the database gone.
    const acquireFromPool = client.acquireConnection.bind(client);
    const acquire = jest.spyOn(client, "acquireConnection").mockImplementationOnce(acquireFromPool).mockRejectedValueOnce(refused);
    try {
      const outcomes = await Promise.allSettled(
        ["a", "b", "c"].map((requestId) => lookup({ accountId: alice, executionId: original.id, requestId, otherRetries: false })),
      );
      expect(outcomes.map((outcome) => outcome.status)).toEqual(["fulfilled", "rejected", "rejected"]);
      expect(outcomes.slice(1).map((outcome) => (outcome as PromiseRejectedResult).reason)).toEqual([refused, refused]);
    } finally {
      acquire.mockRestore();
    }
    expect(ids(await lookup({ accountId: alice, executionId: original.id, requestId: "d", otherRetries: false }))).toEqual([original.id]);
  });
});
