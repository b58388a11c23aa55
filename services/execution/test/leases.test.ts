import { Code, ConnectError } from "@connectrpc/connect";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { ExecutionStatus, FailureKind, LogEntry_Stream, ObjectKind, Outcome, RetryKind } from "@rgrid/proto";
import type { CreateExecutionRequest, Execution } from "@rgrid/proto";
import { expectCode } from "./expect-code";
import type { Harness } from "./harness";
import { TEST_SERVICE_SETTINGS, executionRequest, startHarness, uploadAll } from "./harness";
import { createExecutionService } from "../src/server";

// Leases, automatic retries, cancel delivery and the log cap, seen through RunnerService and
// ExecutionService as a runner and a user would. Most tests drive a hand-moved clock and sweep
// on demand, so nothing depends on how fast the machine is.

const LEASE_MILLIS = 10_000;
const BACKOFF_MILLIS = 5_000;

let h: Harness;
let now: number;
const tick = (millis: number) => {
  now += millis;
};

async function start(overrides: Parameters<typeof startHarness>[0] = {}): Promise<void> {
  now = Date.now();
  h = await startHarness({
    clock: () => new Date(now),
    leaseTimeoutMillis: LEASE_MILLIS,
    heartbeatIntervalMillis: 2_000,
    retryBackoffBaseMillis: BACKOFF_MILLIS,
    ...overrides,
  });
}

afterEach(async () => {
  await h.close();
});

async function register(sandboxWarnings: string[] = []): Promise<string> {
  return (await h.runner.registerRunner({ name: "test-runner", runtimes: ["python"], sandboxWarnings })).runnerId;
}

async function queue(overrides: Partial<Omit<CreateExecutionRequest, "$typeName">> = {}): Promise<Execution> {
  const request = executionRequest({ runtime: "python", ...overrides });
  const created = (await h.alice.createExecution(request)).execution!;
  uploadAll(h.storage, created, request);
  return (await h.alice.confirmUploads({ executionId: created.id })).execution!;
}

/** Claims the one claimable execution; fails the test when it is not `expectedId`. */
async function claim(runnerId: string, expectedId: string): Promise<Execution> {
  const { assignment } = await h.runner.claimExecution({ runnerId, waitMillis: 0 });
  expect(assignment?.execution?.id).toBe(expectedId);
  return assignment!.execution!;
}

async function get(executionId: string): Promise<Execution> {
  return (await h.alice.getExecution({ executionId })).execution!;
}

/** The one retry of `executionId`, or undefined. */
async function retryOf(executionId: string): Promise<Execution | undefined> {
  const retries = (await get(executionId)).retriedAs;
  expect(retries.length).toBeLessThanOrEqual(1);
  return retries[0] === undefined ? undefined : get(retries[0]);
}

/** An execution its runner claimed and then went silent on, given up by the sweep as "runner lost" (no retries left). */
async function givenUpAsLost(): Promise<{ runnerId: string; execution: Execution }> {
  const runnerId = await register();
  const execution = await queue({ maxRetries: 0 });
  await claim(runnerId, execution.id);
  tick(LEASE_MILLIS + 1);
  expect((await h.service.leases.sweepOnce()).lost).toEqual([execution.id]);
  return { runnerId, execution };
}

describe("heartbeats", () => {
  beforeEach(() => start());

  test("registering tells the runner how often to heartbeat and how long its lease is", async () => {
    const response = await h.runner.registerRunner({ name: "r", runtimes: ["python"] });
    expect(response.heartbeatIntervalMillis).toBe(2_000);
    expect(response.leaseTimeoutMillis).toBe(LEASE_MILLIS);
    // And that a completion may carry the log's last lines.
    expect(response.completionStoresLogs).toBe(true);
  });

  test("an unknown runner is told to register again", async () => {
    await expectCode(
      h.runner.heartbeat({ runnerId: "runner_" + "0".repeat(32), executionIds: [] }),
      Code.NotFound,
      "register again",
    );
  });

  test("a malformed heartbeat is refused", async () => {
    const runnerId = await register();
    await expectCode(h.runner.heartbeat({ runnerId, executionIds: ["exec_nope"] }), Code.InvalidArgument, "execution_ids");
  });

  test("answers which held executions were cancelled and which sent ids the runner no longer holds", async () => {
    const runnerId = await register();
    const kept = await queue();
    await claim(runnerId, kept.id);
    const cancelled = await queue();
    await claim(runnerId, cancelled.id);
    const unknown = "exec_" + "f".repeat(32);

    let answer = await h.runner.heartbeat({ runnerId, executionIds: [kept.id, cancelled.id, unknown] });
    expect(answer.cancelExecutionIds).toEqual([]);
    expect(answer.lostExecutionIds).toEqual([unknown]);

    const afterCancel = (await h.alice.cancelExecution({ executionId: cancelled.id })).execution!;
    expect(afterCancel.status).toBe(ExecutionStatus.RUNNING);
    answer = await h.runner.heartbeat({ runnerId, executionIds: [kept.id, cancelled.id] });
    expect(answer.cancelExecutionIds).toEqual([cancelled.id]);
    expect(answer.lostExecutionIds).toEqual([]);

    // The runner stops it and says so: cancelled, and never retried.
    await h.runner.completeExecution({ runnerId, executionId: cancelled.id, outcome: Outcome.CANCELLED });
    expect((await get(cancelled.id)).status).toBe(ExecutionStatus.CANCELLED);
    expect(await retryOf(cancelled.id)).toBeUndefined();
    answer = await h.runner.heartbeat({ runnerId, executionIds: [kept.id, cancelled.id] });
    expect(answer).toMatchObject({ cancelExecutionIds: [], lostExecutionIds: [cancelled.id] });
  });

  test("heartbeats keep a runner's lease: a busy runner is never given up", async () => {
    const runnerId = await register();
    const execution = await queue();
    await claim(runnerId, execution.id);
    for (let beat = 0; beat < 5; beat++) {
      tick(LEASE_MILLIS / 2);
      await h.runner.heartbeat({ runnerId, executionIds: [execution.id] });
      expect((await h.service.leases.sweepOnce()).lost).toEqual([]);
    }
    expect((await get(execution.id)).status).toBe(ExecutionStatus.RUNNING);
  });
});

describe("a runner that forgets an execution it holds", () => {
  beforeEach(() => start());

  // Its claim's answer never arrived, or it gave up reporting the end: it heartbeats on
  // without listing the execution, which nothing else would ever finish.
  test("has it given up as runner lost after a lease, then retried automatically", async () => {
    const runnerId = await register();
    const forgotten = await queue();
    await claim(runnerId, forgotten.id);

    // Within the lease an unlisted execution may just be a claim answered moments ago.
    tick(LEASE_MILLIS / 2);
    await h.runner.heartbeat({ runnerId, executionIds: [] });
    expect((await get(forgotten.id)).status).toBe(ExecutionStatus.RUNNING);

    tick(LEASE_MILLIS);
    await h.runner.heartbeat({ runnerId, executionIds: [] });
    const given = await get(forgotten.id);
    expect(given.status).toBe(ExecutionStatus.FAILED);
    expect(given.failureKind).toBe(FailureKind.RUNNER_LOST);
    expect(given.errorMessage).toBe(`runner lost: runner ${runnerId} is no longer running it`);

    await h.service.leases.sweepOnce();
    expect(await retryOf(forgotten.id)).toMatchObject({ retryKind: RetryKind.AUTOMATIC, retryReason: "runner lost" });
  });

  test("keeps executions it lists, however long they run", async () => {
    const runnerId = await register();
    const listed = await queue();
    await claim(runnerId, listed.id);
    tick(LEASE_MILLIS * 3);
    await h.runner.heartbeat({ runnerId, executionIds: [listed.id] });
    expect((await get(listed.id)).status).toBe(ExecutionStatus.RUNNING);
  });
});

describe("a runner that goes silent", () => {
  beforeEach(() => start());

  test("loses its executions after the lease; each is retried automatically with its lineage", async () => {
    const runnerId = await register();
    const original = await queue({ maxRetries: 2 });
    await claim(runnerId, original.id);

    tick(LEASE_MILLIS - 1);
    expect((await h.service.leases.sweepOnce()).lost).toEqual([]);
    tick(2);
    const sweep = await h.service.leases.sweepOnce();
    expect(sweep.lost).toEqual([original.id]);

    const failed = await get(original.id);
    expect(failed.status).toBe(ExecutionStatus.FAILED);
    expect(failed.failureKind).toBe(FailureKind.RUNNER_LOST);
    expect(failed.errorMessage).toMatch(/^runner lost/);
    expect(timestampDate(failed.finishedAt!).getTime()).toBe(now);

    const retry = await retryOf(original.id);
    expect(sweep.retried).toEqual([retry?.id]);
    expect(retry).toMatchObject({
      status: ExecutionStatus.QUEUED,
      retryOf: original.id,
      rootId: original.id,
      attempt: 2,
      retryKind: RetryKind.AUTOMATIC,
      retriedBy: "",
      autoRetryNumber: 1,
      maxRetries: 2,
      retryReason: "runner lost",
      args: original.args,
      inputs: original.inputs,
    });
    expect(timestampDate(retry!.notBefore!).getTime()).toBe(now + BACKOFF_MILLIS);
    // The retry's objects were copied, as for any retry.
    expect(h.storage.keysUnder(retry!.id).length).toBe(h.storage.keysUnder(original.id).length);

    // The silent runner comes back: it is told it lost the execution, and cannot report it.
    const answer = await h.runner.heartbeat({ runnerId, executionIds: [original.id] });
    expect(answer.lostExecutionIds).toEqual([original.id]);
    await expectCode(
      h.runner.completeExecution({ runnerId, executionId: original.id, outcome: Outcome.COMPLETED, exitCode: 0 }),
      Code.FailedPrecondition,
    );

    // Sweeping again changes nothing and makes no second retry.
    expect(await h.service.leases.sweepOnce()).toEqual({ lost: [], retried: [] });
    expect((await get(original.id)).retriedAs).toHaveLength(1);
  });

  test("a lineage is retried at most max_retries times, each backoff twice the last", async () => {
    let current = await queue({ maxRetries: 2 });
    const lineage = [current.id];
    for (let number = 1; number <= 3; number++) {
      const runnerId = await register();
      await claim(runnerId, current.id);
      tick(LEASE_MILLIS + 1);
      await h.service.leases.sweepOnce();
      const retry = await retryOf(current.id);
      if (number > 2) {
        expect(retry).toBeUndefined(); // the budget of 2 is spent
        break;
      }
      expect(retry).toMatchObject({ autoRetryNumber: number, attempt: number + 1, rootId: lineage[0] });
      expect(timestampDate(retry!.notBefore!).getTime() - now).toBe(BACKOFF_MILLIS * 2 ** (number - 1));
      tick(BACKOFF_MILLIS * 2 ** (number - 1));
      current = retry!;
      lineage.push(current.id);
    }
    expect(lineage).toHaveLength(3);
    const statuses = await Promise.all(lineage.map(async (id) => (await get(id)).status));
    expect(statuses).toEqual([ExecutionStatus.FAILED, ExecutionStatus.FAILED, ExecutionStatus.FAILED]);
  });

  test("with max_retries 0 it is not retried", async () => {
    const runnerId = await register();
    const original = await queue({ maxRetries: 0 });
    await claim(runnerId, original.id);
    tick(LEASE_MILLIS + 1);
    expect(await h.service.leases.sweepOnce()).toEqual({ lost: [original.id], retried: [] });
    expect(await retryOf(original.id)).toBeUndefined();
  });

  test("an execution whose cancel was requested ends cancelled and is not retried", async () => {
    const runnerId = await register();
    const original = await queue();
    await claim(runnerId, original.id);
    await h.alice.cancelExecution({ executionId: original.id });
    tick(LEASE_MILLIS + 1);
    await h.service.leases.sweepOnce();
    const after = await get(original.id);
    expect(after.status).toBe(ExecutionStatus.CANCELLED);
    expect(after.failureKind).toBe(FailureKind.UNSPECIFIED);
    expect(await retryOf(original.id)).toBeUndefined();
  });
});

describe("outcomes a runner reports", () => {
  beforeEach(() => start());

  async function report(outcome: Outcome, exitCode: number | undefined, overrides: Partial<CreateExecutionRequest> = {}) {
    const runnerId = await register();
    const execution = await queue(overrides);
    await claim(runnerId, execution.id);
    await h.runner.completeExecution({ runnerId, executionId: execution.id, outcome, exitCode, errorMessage: "it broke" });
    return { after: await get(execution.id), retry: await retryOf(execution.id) };
  }

  test("an infrastructure error is a failure of that kind, retried automatically", async () => {
    const { after, retry } = await report(Outcome.INFRASTRUCTURE_ERROR, undefined);
    expect(after).toMatchObject({ status: ExecutionStatus.FAILED, failureKind: FailureKind.INFRASTRUCTURE, errorMessage: "it broke" });
    expect(retry).toMatchObject({ retryKind: RetryKind.AUTOMATIC, retryReason: "infrastructure error", autoRetryNumber: 1 });
    expect(timestampDate(retry!.notBefore!).getTime()).toBe(now + BACKOFF_MILLIS);
  });

  test("a script failure is retried only when its exit code was declared transient", async () => {
    const listed = await report(Outcome.FAILED, 75, { retryOnExitCodes: [75, 76] });
    expect(listed.after).toMatchObject({ status: ExecutionStatus.FAILED, failureKind: FailureKind.SCRIPT, exitCode: 75 });
    expect(listed.retry).toMatchObject({ retryKind: RetryKind.AUTOMATIC, retryReason: "exit code 75" });

    const unlisted = await report(Outcome.FAILED, 3, { retryOnExitCodes: [75] });
    expect(unlisted.after.failureKind).toBe(FailureKind.SCRIPT);
    expect(unlisted.retry).toBeUndefined();

    const undeclared = await report(Outcome.FAILED, 75);
    expect(undeclared.retry).toBeUndefined();
  });

  test("cancelled, timed-out and completed executions are never retried", async () => {
    for (const [outcome, status] of [
      [Outcome.CANCELLED, ExecutionStatus.CANCELLED],
      [Outcome.TIMED_OUT, ExecutionStatus.TIMED_OUT],
      [Outcome.COMPLETED, ExecutionStatus.COMPLETED],
    ] as const) {
      const { after, retry } = await report(outcome, outcome === Outcome.COMPLETED ? 0 : undefined, { retryOnExitCodes: [75] });
      expect(after.status).toBe(status);
      expect(after.failureKind).toBe(FailureKind.UNSPECIFIED);
      expect(retry).toBeUndefined();
    }
    expect(await h.service.leases.sweepOnce()).toEqual({ lost: [], retried: [] });
  });

  test("a resent failure report makes no second retry", async () => {
    const runnerId = await register();
    const execution = await queue();
    await claim(runnerId, execution.id);
    const request = { runnerId, executionId: execution.id, outcome: Outcome.INFRASTRUCTURE_ERROR, errorMessage: "no inputs" };
    await Promise.all([h.runner.completeExecution(request), h.runner.completeExecution(request)]);
    await h.runner.completeExecution(request);
    expect((await get(execution.id)).retriedAs).toHaveLength(1);
  });

  test("an automatic retry that could not be made (storage unreachable) is made by the next sweep", async () => {
    const runnerId = await register();
    const execution = await queue();
    await claim(runnerId, execution.id);
    h.storage.failWith("copyInputs", new ConnectError("connect ECONNREFUSED", Code.Unavailable));
    await h.runner.completeExecution({ runnerId, executionId: execution.id, outcome: Outcome.INFRASTRUCTURE_ERROR });
    expect((await get(execution.id)).status).toBe(ExecutionStatus.FAILED);
    expect(await retryOf(execution.id)).toBeUndefined();
    expect((await h.service.leases.sweepOnce()).retried).toEqual([]);

    h.storage.recover("copyInputs");
    const sweep = await h.service.leases.sweepOnce();
    const retry = await retryOf(execution.id);
    expect(sweep.retried).toEqual([retry?.id]);
    expect(retry).toMatchObject({ retryReason: "infrastructure error", autoRetryNumber: 1 });
    expect((await h.service.leases.sweepOnce()).retried).toEqual([]);
  });

  test("an automatic retry that can never be made (an input gone) is given up, saying why", async () => {
    const runnerId = await register();
    const execution = await queue();
    await claim(runnerId, execution.id);
    const scriptKey = h.storage.keysUnder(execution.id).find((key) => key.includes("/script/")) as string;
    const script = h.storage.objects.get(scriptKey)!;
    h.storage.objects.delete(scriptKey);
    await h.runner.completeExecution({ runnerId, executionId: execution.id, outcome: Outcome.INFRASTRUCTURE_ERROR, errorMessage: "disk full" });
    const after = await get(execution.id);
    expect(after.errorMessage).toMatch(/^disk full; automatic retry not possible: cannot retry/);
    expect(await retryOf(execution.id)).toBeUndefined();

    // Not tried again by the sweeps, even if the object came back.
    h.storage.put(execution.id, ObjectKind.SCRIPT, execution.script!.name, script.sizeBytes);
    const copies = h.storage.calls.copyInputs;
    expect((await h.service.leases.sweepOnce()).retried).toEqual([]);
    expect(h.storage.calls.copyInputs).toBe(copies);
  });

  test("failures that are not due a retry never keep a lost runner's execution from its retry", async () => {
    // Script failures with declared retry codes but another exit code, finished first.
    const runnerId = await register();
    for (let index = 0; index < 101; index++) {
      const failed = await queue({ retryOnExitCodes: [75] });
      await claim(runnerId, failed.id);
      await h.runner.completeExecution({ runnerId, executionId: failed.id, outcome: Outcome.FAILED, exitCode: 1 });
    }
    const silent = await register();
    const lost = await queue();
    await claim(silent, lost.id);
    tick(LEASE_MILLIS + 1);
    await h.runner.heartbeat({ runnerId, executionIds: [] });
    const sweep = await h.service.leases.sweepOnce();
    expect(sweep.lost).toEqual([lost.id]);
    expect(sweep.retried).toEqual([(await retryOf(lost.id))?.id]);
  });

  test("a failure already retried by its owner gets no automatic retry besides", async () => {
    const runnerId = await register();
    const execution = await queue();
    await claim(runnerId, execution.id);
    const forced = (await h.alice.retryExecution({ executionId: execution.id, force: true, requestId: "forced-1" })).execution!;
    await h.runner.completeExecution({ runnerId, executionId: execution.id, outcome: Outcome.INFRASTRUCTURE_ERROR });
    expect((await get(execution.id)).retriedAs).toEqual([forced.id]);
    expect((await h.service.leases.sweepOnce()).retried).toEqual([]);
    expect((await get(execution.id)).retriedAs).toEqual([forced.id]);
  });

  test("a runner's own failure report after it was given up as lost is refused, not taken as a resend", async () => {
    const { runnerId, execution } = await givenUpAsLost();
    await expectCode(
      h.runner.completeExecution({ runnerId, executionId: execution.id, outcome: Outcome.FAILED, exitCode: 1 }),
      Code.FailedPrecondition,
      "already failed",
    );
    const after = await get(execution.id);
    expect(after.failureKind).toBe(FailureKind.RUNNER_LOST);
    expect(after.exitCode).toBeUndefined();
  });

  test("a resent script failure report is still acknowledged", async () => {
    const runnerId = await register();
    const execution = await queue({ maxRetries: 0 });
    await claim(runnerId, execution.id);
    const report = { runnerId, executionId: execution.id, outcome: Outcome.FAILED, exitCode: 3 };
    await h.runner.completeExecution(report);
    await h.runner.completeExecution(report);
    await expectCode(h.runner.completeExecution({ ...report, exitCode: 4 }), Code.FailedPrecondition);
  });
});

describe("after a restart", () => {
  beforeEach(() => start());

  test("a new sweeper gives nothing up before a lease has passed, so runners can heartbeat first", async () => {
    const runnerId = await register();
    const execution = await queue();
    await claim(runnerId, execution.id);
    tick(3 * LEASE_MILLIS); // the service was down; the runner's heartbeats failed meanwhile
    const restarted = createExecutionService({ db: h.db, storage: h.storage.client(), ...TEST_SERVICE_SETTINGS, clock: () => new Date(now), leaseTimeoutMillis: LEASE_MILLIS });
    expect((await restarted.leases.sweepOnce()).lost).toEqual([]);
    tick(LEASE_MILLIS / 2);
    await h.runner.heartbeat({ runnerId, executionIds: [execution.id] });
    tick(LEASE_MILLIS / 2 + 1);
    expect((await restarted.leases.sweepOnce()).lost).toEqual([]);
    expect((await get(execution.id)).status).toBe(ExecutionStatus.RUNNING);
  });
});

describe("claims", () => {
  test("an automatic retry is not claimed before its backoff ends", async () => {
    await start();
    const runnerId = await register();
    const original = await queue();
    await claim(runnerId, original.id);
    await h.runner.completeExecution({ runnerId, executionId: original.id, outcome: Outcome.INFRASTRUCTURE_ERROR });
    const retry = (await retryOf(original.id))!;

    expect((await h.runner.claimExecution({ runnerId, waitMillis: 0 })).assignment).toBeUndefined();
    tick(BACKOFF_MILLIS - 1);
    expect((await h.runner.claimExecution({ runnerId, waitMillis: 0 })).assignment).toBeUndefined();
    tick(1);
    await claim(runnerId, retry.id);
  });

  test("a waiting claim wakes when a backoff ends, without waiting for its next recheck", async () => {
    // The real clock, and a recheck far beyond the claim's wait: only the backoff's end can wake it.
    h = await startHarness({ retryBackoffBaseMillis: 300, claimRecheckMillis: 600_000 });
    const runnerId = await register();
    const original = await queue();
    await claim(runnerId, original.id);
    await h.runner.completeExecution({ runnerId, executionId: original.id, outcome: Outcome.INFRASTRUCTURE_ERROR });
    const retry = (await retryOf(original.id))!;
    const { assignment } = await h.runner.claimExecution({ runnerId, waitMillis: 25_000 });
    expect(assignment?.execution?.id).toBe(retry.id);
  });

  test("the runner's sandbox warnings are recorded with each execution it claims", async () => {
    await start();
    const warnings = ["no cgroup memory controller: memory is not limited"];
    const runnerId = await register(warnings);
    const execution = await queue();
    expect((await claim(runnerId, execution.id)).sandboxWarnings).toEqual(warnings);
    expect((await get(execution.id)).sandboxWarnings).toEqual(warnings);
  });
});

describe("a claim that cannot be handed over", () => {
  beforeEach(() => start());

  test("ends cancelled when its owner asked to cancel it meanwhile, instead of going back to the queue", async () => {
    const runnerId = await register();
    const execution = await queue();
    h.storage.beforeDownloadGrants = async (executionId) => {
      await h.alice.cancelExecution({ executionId });
      throw new ConnectError("connect ECONNREFUSED", Code.Unavailable);
    };
    await expectCode(h.runner.claimExecution({ runnerId, waitMillis: 0 }), Code.Unavailable);
    const after = await get(execution.id);
    expect(after.status).toBe(ExecutionStatus.CANCELLED);
    expect(after.finishedAt).toBeDefined();
  });
});

describe("log lines of an execution that ended without its runner", () => {
  beforeEach(() => start());

  test("are acknowledged but not stored", async () => {
    const { runnerId, execution } = await givenUpAsLost();
    await h.runner.appendLogs({
      runnerId,
      executionId: execution.id,
      entries: [{ sequence: 1n, stream: LogEntry_Stream.STDOUT, line: "late" }],
    });
    expect((await h.alice.getLogs({ executionId: execution.id })).entries).toEqual([]);
  });
});

describe("log lines carried by the completion", () => {
  beforeEach(() => start({ maxLogBytes: 100 }));

  const entry = (sequence: number, line: string) => ({ sequence: BigInt(sequence), stream: LogEntry_Stream.STDOUT, line });

  test("are stored after AppendLogs' lines and before the end, by AppendLogs' rules; a resent report adds nothing", async () => {
    const runnerId = await register();
    const execution = await queue();
    await claim(runnerId, execution.id);
    await h.runner.appendLogs({ runnerId, executionId: execution.id, entries: [entry(1, "first")] });
    const report = {
      runnerId,
      executionId: execution.id,
      outcome: Outcome.COMPLETED,
      exitCode: 0,
      // A resent line (1), new ones, and one past the cap (100 bytes).
      finalEntries: [entry(1, "first"), entry(2, "second"), entry(3, "x".repeat(200))],
    };
    await h.runner.completeExecution(report);
    await h.runner.completeExecution(report); // a resend
    expect((await get(execution.id)).status).toBe(ExecutionStatus.COMPLETED);
    const { entries } = await h.alice.getLogs({ executionId: execution.id });
    expect(entries.map((stored) => [Number(stored.sequence), stored.stream, stored.line])).toEqual([
      [1, LogEntry_Stream.STDOUT, "first"],
      [2, LogEntry_Stream.STDOUT, "second"],
      [3, LogEntry_Stream.SYSTEM, "[rgrid] log truncated: output exceeded 100 bytes; later lines were not stored"],
    ]);
  });

  test("are not stored when the report is refused: the execution had already ended without its runner", async () => {
    const { runnerId, execution } = await givenUpAsLost();
    await expectCode(
      h.runner.completeExecution({ runnerId, executionId: execution.id, outcome: Outcome.COMPLETED, exitCode: 0, finalEntries: [entry(1, "late")] }),
      Code.FailedPrecondition,
    );
    expect((await h.alice.getLogs({ executionId: execution.id })).entries).toEqual([]);
  });

  test("are refused with the field named when one breaks AppendLogs' rules, and the execution goes on running", async () => {
    const runnerId = await register();
    const execution = await queue();
    await claim(runnerId, execution.id);
    await expectCode(
      h.runner.completeExecution({ runnerId, executionId: execution.id, outcome: Outcome.COMPLETED, exitCode: 0, finalEntries: [entry(0, "no sequence")] }),
      Code.InvalidArgument,
      "final_entries[0].sequence",
    );
    expect((await get(execution.id)).status).toBe(ExecutionStatus.RUNNING);
    expect((await h.alice.getLogs({ executionId: execution.id })).entries).toEqual([]);
  });
});

describe("batch parallelism", () => {
  test("a claim waiting for room in a batch wakes when one of its executions ends", async () => {
    // The real clock, and a recheck far beyond the claim's wait: only the end can wake it.
    h = await startHarness({ claimRecheckMillis: 600_000 });
    const batchId = "batch_" + "a".repeat(32);
    const first = await queue({ batchId, batchParallelism: 1 });
    const second = await queue({ batchId, batchParallelism: 1 });
    const runnerId = await register();
    await claim(runnerId, first.id);
    const waiting = h.runner.claimExecution({ runnerId, waitMillis: 25_000 });
    await new Promise((resolve) => setTimeout(resolve, 200));
    await h.runner.completeExecution({ runnerId, executionId: first.id, outcome: Outcome.COMPLETED, exitCode: 0 });
    expect((await waiting).assignment?.execution?.id).toBe(second.id);
  }, 40_000);
});

describe("the lease sweep running on its own", () => {
  test("gives up a silent runner's execution soon after its lease", async () => {
    h = await startHarness({ leaseTimeoutMillis: 300, heartbeatIntervalMillis: 60, retryBackoffBaseMillis: 0 });
    h.service.leases.start();
    const runnerId = await register();
    const original = await queue({ maxRetries: 1 });
    await claim(runnerId, original.id);
    // The failure is recorded first and its retry made right after: wait for both.
    let after = await get(original.id);
    for (let polls = 0; after.retriedAs.length === 0 && polls < 400; polls++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      after = await get(original.id);
    }
    expect(after.status).toBe(ExecutionStatus.FAILED);
    expect(after.errorMessage).toMatch(/^runner lost/);
    expect((await retryOf(original.id))?.retryReason).toBe("runner lost");
  });
});

describe("the log cap", () => {
  const CAP = 100;
  beforeEach(() => start({ maxLogBytes: CAP }));

  const entry = (sequence: number, line: string) => ({ sequence: BigInt(sequence), stream: LogEntry_Stream.STDOUT, line });

  test("lines past the cap are dropped and one system line says so; resends change nothing", async () => {
    const runnerId = await register();
    const execution = await queue();
    await claim(runnerId, execution.id);
    const line = "x".repeat(30); // three fit in 100 bytes, the fourth does not
    const first = [1, 2, 3].map((sequence) => entry(sequence, line));
    await h.runner.appendLogs({ runnerId, executionId: execution.id, entries: first });
    await h.runner.appendLogs({ runnerId, executionId: execution.id, entries: first }); // a resend
    const second = [4, 5, 6].map((sequence) => entry(sequence, line));
    await h.runner.appendLogs({ runnerId, executionId: execution.id, entries: second });
    await h.runner.appendLogs({ runnerId, executionId: execution.id, entries: second }); // a resend
    await h.runner.appendLogs({ runnerId, executionId: execution.id, entries: [entry(7, "short")] });

    const { entries } = await h.alice.getLogs({ executionId: execution.id });
    expect(entries.map((stored) => [Number(stored.sequence), stored.stream, stored.line])).toEqual([
      [1, LogEntry_Stream.STDOUT, line],
      [2, LogEntry_Stream.STDOUT, line],
      [3, LogEntry_Stream.STDOUT, line],
      [4, LogEntry_Stream.SYSTEM, `[rgrid] log truncated: output exceeded ${CAP} bytes; later lines were not stored`],
    ]);
  });

  test("a line that would cross the cap within one batch is where the marker goes", async () => {
    const runnerId = await register();
    const execution = await queue();
    await claim(runnerId, execution.id);
    await h.runner.appendLogs({
      runnerId,
      executionId: execution.id,
      entries: [entry(1, "é".repeat(45)), entry(2, "y".repeat(11)), entry(3, "z")],
    });
    const { entries } = await h.alice.getLogs({ executionId: execution.id });
    // "é" is two bytes in UTF-8: 90 bytes stored, 11 more would pass 100.
    expect(entries.map((stored) => stored.stream)).toEqual([LogEntry_Stream.STDOUT, LogEntry_Stream.SYSTEM]);
  });
});
