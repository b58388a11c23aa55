import { create } from "@bufbuild/protobuf";
import { DurationSchema, timestampDate, timestampFromDate, timestampFromMs } from "@bufbuild/protobuf/wkt";
import type { Duration, Timestamp } from "@bufbuild/protobuf/wkt";
import { Code } from "@connectrpc/connect";
import { ExecutionStatus } from "@rgrid/proto";
import type { RetryExecutionRequest } from "@rgrid/proto";
import type { ExecutionServerDeps } from "../src/server";
import { describeOnEachDatabase } from "./databases";
import type { DatabaseDriver } from "./databases";
import { expectCode } from "./expect-code";
import { countExecutions, finishedExecution, registeredRunner } from "./flows";
import { startHarness, startHarnessOn } from "./harness";
import type { Harness } from "./harness";

// Delayed retries (RetryExecutionRequest.queued_until): made at once like any retry, queued until
// their time. The rules that touch queries run on every database; the request rules once.

const SECOND = 1000;
const DAY = 86_400 * SECOND;

const delay = (millis: number): Duration =>
  create(DurationSchema, { seconds: BigInt(Math.floor(millis / SECOND)), nanos: (millis % SECOND) * 1_000_000 });
const inDelay = (millis: number): RetryExecutionRequest["queuedUntil"] => ({ case: "delay", value: delay(millis) });
const atTime = (ms: number): RetryExecutionRequest["queuedUntil"] => ({ case: "notBefore", value: timestampFromMs(ms) });
const millisOf = (timestamp: Timestamp | undefined) => (timestamp === undefined ? undefined : timestampDate(timestamp).getTime());

/** A service on a scratch database of `driver`, with Alice's client and a runner's. */
async function harnessOn(driver: DatabaseDriver, settings: Partial<ExecutionServerDeps>): Promise<Harness> {
  return startHarnessOn(await driver.scratch(), settings);
}

describeOnEachDatabase("delayed retries", (driver) => {
  let h: Harness;
  let now: number;

  beforeEach(async () => {
    // Near the real time: protovalidate checks not_before against the real clock.
    now = Date.now();
    h = await harnessOn(driver, { clock: () => new Date(now) });
  });
  afterEach(async () => {
    await h.close();
  });

  /** What a runner gets when it looks once, without waiting. */
  async function claimNow(runnerId: string): Promise<string | undefined> {
    return (await h.runner.claimExecution({ runnerId, waitMillis: 0 })).assignment?.execution?.id;
  }

  test("is made at once, inputs copied, and claimed only once its delay has passed on the service's clock", async () => {
    const original = await finishedExecution(h);
    const runnerId = await registeredRunner(h);

    const { execution: retry } = await h.alice.retryExecution({ executionId: original.id, requestId: "later", queuedUntil: inDelay(90 * SECOND) });

    expect(retry!.status).toBe(ExecutionStatus.QUEUED);
    expect(retry!.retryOf).toBe(original.id);
    expect(millisOf(retry!.notBefore)).toBe(now + 90 * SECOND);
    expect(h.storage.keysUnder(retry!.id)).toHaveLength(2);
    const { execution: read } = await h.alice.getExecution({ executionId: retry!.id });
    expect(millisOf(read!.notBefore)).toBe(now + 90 * SECOND);

    now += 90 * SECOND - 1;
    expect(await claimNow(runnerId)).toBeUndefined();
    now += 1;
    expect(await claimNow(runnerId)).toBe(retry!.id);
  });

  test("a time given as not_before is recorded as given", async () => {
    const original = await finishedExecution(h);
    const at = now + 3 * DAY + 250;

    const { execution: retry } = await h.alice.retryExecution({ executionId: original.id, requestId: "at", queuedUntil: atTime(at) });

    expect(millisOf(retry!.notBefore)).toBe(at);
  });

  test("a re-sent request_id returns the same retry, with the first request's time", async () => {
    const original = await finishedExecution(h);
    const first = await h.alice.retryExecution({ executionId: original.id, requestId: "once", queuedUntil: inDelay(60 * SECOND) });
    const count = await countExecutions(h);

    now += 10 * SECOND;
    const again = await h.alice.retryExecution({ executionId: original.id, requestId: "once", queuedUntil: inDelay(60 * SECOND) });
    const other = await h.alice.retryExecution({ executionId: original.id, requestId: "once", queuedUntil: atTime(now + DAY) });
    const undelayed = await h.alice.retryExecution({ executionId: original.id, requestId: "once" });

    for (const answer of [again, other, undelayed]) {
      expect(answer.execution!.id).toBe(first.execution!.id);
      expect(millisOf(answer.execution!.notBefore)).toBe(millisOf(first.execution!.notBefore));
    }
    expect(await countExecutions(h)).toBe(count);
  });

  test("cancelled while it waits, it is never claimed", async () => {
    const original = await finishedExecution(h);
    const runnerId = await registeredRunner(h);
    const { execution: retry } = await h.alice.retryExecution({ executionId: original.id, requestId: "x", queuedUntil: inDelay(30 * SECOND) });

    const { execution: cancelled } = await h.alice.cancelExecution({ executionId: retry!.id });

    expect(cancelled!.status).toBe(ExecutionStatus.CANCELLED);
    now += 60 * SECOND;
    expect(await claimNow(runnerId)).toBeUndefined();
    expect((await h.alice.getExecution({ executionId: retry!.id })).execution!.status).toBe(ExecutionStatus.CANCELLED);
  });

  test("a time already past (clock skew) lets the retry run at once", async () => {
    const original = await finishedExecution(h);
    const runnerId = await registeredRunner(h);
    const { execution: retry } = await h.alice.retryExecution({ executionId: original.id, requestId: "skew", queuedUntil: atTime(now - 5 * SECOND) });

    expect(await claimNow(runnerId)).toBe(retry!.id);
  });
});

describeOnEachDatabase("a runner waiting for work", (driver) => {
  let h: Harness;

  beforeEach(async () => {
    // The real clock; rechecks far apart, so only the wake-up at not_before can start the retry.
    h = await harnessOn(driver, { claimRecheckMillis: 60_000 });
  });
  afterEach(async () => {
    await h.close();
  });

  test("is woken when a delayed retry's time comes, and starts it within a second of it", async () => {
    const original = await finishedExecution(h);
    const runnerId = await registeredRunner(h);
    // Waiting already when the retry is made: the retry's notification wakes it, it finds the
    // retry not yet due, and waits for its time.
    const claim = h.runner.claimExecution({ runnerId, waitMillis: 10_000 }).then((answer) => ({ answer, at: Date.now() }));
    await new Promise((resolve) => setTimeout(resolve, 100));
    const { execution: retry } = await h.alice.retryExecution({ executionId: original.id, requestId: "wake", queuedUntil: inDelay(1500) });

    const { answer, at } = await claim;

    expect(answer.assignment?.execution?.id).toBe(retry!.id);
    const late = at - millisOf(retry!.notBefore)!;
    expect(late).toBeGreaterThanOrEqual(0);
    expect(late).toBeLessThan(1000);
  });
});

describe("the delay's rules", () => {
  let h: Harness;
  let originalId: string;
  beforeAll(async () => {
    h = await startHarness();
    originalId = (await finishedExecution(h)).id;
  });
  afterAll(async () => {
    await h.close();
  });

  const refusals: Array<[string, RetryExecutionRequest["queuedUntil"], string]> = [
    ["a zero delay", { case: "delay", value: delay(0) }, "invalid delay"],
    ["a negative delay", { case: "delay", value: create(DurationSchema, { seconds: -5n }) }, "invalid delay"],
    ["a delay over 7 days", { case: "delay", value: delay(7 * DAY + SECOND) }, "invalid delay"],
    ["a delay of mixed signs", { case: "delay", value: create(DurationSchema, { seconds: 5n, nanos: -1 }) }, "invalid delay"],
    ["a delay beyond Duration's range", { case: "delay", value: create(DurationSchema, { seconds: 2n ** 62n }) }, "invalid delay"],
    ["the most negative delay", { case: "delay", value: create(DurationSchema, { seconds: -(2n ** 63n) }) }, "invalid delay"],
    ["a delay of nanos only, a second of them", { case: "delay", value: create(DurationSchema, { nanos: 1_000_000_000 }) }, "invalid delay"],
    ["a time over 7 days ahead", { case: "notBefore", value: timestampFromMs(Date.now() + 7 * DAY + 60 * SECOND) }, "invalid not_before"],
    ["a time long past", { case: "notBefore", value: timestampFromDate(new Date(0)) }, "invalid not_before"],
    ["a time beyond Timestamp's range", { case: "notBefore", value: { $typeName: "google.protobuf.Timestamp", seconds: 2n ** 62n, nanos: 0 } }, "invalid not_before"],
    ["the earliest time", { case: "notBefore", value: { $typeName: "google.protobuf.Timestamp", seconds: -(2n ** 63n), nanos: 0 } }, "invalid not_before"],
    ["the latest time", { case: "notBefore", value: { $typeName: "google.protobuf.Timestamp", seconds: 2n ** 63n - 1n, nanos: 0 } }, "invalid not_before"],
    ["a time with negative nanos", { case: "notBefore", value: { $typeName: "google.protobuf.Timestamp", seconds: BigInt(Math.floor(Date.now() / 1000) + 60), nanos: -1 } }, "invalid not_before"],
    ["a time with nanos out of range", { case: "notBefore", value: { $typeName: "google.protobuf.Timestamp", seconds: BigInt(Math.floor(Date.now() / 1000) + 60), nanos: 2_000_000_000 } }, "invalid not_before"],
  ];

  test.each(refusals)("%s is InvalidArgument naming the field, and nothing is made", async (_, queuedUntil, message) => {
    const count = await countExecutions(h);
    await expectCode(h.alice.retryExecution({ executionId: originalId, requestId: `bad-${count}`, queuedUntil }), Code.InvalidArgument, message);
    expect(await countExecutions(h)).toBe(count);
  });

  test("7 days exactly is allowed", async () => {
    const { execution } = await h.alice.retryExecution({ executionId: originalId, requestId: "week", queuedUntil: inDelay(7 * DAY) });
    expect(execution!.notBefore).toBeDefined();
  });
});
