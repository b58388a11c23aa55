import { timestampDate } from "@bufbuild/protobuf/wkt";
import { Code, createClient, createRouterTransport } from "@connectrpc/connect";
import type { Client, Interceptor } from "@connectrpc/connect";
import { bearerAuth } from "@rgrid/common";
import { ExecutionService, ExecutionStatus } from "@rgrid/proto";
import { issueApiKey } from "../src/accounts";
import type { Execution } from "../src/db/entities";
import { Execution as ExecutionRow, LogLine, Session } from "../src/db/entities";
import { createExecutionService } from "../src/server";
import type { ExecutionService as ServedExecutionService } from "../src/server";
import { issueSignInToken } from "../src/sessions/sessions";
import { describeOnEachDatabase, openScratchDatabase, queuedExecutionRow } from "./databases";
import type { ScratchDatabase } from "./databases";
import { expectCode } from "./expect-code";
import { FakeStorage } from "./fake-storage";
import { TEST_SERVICE_SETTINGS } from "./harness";

// What the console asks of the API — filtered listings, lineages, batch counts, sessions — on
// every database the service supports, with rows written as the service stores them.

const BATCH = `batch_${"c".repeat(32)}`;

describeOnEachDatabase("console API", (driver) => {
  let scratch: ScratchDatabase;
  let service: ServedExecutionService;
  let accountId: string;
  let otherAccountId: string;
  let client: Client<typeof ExecutionService>;
  let now: Date;

  beforeEach(async () => {
    scratch = await openScratchDatabase(driver);
    now = new Date("2026-11-30T12:00:00.000Z");
    service = createExecutionService({ db: scratch.db, storage: new FakeStorage().client(), ...TEST_SERVICE_SETTINGS, clock: () => now });
    const issued = await issueApiKey(scratch.db.fork(), "alice", now);
    accountId = issued.accountId;
    otherAccountId = (await issueApiKey(scratch.db.fork(), "bob", now)).accountId;
    client = createClient(ExecutionService, transport([bearerAuth(issued.key)]));
  });
  afterEach(async () => {
    await service.leases.stop();
    await scratch.close();
  });

  const transport = (interceptors: Interceptor[]) =>
    createRouterTransport(service.routes, { router: { interceptors: service.interceptors }, transport: { interceptors } });

  /** Stores rows one millisecond apart, oldest first, so listing order is known. */
  async function store(rows: Execution[]): Promise<void> {
    const em = scratch.db.fork();
    rows.forEach((row, index) => (row.createdAt = new Date(now.getTime() - (rows.length - index) * 1000)));
    for (const row of rows) {
      em.persist(row);
    }
    await em.flush();
  }

  /** An original and its retries, each a row of `statuses` in order. */
  function lineage(owner: string, statuses: Execution["status"][], overrides: Partial<Execution> = {}): Execution[] {
    const root = queuedExecutionRow(owner, { ...overrides, status: statuses[0] });
    return [
      root,
      ...statuses.slice(1).map((status, index) =>
        queuedExecutionRow(owner, { ...overrides, status, rootId: root.id, attempt: index + 2, retryKind: "manual" }),
      ),
    ].map((row, index, rows) => Object.assign(row, { retryOf: index === 0 ? null : (rows[index - 1] as Execution).id }));
  }

  const ids = (executions: { id: string }[]) => executions.map((execution) => execution.id);

  test("unresolved lists failures whose lineage has no completed execution, newest first", async () => {
    const fixed = lineage(accountId, ["failed", "completed"]);
    const stillFailing = lineage(accountId, ["failed", "timed_out"]);
    const lone = lineage(accountId, ["failed"]);
    const running = lineage(accountId, ["failed", "running"]);
    const foreign = lineage(otherAccountId, ["failed"]);
    await store([...fixed, ...stillFailing, ...lone, ...running, ...foreign]);

    const { executions } = await client.listExecutions({ unresolved: true });
    expect(ids(executions)).toEqual([running[0]!.id, lone[0]!.id, stillFailing[1]!.id, stillFailing[0]!.id]);
  });

  test("script filter matches a case-insensitive substring; _ and % mean themselves", async () => {
    await store([
      queuedExecutionRow(accountId, { scriptName: "flaky_fetch.py" }),
      queuedExecutionRow(accountId, { scriptName: "flakyXfetch.py" }),
      queuedExecutionRow(accountId, { scriptName: "jobs/Report%2.py" }),
    ]);
    const names = async (scriptName: string) => (await client.listExecutions({ scriptName })).executions.map((e) => e.script?.name);
    expect(await names("FLAKY_")).toEqual(["flaky_fetch.py"]);
    expect(await names("flaky")).toEqual(["flakyXfetch.py", "flaky_fetch.py"]);
    expect(await names("t%2")).toEqual(["jobs/Report%2.py"]);
    expect(await names("nothing")).toEqual([]);
  });

  test("a lineage lists by its root, and filters combine with keyset pages", async () => {
    const chain = lineage(accountId, ["failed", "failed", "failed", "completed"], { batchId: BATCH });
    await store([...chain, ...lineage(accountId, ["failed"], { batchId: BATCH })]);
    const first = await client.listExecutions({ rootId: chain[0]!.id, pageSize: 3 });
    expect(ids(first.executions)).toEqual(ids(chain).reverse().slice(0, 3));
    const second = await client.listExecutions({ rootId: chain[0]!.id, pageSize: 3, pageToken: first.nextPageToken });
    expect(ids(second.executions)).toEqual([chain[0]!.id]);
    expect(second.nextPageToken).toBe("");

    const failedOfBatch = await client.listExecutions({ batchId: BATCH, statuses: [ExecutionStatus.FAILED], scriptName: "job" });
    expect(failedOfBatch.executions).toHaveLength(4);
  });

  test("GetBatch counts a batch's executions by status; another account's batch does not exist", async () => {
    await store([
      ...lineage(accountId, ["failed", "completed"], { batchId: BATCH }),
      ...lineage(accountId, ["failed"], { batchId: BATCH }),
      ...lineage(accountId, ["queued"], { batchId: BATCH }),
      ...lineage(accountId, ["failed"]),
    ]);
    const batch = await client.getBatch({ batchId: BATCH });
    expect(batch.total).toBe(4);
    const firstOfBatch = await scratch.db.fork().findOneOrFail(ExecutionRow, { batchId: BATCH }, { orderBy: { createdAt: "asc" } });
    expect(batch.createdAt && timestampDate(batch.createdAt)).toEqual(firstOfBatch.createdAt);
    expect(batch.counts.map((entry) => [entry.status, entry.count])).toEqual([
      [ExecutionStatus.QUEUED, 1],
      [ExecutionStatus.COMPLETED, 1],
      [ExecutionStatus.FAILED, 2],
    ]);
    await store(lineage(otherAccountId, ["failed"], { batchId: `batch_${"d".repeat(32)}` }));
    await expectCode(client.getBatch({ batchId: `batch_${"d".repeat(32)}` }), Code.NotFound);
  });

  test("log positions are exact up to the largest sequence a runner may store", async () => {
    const [execution] = lineage(accountId, ["running"]);
    await store([execution!]);
    const top = Number.MAX_SAFE_INTEGER;
    const em = scratch.db.fork();
    for (const sequence of [top - 2, top - 1, top]) {
      em.persist(Object.assign(new LogLine(), { executionId: execution!.id, sequence, stream: "stdout", line: `line ${sequence}`, time: now }));
    }
    await em.flush();
    const after = await client.getLogs({ executionId: execution!.id, afterSequence: BigInt(top - 2) });
    expect(after.entries.map((entry) => entry.sequence)).toEqual([BigInt(top - 1), BigInt(top)]);
    expect((await client.getLogs({ executionId: execution!.id, afterSequence: BigInt(top) })).entries).toEqual([]);
    await expectCode(client.getLogs({ executionId: execution!.id, afterSequence: BigInt(top) + 1n }), Code.InvalidArgument);
  });

  test("a sign-in token signs in exactly once, even when used concurrently", async () => {
    const token = await issueSignInToken(scratch.db.fork(), accountId, now);
    const anonymous = createClient(ExecutionService, transport([]));
    const attempts = await Promise.allSettled(
      Array.from({ length: 6 }, () => anonymous.createSession({ credential: { case: "signInToken", value: token } })),
    );
    expect(attempts.filter((attempt) => attempt.status === "fulfilled")).toHaveLength(1);
    expect(await scratch.db.fork().count(Session, {})).toBe(1);
    await expectCode(anonymous.createSession({ credential: { case: "signInToken", value: token } }), Code.Unauthenticated);
  });

  test("a sign-in token is worthless after a day", async () => {
    const token = await issueSignInToken(scratch.db.fork(), accountId, now);
    now = new Date(now.getTime() + 24 * 3600 * 1000 + 1);
    const anonymous = createClient(ExecutionService, transport([]));
    await expectCode(anonymous.createSession({ credential: { case: "signInToken", value: token } }), Code.Unauthenticated);
  });
});
