import { Code, ConnectError } from "@connectrpc/connect";
import { mapWithLimit, silentLogger } from "@rgrid/common";
import { LogEntry_Stream, Outcome } from "@rgrid/proto";
import { ARCHIVE_BATCH, createLogArchive } from "../src/executions/log-archive";
import { createStorageGateway } from "../src/storage";
import { queuedExecution, registeredRunner } from "./flows";
import type { Harness } from "./harness";
import { startHarness } from "./harness";

// The log archiver against a real database: how much one pass moves, and what a reader finds
// afterwards. Object bytes go through `fetch`, which here keeps them by URL, as storage would.

let h: Harness;

beforeEach(async () => {
  h = await startHarness();
});

afterEach(async () => {
  await h.close();
});

/**
 * PUTs keep their body under the URL, GETs answer it, or else what the fake storage holds there
 * from StoreLogs; `refuse` makes every PUT fail.
 */
function objectStoreFetch(options: { refuse?: boolean } = {}) {
  const bodies = new Map<string, string>();
  let puts = 0;
  const fetch = (async (input: string | URL | Request, init?: RequestInit) => {
    const url = String(input);
    if (init?.method === "PUT") {
      puts++;
      if (options.refuse === true) {
        return new Response("storage is away", { status: 503 });
      }
      bodies.set(url, Buffer.from(init.body as Uint8Array).toString("utf8"));
      return new Response(null, { status: 200 });
    }
    const stored = h.storage.bytesAt(url);
    const body = bodies.get(url) ?? (stored === undefined ? undefined : Buffer.from(stored).toString("utf8"));
    return body === undefined ? new Response("no such object", { status: 404 }) : new Response(body, { status: 200 });
  }) as typeof globalThis.fetch;
  return { fetch, puts: () => puts };
}

/** `count` executions, each finished with the given lines (one naming it unless told otherwise). */
async function finishedWithLogs(count: number, linesOf: (id: string) => string[] = (id) => [`hello from ${id}`]): Promise<string[]> {
  const runnerId = await registeredRunner(h);
  return mapWithLimit(Array.from({ length: count }), 8, async () => {
    const queued = await queuedExecution(h);
    await h.runner.claimExecution({ runnerId, waitMillis: 0 });
    await h.runner.completeExecution({
      runnerId,
      executionId: queued.id,
      outcome: Outcome.COMPLETED,
      exitCode: 0,
      finalEntries: linesOf(queued.id).map((line, index) => ({ sequence: BigInt(index + 1), stream: LogEntry_Stream.STDOUT, line })),
    });
    return queued.id;
  });
}

/** The archiver of the harness's database and storage, its bytes going through `fetch`. */
const archiveThrough = (fetch: typeof globalThis.fetch) =>
  createLogArchive({ db: h.db, storage: createStorageGateway(h.storage.client()), logger: silentLogger, fetch });

const logRows = async () => Number((await h.db.fork().getConnection().execute<Array<{ rows: number }>>("select count(*) as rows from log_entries"))[0]!.rows);

test("one pass archives every finished execution's log, one StoreLogs call a batch, and readers find the lines in storage", async () => {
  const ids = await finishedWithLogs(ARCHIVE_BATCH * 2 + 7);
  expect(await logRows()).toBe(ids.length);
  const store = objectStoreFetch();
  const archive = archiveThrough(store.fetch);
  const grantsBefore = h.storage.calls.createUploadGrants;

  const archived = await archive.archiveOnce();

  expect([...archived].sort()).toEqual([...ids].sort());
  expect(h.storage.calls.storeLogs).toBe(3);
  expect(h.storage.calls.createUploadGrants).toBe(grantsBefore);
  expect(store.puts()).toBe(0);
  expect(await logRows()).toBe(0);
  const reread = ids[ARCHIVE_BATCH + 1]!;
  const lines = await archive.readLines(h.db.fork(), { id: reread, logsArchived: true }, 0, 100);
  expect(lines.map((line) => [line.sequence, line.line])).toEqual([[1, `hello from ${reread}`]]);
  expect(await archive.archiveOnce()).toEqual([]);
});

test("a log too large to travel inside StoreLogs goes through an upload grant of its own, and reads back the same", async () => {
  const longLine = (id: string, index: number) => `${id} ${index} ${"x".repeat(60_000)}`;
  const [large] = await finishedWithLogs(1, (id) => Array.from({ length: 5 }, (_, index) => longLine(id, index)));
  const small = await finishedWithLogs(3);
  const store = objectStoreFetch();
  const archive = archiveThrough(store.fetch);

  expect([...(await archive.archiveOnce())].sort()).toEqual([large!, ...small].sort());

  expect(store.puts()).toBe(1);
  expect(h.storage.calls.storeLogs).toBe(1);
  expect(await logRows()).toBe(0);
  const lines = await archive.readLines(h.db.fork(), { id: large!, logsArchived: true }, 0, 100);
  expect(lines.map((line) => line.line)).toEqual(Array.from({ length: 5 }, (_, index) => longLine(large!, index)));
});

test("a storage-service without StoreLogs still gets every log, through upload grants", async () => {
  const ids = await finishedWithLogs(5);
  h.storage.failWith("storeLogs", new ConnectError("rgrid.v1.StorageService/StoreLogs is not implemented", Code.Unimplemented));
  const store = objectStoreFetch();
  const archive = archiveThrough(store.fetch);

  expect([...(await archive.archiveOnce())].sort()).toEqual([...ids].sort());

  expect(h.storage.calls.storeLogs).toBe(1);
  expect(store.puts()).toBe(ids.length);
  expect(await logRows()).toBe(0);
  const lines = await archive.readLines(h.db.fork(), { id: ids[3]!, logsArchived: true }, 0, 100);
  expect(lines.map((line) => line.line)).toEqual([`hello from ${ids[3]}`]);
});

test("a pass that cannot store anything stops after one batch and keeps every line", async () => {
  const ids = await finishedWithLogs(ARCHIVE_BATCH + 5);
  h.storage.failWith("storeLogs", new ConnectError("storage is away", Code.Unavailable));
  const archive = archiveThrough(objectStoreFetch().fetch);

  expect(await archive.archiveOnce()).toEqual([]);

  expect(h.storage.calls.storeLogs).toBe(1);
  expect(await logRows()).toBe(ids.length);
  const { entries } = await h.alice.getLogs({ executionId: ids[0]! });
  expect(entries.map((entry) => entry.line)).toEqual([`hello from ${ids[0]}`]);
});

test("a pass told to stop ends after the storage call in hand; the next pass archives the rest", async () => {
  const ids = await finishedWithLogs(ARCHIVE_BATCH + 10);
  const stopping = new AbortController();
  h.storage.beforeStoreLogs = () => stopping.abort();
  const archive = archiveThrough(objectStoreFetch().fetch);

  expect(await archive.archiveOnce(stopping.signal)).toHaveLength(ARCHIVE_BATCH);
  expect(await logRows()).toBe(10);

  expect(await archive.archiveOnce()).toHaveLength(10);
  expect(await logRows()).toBe(0);
  expect(h.storage.contents.size).toBe(ids.length);
});
