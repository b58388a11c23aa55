import { Code, ConnectError } from "@connectrpc/connect";
import { ErrorInfo_Reason, ErrorInfoSchema, ExecutionStatus, ObjectKind, Outcome, RetryKind } from "@rgrid/proto";
import type { Execution } from "@rgrid/proto";
import { expectCode } from "./expect-code";
import { countExecutions, finishedExecution, queuedExecution, registeredRunner } from "./flows";
import { executionRequest, startHarness } from "./harness";
import type { Harness } from "./harness";

let h: Harness;
beforeEach(async () => {
  h = await startHarness();
});
afterEach(async () => {
  await h.close();
});

/** Execution ids that have any object in the fake store. */
function idsWithObjects(): string[] {
  return [...new Set([...h.storage.objects.keys()].map((key) => key.split("/")[1] as string))];
}

function sameWork(execution: Execution) {
  return {
    script: execution.script,
    runtime: execution.runtime,
    args: execution.args,
    env: execution.env,
    inputs: execution.inputs,
    metadata: execution.metadata,
    timeoutSeconds: execution.timeoutSeconds,
  };
}

test("a failed execution is retried as a new queued execution with its lineage and copied objects", async () => {
  const original = await finishedExecution(h, Outcome.FAILED);
  const { execution: retry, original: after } = await h.alice.retryExecution({ executionId: original.id, requestId: "retry-1" });

  expect(retry!.id).not.toBe(original.id);
  expect(retry!.id).toMatch(/^exec_[0-9a-f]{32}$/);
  expect(retry!.status).toBe(ExecutionStatus.QUEUED);
  expect(retry!.retryOf).toBe(original.id);
  expect(retry!.rootId).toBe(original.id);
  expect(retry!.attempt).toBe(2);
  expect(retry!.retryKind).toBe(RetryKind.MANUAL);
  expect(retry!.retriedBy).toMatch(/^key_/);
  expect(sameWork(retry!)).toEqual(sameWork(original));
  expect(h.storage.keysUnder(retry!.id).sort()).toEqual(
    [`executions/${retry!.id}/inputs/input.json`, `executions/${retry!.id}/script/process.py`],
  );

  // The original is untouched; GetExecution now lists its retry (the retry's answer does not).
  expect(after).toEqual(original);
  const { execution: reread } = await h.alice.getExecution({ executionId: original.id });
  expect({ ...reread!, retriedAs: [] }).toEqual(original);
  expect(reread!.retriedAs).toEqual([retry!.id]);

  // A retry of the retry keeps the root and counts on.
  const runnerId = await registeredRunner(h);
  await h.runner.claimExecution({ runnerId, waitMillis: 0 });
  await h.runner.completeExecution({ runnerId, executionId: retry!.id, outcome: Outcome.TIMED_OUT });
  const third = (await h.alice.retryExecution({ executionId: retry!.id, requestId: "retry-2" })).execution!;
  expect(third.rootId).toBe(original.id);
  expect(third.attempt).toBe(3);
  expect(third.retryOf).toBe(retry!.id);
});

test.each([
  ["queued", false],
  ["running", true],
])("a %s execution is not retried without force, and nothing is created or copied", async (status, claim) => {
  const queued = await queuedExecution(h);
  if (claim) {
    await h.runner.claimExecution({ runnerId: await registeredRunner(h), waitMillis: 0 });
  }
  const before = await countExecutions(h);
  await expectCode(
    h.alice.retryExecution({ executionId: queued.id, requestId: "r" }),
    Code.FailedPrecondition,
    `execution ${queued.id} is ${status}; only completed, failed, timed_out or cancelled executions can be retried without force`,
  );
  expect(await countExecutions(h)).toBe(before);
  expect(h.storage.calls.copyInputs).toBe(0);
  expect(idsWithObjects()).toEqual([queued.id]);
});

test("force retries a running execution, which keeps running", async () => {
  const queued = await queuedExecution(h);
  await h.runner.claimExecution({ runnerId: await registeredRunner(h), waitMillis: 0 });
  const response = await h.alice.retryExecution({ executionId: queued.id, requestId: "forced", force: true });
  expect(response.execution?.retryKind).toBe(RetryKind.FORCED);
  expect(response.execution?.status).toBe(ExecutionStatus.QUEUED);
  expect(response.original?.status).toBe(ExecutionStatus.RUNNING);
});

test("the same request_id returns the same retry and copies once", async () => {
  const original = await finishedExecution(h);
  const first = await h.alice.retryExecution({ executionId: original.id, requestId: "same" });
  const second = await h.alice.retryExecution({ executionId: original.id, requestId: "same" });
  expect(second.execution?.id).toBe(first.execution?.id);
  expect(h.storage.calls.copyInputs).toBe(1);
  expect(await countExecutions(h)).toBe(2);
});

test("a retry without a request_id works, and each such call makes a retry of its own (not safe to re-send)", async () => {
  const original = await finishedExecution(h);
  const first = await h.alice.retryExecution({ executionId: original.id });
  const second = await h.alice.retryExecution({ executionId: original.id });
  expect(second.execution?.id).not.toBe(first.execution?.id);
  expect(await countExecutions(h)).toBe(3);
  // The ids the service made are in its own namespace, which no client id may enter.
  const stored = await h.db
    .fork()
    .getConnection()
    .execute<Array<{ request_id: string }>>("select request_id from executions where retry_of is not null");
  expect(stored.map((row) => row.request_id)).toEqual([
    expect.stringMatching(/^server:[0-9a-f-]{36}$/),
    expect.stringMatching(/^server:[0-9a-f-]{36}$/),
  ]);
  await expectCode(
    h.alice.retryExecution({ executionId: original.id, requestId: stored[0]?.request_id }),
    Code.InvalidArgument,
    "invalid request_id: must not start with auto:, batch: or server:",
  );
});

test("a request_id already used for another request is refused, not answered with that request's result", async () => {
  const first = await finishedExecution(h);
  const second = await finishedExecution(h);
  await h.alice.retryExecution({ executionId: first.id, requestId: "reused" });
  await expectCode(
    h.alice.retryExecution({ executionId: second.id, requestId: "reused" }),
    Code.FailedPrecondition,
    'request_id "reused" was already used for another request',
  );
  expect(h.storage.calls.copyInputs).toBe(1);
  expect(await countExecutions(h)).toBe(3);
});

test("20 concurrent retries with one request_id create one execution", async () => {
  const original = await finishedExecution(h);
  const responses = await Promise.all(
    Array.from({ length: 20 }, () => h.alice.retryExecution({ executionId: original.id, requestId: "burst" })),
  );
  expect(new Set(responses.map((response) => response.execution?.id)).size).toBe(1);
  expect(h.storage.calls.copyInputs).toBe(1);
  expect(await countExecutions(h)).toBe(2);
});

test("a missing input fails the retry clearly and leaves nothing behind", async () => {
  const original = await finishedExecution(h);
  h.storage.objects.delete(`executions/${original.id}/inputs/input.json`);
  await expectCode(
    h.alice.retryExecution({ executionId: original.id, requestId: "r" }),
    Code.FailedPrecondition,
    `cannot retry ${original.id}: input.json does not exist in ${original.id}; nothing was created`,
  );
  expect(await countExecutions(h)).toBe(1);
  expect(idsWithObjects()).toEqual([original.id]);
});

test("storage being unreachable fails the retry as Unavailable with nothing created", async () => {
  const original = await finishedExecution(h);
  h.storage.failWith("copyInputs", new ConnectError("connect ECONNREFUSED", Code.Unavailable));
  await expectCode(
    h.alice.retryExecution({ executionId: original.id, requestId: "r" }),
    Code.Unavailable,
    "storage is unavailable; nothing was created, try again",
  );
  expect(await countExecutions(h)).toBe(1);
  expect(idsWithObjects()).toEqual([original.id]);
});

test("a copy whose size differs from the recorded one is refused and removed", async () => {
  const original = await finishedExecution(h);
  h.storage.put(original.id, ObjectKind.INPUT, "input.json", 999);
  await expectCode(
    h.alice.retryExecution({ executionId: original.id, requestId: "r" }),
    Code.FailedPrecondition,
    "input.json has 999 bytes in storage but 7 were recorded; nothing was created",
  );
  expect(await countExecutions(h)).toBe(1);
  expect(idsWithObjects()).toEqual([original.id]);
});

test("when the insert fails after the copy, the copied objects are deleted", async () => {
  const original = await finishedExecution(h);
  // A real database failure on inserting a retry, not a stand-in for the code under test.
  await h.db
    .fork()
    .getConnection()
    .execute(
      "CREATE TRIGGER refuse_retries BEFORE INSERT ON executions WHEN NEW.retry_of IS NOT NULL " +
        "BEGIN SELECT RAISE(ABORT, 'disk full'); END",
    );
  const error = await expectCode(h.alice.retryExecution({ executionId: original.id, requestId: "r" }), Code.Internal);
  expect(error.rawMessage).not.toContain("disk full");
  expect(h.storage.calls.copyInputs).toBe(1);
  expect(h.storage.calls.deleteExecutionObjects).toBe(1);
  expect(await countExecutions(h)).toBe(1);
  expect(idsWithObjects()).toEqual([original.id]);
});

test("a copy storage undid because it came out wrong fails the retry with storage's reason", async () => {
  const original = await finishedExecution(h);
  h.storage.failWith(
    "copyInputs",
    new ConnectError(`copy of input 'input.json' to exec_${"0".repeat(32)} has 5 bytes, expected 7`, Code.FailedPrecondition),
  );
  await expectCode(
    h.alice.retryExecution({ executionId: original.id, requestId: "r" }),
    Code.FailedPrecondition,
    `cannot retry ${original.id}: copy of input 'input.json' to exec_${"0".repeat(32)} has 5 bytes, expected 7; nothing was created`,
  );
  expect(await countExecutions(h)).toBe(1);
  expect(idsWithObjects()).toEqual([original.id]);
});

test("a connection to storage reset under the copy is Unavailable, so clients re-send, and nothing is created", async () => {
  const original = await finishedExecution(h);
  // What connect-node makes of ECONNRESET from a storage-service that died mid-call.
  h.storage.failWith(
    "copyInputs",
    new ConnectError("read ECONNRESET", Code.Aborted, undefined, undefined, Object.assign(new Error("read ECONNRESET"), { code: "ECONNRESET" })),
  );
  const error = await expectCode(h.alice.retryExecution({ executionId: original.id, requestId: "r" }), Code.Unavailable);
  expect(error.rawMessage).not.toContain("ECONNRESET");
  expect(await countExecutions(h)).toBe(1);
  // The same request, re-sent once storage is back, makes the retry.
  h.storage.recover("copyInputs");
  const retried = await h.alice.retryExecution({ executionId: original.id, requestId: "r" });
  expect(retried.execution?.retryOf).toBe(original.id);
});

test("one request_id sent for two executions at once makes one retry and refuses the other", async () => {
  const first = await finishedExecution(h);
  const second = await finishedExecution(h);
  const results = await Promise.allSettled([
    h.alice.retryExecution({ executionId: first.id, requestId: "shared" }),
    h.alice.retryExecution({ executionId: second.id, requestId: "shared" }),
  ]);
  const made = results.flatMap((result) => (result.status === "fulfilled" ? [result.value] : []));
  const refused = results.flatMap((result) => (result.status === "rejected" ? [ConnectError.from(result.reason)] : []));
  expect(made).toHaveLength(1);
  expect(refused.map((error) => error.code)).toEqual([Code.FailedPrecondition]);
  // The one made retries the execution it was asked for, and the loser's copies are gone.
  const retry = made[0]!.execution!;
  expect([first.id, second.id]).toContain(retry.retryOf);
  expect(await countExecutions(h)).toBe(3);
  expect(idsWithObjects().sort()).toEqual([first.id, second.id, retry.id].sort());
});

test("a create re-sent with the request_id of a retry is refused", async () => {
  const original = await finishedExecution(h);
  await h.alice.retryExecution({ executionId: original.id, requestId: "taken" });
  await expectCode(
    h.alice.createExecution(executionRequest({ requestId: "taken" })),
    Code.FailedPrecondition,
    'request_id "taken" was already used for another request',
  );
});

test("refusals carry an ErrorInfo detail: the reused request id, the status of an unfinished original", async () => {
  const original = await finishedExecution(h);
  const other = await finishedExecution(h);
  await h.alice.retryExecution({ executionId: original.id, requestId: "taken-for-details" });
  const reused = await expectCode(h.alice.retryExecution({ executionId: other.id, requestId: "taken-for-details" }), Code.FailedPrecondition);
  expect(reused.findDetails(ErrorInfoSchema)[0]?.reason).toBe(ErrorInfo_Reason.REQUEST_ID_REUSED);

  const missing = await expectCode(h.alice.getExecution({ executionId: `exec_${"f".repeat(32)}` }), Code.NotFound);
  expect(missing.findDetails(ErrorInfoSchema)[0]?.reason).toBe(ErrorInfo_Reason.NOT_FOUND);

  // The retry above is itself queued: not finished.
  const queued = (await h.alice.listExecutions({ statuses: [ExecutionStatus.QUEUED] })).executions[0]!;
  const refused = await expectCode(h.alice.retryExecution({ executionId: queued.id, requestId: "r-queued" }), Code.FailedPrecondition);
  expect(refused.findDetails(ErrorInfoSchema)).toEqual([
    expect.objectContaining({ reason: ErrorInfo_Reason.NOT_TERMINAL, executionId: queued.id, status: ExecutionStatus.QUEUED }),
  ]);
});
