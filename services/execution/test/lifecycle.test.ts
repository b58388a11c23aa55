import { Code, createClient } from "@connectrpc/connect";
import { timestampMs } from "@bufbuild/protobuf/wkt";
import { ExecutionService, ExecutionStatus, LogEntry_Stream, ObjectKind, Outcome, RetryKind, RunnerService } from "@rgrid/proto";
import type { Execution } from "@rgrid/proto";
import { RUNNER_TOKEN, executionRequest, startHarness, uploadAll } from "./harness";
import type { Harness } from "./harness";
import { expectCode } from "./expect-code";
import { queuedExecution, registeredRunner } from "./flows";

let h: Harness;
beforeEach(async () => {
  h = await startHarness();
});
afterEach(async () => {
  await h.close();
});

test("create → confirm → claim → logs → complete", async () => {
  const request = executionRequest();
  const created = await h.alice.createExecution(request);
  const execution = created.execution!;
  expect(execution.id).toMatch(/^exec_[0-9a-f]{32}$/);
  expect(execution.status).toBe(ExecutionStatus.UPLOADING);
  expect(execution.attempt).toBe(1);
  expect(execution.rootId).toBe(execution.id);
  expect(execution.retryKind).toBe(RetryKind.ORIGINAL);
  expect(created.scriptUpload?.method).toBe("PUT");
  expect(created.inputUploads.map((grant) => grant.name)).toEqual(["input.json"]);

  uploadAll(h.storage, execution, request);
  const confirmed = await h.alice.confirmUploads({ executionId: execution.id });
  expect(confirmed.execution?.status).toBe(ExecutionStatus.QUEUED);

  const runnerId = await registeredRunner(h);
  const claim = await h.runner.claimExecution({ runnerId, waitMillis: 0 });
  const assignment = claim.assignment!;
  expect(assignment.execution?.id).toBe(execution.id);
  expect(assignment.execution?.status).toBe(ExecutionStatus.RUNNING);
  expect(assignment.runtimeName).toBe("python");
  expect(assignment.timeoutSeconds).toBe(60);
  expect(assignment.scriptDownload?.url).toContain(`executions/${execution.id}/script/process.py`);
  expect(assignment.inputDownloads.map((grant) => grant.name)).toEqual(["input.json"]);

  const entries = [
    { sequence: 1n, stream: LogEntry_Stream.STDOUT, line: "starting" },
    { sequence: 2n, stream: LogEntry_Stream.STDERR, line: "warning" },
  ];
  await h.runner.appendLogs({ runnerId, executionId: execution.id, entries });
  // A resend after a lost answer must not duplicate lines.
  await h.runner.appendLogs({ runnerId, executionId: execution.id, entries: [...entries, { sequence: 3n, stream: LogEntry_Stream.STDOUT, line: "done" }] });
  const logs = await h.alice.getLogs({ executionId: execution.id });
  expect(logs.entries.map((entry) => [Number(entry.sequence), entry.line])).toEqual([[1, "starting"], [2, "warning"], [3, "done"]]);
  const page = await h.alice.getLogs({ executionId: execution.id, afterSequence: 1n, limit: 1 });
  expect(page.entries.map((entry) => entry.line)).toEqual(["warning"]);
  expect(page.hasMore).toBe(true);

  const uploads = await h.runner.createOutputUploads({
    runnerId,
    executionId: execution.id,
    outputs: [{ name: "out/result.csv", sizeBytes: 5n, sha256: "a".repeat(64) }],
  });
  expect(uploads.uploads[0]?.url).toContain(`executions/${execution.id}/outputs/out/result.csv`);

  const complete = {
    runnerId,
    executionId: execution.id,
    outcome: Outcome.COMPLETED,
    exitCode: 0,
    outputs: [{ name: "out/result.csv", sizeBytes: 5n, sha256: "a".repeat(64) }],
  };
  await h.runner.completeExecution(complete);
  await h.runner.completeExecution(complete); // the same report again is a no-op
  await expectCode(
    h.runner.completeExecution({ ...complete, outcome: Outcome.FAILED, exitCode: 1 }),
    Code.FailedPrecondition,
    "already completed",
  );

  const done = (await h.alice.getExecution({ executionId: execution.id })).execution!;
  expect(done.status).toBe(ExecutionStatus.COMPLETED);
  expect(done.exitCode).toBe(0);
  expect(done.runnerId).toBe(runnerId);
  expect(done.startedAt).toBeDefined();
  expect(done.finishedAt).toBeDefined();
  const downloads = await h.alice.getOutputDownloads({ executionId: execution.id });
  expect(downloads.outputs.map((output) => output.name)).toEqual(["out/result.csv"]);
  expect(downloads.downloads[0]?.method).toBe("GET");
});

test("create is idempotent by request_id and hands out fresh grants while uploading", async () => {
  const request = executionRequest();
  const first = await h.alice.createExecution(request);
  const again = await h.alice.createExecution(request);
  expect(again.execution?.id).toBe(first.execution?.id);
  expect(again.scriptUpload).toBeDefined();
  const listed = await h.alice.listExecutions({});
  expect(listed.executions).toHaveLength(1);
});

test("confirms sent together or again all answer with the same queued execution", async () => {
  const request = executionRequest();
  const execution = (await h.alice.createExecution(request)).execution!;
  uploadAll(h.storage, execution, request);
  const together = await Promise.all([1, 2, 3].map(() => h.alice.confirmUploads({ executionId: execution.id })));
  const again = await h.alice.confirmUploads({ executionId: execution.id });
  expect(again.execution?.status).toBe(ExecutionStatus.QUEUED);
  for (const answer of together) {
    expect(answer.execution).toEqual(again.execution);
  }
});

test("confirm names missing and mismatched files and leaves the execution uploading", async () => {
  const request = executionRequest();
  const execution = (await h.alice.createExecution(request)).execution!;
  h.storage.put(execution.id, ObjectKind.SCRIPT, "process.py", 11);
  await expectCode(
    h.alice.confirmUploads({ executionId: execution.id }),
    Code.FailedPrecondition,
    "process.py (expected 12 bytes, found 11), input.json (missing)",
  );
  expect((await h.alice.getExecution({ executionId: execution.id })).execution?.status).toBe(ExecutionStatus.UPLOADING);
});

test("a waiting claim is woken as soon as work is queued, and only matching runtimes are claimed", async () => {
  const pythonRunner = await registeredRunner(h, ["python"]);
  const nodeRunner = await registeredRunner(h, ["node:20"]);
  const started = Date.now();
  const waiting = h.runner.claimExecution({ runnerId: nodeRunner, waitMillis: 20_000 });
  const pythonClaim = await h.runner.claimExecution({ runnerId: pythonRunner, waitMillis: 100 });
  expect(pythonClaim.assignment).toBeUndefined();
  const queued = await queuedExecution(h, "node");
  const claim = await waiting;
  expect(claim.assignment?.execution?.id).toBe(queued.id);
  expect(claim.assignment?.runtimeName).toBe("node");
  expect(Date.now() - started).toBeLessThan(5_000);
});

test("a claim gives up when its wait is over or the call is aborted", async () => {
  const runnerId = await registeredRunner(h);
  const empty = await h.runner.claimExecution({ runnerId, waitMillis: 150 });
  expect(empty.assignment).toBeUndefined();
  const controller = new AbortController();
  const aborted = h.runner.claimExecution({ runnerId, waitMillis: 20_000 }, { signal: controller.signal });
  setTimeout(() => controller.abort(), 50);
  await expectCode(aborted, Code.Canceled);
  // The aborted claim took nothing: the next execution is still there for another call.
  const queued = await queuedExecution(h);
  expect((await h.runner.claimExecution({ runnerId, waitMillis: 0 })).assignment?.execution?.id).toBe(queued.id);
});

test("a report with claim_next hands the runner its next execution, once: a resent report claims nothing", async () => {
  const [first, second, third] = [await queuedExecution(h), await queuedExecution(h), await queuedExecution(h)];
  const runnerId = await registeredRunner(h);
  const claimed = (await h.runner.claimExecution({ runnerId, waitMillis: 0 })).assignment!.execution!;
  expect(claimed.id).toBe(first.id);
  const report = { runnerId, executionId: first.id, outcome: Outcome.COMPLETED, exitCode: 0, claimNext: true };

  const { next } = await h.runner.completeExecution(report);

  expect(next?.execution?.id).toBe(second.id);
  expect(next?.execution?.status).toBe(ExecutionStatus.RUNNING);
  expect(next?.scriptDownload?.url).toContain(`executions/${second.id}/script/process.py`);
  expect((await h.alice.getExecution({ executionId: first.id })).execution?.status).toBe(ExecutionStatus.COMPLETED);
  expect((await h.runner.completeExecution(report)).next).toBeUndefined();
  expect((await h.alice.getExecution({ executionId: third.id })).execution?.status).toBe(ExecutionStatus.QUEUED);

  // Without claim_next, or with nothing left to claim, the answer carries none.
  const withoutNext = await h.runner.completeExecution({ runnerId, executionId: second.id, outcome: Outcome.COMPLETED, exitCode: 0 });
  expect(withoutNext.next).toBeUndefined();
  const last = (await h.runner.claimExecution({ runnerId, waitMillis: 0 })).assignment!.execution!;
  expect(last.id).toBe(third.id);
  expect((await h.runner.completeExecution({ runnerId, executionId: third.id, outcome: Outcome.COMPLETED, exitCode: 0, claimNext: true })).next).toBeUndefined();
});

test("only the runner holding an execution may report on it", async () => {
  const queued = await queuedExecution(h);
  const holder = await registeredRunner(h);
  const other = await registeredRunner(h);
  await h.runner.claimExecution({ runnerId: holder, waitMillis: 0 });
  await expectCode(
    h.runner.appendLogs({ runnerId: other, executionId: queued.id, entries: [{ sequence: 1n, stream: LogEntry_Stream.STDOUT, line: "x" }] }),
    Code.FailedPrecondition,
    "not held",
  );
  await expectCode(
    h.runner.completeExecution({ runnerId: other, executionId: queued.id, outcome: Outcome.COMPLETED, exitCode: 0 }),
    Code.FailedPrecondition,
  );
  await expectCode(h.runner.claimExecution({ runnerId: "runner_" + "0".repeat(32), waitMillis: 0 }), Code.NotFound, "not registered");
});

test("list pages newest first with a status filter", async () => {
  const queued: Execution[] = [];
  for (let i = 0; i < 5; i++) {
    queued.push(await queuedExecution(h));
  }
  const newestFirst = (executions: Execution[]) =>
    [...executions]
      .sort((a, b) => timestampMs(b.createdAt!) - timestampMs(a.createdAt!) || (a.id < b.id ? 1 : -1))
      .map((execution) => execution.id);
  const ids = newestFirst(queued);
  const uploadingExecution = (await h.alice.createExecution(executionRequest())).execution!;
  const uploading = uploadingExecution.id;
  const seen: string[] = [];
  let pageToken = "";
  do {
    const page = await h.alice.listExecutions({ statuses: [ExecutionStatus.QUEUED], pageSize: 2, pageToken });
    expect(page.executions.length).toBeLessThanOrEqual(2);
    seen.push(...page.executions.map((execution) => execution.id));
    pageToken = page.nextPageToken;
  } while (pageToken !== "");
  expect(seen).toEqual(ids);
  expect(seen).not.toContain(uploading);
  const all = await h.alice.listExecutions({});
  expect(all.executions.map((execution) => execution.id)).toEqual(newestFirst([...queued, uploadingExecution]));
  expect(all.nextPageToken).toBe("");
  expect((await h.bob.listExecutions({})).executions).toEqual([]);
  await expectCode(h.alice.listExecutions({ pageToken: "not-a-token" }), Code.InvalidArgument, "page_token");
});

test("another account's execution is NotFound, exactly like a missing one", async () => {
  const queued = await queuedExecution(h);
  const missing = "exec_" + "f".repeat(32);
  const foreign = await expectCode(h.bob.getExecution({ executionId: queued.id }), Code.NotFound);
  const absent = await expectCode(h.bob.getExecution({ executionId: missing }), Code.NotFound);
  expect(foreign.rawMessage.replace(queued.id, "ID")).toBe(absent.rawMessage.replace(missing, "ID"));
  await expectCode(h.bob.retryExecution({ executionId: queued.id, requestId: "r1", force: true }), Code.NotFound);
  await expectCode(h.bob.getLogs({ executionId: queued.id }), Code.NotFound);
  await expectCode(h.bob.confirmUploads({ executionId: queued.id }), Code.NotFound);
  await expectCode(h.bob.getOutputDownloads({ executionId: queued.id }), Code.NotFound);
  expect(h.storage.calls.copyInputs).toBe(0);
});

test("API keys and runner tokens each work only on their own service", async () => {
  const withRunnerToken = createClientFor("runner");
  await expectCode(withRunnerToken.listExecutions({}), Code.Unauthenticated);
  const withApiKey = createRunnerClientFor(h.aliceKey);
  await expectCode(withApiKey.registerRunner({ name: "r", runtimes: ["python"] }), Code.Unauthenticated);
  const withNothing = createClientFor("rgrid_notakey");
  await expectCode(withNothing.getExecution({ executionId: "exec_" + "0".repeat(32) }), Code.Unauthenticated);
});


function createClientFor(token: "runner" | string) {
  return createClient(ExecutionService, h.transportWith(token === "runner" ? RUNNER_TOKEN : token));
}

function createRunnerClientFor(token: string) {
  return createClient(RunnerService, h.transportWith(token));
}
