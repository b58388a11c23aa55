import { timestampDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { ExecutionStatus, Outcome } from "@rgrid/proto";
import { expectCode } from "./expect-code";
import { finishedExecution, queuedExecution, registeredRunner } from "./flows";
import { executionRequest, startHarness } from "./harness";
import type { Harness } from "./harness";

let h: Harness;
beforeEach(async () => {
  h = await startHarness();
});
afterEach(async () => {
  await h.close();
});

async function runningExecution() {
  const queued = await queuedExecution(h);
  const runnerId = await registeredRunner(h);
  const claim = await h.runner.claimExecution({ runnerId, waitMillis: 0 });
  expect(claim.assignment?.execution?.id).toBe(queued.id);
  return { execution: queued, runnerId };
}

test("an uploading execution is cancelled at once and stays cancelled after its uploads are confirmed", async () => {
  const { execution: created } = await h.alice.createExecution(executionRequest());
  const { execution } = await h.alice.cancelExecution({ executionId: created!.id });
  expect(execution?.status).toBe(ExecutionStatus.CANCELLED);
  expect(execution?.finishedAt).toBeDefined();
  const confirmed = await h.alice.confirmUploads({ executionId: created!.id });
  expect(confirmed.execution?.status).toBe(ExecutionStatus.CANCELLED);
});

test("a queued execution is cancelled at once and no runner gets it", async () => {
  const queued = await queuedExecution(h);
  const { execution } = await h.alice.cancelExecution({ executionId: queued.id });
  expect(execution?.status).toBe(ExecutionStatus.CANCELLED);
  expect(execution?.finishedAt).toBeDefined();
  expect(execution?.startedAt).toBeUndefined();
  const claim = await h.runner.claimExecution({ runnerId: await registeredRunner(h), waitMillis: 0 });
  expect(claim.assignment).toBeUndefined();
  const { execution: reread } = await h.alice.getExecution({ executionId: queued.id });
  expect(reread?.status).toBe(ExecutionStatus.CANCELLED);
});

test("a running execution keeps running with the cancel request recorded, once however often it is asked", async () => {
  const { execution: running } = await runningExecution();
  const first = (await h.alice.cancelExecution({ executionId: running.id })).execution!;
  expect(first.status).toBe(ExecutionStatus.RUNNING);
  expect(first.cancelRequestedAt).toBeDefined();
  expect(first.finishedAt).toBeUndefined();

  const again = (await h.alice.cancelExecution({ executionId: running.id })).execution!;
  expect(again.status).toBe(ExecutionStatus.RUNNING);
  expect(timestampDate(again.cancelRequestedAt!)).toEqual(timestampDate(first.cancelRequestedAt!));
  const { execution: reread } = await h.alice.getExecution({ executionId: running.id });
  expect(reread?.cancelRequestedAt).toEqual(first.cancelRequestedAt);
});

test.each([
  ["completed", Outcome.COMPLETED],
  ["failed", Outcome.FAILED],
  ["timed_out", Outcome.TIMED_OUT],
])("a %s execution cannot be cancelled and is left as it was", async (status, outcome) => {
  const finished = await finishedExecution(h, outcome);
  await expectCode(
    h.alice.cancelExecution({ executionId: finished.id }),
    Code.FailedPrecondition,
    `execution ${finished.id} is already ${status}; there is nothing to cancel`,
  );
  expect((await h.alice.getExecution({ executionId: finished.id })).execution).toEqual(finished);
});

test("a cancelled execution cannot be cancelled again", async () => {
  const queued = await queuedExecution(h);
  await h.alice.cancelExecution({ executionId: queued.id });
  await expectCode(
    h.alice.cancelExecution({ executionId: queued.id }),
    Code.FailedPrecondition,
    `execution ${queued.id} is already cancelled; there is nothing to cancel`,
  );
});

test("another account's execution is NotFound, exactly like a missing one, and is not touched", async () => {
  const queued = await queuedExecution(h);
  const foreign = await expectCode(h.bob.cancelExecution({ executionId: queued.id }), Code.NotFound);
  const missingId = `exec_${"0".repeat(32)}`;
  const missing = await expectCode(h.alice.cancelExecution({ executionId: missingId }), Code.NotFound);
  expect(foreign.rawMessage.replace(queued.id, "ID")).toBe(missing.rawMessage.replace(missingId, "ID"));
  expect((await h.alice.getExecution({ executionId: queued.id })).execution?.status).toBe(ExecutionStatus.QUEUED);
});

test.each(["", "exec_123", "../etc/passwd", `exec_${"A".repeat(32)}`])("a malformed id %j is InvalidArgument", async (id) => {
  await expectCode(h.alice.cancelExecution({ executionId: id }), Code.InvalidArgument, "execution_id");
});

test("a cancel racing a claim ends in exactly one consistent state", async () => {
  const runnerId = await registeredRunner(h);
  for (let round = 0; round < 10; round++) {
    const queued = await queuedExecution(h);
    const [cancel, claim] = await Promise.all([
      h.alice.cancelExecution({ executionId: queued.id }),
      h.runner.claimExecution({ runnerId, waitMillis: 0 }),
    ]);
    const { execution: final } = await h.alice.getExecution({ executionId: queued.id });
    if (claim.assignment === undefined) {
      // The cancel came first: nobody runs it.
      expect(final?.status).toBe(ExecutionStatus.CANCELLED);
      expect(cancel.execution?.status).toBe(ExecutionStatus.CANCELLED);
    } else {
      // The claim came first: it runs, and its runner is to be told to stop.
      expect(claim.assignment.execution?.id).toBe(queued.id);
      expect(final?.status).toBe(ExecutionStatus.RUNNING);
      expect(final?.cancelRequestedAt).toBeDefined();
      expect(cancel.execution?.status).toBe(ExecutionStatus.RUNNING);
      await h.runner.completeExecution({ runnerId, executionId: queued.id, outcome: Outcome.COMPLETED, exitCode: 0 });
    }
  }
});

test("a cancel racing a completion either is recorded before it or refused after it", async () => {
  for (let round = 0; round < 10; round++) {
    const { execution: running, runnerId } = await runningExecution();
    const [cancel, complete] = await Promise.allSettled([
      h.alice.cancelExecution({ executionId: running.id }),
      h.runner.completeExecution({ runnerId, executionId: running.id, outcome: Outcome.COMPLETED, exitCode: 0 }),
    ]);
    expect(complete.status).toBe("fulfilled");
    const { execution: final } = await h.alice.getExecution({ executionId: running.id });
    expect(final?.status).toBe(ExecutionStatus.COMPLETED);
    if (cancel.status === "fulfilled") {
      expect(final?.cancelRequestedAt).toBeDefined();
    } else {
      expect(ConnectError.from(cancel.reason).code).toBe(Code.FailedPrecondition);
      expect(final?.cancelRequestedAt).toBeUndefined();
    }
  }
});
