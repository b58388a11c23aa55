import { create } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { silentLogger } from "@rgrid/common";
import { ExecutionStatus, LogEntry_Stream, LogEntrySchema, Outcome } from "@rgrid/proto";
import type { FollowLogsResponse } from "@rgrid/proto";
import { Execution } from "../src/db/entities";
import { createFollowLogs } from "../src/executions/follow-logs";
import { ExecutionActivity } from "../src/executions/execution-activity";
import { createLogArchive } from "../src/executions/log-archive";
import { createStorageGateway } from "../src/storage";
import { expectCode } from "./expect-code";
import { queuedExecution, registeredRunner } from "./flows";
import { startHarness } from "./harness";
import type { Harness } from "./harness";

let h: Harness;
beforeEach(async () => {
  h = await startHarness();
});
afterEach(async () => {
  await h.close();
});

/** Reads a FollowLogs stream in the background, keeping every message it gets. */
function follow(request: { executionId: string; afterSequence?: bigint }) {
  const messages: FollowLogsResponse[] = [];
  const ended = (async () => {
    for await (const message of h.alice.followLogs(request)) {
      messages.push(message);
    }
  })();
  // Observed either way, so an aborted stream's rejection is never unhandled.
  const outcome = ended.then(
    () => "ended" as const,
    (error: unknown) => ConnectError.from(error),
  );
  return {
    messages,
    outcome,
    sequences: () => messages.flatMap((message) => message.entries.map((entry) => Number(entry.sequence))),
  };
}

async function waitFor(condition: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (!condition()) {
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** Where the service under test reads lines from; none of these tests' executions is archived. */
const logArchiveOf = (harness: Harness) => createLogArchive({ db: harness.db, storage: createStorageGateway(harness.storage.client()), logger: silentLogger });

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

async function runningExecution() {
  const queued = await queuedExecution(h);
  const runnerId = await registeredRunner(h);
  await h.runner.claimExecution({ runnerId, waitMillis: 0 });
  const append = (sequences: number[]) =>
    h.runner.appendLogs({
      runnerId,
      executionId: queued.id,
      entries: sequences.map((sequence) =>
        create(LogEntrySchema, { sequence: BigInt(sequence), stream: LogEntry_Stream.STDOUT, line: `line ${sequence}` }),
      ),
    });
  const complete = (outcome = Outcome.COMPLETED) =>
    h.runner.completeExecution({ runnerId, executionId: queued.id, outcome, exitCode: outcome === Outcome.COMPLETED ? 0 : 1 });
  return { id: queued.id, append, complete };
}

test("streams lines appended while following and ends once the execution is finished", async () => {
  const execution = await runningExecution();
  await execution.append(range(1, 3));
  const stream = follow({ executionId: execution.id });
  await waitFor(() => stream.sequences().length === 3, "the lines stored before following");
  expect(stream.messages[0]?.status).toBe(ExecutionStatus.RUNNING);

  await execution.append(range(4, 6));
  await waitFor(() => stream.sequences().length === 6, "lines appended while following");
  await execution.append(range(7, 8));
  await execution.complete();

  expect(await stream.outcome).toBe("ended");
  expect(stream.sequences()).toEqual(range(1, 8));
  expect(stream.messages.flatMap((message) => message.entries.map((entry) => entry.line))).toEqual(
    range(1, 8).map((n) => `line ${n}`),
  );
  expect(stream.messages.at(-1)?.status).toBe(ExecutionStatus.COMPLETED);
  expect(stream.messages.slice(0, -1).every((message) => message.status === ExecutionStatus.RUNNING)).toBe(true);
});

test("a finished execution's logs are sent after after_sequence and the stream ends", async () => {
  const execution = await runningExecution();
  await execution.append(range(1, 5));
  await execution.complete(Outcome.FAILED);
  const stream = follow({ executionId: execution.id, afterSequence: 2n });
  expect(await stream.outcome).toBe("ended");
  expect(stream.sequences()).toEqual([3, 4, 5]);
  expect(stream.messages.at(-1)?.status).toBe(ExecutionStatus.FAILED);
});

test("a stream dropped mid-way and reopened after the last sequence seen has no gap and no duplicate", async () => {
  const execution = await runningExecution();
  await execution.append(range(1, 2500));
  // Dropped by the client as soon as the first lines arrive, as a lost connection would.
  const aborter = new AbortController();
  const seen: number[] = [];
  const dropped = await (async () => {
    for await (const message of h.alice.followLogs({ executionId: execution.id }, { signal: aborter.signal })) {
      expect(message.entries.length).toBeLessThanOrEqual(1000);
      seen.push(...message.entries.map((entry) => Number(entry.sequence)));
      if (seen.length > 0) {
        aborter.abort();
      }
    }
  })().catch((error: unknown) => ConnectError.from(error));
  expect(dropped).toBeInstanceOf(ConnectError);
  expect((dropped as ConnectError).code).toBe(Code.Canceled);
  expect(seen.length).toBeLessThan(2500);

  const second = follow({ executionId: execution.id, afterSequence: BigInt(seen.at(-1)!) });
  await execution.append(range(2501, 2600));
  await execution.complete();
  expect(await second.outcome).toBe("ended");
  expect(second.messages.every((message) => message.entries.length <= 1000)).toBe(true);
  expect([...seen, ...second.sequences()]).toEqual(range(1, 2600));
});

test("following a queued execution ends when it is cancelled", async () => {
  const queued = await queuedExecution(h);
  const stream = follow({ executionId: queued.id });
  await waitFor(() => stream.messages.length > 0, "the first message");
  expect(stream.messages[0]?.status).toBe(ExecutionStatus.QUEUED);
  await h.alice.cancelExecution({ executionId: queued.id });
  expect(await stream.outcome).toBe("ended");
  expect(stream.messages.at(-1)?.status).toBe(ExecutionStatus.CANCELLED);
  expect(stream.sequences()).toEqual([]);
});

test("another account's execution is NotFound, exactly like a missing one", async () => {
  const queued = await queuedExecution(h);
  const read = async (client: Harness["alice"], executionId: string) => {
    for await (const message of client.followLogs({ executionId })) {
      return message;
    }
    return undefined;
  };
  const foreign = await expectCode(read(h.bob, queued.id), Code.NotFound);
  const missingId = `exec_${"0".repeat(32)}`;
  const missing = await expectCode(read(h.alice, missingId), Code.NotFound);
  expect(foreign.rawMessage.replace(queued.id, "ID")).toBe(missing.rawMessage.replace(missingId, "ID"));
});

test.each([
  ["execution_id", { executionId: "exec_nope" }],
  ["after_sequence", { afterSequence: -1n }],
])("a bad %s is InvalidArgument", async (field, overrides) => {
  const queued = await queuedExecution(h);
  const stream = follow({ executionId: queued.id, ...overrides });
  const outcome = await stream.outcome;
  expect(outcome).toBeInstanceOf(ConnectError);
  expect((outcome as ConnectError).code).toBe(Code.InvalidArgument);
  expect((outcome as ConnectError).rawMessage).toContain(field);
});

describe("createFollowLogs on its own", () => {
  // The 15 s keep-alive and the end on abort, with the intervals made short.
  test("sends an empty message with the status while idle, and ends when the signal aborts", async () => {
    const execution = await runningExecution();
    await execution.append([1]);
    const { accountId } = await h.db.fork().findOneOrFail(Execution, execution.id);
    const followLogs = createFollowLogs({ db: h.db, logActivity: new ExecutionActivity(), recheckMillis: () => 20, idleMessageMillis: 50, logArchive: logArchiveOf(h) });
    const aborter = new AbortController();
    const received: FollowLogsResponse[] = [];
    const caller = { accountId, actorId: "key_unused" };
    for await (const message of followLogs(caller, { executionId: execution.id, afterSequence: 0n }, aborter.signal)) {
      received.push(message);
      if (received.length === 3) {
        aborter.abort();
      }
    }
    expect(received.map((message) => message.entries.map((entry) => entry.line))).toEqual([["line 1"], [], []]);
    expect(received.every((message) => message.status === ExecutionStatus.RUNNING)).toBe(true);
  });
});

/** Counts each execution's looks (a stream watches once per look) and the notifications. */
class ObservedActivity extends ExecutionActivity {
  readonly looks = new Map<string, number>();
  readonly notified: string[] = [];

  override watch(executionId: string) {
    this.looks.set(executionId, (this.looks.get(executionId) ?? 0) + 1);
    return super.watch(executionId);
  }

  override notify(executionId: string): void {
    this.notified.push(executionId);
    super.notify(executionId);
  }
}

test("a stream is woken by its own execution's new lines and end, not by another's lines or a resend", async () => {
  const activity = new ObservedActivity();
  await h.close();
  h = await startHarness({ logActivity: activity });
  const followed = await runningExecution();
  const other = await runningExecution();
  await followed.append([1]);
  const { accountId } = await h.db.fork().findOneOrFail(Execution, followed.id);
  // No rechecks or keep-alives while the test runs: only notifications wake the stream.
  const never = 10 * 60_000;
  const followLogs = createFollowLogs({ db: h.db, logActivity: activity, recheckMillis: () => never, idleMessageMillis: never, logArchive: logArchiveOf(h) });
  const received: string[][] = [];
  const aborter = new AbortController();
  const reading = (async () => {
    const caller = { accountId, actorId: "key_unused" };
    for await (const message of followLogs(caller, { executionId: followed.id, afterSequence: 0n }, aborter.signal)) {
      received.push(message.entries.map((entry) => entry.line));
    }
  })();
  try {
    await waitFor(() => received.length === 1, "the first message");
    const looksWhileWaiting = activity.looks.get(followed.id);

    for (let sequence = 1; sequence <= 50; sequence++) {
      await other.append([sequence]);
    }
    await followed.append([1]); // a resend: nothing is stored, nobody is woken
    await new Promise((resolve) => setImmediate(resolve));
    expect(activity.looks.get(followed.id)).toBe(looksWhileWaiting);
    expect(activity.notified.filter((id) => id === followed.id)).toHaveLength(1); // the first append
    expect(activity.notified.filter((id) => id === other.id)).toHaveLength(50);

    await followed.append([2]);
    await waitFor(() => received.length === 2, "the new line");
    await followed.complete();
    await waitFor(() => received.length === 3, "the last message, with the end");
  } finally {
    aborter.abort(); // only matters when the test failed before the end
    await reading;
  }
  expect(received).toEqual([["line 1"], ["line 2"], []]);
  expect(activity.watchedExecutions).toBe(0);
});
