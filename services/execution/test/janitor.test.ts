import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { createClient } from "@connectrpc/connect";
import {
  createInternalClient,
  createLogger,
  newExecutionId,
  silentLogger,
  uploadFile,
} from "@rgrid/common";
import type { Grant } from "@rgrid/common";
import { ExecutionService, ObjectKind, StorageService } from "@rgrid/proto";
import { issueApiKey } from "../src/accounts";
import type { Database } from "../src/db/orm";
import { openDatabase } from "../src/db/orm";
import { createJanitor, startJanitor } from "../src/janitor";
import type { Janitor } from "../src/janitor";
import { createExecutionService } from "../src/server";
import type { StorageGateway } from "../src/storage";
import { createStorageGateway, inputObject } from "../src/storage";
import { queuedExecution } from "./flows";
import type { Harness } from "./harness";
import { executionRequest, inMemoryTransport, startHarness } from "./harness";
import { startRealStorage } from "./real-storage";
import type { RealStorage } from "./real-storage";

const HOUR = 3_600_000;

/** A logger that keeps its lines, to check what a pass reports. */
function recordingLogger(): { logger: ReturnType<typeof createLogger>; lines: string[] } {
  const lines: string[] = [];
  return { logger: createLogger("janitor", (line) => lines.push(line)), lines };
}

describe("janitor over SQLite and an in-memory storage", () => {
  let h: Harness;
  let gateway: StorageGateway;
  // The janitor runs two hours from now: objects stored during the test are an hour past the grace.
  const later = () => new Date(Date.now() + 2 * HOUR);

  beforeEach(async () => {
    h = await startHarness();
    gateway = createStorageGateway(h.storage.client());
  });

  afterEach(async () => {
    await h.close();
  });

  const orphan = (storedAt?: Date): string => {
    const id = newExecutionId();
    h.storage.put(id, ObjectKind.INPUT, "data.json", 10, storedAt);
    h.storage.put(id, ObjectKind.SCRIPT, "main.py", 5, storedAt);
    return id;
  };

  it("removes the objects of missing executions past the grace, page after page, and keeps the rest", async () => {
    const existing = [await queuedExecution(h), await queuedExecution(h), await queuedExecution(h)].map((e) => e.id);
    const missing = [orphan(), orphan(), orphan(), orphan()];
    const now = later();
    const young = orphan(new Date(now.getTime() - 60_000));
    // Its newest object decides: one old object does not make a recent copy removable.
    const partlyYoung = orphan();
    h.storage.put(partlyYoung, ObjectKind.OUTPUT, "fresh.txt", 1, new Date(now.getTime() - 60_000));
    const { logger, lines } = recordingLogger();

    const janitor = createJanitor({ db: h.db, storage: gateway, logger, clock: () => now, graceMillis: HOUR, pageSize: 2 });
    const pass = await janitor.runOnce();

    expect(pass.removedExecutions).toBe(missing.length);
    expect([...pass.removedIds].sort()).toEqual([...missing].sort());
    for (const id of missing) {
      expect(h.storage.keysUnder(id)).toEqual([]);
      expect(lines.some((line) => line.includes("removed the objects") && line.includes(id))).toBe(true);
    }
    for (const id of existing) {
      expect(h.storage.keysUnder(id)).toHaveLength(2);
    }
    expect(h.storage.keysUnder(young)).toHaveLength(2);
    expect(h.storage.keysUnder(partlyYoung)).toHaveLength(3);
    // 9 stored executions at 2 a page.
    expect(h.storage.calls.listStoredExecutions).toBe(5);
    expect(lines.some((line) => line.includes("janitor pass finished") && line.includes("removedExecutions=4"))).toBe(true);

    expect(await janitor.runOnce()).toEqual({ removedExecutions: 0, removedIds: [] });
  });

  it("keeps objects just copied for a retry that is not recorded yet, however old their source", async () => {
    const original = await queuedExecution(h);
    for (const key of h.storage.keysUnder(original.id)) {
      const object = h.storage.objects.get(key);
      if (object !== undefined) {
        object.storedAt = new Date(Date.now() - 24 * HOUR);
      }
    }
    const unrecordedRetry = newExecutionId();
    await gateway.copyInputs(original.id, unrecordedRetry, ["input.json"], "process.py");

    const janitor = createJanitor({ db: h.db, storage: gateway, logger: silentLogger, clock: () => new Date(), graceMillis: HOUR });
    expect(await janitor.runOnce()).toEqual({ removedExecutions: 0, removedIds: [] });
    expect(h.storage.keysUnder(unrecordedRetry)).toHaveLength(2);
  });

  it("logs an id it cannot remove and still removes the others", async () => {
    await queuedExecution(h);
    const missing = [orphan(), orphan(), orphan()].sort();
    const stuck = missing[1] as string;
    const flaky: StorageGateway = {
      ...gateway,
      async deleteExecutionObjects(executionId) {
        if (executionId === stuck) {
          throw new Error("storage call failed: disk full");
        }
        await gateway.deleteExecutionObjects(executionId);
      },
    };
    const { logger, lines } = recordingLogger();

    const pass = await createJanitor({ db: h.db, storage: flaky, logger, clock: later, graceMillis: HOUR, pageSize: 1 }).runOnce();

    expect(pass.removedIds).toEqual(missing.filter((id) => id !== stuck));
    expect(h.storage.keysUnder(stuck)).toHaveLength(2);
    expect(lines.some((line) => line.includes("WARN") && line.includes(stuck) && line.includes("disk full"))).toBe(true);
    expect(lines.some((line) => line.includes("removedExecutions=2") && line.includes("failures=1"))).toBe(true);
  });

  it("removes nothing while the database has no executions at all: it is probably not this storage's", async () => {
    const stored = orphan();
    const { logger, lines } = recordingLogger();
    const pass = await createJanitor({ db: h.db, storage: gateway, logger, clock: later, graceMillis: HOUR }).runOnce();
    expect(pass).toEqual({ removedExecutions: 0, removedIds: [] });
    expect(h.storage.keysUnder(stored)).toHaveLength(2);
    expect(lines.some((line) => line.includes("WARN") && line.includes("no executions"))).toBe(true);
  });

  it("skips the ticks that come while a pass still runs, instead of queueing passes", async () => {
    let passes = 0;
    let finishFirst: () => void = () => undefined;
    const done = { removedExecutions: 0, removedIds: [] };
    const slowAtFirst: Janitor = {
      runOnce: () => {
        passes++;
        return passes === 1 ? new Promise((resolve) => (finishFirst = () => resolve(done))) : Promise.resolve(done);
      },
    };
    const stop = startJanitor(slowAtFirst, 10, silentLogger);
    while (passes === 0) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    await new Promise((resolve) => setTimeout(resolve, 300)); // many ticks while the first pass runs
    finishFirst();
    await stop();
    expect(passes).toBeLessThanOrEqual(2);
  });

  it("does nothing when nothing is stored", async () => {
    const janitor = createJanitor({ db: h.db, storage: gateway, logger: silentLogger, clock: later, graceMillis: HOUR });
    expect(await janitor.runOnce()).toEqual({ removedExecutions: 0, removedIds: [] });
  });
});

describe("janitor against a real storage-service (filesystem backend)", () => {
  const INTERNAL_TOKEN = "internal-token-for-janitor-tests-0123456789";
  let storage: RealStorage;
  let db: Database;
  let gateway: StorageGateway;

  beforeAll(async () => {
    storage = await startRealStorage({ name: "janitor", internalToken: INTERNAL_TOKEN, backendConcurrency: 2 });
    db = await openDatabase({ dialect: "sqlite", file: ":memory:" });
    await db.migrate();
    gateway = createStorageGateway(createInternalClient(StorageService, storage.server.url, INTERNAL_TOKEN));
  });

  afterAll(async () => {
    await db?.close();
    await storage?.close();
  });

  const upload = async (grant: Grant | undefined, content: string): Promise<void> => {
    const local = join(storage.work, `upload-${Math.random().toString(16).slice(2)}`);
    await writeFile(local, content);
    if (grant === undefined) {
      throw new Error("no upload grant");
    }
    await uploadFile(grant, local, Buffer.byteLength(content));
  };

  /** An execution recorded through the real execution service, its files uploaded through its grants. */
  const recordedExecution = async (): Promise<string> => {
    const service = createExecutionService({
      db,
      storage: createInternalClient(StorageService, storage.server.url, INTERNAL_TOKEN),
      logger: silentLogger,
      runnerTokens: [],
      defaultTimeoutSeconds: 60,
      maxTimeoutSeconds: 600,
      readMaxBytes: 4 * 1024 * 1024,
    });
    const apiKey = (await issueApiKey(db.fork(), "alice", new Date())).key;
    const alice = createClient(ExecutionService, inMemoryTransport(service, apiKey));
    const created = await alice.createExecution(executionRequest());
    await upload(created.scriptUpload, "print('hi')\n");
    await upload(created.inputUploads[0], '{"a":1}');
    const id = created.execution?.id ?? "";
    await alice.confirmUploads({ executionId: id });
    return id;
  };

  it("removes only the objects of missing executions, and only once they are older than the grace", async () => {
    const existing = await recordedExecution();
    const missing = [newExecutionId(), newExecutionId(), newExecutionId(), newExecutionId()];
    for (const id of missing) {
      const [grant] = await gateway.uploadGrants(id, [inputObject("left/behind.txt")]);
      await upload(grant, `objects of ${id}`);
    }
    const storedIds = async () => {
      const ids: string[] = [];
      for (let after = "", more = true; more; ) {
        const page = await gateway.listStoredExecutions(after, 2);
        ids.push(...page.executions.map((stored) => stored.executionId));
        more = page.hasMore;
        after = ids[ids.length - 1] ?? "";
      }
      return ids;
    };
    expect(await storedIds()).toEqual([existing, ...missing].sort());

    // Just stored: within the grace, so nothing goes yet.
    const now = createJanitor({ db, storage: gateway, logger: silentLogger, clock: () => new Date(), graceMillis: HOUR, pageSize: 2 });
    expect(await now.runOnce()).toEqual({ removedExecutions: 0, removedIds: [] });
    expect(await storedIds()).toHaveLength(5);

    const twoHoursOn = () => new Date(Date.now() + 2 * HOUR);
    const janitor = createJanitor({ db, storage: gateway, logger: silentLogger, clock: twoHoursOn, graceMillis: HOUR, pageSize: 2 });
    const pass = await janitor.runOnce();

    expect([...pass.removedIds].sort()).toEqual([...missing].sort());
    expect(await storedIds()).toEqual([existing]);
    const kept = await gateway.stat(existing, [{ kind: ObjectKind.SCRIPT, name: "process.py" }, inputObject("input.json")]);
    expect(kept.map((info) => [info.exists, info.sizeBytes])).toEqual([
      [true, 12n],
      [true, 7n],
    ]);
  });
});
