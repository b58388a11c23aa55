import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { Code } from "@connectrpc/connect";
import { ErrorInfo_Reason, ErrorInfoSchema, ExecutionStatus, FailureCause, Outcome, RetryOperation_State } from "@rgrid/proto";
import type { CreateExecutionRequest, GetRetryOperationResponse, RetryFilter } from "@rgrid/proto";
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { RetryFilterSchema } from "@rgrid/proto";
import { AuditEntry, Execution as ExecutionRecord } from "../src/db/entities";
import { createExecutionService } from "../src/server";
import { describeOnEachDatabase } from "./databases";
import { expectCode } from "./expect-code";
import { countExecutions, registeredRunner } from "./flows";
import { TEST_SERVICE_SETTINGS, executionRequest, startHarnessOn, uploadAll } from "./harness";
import type { Harness } from "./harness";

// Bulk retries by cause (RetryWhere, GetRetryOperation): which lineages a filter takes (only
// their latest attempts), the operation that retries them at a pace, its idempotency, its
// progress and result, and its resumption by another replica. On every database.

type Filter = MessageInitShape<typeof RetryFilterSchema>;

describeOnEachDatabase("bulk retries", (driver) => {
  let h: Harness;
  let runnerId: string;

  beforeEach(async () => {
    h = await startHarnessOn(await driver.scratch(), { bulkRetriesPerSecond: 200 });
    runnerId = await registeredRunner(h);
  });
  afterEach(async () => {
    await h.close();
  });

  /** Creates, runs and finishes an execution as a runner would report it. */
  async function finished(
    outcome: Outcome,
    report: { exitCode?: number; errorMessage?: string } = {},
    request: Partial<Omit<CreateExecutionRequest, "$typeName">> = {},
  ): Promise<string> {
    const create = executionRequest({ maxRetries: 0, ...request });
    const { execution } = await h.alice.createExecution(create);
    uploadAll(h.storage, execution!, create);
    await h.alice.confirmUploads({ executionId: execution!.id });
    return finishClaimed(execution!.id, outcome, report);
  }

  async function finishClaimed(id: string, outcome: Outcome, report: { exitCode?: number; errorMessage?: string } = {}): Promise<string> {
    const claim = await h.runner.claimExecution({ runnerId, waitMillis: 0 });
    expect(claim.assignment?.execution?.id).toBe(id);
    await h.runner.completeExecution({ runnerId, executionId: id, outcome, exitCode: report.exitCode ?? 0, errorMessage: report.errorMessage ?? "" });
    return id;
  }

  /** Retries `id` by hand and finishes the retry with `outcome`; returns the retry's id. */
  async function retriedAndFinished(id: string, outcome: Outcome, exitCode = 1): Promise<string> {
    const { execution: retry } = await h.alice.retryExecution({ executionId: id, requestId: `by-hand-${id}` });
    return finishClaimed(retry!.id, outcome, { exitCode, errorMessage: outcome === Outcome.COMPLETED ? "" : `exit ${exitCode}` });
  }

  const dryRun = async (where: Filter) =>
    (await h.alice.retryWhere({ where, dryRun: true })).firstMatches.map((execution) => execution.id).sort();

  async function finishedOperation(operationId: string): Promise<GetRetryOperationResponse> {
    for (let attempt = 0; attempt < 200; attempt++) {
      const read = await h.alice.getRetryOperation({ operationId, pageSize: 1000 });
      if (read.operation?.state === RetryOperation_State.DONE) {
        return read;
      }
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    throw new Error(`operation ${operationId} never finished`);
  }

  test("a filter takes only the latest attempt of each lineage, by cause, exit code, error text, script, status and resolution", async () => {
    const scriptFailure = await finished(Outcome.FAILED, { exitCode: 3, errorMessage: "ConnectionResetError: peer went away" });
    const keyError = await finished(Outcome.FAILED, { exitCode: 1, errorMessage: "KeyError: 'rate'" }, { script: { ...executionRequest().script!, name: "other.py" } });
    const timedOut = await finished(Outcome.TIMED_OUT, { errorMessage: "timed out after 60s" });
    const infrastructure = await finished(Outcome.INFRASTRUCTURE_ERROR, { errorMessage: "could not fetch input.json" });
    const completed = await finished(Outcome.COMPLETED);
    const firstAttempt = await finished(Outcome.FAILED, { exitCode: 3, errorMessage: "ConnectionResetError" });
    const latestAttempt = await retriedAndFinished(firstAttempt, Outcome.FAILED, 3);
    const fixedOnce = await finished(Outcome.COMPLETED);
    const failedSinceFixed = await retriedAndFinished(fixedOnce, Outcome.FAILED, 2);

    // No conditions: every failure and timeout, never an attempt its lineage has gone past.
    expect(await dryRun({})).toEqual([scriptFailure, keyError, timedOut, infrastructure, latestAttempt, failedSinceFixed].sort());
    expect(await dryRun({ causes: [FailureCause.SCRIPT] })).toEqual([scriptFailure, keyError, latestAttempt, failedSinceFixed].sort());
    expect(await dryRun({ causes: [FailureCause.TIMEOUT, FailureCause.INFRASTRUCTURE] })).toEqual([timedOut, infrastructure].sort());
    expect(await dryRun({ exitCodes: [3] })).toEqual([scriptFailure, latestAttempt].sort());
    expect(await dryRun({ errorContains: "keyerror" })).toEqual([keyError]);
    expect(await dryRun({ scriptName: "other.py" })).toEqual([keyError]);
    expect(await dryRun({ statuses: [ExecutionStatus.COMPLETED] })).toEqual([completed]);
    expect(await dryRun({ unresolved: true, exitCodes: [2, 3] })).toEqual([scriptFailure, latestAttempt].sort());
    expect(await dryRun({ finishedAfter: timestampFromMs(Date.now() + 60_000) })).toEqual([]);
    expect(await dryRun({ finishedBefore: timestampFromMs(Date.now() + 60_000), causes: [FailureCause.TIMEOUT] })).toEqual([timedOut]);

    // A dry run changes nothing.
    const before = await countExecutions(h);
    const { matched, operation } = await h.alice.retryWhere({ where: { causes: [FailureCause.SCRIPT] }, dryRun: true });
    expect(matched).toBe(4);
    expect(operation).toBeUndefined();
    expect(await countExecutions(h)).toBe(before);
    // Another account's executions are not there for bob.
    expect((await h.bob.retryWhere({ where: {}, dryRun: true })).matched).toBe(0);
  });

  test("an operation retries each lineage once, records original → retry, and a re-send returns the same operation", async () => {
    const failures = [
      await finished(Outcome.FAILED, { exitCode: 3, errorMessage: "boom" }),
      await finished(Outcome.FAILED, { exitCode: 3, errorMessage: "boom" }),
      await finished(Outcome.FAILED, { exitCode: 3, errorMessage: "boom" }),
    ];
    const where: Filter = { causes: [FailureCause.SCRIPT] };

    const started = await h.alice.retryWhere({ where, requestId: "bulk-once", reason: "upstream fixed" });
    expect(started.matched).toBe(3);
    const operationId = started.operation!.id;
    expect(operationId).toMatch(/^op_[0-9a-f]{32}$/);
    const done = await finishedOperation(operationId);

    expect(done.operation).toMatchObject({ total: 3, retried: 3, skipped: 0, reason: "upstream fixed" });
    expect(done.operation!.finishedAt).toBeDefined();
    expect(done.items.map((item) => item.originalId)).toEqual(failures);
    for (const item of done.items) {
      expect(item).toMatchObject({ done: true, skipped: "" });
      const { execution: retry } = await h.alice.getExecution({ executionId: item.retryId });
      expect(retry).toMatchObject({ retryOf: item.originalId, status: ExecutionStatus.QUEUED });
    }
    const audit = await h.db.fork().find(AuditEntry, { action: "batch_retry" });
    expect(audit.map((entry) => entry.requestId)).toEqual(["bulk-once", "bulk-once", "bulk-once"]);
    expect(new Set(audit.map((entry) => entry.reason))).toEqual(new Set(["upstream fixed"]));

    // The same request again: the same operation, nothing retried twice.
    const count = await countExecutions(h);
    const again = await h.alice.retryWhere({ where, requestId: "bulk-once", reason: "upstream fixed" });
    expect(again.operation!.id).toBe(operationId);
    expect(again.firstMatches.map((execution) => execution.id)).toEqual(failures);
    expect(await countExecutions(h)).toBe(count);
    // The same request id with another filter is refused.
    const reused = await expectCode(h.alice.retryWhere({ where: { causes: [FailureCause.TIMEOUT] }, requestId: "bulk-once" }), Code.FailedPrecondition);
    expect(reused.findDetails(ErrorInfoSchema)[0]?.reason).toBe(ErrorInfo_Reason.REQUEST_ID_REUSED);
    // The retries are the lineages' latest attempts now; a new operation takes them, not the originals.
    expect((await h.alice.retryWhere({ where, dryRun: true })).matched).toBe(0);
  });

  test("a lineage retried meanwhile is skipped with the reason, and the others go on at the pace", async () => {
    await h.close();
    h = await startHarnessOn(await driver.scratch(), { bulkRetriesPerSecond: 2 });
    runnerId = await registeredRunner(h);
    const failures = [
      await finished(Outcome.FAILED, { exitCode: 3 }),
      await finished(Outcome.FAILED, { exitCode: 3 }),
      await finished(Outcome.FAILED, { exitCode: 3 }),
    ];

    const { operation } = await h.alice.retryWhere({ where: {}, requestId: "paced" });
    // The third starts a second after the first: retried by hand before then.
    const { execution: byHand } = await h.alice.retryExecution({ executionId: failures[2]!, requestId: "by-hand" });
    const early = await h.alice.getRetryOperation({ operationId: operation!.id });
    expect(early.operation!.state).toBe(RetryOperation_State.RUNNING);
    expect(early.operation!.retried).toBeLessThan(3);
    const done = await finishedOperation(operation!.id);

    expect(done.operation).toMatchObject({ total: 3, retried: 2, skipped: 1 });
    expect(done.items[2]).toMatchObject({ originalId: failures[2], retryId: "", skipped: `already retried as ${byHand!.id}` });
    const retriesOfThird = await h.db.fork().count(ExecutionRecord, { retryOf: failures[2] });
    expect(retriesOfThird).toBe(1);
  });

  test("an operation whose worker stopped is carried on by another replica, with no lineage retried twice", async () => {
    await h.close();
    const database = await driver.scratch();
    h = await startHarnessOn(database, { bulkRetriesPerSecond: 5 });
    runnerId = await registeredRunner(h);
    const failures: string[] = [];
    for (let index = 0; index < 6; index++) {
      failures.push(await finished(Outcome.FAILED, { exitCode: 3 }));
    }

    const { operation } = await h.alice.retryWhere({ where: {}, requestId: "survives" });
    await new Promise((resolve) => setTimeout(resolve, 250));
    // The first replica stops part-way: its operation stays running, held by a lease.
    await h.service.bulkRetries.stop();
    const partial = await h.alice.getRetryOperation({ operationId: operation!.id });
    expect(partial.operation!.state).toBe(RetryOperation_State.RUNNING);
    expect(partial.operation!.retried).toBeGreaterThan(0);
    expect(partial.operation!.retried).toBeLessThan(6);
    // Its lease runs out (as when a replica dies), and a second replica on the same database takes over.
    await h.db.fork().getConnection().execute("update retry_operations set lease_until = ?", [new Date(Date.now() - 1000)]);
    const replica = createExecutionService({ db: h.db, storage: h.storage.client(), ...TEST_SERVICE_SETTINGS, bulkRetriesPerSecond: 50 });
    replica.bulkRetries.start();
    try {
      const done = await finishedOperation(operation!.id);
      expect(done.operation).toMatchObject({ total: 6, retried: 6, skipped: 0 });
      for (const original of failures) {
        expect(await h.db.fork().count(ExecutionRecord, { retryOf: original })).toBe(1);
      }
    } finally {
      await replica.bulkRetries.stop();
      await replica.leases.stop();
    }
  });

  test("more matches than the caller agreed to: refused, nothing retried", async () => {
    await finished(Outcome.FAILED, { exitCode: 3 });
    await finished(Outcome.FAILED, { exitCode: 3 });
    const before = await countExecutions(h);

    const error = await expectCode(h.alice.retryWhere({ where: {}, atMost: 1, requestId: "too-many" }), Code.FailedPrecondition, "2 lineages match now, more than the 1 agreed to; nothing was retried");

    expect(error.findDetails(ErrorInfoSchema)[0]?.reason).toBe(ErrorInfo_Reason.OPERATION_TOO_LARGE);
    expect(await countExecutions(h)).toBe(before);
  });

  test("nothing matches: a finished operation with no items", async () => {
    const { matched, operation } = await h.alice.retryWhere({ where: { exitCodes: [99] }, requestId: "empty" });
    expect(matched).toBe(0);
    expect(operation).toMatchObject({ total: 0, state: RetryOperation_State.DONE });
  });

  test.each<[string, Partial<{ where: RetryFilter | undefined }> & Record<string, unknown>, string]>([
    ["no filter", { where: undefined }, "where"],
    ["a status that has not finished", { where: { statuses: [ExecutionStatus.RUNNING] } as unknown as RetryFilter }, "where.statuses"],
    ["a cause of 0", { where: { causes: [FailureCause.UNSPECIFIED] } as unknown as RetryFilter }, "where.causes"],
    ["an exit code over 255", { where: { exitCodes: [256] } as unknown as RetryFilter }, "where.exit_codes"],
    ["a reserved request id", { where: {} as RetryFilter, requestId: "batch:x" }, "request_id"],
  ])("%s: InvalidArgument naming the field", async (_what, request, field) => {
    await expectCode(h.alice.retryWhere(request), Code.InvalidArgument, field);
  });

  test("an operation of another account, or none, is NotFound", async () => {
    await finished(Outcome.FAILED, { exitCode: 3 });
    const { operation } = await h.alice.retryWhere({ where: {}, requestId: "alices" });
    await expectCode(h.bob.getRetryOperation({ operationId: operation!.id }), Code.NotFound, "not found");
    await expectCode(h.alice.getRetryOperation({ operationId: `op_${"0".repeat(32)}` }), Code.NotFound, "not found");
    await expectCode(h.alice.getRetryOperation({ operationId: "exec_1" }), Code.InvalidArgument, "operation_id");
  });
});
