import { chmod, mkdtemp, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { UniqueConstraintViolationException } from "@mikro-orm/core";
import { silentLogger } from "@rgrid/common";
import { ObjectKind } from "@rgrid/proto";
import { issueApiKey } from "../src/accounts";
import { AuditEntry, Execution } from "../src/db/entities";
import { openDatabase } from "../src/db/orm";
import type { Database } from "../src/db/orm";
import { claimNextExecution } from "../src/executions/claims";
import { createRetryExecution } from "../src/executions/retry";
import type { RetryExecution } from "../src/executions/retry";
import { WorkNotifier } from "../src/executions/work-notifier";
import { createStorageGateway } from "../src/storage";
import type { StorageGateway } from "../src/storage";
import { describeOnEachDatabase, openScratchDatabase, queuedExecutionRow } from "./databases";
import type { DatabaseDriver, ScratchDatabase } from "./databases";
import { FakeStorage } from "./fake-storage";
import { sqliteSuitesEnabled } from "../../../test/support/postgres";

describeOnEachDatabase("persistence", (driver) => persistenceSuite(driver));

function persistenceSuite(driver: DatabaseDriver): void {
  let scratch: ScratchDatabase;
  let db: Database;
  let accountId: string;
  let apiKeyId: string;

  beforeEach(async () => {
    scratch = await openScratchDatabase(driver);
    db = scratch.db;
    const issued = await issueApiKey(db.fork(), "acme", new Date());
    accountId = issued.accountId;
    apiKeyId = issued.apiKeyId;
  });
  afterEach(() => scratch.close());

  function record(overrides: Partial<Execution> = {}): Execution {
    return queuedExecutionRow(accountId, overrides);
  }

  async function insert(...executions: Execution[]): Promise<void> {
    const em = db.fork();
    executions.forEach((execution) => em.persist(execution));
    await em.flush();
  }

  /** An original stored with `overrides`, its script and an input in a fake storage. */
  async function originalWithObjects(overrides: Partial<Execution>): Promise<{ original: Execution; storage: FakeStorage }> {
    const original = record(overrides);
    await insert(original);
    const storage = new FakeStorage();
    storage.put(original.id, ObjectKind.SCRIPT, "job.py", 10);
    storage.put(original.id, ObjectKind.INPUT, "in.csv", 4);
    return { original, storage };
  }

  /** RetryExecution on this database, copying through `storage`. */
  function retryService(storage: StorageGateway): RetryExecution {
    return createRetryExecution({
      db,
      storage,
      notifier: new WorkNotifier(),
      clock: () => new Date(),
      logger: silentLogger,
      metrics: { retryCreated: () => undefined },
    });
  }

  /** The executions that have objects in `storage`. */
  function objectOwners(storage: FakeStorage): Set<string | undefined> {
    return new Set([...storage.objects.keys()].map((key) => key.split("/")[1]));
  }

  test("migrations apply to an empty database once", async () => {
    const fresh = await driver.scratch();
    const empty = await openDatabase(fresh.target);
    try {
      expect(await empty.migrate()).toEqual([
        "Migration20250601000000_initial",
        "Migration20261127000000_runners_for_real",
        "Migration20261130000000_console",
        "Migration20261130120000_audit",
        "Migration20261130140000_overrides",
        "Migration20261130160000_retry_operations",
        "Migration20261130180000_log_archive",
      ]);
      expect(await empty.migrate()).toEqual([]);
      expect(await empty.fork().count(Execution, {})).toBe(0);
    } finally {
      await empty.close();
      await fresh.drop();
    }
  });

  test("concurrent claimers never get the same execution", async () => {
    const queued = Array.from({ length: 12 }, () => record());
    await insert(...queued, record({ runtime: "node", runtimeName: "node" }));
    const claimedBy = new Map<string, string>();
    const claimer = async (runnerId: string) => {
      for (;;) {
        const claimed = await claimNextExecution(db, runnerId, ["python"], new Date());
        if (claimed === undefined) return;
        expect(claimedBy.has(claimed.id)).toBe(false);
        claimedBy.set(claimed.id, runnerId);
      }
    };
    await Promise.all(Array.from({ length: 6 }, (_, i) => claimer(`runner_${i}`)));
    expect([...claimedBy.keys()].sort()).toEqual(queued.map((execution) => execution.id).sort());
    const stored = await db.fork().find(Execution, { id: { $in: queued.map((execution) => execution.id) } });
    for (const execution of stored) {
      expect(execution.status).toBe("running");
      expect(execution.runnerId).toBe(claimedBy.get(execution.id));
      expect(execution.startedAt).toBeInstanceOf(Date);
    }
  });

  test("request_id is unique per account; absent ones never collide", async () => {
    await insert(record({ requestId: "r-1" }), record(), record());
    await expect(insert(record({ requestId: "r-1" }))).rejects.toBeInstanceOf(UniqueConstraintViolationException);
    const other = await issueApiKey(db.fork(), "other", new Date());
    await insert(record({ accountId: other.accountId, requestId: "r-1" }));
  });

  test("a retry is inserted with its lineage; replicas racing on one request_id make one", async () => {
    const { original, storage } = await originalWithObjects({ status: "failed", finishedAt: new Date(), exitCode: 1 });
    // Two replicas: separate in-process de-duplication, one database.
    const replica = () => retryService(createStorageGateway(storage.client()));
    const caller = { accountId, actorId: apiKeyId };
    const request = { executionId: original.id, force: false, requestId: "race" };
    const [first, second] = await Promise.all([replica()(caller, request), replica()(caller, request)]);
    expect(first.execution.id).toBe(second.execution.id);

    const stored = await db.fork().find(Execution, { retryOf: original.id });
    expect(stored).toHaveLength(1);
    expect(stored[0]).toMatchObject({
      status: "queued",
      rootId: original.id,
      attempt: 2,
      retryKind: "manual",
      retriedBy: apiKeyId,
      scriptName: "job.py",
      inputs: original.inputs,
    });
    // The loser's copies were removed: only the original and the winner have objects.
    expect([...objectOwners(storage)].sort()).toEqual([original.id, first.execution.id].sort());
    expect((await db.fork().findOneOrFail(Execution, original.id)).status).toBe("failed");
  });

  test("a retry whose original is removed while its objects are copied is refused NotFound, and leaves nothing", async () => {
    const { original, storage } = await originalWithObjects({ status: "failed", finishedAt: new Date(), exitCode: 1 });
    const gateway = createStorageGateway(storage.client());
    const retryExecution = retryService({
      ...gateway,
      // Retention (or an operator) removes the original between the retry's read and its insert.
      async copyInputs(...args) {
        const copied = await gateway.copyInputs(...args);
        await db.fork().nativeDelete(Execution, { id: original.id });
        return copied;
      },
    });
    const request = { executionId: original.id, force: false, requestId: "gone-meanwhile" };
    await expect(retryExecution({ accountId, actorId: apiKeyId }, request)).rejects.toMatchObject({
      name: "NotFoundError",
      message: `execution ${original.id} not found`,
    });

    expect(await db.fork().count(Execution, {})).toBe(0);
    expect(await db.fork().count(AuditEntry, {})).toBe(0);
    // The copies were removed again.
    expect(objectOwners(storage)).toEqual(new Set([original.id]));
  });

  test("a forced retry of a running original is inserted with its audit entry, the original untouched", async () => {
    const { original, storage } = await originalWithObjects({ status: "running", startedAt: new Date(), runnerId: "runner_a" });
    const retryExecution = retryService(createStorageGateway(storage.client()));
    const caller = { accountId, actorId: apiKeyId };
    await expect(retryExecution(caller, { executionId: original.id, force: false, requestId: "unforced" })).rejects.toMatchObject({
      name: "PreconditionError",
    });
    const result = await retryExecution(caller, { executionId: original.id, force: true, requestId: "forced", reason: "stuck" });

    expect(result.execution).toMatchObject({ retryOf: original.id, retryKind: "forced", status: "queued" });
    expect(result.original).toMatchObject({ id: original.id, status: "running" });
    const entries = await db.fork().find(AuditEntry, {});
    expect(entries).toEqual([
      expect.objectContaining({ action: "forced_retry", executionId: original.id, rootId: original.id, requestId: "forced", reason: "stuck", outcome: result.execution.id }),
    ]);
    expect(await db.fork().findOneOrFail(Execution, original.id)).toMatchObject({ status: "running", runnerId: "runner_a" });
  });
}

(sqliteSuitesEnabled ? describe : describe.skip)("the SQLite file", () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "rgrid-sqlite-"));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const modeOf = async (path: string) => (await stat(path)).mode & 0o777;

  test("is readable by the service's user only, as are its write-ahead log and its new directory", async () => {
    const file = join(dir, "data", "rgrid.db");
    const db = await openDatabase({ dialect: "sqlite", file });
    try {
      await db.migrate();
      expect(await modeOf(file)).toBe(0o600);
      expect(await modeOf(`${file}-wal`)).toBe(0o600);
      expect(await modeOf(join(dir, "data"))).toBe(0o700);
    } finally {
      await db.close();
    }
  });

  test("made readable by others by an earlier version, is closed at open", async () => {
    const file = join(dir, "rgrid.db");
    await writeFile(file, "");
    await chmod(file, 0o644);
    const db = await openDatabase({ dialect: "sqlite", file });
    await db.close();
    expect(await modeOf(file)).toBe(0o600);
  });
});
