import { randomBytes } from "node:crypto";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { bearerAuth, newBatchId } from "@rgrid/common";
import { ExecutionService, ObjectKind } from "@rgrid/proto";
import { issueApiKey } from "../src/accounts";
import { Execution } from "../src/db/entities";
import type { Database } from "../src/db/orm";
import { createExecutionServer, createExecutionService } from "../src/server";
import { describeOnEachDatabase, openScratchDatabase, queuedExecutionRow } from "./databases";
import type { DatabaseDriver, ScratchDatabase } from "./databases";
import { FakeStorage } from "./fake-storage";
import { TEST_SERVICE_SETTINGS, inMemoryTransport } from "./harness";

// RetryBatch at scale and across replicas, on SQLite and, when RGRID_TEST_POSTGRES_URL names a
// server, on PostgreSQL, each test on a database of its own.

describeOnEachDatabase("RetryBatch", (driver) => batchRetrySuite(driver));

// The service's default request limit (RGRID_MAX_REQUEST_BYTES); the answer must fit it too.
const DEFAULT_MAX_BYTES = 4 * 1024 * 1024;

function batchRetrySuite(driver: DatabaseDriver): void {
  let scratch: ScratchDatabase;
  let db: Database;
  let storage: FakeStorage;
  let key: string;
  let accountId: string;

  beforeEach(async () => {
    scratch = await openScratchDatabase(driver);
    db = scratch.db;
    storage = new FakeStorage();
    const issued = await issueApiKey(db.fork(), "acme", new Date());
    key = issued.key;
    accountId = issued.accountId;
  });
  afterEach(() => scratch.close());

  const serviceDeps = () => ({ db, storage: storage.client(), ...TEST_SERVICE_SETTINGS, readMaxBytes: DEFAULT_MAX_BYTES });

  /** `count` failed executions of one batch, with big args and env, and their objects stored. */
  async function failedBatch(count: number): Promise<{ batchId: string; ids: string[] }> {
    const batchId = newBatchId();
    const start = Date.now() - count * 1000;
    const records = Array.from({ length: count }, (_, index) => {
      const id = `exec_${randomBytes(16).toString("hex")}`;
      storage.put(id, ObjectKind.SCRIPT, "job.py", 10);
      storage.put(id, ObjectKind.INPUT, "in.csv", 4);
      return queuedExecutionRow(accountId, {
        id,
        status: "failed",
        args: ["in.csv", "a".repeat(2000)],
        env: { PAYLOAD: "e".repeat(2000) },
        metadata: { note: "m".repeat(1000) },
        createdAt: new Date(start + index * 1000),
        finishedAt: new Date(),
        exitCode: 1,
        errorMessage: "Traceback: " + "t".repeat(10_000),
        failureKind: "script",
        batchId,
      });
    });
    for (let start = 0; start < records.length; start += 200) {
      const em = db.fork();
      records.slice(start, start + 200).forEach((record) => em.persist(record));
      await em.flush();
    }
    return { batchId, ids: records.map((record) => record.id) };
  }

  test("1,000 executions are retried in one call over the wire within the default limits", async () => {
    const { batchId, ids } = await failedBatch(1000);
    const server = await createExecutionServer(serviceDeps()).listen(0, "127.0.0.1");
    try {
      const client = createClient(
        ExecutionService,
        createConnectTransport({
          baseUrl: server.url,
          httpVersion: "1.1",
          readMaxBytes: DEFAULT_MAX_BYTES,
          interceptors: [bearerAuth(key)],
        }),
      );
      const request = { batchId, failedOnly: true, requestId: "big-batch" };
      const response = await client.retryBatch(request, { timeoutMs: 240_000 });
      expect(response.retriedCount).toBe(1000);
      expect(response.skippedCount).toBe(0);
      expect(response.items.map((item) => item.original?.id)).toEqual(ids);
      expect(response.items.every((item) => item.retry?.retryOf === item.original?.id && item.retry?.batchId === batchId)).toBe(true);
      expect(storage.copiesMade).toBe(1000);

      const again = await client.retryBatch(request, { timeoutMs: 240_000 });
      expect(again.items.map((item) => item.retry?.id)).toEqual(response.items.map((item) => item.retry?.id));
      expect(storage.copiesMade).toBe(1000);
      expect(await db.fork().count(Execution, { batchId })).toBe(2000);
    } finally {
      await server.close();
    }
  }, 300_000);

  test("two replicas answering the same request at once make one retry per execution", async () => {
    const { batchId, ids } = await failedBatch(40);
    // Separate services (each with its own in-process de-duplication) on one database.
    const replica = () => {
      const service = createExecutionService(serviceDeps());
      return createClient(ExecutionService, inMemoryTransport(service, key));
    };
    const request = { batchId, failedOnly: true, requestId: "raced" };
    const [first, second] = await Promise.all([replica().retryBatch(request), replica().retryBatch(request)]);

    expect(first.retriedCount).toBe(40);
    expect(second.items.map((item) => item.retry?.id)).toEqual(first.items.map((item) => item.retry?.id));
    const retries = await db.fork().find(Execution, { retryOf: { $in: ids } });
    expect(retries).toHaveLength(40);
    expect(new Set(retries.map((retry) => retry.retryOf)).size).toBe(40);
    // Copies made by the losing replica were removed: objects belong to originals and winners.
    const owners = new Set([...storage.objects.keys()].map((objectKey) => objectKey.split("/")[1]));
    expect([...owners].sort()).toEqual([...ids, ...retries.map((retry) => retry.id)].sort());
  }, 120_000);
}
