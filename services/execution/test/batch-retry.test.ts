import { randomBytes } from "node:crypto";
import { Code, ConnectError } from "@connectrpc/connect";
import { newBatchId } from "@rgrid/common";
import { ErrorInfo_Reason, ErrorInfoSchema, ExecutionStatus, Outcome, RetryKind } from "@rgrid/proto";
import type { CreateExecutionRequest, Execution, RetryBatchResponse } from "@rgrid/proto";
import { Execution as ExecutionRecord } from "../src/db/entities";
import { silentLogger } from "@rgrid/common";
import { createRetryBatch } from "../src/executions/batch-retry";
import { createRetryMany } from "../src/executions/retry-many";
import { batchItemRequestId } from "../src/executions/request-ids";
import { createRetryExecution } from "../src/executions/retry";
import { WorkNotifier } from "../src/executions/work-notifier";
import { PreconditionError } from "../src/errors";
import { createStorageGateway } from "../src/storage";
import { expectCode } from "./expect-code";
import { countExecutions, registeredRunner } from "./flows";
import { executionRequest, startHarness, uploadAll } from "./harness";
import type { Harness } from "./harness";

let h: Harness;
beforeEach(async () => {
  h = await startHarness();
});
afterEach(async () => {
  await h.close();
});

type Fate = "uploading" | "queued" | "running" | "completed" | "failed" | "timed_out" | "cancelled";

const OUTCOMES: Partial<Record<Fate, Outcome>> = {
  completed: Outcome.COMPLETED,
  failed: Outcome.FAILED,
  timed_out: Outcome.TIMED_OUT,
};

/** One execution of `batchId` per fate, created in this order and brought to that state. */
async function batchOf(batchId: string, fates: readonly Fate[]): Promise<Execution[]> {
  const runnerId = await registeredRunner(h);
  const created: Array<{ fate: Fate; request: CreateExecutionRequest; execution: Execution }> = [];
  for (const fate of fates) {
    const request = executionRequest({ batchId });
    created.push({ fate, request, execution: (await h.alice.createExecution(request)).execution! });
  }
  const queue = async ({ request, execution }: (typeof created)[number]) => {
    uploadAll(h.storage, execution, request);
    await h.alice.confirmUploads({ executionId: execution.id });
  };
  // A runner claims the oldest queued execution, so those it runs go first, one at a time.
  for (const member of created.filter(({ fate }) => fate === "running" || OUTCOMES[fate] !== undefined)) {
    await queue(member);
    const claim = await h.runner.claimExecution({ runnerId, waitMillis: 0 });
    expect(claim.assignment?.execution?.id).toBe(member.execution.id);
    const outcome = OUTCOMES[member.fate];
    if (outcome !== undefined) {
      await h.runner.completeExecution({
        runnerId,
        executionId: member.execution.id,
        outcome,
        exitCode: outcome === Outcome.COMPLETED ? 0 : 1,
        errorMessage: outcome === Outcome.COMPLETED ? "" : "x".repeat(5000),
      });
    }
  }
  for (const member of created.filter(({ fate }) => fate === "queued" || fate === "cancelled")) {
    await queue(member);
    if (member.fate === "cancelled") {
      await h.alice.cancelExecution({ executionId: member.execution.id });
    }
  }
  return Promise.all(created.map(async ({ execution }) => (await h.alice.getExecution({ executionId: execution.id })).execution!));
}

function summary(response: RetryBatchResponse) {
  return response.items.map((item) => ({ original: item.original?.id, retried: item.retry !== undefined, skipped: item.skipped }));
}

const ALL_FATES: Fate[] = ["completed", "failed", "timed_out", "cancelled", "running", "queued", "uploading"];

test("failed_only retries the failed and timed-out executions and says why it left each other one", async () => {
  const batchId = newBatchId();
  const members = await batchOf(batchId, ALL_FATES);
  const response = await h.alice.retryBatch({ batchId, failedOnly: true, requestId: "batch-1" });

  const onlyFailed = "(only failed and timed-out executions are retried)";
  expect(summary(response)).toEqual([
    { original: members[0]!.id, retried: false, skipped: `completed ${onlyFailed}` },
    { original: members[1]!.id, retried: true, skipped: "" },
    { original: members[2]!.id, retried: true, skipped: "" },
    { original: members[3]!.id, retried: false, skipped: `cancelled ${onlyFailed}` },
    { original: members[4]!.id, retried: false, skipped: "still running" },
    { original: members[5]!.id, retried: false, skipped: "still queued" },
    { original: members[6]!.id, retried: false, skipped: "still uploading" },
  ]);
  expect(response.retriedCount).toBe(2);
  expect(response.skippedCount).toBe(5);
  expect(h.storage.copiesMade).toBe(2);

  for (const item of response.items.filter((entry) => entry.retry !== undefined)) {
    const retry = item.retry!;
    expect(retry.status).toBe(ExecutionStatus.QUEUED);
    expect(retry.retryOf).toBe(item.original!.id);
    expect(retry.batchId).toBe(batchId);
    expect(retry.attempt).toBe(2);
    expect(retry.retryKind).toBe(RetryKind.MANUAL);
    expect(h.storage.keysUnder(retry.id).sort()).toEqual(
      [`executions/${retry.id}/inputs/input.json`, `executions/${retry.id}/script/process.py`],
    );
    // The full record is there for whoever asks for it; the batch answer stays small.
    const { execution: full } = await h.alice.getExecution({ executionId: retry.id });
    expect(full?.args).toEqual(["input.json", "--verbose"]);
    expect(full?.env).toEqual({ MODE: "test" });
    expect(retry.args).toEqual([]);
    expect(item.original!.errorMessage.length).toBeLessThanOrEqual(300);
  }
  const stored = await h.db.fork().find(ExecutionRecord, { retryOf: members[1]!.id });
  expect(stored.map((retry) => retry.requestId)).toEqual([batchItemRequestId("batch-1", members[1]!.id)]);
});

test("without failed_only every finished execution is retried and unfinished ones are skipped", async () => {
  const batchId = newBatchId();
  const members = await batchOf(batchId, ALL_FATES);
  const response = await h.alice.retryBatch({ batchId, failedOnly: false, requestId: "batch-all" });
  expect(summary(response)).toEqual([
    { original: members[0]!.id, retried: true, skipped: "" },
    { original: members[1]!.id, retried: true, skipped: "" },
    { original: members[2]!.id, retried: true, skipped: "" },
    { original: members[3]!.id, retried: true, skipped: "" },
    { original: members[4]!.id, retried: false, skipped: "still running" },
    { original: members[5]!.id, retried: false, skipped: "still queued" },
    { original: members[6]!.id, retried: false, skipped: "still uploading" },
  ]);
  expect(response.retriedCount).toBe(4);
  expect(response.skippedCount).toBe(3);
});

test("re-sending the same request answers the same items and copies nothing twice, even all at once", async () => {
  const batchId = newBatchId();
  await batchOf(batchId, ["failed", "failed", "completed", "timed_out", "running"]);
  const request = { batchId, failedOnly: true, requestId: "same-request" };
  const concurrent = await Promise.all([h.alice.retryBatch(request), h.alice.retryBatch(request), h.alice.retryBatch(request)]);
  const copies = h.storage.copiesMade;
  const executions = await countExecutions(h);
  expect(copies).toBe(3);
  expect(executions).toBe(5 + 3);

  const later = await h.alice.retryBatch(request);
  for (const response of [...concurrent, later]) {
    expect(summary(response)).toEqual(summary(concurrent[0]!));
    expect(response.items.map((item) => item.retry?.id)).toEqual(concurrent[0]!.items.map((item) => item.retry?.id));
  }
  expect(h.storage.copiesMade).toBe(copies);
  expect(await countExecutions(h)).toBe(executions);
});

test("a later request retries the latest attempt of each lineage, not the executions already retried", async () => {
  const batchId = newBatchId();
  const members = await batchOf(batchId, ["failed", "completed"]);
  const first = await h.alice.retryBatch({ batchId, failedOnly: true, requestId: "first" });
  const retryId = first.items[0]!.retry!.id;

  const second = await h.alice.retryBatch({ batchId, failedOnly: true, requestId: "second" });
  expect(summary(second)).toEqual([
    { original: members[1]!.id, retried: false, skipped: "completed (only failed and timed-out executions are retried)" },
    { original: retryId, retried: false, skipped: "still queued" },
  ]);
  expect(h.storage.copiesMade).toBe(1);
});

test("an execution whose input is gone is skipped with the reason and the others are retried", async () => {
  const batchId = newBatchId();
  const members = await batchOf(batchId, ["failed", "failed"]);
  h.storage.objects.delete(`executions/${members[0]!.id}/inputs/input.json`);
  const response = await h.alice.retryBatch({ batchId, failedOnly: true, requestId: "partial" });
  expect(summary(response)).toEqual([
    {
      original: members[0]!.id,
      retried: false,
      skipped: `cannot retry ${members[0]!.id}: input.json does not exist in ${members[0]!.id}; nothing was created`,
    },
    { original: members[1]!.id, retried: true, skipped: "" },
  ]);
  expect(await countExecutions(h)).toBe(3);
});

test("storage unreachable during the copies fails the call with nothing made, and the same request then retries them all", async () => {
  const batchId = newBatchId();
  await batchOf(batchId, ["failed", "failed", "failed"]);
  const executions = await countExecutions(h);
  const objects = h.storage.objects.size;
  h.storage.failWith("copyInputsBatch", new ConnectError("storage down", Code.Unavailable));
  const request = { batchId, failedOnly: true, requestId: randomBytes(8).toString("hex") };

  await expectCode(h.alice.retryBatch(request), Code.Unavailable);
  expect(await countExecutions(h)).toBe(executions);
  expect(h.storage.objects.size).toBe(objects);

  h.storage.recover("copyInputsBatch");
  const response = await h.alice.retryBatch(request);
  expect(response.retriedCount).toBe(3);
  expect(await countExecutions(h)).toBe(executions + 3);
});

test("another account's batch is NotFound, exactly like one that does not exist", async () => {
  const batchId = newBatchId();
  await batchOf(batchId, ["failed"]);
  const foreign = await expectCode(h.bob.retryBatch({ batchId, failedOnly: true, requestId: "r" }), Code.NotFound);
  const missingId = newBatchId();
  const missing = await expectCode(h.alice.retryBatch({ batchId: missingId, failedOnly: true, requestId: "r" }), Code.NotFound);
  expect(foreign.rawMessage.replace(batchId, "ID")).toBe(missing.rawMessage.replace(missingId, "ID"));
  expect(missing.findDetails(ErrorInfoSchema)).toEqual([
    expect.objectContaining({ reason: ErrorInfo_Reason.NOT_FOUND, batchId: missingId }),
  ]);
  expect(h.storage.copiesMade).toBe(0);
  expect(await countExecutions(h)).toBe(1);
});

test.each([
  ["batch_id", { batchId: "" }],
  ["batch_id", { batchId: "batch_xyz" }],
  ["batch_id", { batchId: `exec_${"a".repeat(32)}` }],
  ["request_id", { requestId: "r".repeat(129) }],
  ["request_id", { requestId: "a\u0000b" }],
])("a bad %s (%j) is InvalidArgument", async (field, overrides) => {
  await expectCode(
    h.alice.retryBatch({ batchId: newBatchId(), failedOnly: true, requestId: "r", ...overrides }),
    Code.InvalidArgument,
    field,
  );
});

describe("ListExecutions by batch", () => {
  test("lists only the batch's executions, newest first, across pages", async () => {
    const batchId = newBatchId();
    const members = await batchOf(batchId, ["queued", "failed", "queued", "completed", "uploading"]);
    await batchOf(newBatchId(), ["queued"]);
    await h.alice.createExecution(executionRequest());

    const seen: string[] = [];
    let pageToken = "";
    let pages = 0;
    do {
      const page = await h.alice.listExecutions({ batchId, pageSize: 2, pageToken });
      expect(page.executions.length).toBeLessThanOrEqual(2);
      expect(page.executions.every((execution) => execution.batchId === batchId)).toBe(true);
      seen.push(...page.executions.map((execution) => execution.id));
      pageToken = page.nextPageToken;
      pages++;
    } while (pageToken !== "");
    expect(pages).toBe(3);
    const newestFirst = [...members].sort(
      (a, b) => Number(b.createdAt!.seconds - a.createdAt!.seconds) || b.createdAt!.nanos - a.createdAt!.nanos || (b.id > a.id ? 1 : -1),
    );
    expect(seen).toEqual(newestFirst.map((execution) => execution.id));

    const failed = await h.alice.listExecutions({ batchId, statuses: [ExecutionStatus.FAILED] });
    expect(failed.executions.map((execution) => execution.id)).toEqual([members[1]!.id]);
  });

  test("another account's batch lists nothing, and a malformed batch_id is InvalidArgument", async () => {
    const batchId = newBatchId();
    await batchOf(batchId, ["queued"]);
    expect((await h.bob.listExecutions({ batchId })).executions).toEqual([]);
    await expectCode(h.alice.listExecutions({ batchId: "batch_1" }), Code.InvalidArgument, "batch_id");
  });
});

describe("CreateExecution's run options", () => {
  test("network, retry policy and batch round-trip through GetExecution", async () => {
    const batchId = newBatchId();
    const { execution: created } = await h.alice.createExecution(
      executionRequest({ network: true, maxRetries: 5, retryOnExitCodes: [75, 3, 75], batchId, batchParallelism: 4 }),
    );
    const { execution } = await h.alice.getExecution({ executionId: created!.id });
    expect(execution).toMatchObject({ network: true, maxRetries: 5, batchId, batchParallelism: 4 });
    expect([...execution!.retryOnExitCodes].sort((a, b) => a - b)).toEqual([3, 75]);
    expect(created).toEqual(execution);
  });

  test("unset options take the defaults, and max_retries 0 is kept as 0", async () => {
    const { execution: defaults } = await h.alice.createExecution(executionRequest());
    expect((await h.alice.getExecution({ executionId: defaults!.id })).execution).toMatchObject({
      network: false,
      maxRetries: 2,
      retryOnExitCodes: [],
      batchId: "",
      batchParallelism: 0,
    });
    const { execution: none } = await h.alice.createExecution(executionRequest({ maxRetries: 0 }));
    expect((await h.alice.getExecution({ executionId: none!.id })).execution?.maxRetries).toBe(0);
  });

  test("a retry keeps the run options and the batch", async () => {
    const batchId = newBatchId();
    const request = executionRequest({ network: true, maxRetries: 1, retryOnExitCodes: [75], batchId, batchParallelism: 2 });
    const { execution } = await h.alice.createExecution(request);
    uploadAll(h.storage, execution!, request);
    await h.alice.confirmUploads({ executionId: execution!.id });
    await h.alice.cancelExecution({ executionId: execution!.id });
    const { execution: retry } = await h.alice.retryExecution({ executionId: execution!.id, requestId: randomBytes(4).toString("hex") });
    expect(retry).toMatchObject({ network: true, maxRetries: 1, retryOnExitCodes: [75], batchId, batchParallelism: 2 });
    expect(h.storage.keysUnder(retry!.id)).toContain(`executions/${retry!.id}/inputs/input.json`);
  });
});

test("an execution retried by someone else while the batch is being retried is reported skipped, not retried twice", async () => {
  const batchId = newBatchId();
  const [failed] = await batchOf(batchId, ["failed"]);
  const caller = { accountId: (await h.db.fork().findOneOrFail(ExecutionRecord, failed!.id)).accountId, actorId: "" };
  const storage = createStorageGateway(h.storage.client());
  const retryExecution = directRetryExecution();
  let meanwhile: string | undefined;
  const retryBatch = createRetryBatch({
    db: h.db,
    retryMany: createRetryMany({
      ...retryDeps(),
      retryExecution,
      // Another request retries the execution while the batch's copies are made, before its transaction.
      storage: {
        ...storage,
        async copyInputsBatch(copies) {
          meanwhile ??= (await retryExecution(caller, { executionId: failed!.id, force: false, requestId: "manual-1" })).execution.id;
          return storage.copyInputsBatch(copies);
        },
      },
    }),
  });
  const [item] = await retryBatch(caller, { batchId, failedOnly: true, requestId: randomBytes(8).toString("hex") });
  expect(item?.retry).toBeUndefined();
  expect(item?.skipped).toBe(`already retried as ${meanwhile}`);
  expect((await h.alice.getExecution({ executionId: failed!.id })).execution!.retriedAs).toEqual([meanwhile]);
  // The batch's own copy was removed with its retry not made: only the other request's copy remains.
  expect(h.storage.copiesMade).toBe(2);
  expect([...h.storage.objects.keys()].filter((key) => !key.startsWith(`executions/${failed!.id}/`) && !key.startsWith(`executions/${meanwhile}/`))).toEqual([]);
});

test("an original listed again in one call of many retries is retried once and copied once", async () => {
  const batchId = newBatchId();
  const [failed] = await batchOf(batchId, ["failed"]);
  const caller = { accountId: (await h.db.fork().findOneOrFail(ExecutionRecord, failed!.id)).accountId, actorId: "" };
  const retryMany = createRetryMany({ ...retryDeps(), retryExecution: directRetryExecution() });
  const item = { executionId: failed!.id, requestId: "twice" };

  const [first, second, third] = await retryMany(caller, { items: [item, item, { ...item, requestId: "another" }], auditRequestId: "twice" });
  expect(first && "retry" in first ? first.retry.id : undefined).toMatch(/^exec_/);
  // The same request id answers the same retry; another is refused as a single retry would be.
  expect(second).toEqual(first);
  expect(third).toEqual({ skipped: `already retried as ${(first as { retry: { id: string } }).retry.id}` });
  expect((await h.alice.getExecution({ executionId: failed!.id })).execution!.retriedAs).toHaveLength(1);
  const owners = new Set([...h.storage.objects.keys()].map((key) => key.split("/")[1]));
  expect([...owners].sort()).toEqual([failed!.id, (first as { retry: { id: string } }).retry.id].sort());
});

function retryDeps() {
  return { db: h.db, storage: createStorageGateway(h.storage.client()), notifier: new WorkNotifier(), clock: () => new Date(), logger: silentLogger, metrics: { retryCreated: () => undefined } };
}

function directRetryExecution() {
  return createRetryExecution(retryDeps());
}

describe("the size of one RetryBatch", () => {
  function directRetryBatch(maxExecutions: number) {
    return createRetryBatch({ db: h.db, retryMany: createRetryMany({ ...retryDeps(), retryExecution: directRetryExecution() }), maxExecutions });
  }

  test("a batch with more executions than one call considers is refused whole, before anything is retried", async () => {
    const batchId = newBatchId();
    const members = await batchOf(batchId, ["failed", "failed", "completed"]);
    const caller = { accountId: (await h.db.fork().findOneOrFail(ExecutionRecord, members[0]!.id)).accountId, actorId: "" };
    const before = await countExecutions(h);

    const refused = await directRetryBatch(2)(caller, { batchId, failedOnly: true, requestId: "too-many" }).catch((error: unknown) => error);
    // FailedPrecondition on the wire.
    expect(refused).toBeInstanceOf(PreconditionError);
    expect((refused as Error).message).toContain(`batch ${batchId} has more than 2 executions`);
    expect((refused as Error).message).toContain("RetryExecution");
    expect((refused as PreconditionError).refusal).toEqual({ reason: ErrorInfo_Reason.BATCH_TOO_LARGE, batchId });
    expect(await countExecutions(h)).toBe(before);
    expect(h.storage.copiesMade).toBe(0);

    const outcomes = await directRetryBatch(3)(caller, { batchId, failedOnly: true, requestId: "just-fits" });
    expect(outcomes.map((outcome) => outcome.retry !== undefined)).toEqual([true, true, false]);
    // Members are read without their args, env, files and metadata; the answer never needs them.
    expect((outcomes[2]!.original as Partial<ExecutionRecord>).args).toBeUndefined();
  });
});
