import type { Client } from "@connectrpc/connect";
import { createClient } from "@connectrpc/connect";
import { mapWithLimit, newBatchId, newExecutionId } from "@rgrid/common";
import { ExecutionService, ExecutionStatus, LogEntry_Stream, Outcome, RunnerService } from "@rgrid/proto";
import type { CreateExecutionRequest } from "@rgrid/proto";
import { issueApiKey } from "../src/accounts";
import { Execution } from "../src/db/entities";
import { openDatabase } from "../src/db/orm";
import type { Database } from "../src/db/orm";
import { createExecutionService } from "../src/server";
import type { ExecutionService as ServedExecutionService } from "../src/server";
import { describeOnEachDatabase, queuedExecutionRow } from "./databases";
import type { DatabaseDriver } from "./databases";
import { FakeStorage } from "./fake-storage";
import { RUNNER_TOKEN, TEST_SERVICE_SETTINGS, executionRequest, inMemoryTransport, uploadAll } from "./harness";

// Claims and leases against real databases: SQLite with one service, and, when
// RGRID_TEST_POSTGRES_URL names a server, PostgreSQL with two service instances (replicas, each
// with its own connection pool) on one database.

describeOnEachDatabase("runner claims and leases", (driver) => runnerSuite(driver));

interface Replica {
  db: Database;
  service: ServedExecutionService;
  user: Client<typeof ExecutionService>;
  runner: Client<typeof RunnerService>;
}

function runnerSuite(driver: DatabaseDriver): void {
  const replicaCount = driver.name === "postgresql" ? 2 : 1;
  const LEASE_MILLIS = 10_000;
  const LOG_CAP = 1000;
  let drop: () => Promise<void>;
  let replicas: Replica[];
  let storage: FakeStorage;
  let now: number;
  let accountId: string;

  beforeEach(async () => {
    const fresh = await driver.scratch();
    drop = fresh.drop;
    storage = new FakeStorage();
    now = Date.now();
    replicas = [];
    for (let index = 0; index < replicaCount; index++) {
      const db = await openDatabase(fresh.target);
      replicas.push(replicaOn(db));
    }
    const first = replicas[0] as Replica;
    await first.db.migrate();
    const issued = await issueApiKey(first.db.fork(), "acme", new Date());
    const key = issued.key;
    accountId = issued.accountId;
    for (const replica of replicas) {
      replica.user = createClient(ExecutionService, inMemoryTransport(replica.service, key));
    }
  });
  afterEach(async () => {
    for (const replica of replicas) {
      await replica.service.leases.stop();
      await replica.db.close();
    }
    await drop();
  });

  function replicaOn(db: Database): Replica {
    const service = createExecutionService({
      db,
      storage: storage.client(),
      ...TEST_SERVICE_SETTINGS,
      clock: () => new Date(now),
      leaseTimeoutMillis: LEASE_MILLIS,
      retryBackoffBaseMillis: 0,
      maxLogBytes: LOG_CAP,
    });
    return { db, service, runner: createClient(RunnerService, inMemoryTransport(service, RUNNER_TOKEN)) } as Replica;
  }

  const replica = (index: number) => replicas[index % replicas.length] as Replica;

  async function queue(count: number, overrides: Partial<Omit<CreateExecutionRequest, "$typeName">> = {}): Promise<string[]> {
    return mapWithLimit(Array.from({ length: count }, (_, index) => index), 8, async (index) => {
      const request = executionRequest({ runtime: "python", ...overrides });
      const created = (await replica(index).user.createExecution(request)).execution!;
      uploadAll(storage, created, request);
      await replica(index).user.confirmUploads({ executionId: created.id });
      return created.id;
    });
  }

  /** Many queued executions at once, recorded directly: the claims are under test, not creation. */
  async function insertQueued(count: number): Promise<string[]> {
    const em = replica(0).db.fork();
    const ids: string[] = [];
    for (let index = 0; index < count; index++) {
      const id = newExecutionId();
      ids.push(id);
      em.persist(
        queuedExecutionRow(accountId, {
          id,
          inputs: [],
          timeoutSeconds: 60,
          // Distinct times, so "oldest first" has one answer.
          createdAt: new Date(now - count + index),
        }),
      );
    }
    await em.flush();
    return ids;
  }

  async function register(index: number): Promise<string> {
    return (await replica(index).runner.registerRunner({ name: `runner-${index}`, runtimes: ["python"] })).runnerId;
  }

  /** Claims until nothing is left; returns the ids claimed, in order. */
  async function claimAll(index: number, runnerId: string): Promise<string[]> {
    const claimed: string[] = [];
    for (;;) {
      const { assignment } = await replica(index).runner.claimExecution({ runnerId, waitMillis: 0 });
      if (assignment === undefined) {
        return claimed;
      }
      claimed.push(assignment.execution!.id);
    }
  }

  async function runningCount(): Promise<number> {
    return replica(0).db.fork().count(Execution, { status: "running" });
  }

  test("200 queued executions, 3 concurrent claimers: each claimed exactly once", async () => {
    const queued = await insertQueued(200);
    const claimers = [0, 1, 2];
    const runnerIds = await Promise.all(claimers.map(register));
    const claims = await Promise.all(claimers.map((index) => claimAll(index, runnerIds[index] as string)));

    const all = claims.flat();
    expect(all).toHaveLength(200);
    expect(new Set(all).size).toBe(200);
    expect([...all].sort()).toEqual([...queued].sort());
    // Each execution records the runner that claimed it.
    const rows = await replica(0).db.fork().find(Execution, { id: { $in: queued } });
    for (const [index, ids] of claims.entries()) {
      for (const id of ids) {
        expect(rows.find((row) => row.id === id)).toMatchObject({ status: "running", runnerId: runnerIds[index] });
      }
    }
  }, 120_000);

  test("a batch never has more running than its parallelism, even with claimers racing", async () => {
    const batchId = newBatchId();
    const batch = await queue(6, { batchId, batchParallelism: 2 });
    const outsider = (await queue(1))[0] as string;
    const claimers = [0, 1, 2, 3, 4, 5];
    const runnerIds = await Promise.all(claimers.map(register));

    const claimed = (await Promise.all(claimers.map((index) => claimAll(index, runnerIds[index] as string)))).flat();
    // Two of the batch and the execution outside it.
    expect(claimed).toHaveLength(3);
    expect(claimed).toContain(outsider);
    expect(claimed.filter((id) => batch.includes(id))).toHaveLength(2);

    // Each finished one frees exactly one place.
    const held = await replica(0).db.fork().find(Execution, { batchId, status: "running" });
    const finished = held[0] as Execution;
    await replica(0).runner.completeExecution({
      runnerId: finished.runnerId as string,
      executionId: finished.id,
      outcome: Outcome.COMPLETED,
      exitCode: 0,
    });
    const next = (await Promise.all(claimers.map((index) => claimAll(index, runnerIds[index] as string)))).flat();
    expect(next).toHaveLength(1);
    expect(batch).toContain(next[0]);
    expect(await replica(0).db.fork().count(Execution, { batchId, status: "running" })).toBe(2);
  });

  test("replicas sweeping together give up a lost execution once and retry it once", async () => {
    const [executionId] = (await queue(1, { maxRetries: 2 })) as [string];
    const runnerId = await register(0);
    expect(await claimAll(0, runnerId)).toEqual([executionId]);
    expect(await runningCount()).toBe(1);

    now += LEASE_MILLIS + 1;
    const sweeps = await Promise.all([...replicas, ...replicas].map((each) => each.service.leases.sweepOnce()));
    expect(sweeps.flatMap((sweep) => sweep.lost)).toEqual([executionId]);

    const lineage = await replica(0).db.fork().find(Execution, { rootId: executionId }, { orderBy: { attempt: "asc" } });
    expect(lineage.map((row) => [row.status, row.retryKind, row.autoRetryNumber])).toEqual([
      ["failed", "original", 0],
      ["queued", "automatic", 1],
    ]);
    expect(lineage[0]?.failureKind).toBe("runner_lost");

    // The retry is claimable (no backoff here), by a runner on either replica.
    const other = await register(1);
    expect(await claimAll(1, other)).toEqual([lineage[1]?.id]);
    const status = (await replica(0).user.getExecution({ executionId: lineage[1]!.id })).execution!.status;
    expect(status).toBe(ExecutionStatus.RUNNING);
  });

  test("claims pass over an execution still in its backoff", async () => {
    await queue(1, { maxRetries: 1 });
    const runnerId = await register(0);
    const [original] = await claimAll(0, runnerId);
    // A backoff of one minute for this test: set on the retry as the service would.
    await replica(0).runner.completeExecution({
      runnerId,
      executionId: original as string,
      outcome: Outcome.INFRASTRUCTURE_ERROR,
    });
    const retry = await replica(0).db.fork().findOneOrFail(Execution, { retryOf: original as string });
    await replica(0).db.fork().nativeUpdate(Execution, { id: retry.id }, { notBefore: new Date(now + 60_000) });

    expect(await claimAll(0, runnerId)).toEqual([]);
    now += 60_000;
    expect(await claimAll(replicas.length - 1, await register(replicas.length - 1))).toEqual([retry.id]);
  });

  test("log batches appended at once through both replicas stop at the cap with one marker", async () => {
    const [executionId] = (await queue(1)) as [string];
    const runnerId = await register(0);
    await claimAll(0, runnerId);
    // 20 batches of 10 lines of 10 bytes: twice the cap, sent concurrently and each sent twice.
    const batches = Array.from({ length: 20 }, (_, batch) =>
      Array.from({ length: 10 }, (_, index) => ({
        sequence: BigInt(batch * 10 + index + 1),
        stream: LogEntry_Stream.STDOUT,
        line: "0123456789",
      })),
    );
    await Promise.all(
      [...batches, ...batches].map((entries, index) => replica(index).runner.appendLogs({ runnerId, executionId, entries })),
    );
    const { entries } = await replica(0).user.getLogs({ executionId, limit: 1000 });
    const markers = entries.filter((entry) => entry.stream === LogEntry_Stream.SYSTEM);
    expect(markers).toHaveLength(1);
    expect(markers[0]?.line).toBe(`[rgrid] log truncated: output exceeded ${LOG_CAP} bytes; later lines were not stored`);
    // Exactly the cap's worth of lines made it, whichever batches arrived first.
    expect(entries.filter((entry) => entry.stream === LogEntry_Stream.STDOUT)).toHaveLength(LOG_CAP / 10);
    const row = await replica(0).db.fork().findOneOrFail(Execution, executionId);
    expect(row).toMatchObject({ logBytes: LOG_CAP, logsTruncated: true });
  });

  test("a large batch, out of order and resent over lines already stored, stores each line once", async () => {
    const [executionId] = (await queue(1)) as [string];
    const runnerId = await register(0);
    await claimAll(0, runnerId);
    const line = (sequence: number) => ({ sequence: BigInt(sequence), stream: LogEntry_Stream.STDOUT, line: String(sequence % 10) });
    await replica(0).runner.appendLogs({ runnerId, executionId, entries: [3, 1, 2, 500].map(line) });
    // 600 lines (more than one statement's worth, and no power of two), shuffled, overlapping the first batch.
    const sequences = Array.from({ length: 600 }, (_, index) => index + 1).sort((a, b) => ((a * 7919) % 601) - ((b * 7919) % 601));
    await replica(replicas.length - 1).runner.appendLogs({ runnerId, executionId, entries: sequences.map(line) });

    const { entries } = await replica(0).user.getLogs({ executionId, limit: 1000 });
    expect(entries.map((entry) => Number(entry.sequence))).toEqual(Array.from({ length: 600 }, (_, index) => index + 1));
    expect(entries.map((entry) => entry.line).join("")).toBe(Array.from({ length: 600 }, (_, index) => String((index + 1) % 10)).join(""));
    const row = await replica(0).db.fork().findOneOrFail(Execution, executionId);
    expect(row).toMatchObject({ logBytes: 600, logsTruncated: false });
  });
}
