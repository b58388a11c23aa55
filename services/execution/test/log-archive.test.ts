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

/** PUTs keep their body under the URL, GETs answer it; `refuse` makes every PUT fail; `onPut` sees each PUT's number. */
function objectStoreFetch(options: { refuse?: boolean; onPut?: (count: number) => void } = {}) {
  const bodies = new Map<string, string>();
  let puts = 0;
  const fetch = (async (input: string | URL | Request, init?: RequestInit) => {
    const url = String(input);
    if (init?.method === "PUT") {
      puts++;
      options.onPut?.(puts);
      if (options.refuse === true) {
        return new Response("storage is away", { status: 503 });
      }
      bodies.set(url, Buffer.from(init.body as Uint8Array).toString("utf8"));
      return new Response(null, { status: 200 });
    }
    const body = bodies.get(url);
    return body === undefined ? new Response("no such object", { status: 404 }) : new Response(body, { status: 200 });
  }) as typeof globalThis.fetch;
  return { fetch, puts: () => puts };
}

/** `count` executions, each finished with one log line naming it. */
async function finishedWithLogs(count: number): Promise<string[]> {
  const runnerId = await registeredRunner(h);
  return mapWithLimit(Array.from({ length: count }), 8, async () => {
    const queued = await queuedExecution(h);
    await h.runner.claimExecution({ runnerId, waitMillis: 0 });
    await h.runner.completeExecution({
      runnerId,
      executionId: queued.id,
      outcome: Outcome.COMPLETED,
      exitCode: 0,
      finalEntries: [{ sequence: 1n, stream: LogEntry_Stream.STDOUT, line: `hello from ${queued.id}` }],
    });
    return queued.id;
  });
}

/** The archiver of the harness's database and storage, its bytes going through `fetch`. */
const archiveThrough = (fetch: typeof globalThis.fetch) =>
  createLogArchive({ db: h.db, storage: createStorageGateway(h.storage.client()), logger: silentLogger, fetch });

const logRows = async () => Number((await h.db.fork().getConnection().execute<Array<{ rows: number }>>("select count(*) as rows from log_entries"))[0]!.rows);

test("one pass archives every finished execution's log, batch after batch, and readers find the lines in storage", async () => {
  const ids = await finishedWithLogs(ARCHIVE_BATCH * 2 + 7);
  expect(await logRows()).toBe(ids.length);
  const store = objectStoreFetch();
  const archive = archiveThrough(store.fetch);

  const archived = await archive.archiveOnce();

  expect([...archived].sort()).toEqual([...ids].sort());
  expect(await logRows()).toBe(0);
  const reread = ids[ARCHIVE_BATCH + 1]!;
  const lines = await archive.readLines(h.db.fork(), { id: reread, logsArchived: true }, 0, 100);
  expect(lines.map((line) => [line.sequence, line.line])).toEqual([[1, `hello from ${reread}`]]);
  expect(await archive.archiveOnce()).toEqual([]);
});

test("a pass that cannot store anything stops after one batch and keeps every line", async () => {
  const ids = await finishedWithLogs(ARCHIVE_BATCH + 5);
  const store = objectStoreFetch({ refuse: true });
  const archive = archiveThrough(store.fetch);

  expect(await archive.archiveOnce()).toEqual([]);

  expect(store.puts()).toBe(ARCHIVE_BATCH);
  expect(await logRows()).toBe(ids.length);
  const { entries } = await h.alice.getLogs({ executionId: ids[0]! });
  expect(entries.map((entry) => entry.line)).toEqual([`hello from ${ids[0]}`]);
});

test("a pass told to stop ends after the execution in hand; the next pass archives the rest", async () => {
  const ids = await finishedWithLogs(ARCHIVE_BATCH + 10);
  const stopping = new AbortController();
  const store = objectStoreFetch({ onPut: (count) => count === 3 && stopping.abort() });
  const archive = archiveThrough(store.fetch);

  expect(await archive.archiveOnce(stopping.signal)).toHaveLength(3);
  expect(await logRows()).toBe(ids.length - 3);

  expect(await archive.archiveOnce()).toHaveLength(ids.length - 3);
  expect(await logRows()).toBe(0);
});
