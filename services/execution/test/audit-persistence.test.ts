import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code, createClient, createRouterTransport } from "@connectrpc/connect";
import type { Client, Interceptor } from "@connectrpc/connect";
import { bearerAuth, newBatchId } from "@rgrid/common";
import { AuditAction, ExecutionService, ObjectKind } from "@rgrid/proto";
import type { AuditEntry as AuditEntryMessage } from "@rgrid/proto";
import { issueApiKey } from "../src/accounts";
import { AuditEntry, Execution } from "../src/db/entities";
import { createExecutionService } from "../src/server";
import type { ExecutionService as ServedExecutionService } from "../src/server";
import { issueSignInToken } from "../src/sessions/sessions";
import { describeOnEachDatabase, openScratchDatabase, queuedExecutionRow } from "./databases";
import type { ScratchDatabase } from "./databases";
import { expectCode } from "./expect-code";
import { FakeStorage } from "./fake-storage";
import { TEST_SERVICE_SETTINGS } from "./harness";

// The audit on every database the service supports: each action leaves exactly one entry, in the
// transaction that makes it, with who asked, why and what came of it; a replay adds none; an
// account sees only its own.

describeOnEachDatabase("audit", (driver) => {
  let scratch: ScratchDatabase;
  let storage: FakeStorage;
  let service: ServedExecutionService;
  let alice: { accountId: string; keyId: string; client: Client<typeof ExecutionService> };
  let bob: { accountId: string; client: Client<typeof ExecutionService> };
  let now: Date;

  beforeEach(async () => {
    scratch = await openScratchDatabase(driver);
    storage = new FakeStorage();
    now = new Date("2026-12-10T12:00:00.000Z");
    service = createExecutionService({ db: scratch.db, storage: storage.client(), ...TEST_SERVICE_SETTINGS, clock: () => now });
    const aliceKey = await issueApiKey(scratch.db.fork(), "alice", now);
    const bobKey = await issueApiKey(scratch.db.fork(), "bob", now);
    alice = { accountId: aliceKey.accountId, keyId: aliceKey.apiKeyId, client: clientWith([bearerAuth(aliceKey.key)]) };
    bob = { accountId: bobKey.accountId, client: clientWith([bearerAuth(bobKey.key)]) };
  });
  afterEach(async () => {
    await service.leases.stop();
    await scratch.close();
  });

  function clientWith(interceptors: Interceptor[]): Client<typeof ExecutionService> {
    return createClient(
      ExecutionService,
      createRouterTransport(service.routes, { router: { interceptors: service.interceptors }, transport: { interceptors } }),
    );
  }

  /** A stored execution of `accountId` with its objects in storage, one second older than `now`. */
  async function stored(accountId: string, overrides: Partial<Execution>): Promise<Execution> {
    const row = queuedExecutionRow(accountId, { createdAt: new Date(now.getTime() - 1000), ...overrides });
    storage.put(row.id, ObjectKind.SCRIPT, row.scriptName, row.scriptSizeBytes);
    for (const input of row.inputs) {
      storage.put(row.id, ObjectKind.INPUT, input.name, input.sizeBytes);
    }
    const em = scratch.db.fork();
    em.persist(row);
    await em.flush();
    return row;
  }

  const failed = (accountId: string, overrides: Partial<Execution> = {}) =>
    stored(accountId, { status: "failed", finishedAt: now, exitCode: 1, failureKind: "script", ...overrides });

  const entries = () => scratch.db.fork().find(AuditEntry, {}, { orderBy: { createdAt: "asc" } });

  test("a retry is recorded once with its reason, however often it is re-sent", async () => {
    const original = await failed(alice.accountId);
    const request = { executionId: original.id, requestId: "retry-1", reason: "upstream fixed (INC-42)" };
    const first = await alice.client.retryExecution(request);
    const again = await alice.client.retryExecution(request);
    expect(again.execution?.id).toBe(first.execution?.id);

    const recorded = await entries();
    expect(recorded).toHaveLength(1);
    expect(recorded[0]).toMatchObject({
      accountId: alice.accountId,
      actor: alice.keyId,
      action: "retry",
      executionId: original.id,
      rootId: original.id,
      batchId: null,
      requestId: "retry-1",
      reason: "upstream fixed (INC-42)",
      outcome: first.execution?.id,
    });
    expect(recorded[0]?.createdAt.getTime()).toBe(now.getTime());
  });

  test("a forced retry, a cancel and an automatic retry are each recorded as such", async () => {
    const running = await stored(alice.accountId, { status: "running", startedAt: now });
    const forced = await alice.client.retryExecution({ executionId: running.id, force: true, requestId: "forced", reason: "stuck" });
    await alice.client.cancelExecution({ executionId: running.id, reason: "superseded by the forced retry" });
    // Asked again: nothing changes, so nothing more is recorded.
    await alice.client.cancelExecution({ executionId: running.id, reason: "again" });
    const lost = await failed(alice.accountId, { failureKind: "runner_lost", maxRetries: 2, autoRetryPending: true });
    const sweep = await service.leases.sweepOnce();
    expect(sweep.retried).toHaveLength(1);

    const byAction = new Map((await entries()).map((entry) => [entry.action, entry]));
    expect([...byAction.keys()].sort()).toEqual(["automatic_retry", "cancel", "forced_retry"]);
    expect(byAction.get("forced_retry")).toMatchObject({ actor: alice.keyId, reason: "stuck", outcome: forced.execution?.id });
    expect(byAction.get("cancel")).toMatchObject({
      actor: alice.keyId,
      executionId: running.id,
      reason: "superseded by the forced retry",
      outcome: "cancel requested",
    });
    expect(byAction.get("cancel")?.requestId).not.toBe("");
    // Nobody asked: no actor, and the service's own reason.
    expect(byAction.get("automatic_retry")).toMatchObject({
      accountId: alice.accountId,
      actor: "",
      executionId: lost.id,
      requestId: `auto:${lost.id}`,
      reason: "runner lost",
      outcome: sweep.retried[0],
    });
  });

  test("a queued execution's cancel is recorded as cancelled; a refused cancel or retry is not recorded", async () => {
    const queued = await stored(alice.accountId, { status: "queued" });
    await alice.client.cancelExecution({ executionId: queued.id, reason: "wrong input" });
    await expectCode(alice.client.cancelExecution({ executionId: queued.id }), Code.FailedPrecondition);
    const running = await stored(alice.accountId, { status: "running", startedAt: now });
    await expectCode(alice.client.retryExecution({ executionId: running.id, requestId: "refused" }), Code.FailedPrecondition);

    const recorded = await entries();
    expect(recorded.map((entry) => [entry.action, entry.executionId, entry.outcome, entry.reason])).toEqual([
      ["cancel", queued.id, "cancelled", "wrong input"],
    ]);
  });

  test("a batch retry records each retry it made under the batch's request id, once", async () => {
    const batchId = newBatchId();
    const members = [await failed(alice.accountId, { batchId }), await failed(alice.accountId, { batchId })];
    const request = { batchId, failedOnly: true, requestId: "batch-req", reason: "rerun after the fix" };
    const response = await alice.client.retryBatch(request);
    await alice.client.retryBatch(request);
    expect(response.retriedCount).toBe(2);

    const recorded = await entries();
    expect(recorded).toHaveLength(2);
    expect(recorded.every((entry) => entry.action === "batch_retry" && entry.batchId === batchId)).toBe(true);
    expect(recorded.every((entry) => entry.requestId === "batch-req" && entry.reason === "rerun after the fix")).toBe(true);
    expect(recorded.map((entry) => entry.executionId).sort()).toEqual(members.map((member) => member.id).sort());
    expect(recorded.map((entry) => entry.outcome).sort()).toEqual(response.items.map((item) => item.retry?.id).sort());
  });

  test("a sign-in is recorded with the key or the session that signed in; a spent link is not", async () => {
    const anonymous = clientWith([]);
    const token = await issueSignInToken(scratch.db.fork(), alice.accountId, now);
    await anonymous.createSession({ credential: { case: "signInToken", value: token } });
    await expectCode(anonymous.createSession({ credential: { case: "signInToken", value: token } }), Code.Unauthenticated);

    const recorded = await entries();
    expect(recorded).toHaveLength(1);
    expect(recorded[0]).toMatchObject({ accountId: alice.accountId, action: "sign_in", executionId: null, rootId: null });
    expect(recorded[0]?.actor).toMatch(/^sess_/);
    expect(recorded[0]?.outcome).toBe(recorded[0]?.actor);
  });

  test("ListAuditEntries: newest first, in pages, filtered by lineage, action and time; another account's are invisible", async () => {
    const original = await failed(alice.accountId);
    const first = await alice.client.retryExecution({ executionId: original.id, requestId: "r1", reason: "one" });
    now = new Date(now.getTime() + 1000);
    await alice.client.retryExecution({ executionId: first.execution?.id ?? "", force: true, requestId: "r2", reason: "two" });
    now = new Date(now.getTime() + 1000);
    const unrelated = await stored(alice.accountId, { status: "queued" });
    await alice.client.cancelExecution({ executionId: unrelated.id, reason: "three" });
    const bobs = await failed(bob.accountId);
    await bob.client.retryExecution({ executionId: bobs.id, requestId: "b1", reason: "bob's" });

    const reasons = (page: { entries: AuditEntryMessage[] }) => page.entries.map((entry) => entry.reason);
    expect(reasons(await alice.client.listAuditEntries({}))).toEqual(["three", "two", "one"]);

    // Pages of one, walked to the end.
    const walked: string[] = [];
    let pageToken = "";
    do {
      const page = await alice.client.listAuditEntries({ pageSize: 1, pageToken });
      walked.push(...reasons(page));
      pageToken = page.nextPageToken;
    } while (pageToken !== "");
    expect(walked).toEqual(["three", "two", "one"]);

    // Named by any attempt, the whole lineage.
    const lineage = await alice.client.listAuditEntries({ executionId: first.execution?.id ?? "" });
    expect(reasons(lineage)).toEqual(["two", "one"]);
    expect(lineage.entries.every((entry) => entry.rootId === original.id)).toBe(true);
    expect(reasons(await alice.client.listAuditEntries({ action: AuditAction.CANCEL }))).toEqual(["three"]);
    const since = timestampFromDate(new Date(now.getTime() - 1000));
    expect(reasons(await alice.client.listAuditEntries({ since }))).toEqual(["three", "two"]);

    // Bob sees his own only, and Alice's lineage does not exist for him.
    expect(reasons(await bob.client.listAuditEntries({}))).toEqual(["bob's"]);
    await expectCode(bob.client.listAuditEntries({ executionId: original.id }), Code.NotFound);
    await expectCode(alice.client.listAuditEntries({ pageToken: "bogus" }), Code.InvalidArgument);
  });

  test("a reason with control characters or over 500 characters is refused and nothing is retried", async () => {
    const original = await failed(alice.accountId);
    await expectCode(alice.client.retryExecution({ executionId: original.id, reason: "a\nb" }), Code.InvalidArgument);
    await expectCode(alice.client.cancelExecution({ executionId: original.id, reason: "x".repeat(501) }), Code.InvalidArgument);
    expect(await entries()).toEqual([]);
    expect(await scratch.db.fork().count(Execution, { retryOf: original.id })).toBe(0);
  });
});
