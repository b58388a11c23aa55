import { create } from "@bufbuild/protobuf";
import { durationMs } from "@bufbuild/protobuf/wkt";
import { Code } from "@connectrpc/connect";
import { silentLogger } from "@rgrid/common";
import {
  DiffChange,
  ErrorInfo_Reason,
  ErrorInfoSchema,
  ExecutionStatus,
  FailureKind,
  FileInfoSchema,
  LogDiff_Result,
  LogEntry_Stream,
  LogEntrySchema,
  Outcome,
} from "@rgrid/proto";
import type { CreateExecutionRequest, DiffExecutionsResponse, Execution } from "@rgrid/proto";
import { compareLogs } from "../src/executions/log-divergence";
import type { ReadLines } from "../src/executions/log-divergence";
import { createLogArchive } from "../src/executions/log-archive";
import { createStorageGateway } from "../src/storage";
import { expectCode } from "./expect-code";
import { queuedExecution } from "./flows";
import { executionRequest, sha256Of, startHarness, uploadAll } from "./harness";
import type { Harness } from "./harness";

let h: Harness;
beforeEach(async () => {
  h = await startHarness();
});
afterEach(async () => {
  await h.close();
});

type Line = [LogEntry_Stream, string];
const out = (line: string): Line => [LogEntry_Stream.STDOUT, line];
const err = (line: string): Line => [LogEntry_Stream.STDERR, line];

interface Run {
  request?: Partial<Omit<CreateExecutionRequest, "$typeName">>;
  outcome?: Outcome;
  exitCode?: number;
  errorMessage?: string;
  lines?: Line[];
  /** A runner id from `runner()`; a new runner with these warnings otherwise. */
  runnerId?: string;
  sandboxWarnings?: string[];
}

async function runner(sandboxWarnings: string[] = []): Promise<string> {
  return (await h.runner.registerRunner({ name: "diff-runner", runtimes: ["python", "node"], sandboxWarnings })).runnerId;
}

/** An execution created with `request`, run by a runner that logged `lines`, finished as `outcome`. */
async function ran(run: Run = {}): Promise<Execution> {
  const request = executionRequest(run.request);
  const created = (await h.alice.createExecution(request)).execution!;
  uploadAll(h.storage, created, request);
  await h.alice.confirmUploads({ executionId: created.id });
  const runnerId = run.runnerId ?? (await runner(run.sandboxWarnings));
  const claim = await h.runner.claimExecution({ runnerId, waitMillis: 0 });
  expect(claim.assignment?.execution?.id).toBe(created.id);
  const lines = run.lines ?? [];
  if (lines.length > 0) {
    await h.runner.appendLogs({
      runnerId,
      executionId: created.id,
      entries: lines.map(([stream, line], index) => create(LogEntrySchema, { sequence: BigInt(index + 1), stream, line })),
    });
  }
  const outcome = run.outcome ?? Outcome.COMPLETED;
  await h.runner.completeExecution({
    runnerId,
    executionId: created.id,
    outcome,
    exitCode: run.exitCode ?? (outcome === Outcome.COMPLETED ? 0 : 1),
    errorMessage: run.errorMessage ?? "",
  });
  return (await h.alice.getExecution({ executionId: created.id })).execution!;
}

const diff = (a: Execution, b: Execution, showValues = false): Promise<DiffExecutionsResponse> =>
  h.alice.diffExecutions({ executionA: a.id, executionB: b.id, showValues });

/** Every single-valued part of a diff, by name. */
function parts(d: DiffExecutionsResponse) {
  return {
    script: DiffChange[d.script],
    args: DiffChange[d.args],
    runtime: DiffChange[d.runtime],
    timeout: DiffChange[d.timeout],
    network: DiffChange[d.network],
    runner: DiffChange[d.runner],
    sandboxWarnings: DiffChange[d.sandboxWarnings],
    outcome: DiffChange[d.outcome],
  };
}

const allSame = {
  script: "SAME",
  args: "SAME",
  runtime: "SAME",
  timeout: "SAME",
  network: "SAME",
  runner: "SAME",
  sandboxWarnings: "SAME",
  outcome: "SAME",
};

test("two runs of the same work on one runner compare the same in every part, and each side says what it ran", async () => {
  const runnerId = await runner(["no cgroup"]);
  const a = await ran({ runnerId, lines: [out("hello")] });
  const b = await ran({ runnerId, lines: [out("hello")] });
  const d = await diff(a, b);

  expect(parts(d)).toEqual(allSame);
  expect(d.inputs.map((input) => [input.name, DiffChange[input.change]])).toEqual([["input.json", "SAME"]]);
  expect(d.env.map((entry) => [entry.key, DiffChange[entry.change], entry.valueA, entry.valueB])).toEqual([
    ["MODE", "SAME", undefined, undefined],
  ]);
  expect(d.logs?.result).toBe(LogDiff_Result.SAME);

  expect(d.a?.executionId).toBe(a.id);
  expect(d.b?.executionId).toBe(b.id);
  expect(d.a).toMatchObject({
    rootId: a.id,
    attempt: 1,
    script: a.script,
    args: ["input.json", "--verbose"],
    runtime: "python:3.11",
    timeoutSeconds: 60,
    network: false,
    runnerId,
    sandboxWarnings: ["no cgroup"],
    status: ExecutionStatus.COMPLETED,
    exitCode: 0,
    failureKind: FailureKind.UNSPECIFIED,
    errorMessage: "",
  });
  expect(durationMs(d.a!.duration!)).toBeGreaterThanOrEqual(0);
});

test("script, args, runtime, timeout, network, runner and sandbox warnings that differ are CHANGED", async () => {
  const a = await ran({ sandboxWarnings: ["no cgroup", "no pid namespace"] });
  const b = await ran({
    request: {
      script: create(FileInfoSchema, { name: "process.py", sizeBytes: 13n, sha256: sha256Of("print('bye')\n") }),
      args: ["input.json"],
      runtime: "python",
      timeoutSeconds: 120,
      network: true,
    },
    sandboxWarnings: ["no pid namespace"],
  });
  const d = await diff(a, b);
  expect(parts(d)).toEqual({
    script: "CHANGED",
    args: "CHANGED",
    runtime: "CHANGED",
    timeout: "CHANGED",
    network: "CHANGED",
    runner: "CHANGED",
    sandboxWarnings: "CHANGED",
    outcome: "SAME",
  });
  expect(d.b).toMatchObject({ args: ["input.json"], runtime: "python", timeoutSeconds: 120, network: true });
  expect(d.b?.script?.sha256).toBe(sha256Of("print('bye')\n"));
});

test("sandbox warnings in another order are the same", async () => {
  const a = await ran({ sandboxWarnings: ["no cgroup", "no pid namespace"] });
  const b = await ran({ sandboxWarnings: ["no pid namespace", "no cgroup"] });
  expect(DiffChange[(await diff(a, b)).sandboxWarnings]).toBe("SAME");
});

test("inputs are compared by name: added, removed, changed (size or sha256) and same", async () => {
  const file = (name: string, content: string) =>
    create(FileInfoSchema, { name, sizeBytes: BigInt(content.length), sha256: sha256Of(content) });
  const a = await ran({
    request: { inputs: [file("same.csv", "1,2"), file("size.csv", "abc"), file("digest.csv", "abc"), file("gone.csv", "x")] },
  });
  const b = await ran({
    request: { inputs: [file("same.csv", "1,2"), file("size.csv", "abcd"), file("digest.csv", "abd"), file("new.csv", "y")] },
  });
  const d = await diff(a, b);
  expect(d.inputs.map((input) => [input.name, DiffChange[input.change], input.a?.sha256, input.b?.sha256])).toEqual([
    ["digest.csv", "CHANGED", sha256Of("abc"), sha256Of("abd")],
    ["gone.csv", "REMOVED", sha256Of("x"), undefined],
    ["new.csv", "ADDED", undefined, sha256Of("y")],
    ["same.csv", "SAME", sha256Of("1,2"), sha256Of("1,2")],
    ["size.csv", "CHANGED", sha256Of("abc"), sha256Of("abcd")],
  ]);
  expect(d.inputs.find((input) => input.name === "size.csv")?.b?.sizeBytes).toBe(4n);
});

test("env keys are compared without their values unless show_values is set", async () => {
  const a = await ran({ request: { env: { SAME: "1", CHANGED: "old", GONE: "x" } } });
  const b = await ran({ request: { env: { SAME: "1", CHANGED: "new", NEW: "y" } } });

  const hidden = await diff(a, b);
  expect(hidden.env.map((entry) => [entry.key, DiffChange[entry.change], entry.valueA, entry.valueB])).toEqual([
    ["CHANGED", "CHANGED", undefined, undefined],
    ["GONE", "REMOVED", undefined, undefined],
    ["NEW", "ADDED", undefined, undefined],
    ["SAME", "SAME", undefined, undefined],
  ]);

  const shown = await diff(a, b, true);
  expect(shown.env.map((entry) => [entry.key, entry.valueA, entry.valueB])).toEqual([
    ["CHANGED", "old", "new"],
    ["GONE", "x", undefined],
    ["NEW", undefined, "y"],
    ["SAME", "1", "1"],
  ]);
});

test("the outcome compares status, exit code, failure kind and error message, and each side reports its own", async () => {
  const failed = await ran({ outcome: Outcome.FAILED, exitCode: 3, errorMessage: "ConnectionResetError: peer went away" });
  const failedOtherwise = await ran({ outcome: Outcome.FAILED, exitCode: 4, errorMessage: "ConnectionResetError: peer went away" });
  const completed = await ran();

  expect(DiffChange[(await diff(failed, failedOtherwise)).outcome]).toBe("CHANGED");
  const d = await diff(failed, completed);
  expect(DiffChange[d.outcome]).toBe("CHANGED");
  expect(d.a).toMatchObject({
    status: ExecutionStatus.FAILED,
    exitCode: 3,
    failureKind: FailureKind.SCRIPT,
    errorMessage: "ConnectionResetError: peer went away",
  });
  expect(d.b).toMatchObject({ status: ExecutionStatus.COMPLETED, exitCode: 0, errorMessage: "" });
});

test("a failed run and its retry: the same work, another outcome, and lineage on each side", async () => {
  const failed = await ran({ outcome: Outcome.FAILED, exitCode: 1, errorMessage: "boom", lines: [out("start"), err("boom")] });
  const retry = (await h.alice.retryExecution({ executionId: failed.id, requestId: "diff-retry" })).execution!;
  const runnerId = await runner();
  await h.runner.claimExecution({ runnerId, waitMillis: 0 });
  await h.runner.appendLogs({
    runnerId,
    executionId: retry.id,
    entries: [out("start"), out("done")].map(([stream, line], index) => create(LogEntrySchema, { sequence: BigInt(index + 1), stream, line })),
  });
  await h.runner.completeExecution({ runnerId, executionId: retry.id, outcome: Outcome.COMPLETED, exitCode: 0 });

  const d = await h.alice.diffExecutions({ executionA: failed.id, executionB: retry.id });
  expect(parts(d)).toEqual({ ...allSame, runner: "CHANGED", outcome: "CHANGED" });
  expect(d.b).toMatchObject({ rootId: failed.id, attempt: 2 });
  expect(d.logs).toMatchObject({ result: LogDiff_Result.DIVERGED, line: 2n });
  expect([d.logs?.a?.stream, d.logs?.a?.line]).toEqual([LogEntry_Stream.STDERR, "boom"]);
  expect([d.logs?.b?.stream, d.logs?.b?.line]).toEqual([LogEntry_Stream.STDOUT, "done"]);
});

describe("logs", () => {
  const lines = (count: number) => Array.from({ length: count }, (_, index) => out(`line ${index + 1}`));

  test("the same lines are SAME", async () => {
    const d = await diff(await ran({ lines: lines(5) }), await ran({ lines: lines(5) }));
    expect(d.logs).toMatchObject({ result: LogDiff_Result.SAME, line: 0n, reason: "" });
    expect(d.logs?.a).toBeUndefined();
  });

  test("two empty logs are SAME", async () => {
    expect((await diff(await ran(), await ran())).logs?.result).toBe(LogDiff_Result.SAME);
  });

  test("logs that diverge at line 3 report that line and both entries", async () => {
    const b = lines(5);
    b[2] = out("line 3, but otherwise");
    const d = await diff(await ran({ lines: lines(5) }), await ran({ lines: b }));
    expect(d.logs).toMatchObject({ result: LogDiff_Result.DIVERGED, line: 3n });
    expect(d.logs?.a).toMatchObject({ sequence: 3n, stream: LogEntry_Stream.STDOUT, line: "line 3" });
    expect(d.logs?.b).toMatchObject({ sequence: 3n, stream: LogEntry_Stream.STDOUT, line: "line 3, but otherwise" });
  });

  test("the same text on another stream diverges", async () => {
    const d = await diff(await ran({ lines: [out("x")] }), await ran({ lines: [err("x")] }));
    expect(d.logs).toMatchObject({ result: LogDiff_Result.DIVERGED, line: 1n });
  });

  test("a longer log diverges where the shorter one ended, with no entry on the shorter side", async () => {
    const d = await diff(await ran({ lines: lines(4) }), await ran({ lines: lines(6) }));
    expect(d.logs).toMatchObject({ result: LogDiff_Result.DIVERGED, line: 5n });
    expect(d.logs?.a).toBeUndefined();
    expect(d.logs?.b?.line).toBe("line 5");

    const reversed = await diff(await ran({ lines: lines(6) }), await ran({ lines: lines(4) }));
    expect(reversed.logs).toMatchObject({ result: LogDiff_Result.DIVERGED, line: 5n });
    expect(reversed.logs?.a?.line).toBe("line 5");
    expect(reversed.logs?.b).toBeUndefined();
  });

  test("logs are compared in pages: divergence past the first pages, and sameness across pages", async () => {
    const a = await ran({ lines: lines(23) });
    const b = lines(23);
    b[16] = out("changed");
    const diverged = await ran({ lines: b });
    const twin = await ran({ lines: lines(23) });
    const shorter = await ran({ lines: lines(20) });
    const em = h.db.fork();
    const record = (execution: Execution) => ({ id: execution.id, status: "completed" as const, logsArchived: false });
    const logArchive = createLogArchive({ db: h.db, storage: createStorageGateway(h.storage.client()), logger: silentLogger });
    const readLines: ReadLines = (execution, after, limit) => logArchive.readLines(em, execution, after, limit);

    const atPageSize = async (x: Execution, y: Execution, pageSize: number) => compareLogs(readLines, record(x), record(y), pageSize);
    for (const pageSize of [1, 5, 10, 23, 500]) {
      expect(await atPageSize(a, diverged, pageSize)).toMatchObject({ result: LogDiff_Result.DIVERGED, line: 17n });
      expect(await atPageSize(a, twin, pageSize)).toMatchObject({ result: LogDiff_Result.SAME });
      // A page boundary right where the shorter log ends.
      expect(await atPageSize(a, shorter, pageSize)).toMatchObject({ result: LogDiff_Result.DIVERGED, line: 21n });
    }
  });

  test("a log of an execution that has not finished is not compared", async () => {
    const finished = await ran({ lines: lines(2) });
    const queued = await queuedExecution(h);
    const d = await h.alice.diffExecutions({ executionA: finished.id, executionB: queued.id });
    expect(d.logs).toMatchObject({
      result: LogDiff_Result.NOT_COMPARED,
      reason: `${queued.id} is queued: its log is not complete yet`,
    });
    expect(d.b).toMatchObject({ status: ExecutionStatus.QUEUED, runnerId: "" });
    expect(d.b?.duration).toBeUndefined();
    expect(d.b?.exitCode).toBeUndefined();
    expect(DiffChange[d.runner]).toBe("CHANGED");
  });
});

test("an execution diffed with itself is the same in every part", async () => {
  const a = await ran({ lines: [out("only")], outcome: Outcome.FAILED });
  const d = await diff(a, a);
  expect(parts(d)).toEqual(allSame);
  expect(d.logs?.result).toBe(LogDiff_Result.SAME);
});

describe("refusals", () => {
  test("another account's execution is NotFound exactly like a missing one, on either side", async () => {
    const own = await ran();
    const bobs = (await h.bob.createExecution(executionRequest())).execution!;
    const missing = `exec_${"0".repeat(32)}`;

    for (const [executionA, executionB, named] of [
      [own.id, bobs.id, bobs.id],
      [bobs.id, own.id, bobs.id],
      [own.id, missing, missing],
    ] as const) {
      const error = await expectCode(h.alice.diffExecutions({ executionA, executionB }), Code.NotFound);
      expect(error.rawMessage).toBe(`execution ${named} not found`);
      expect(error.findDetails(ErrorInfoSchema)).toEqual([
        expect.objectContaining({ reason: ErrorInfo_Reason.NOT_FOUND, executionId: named }),
      ]);
    }
    // The owner sees its own.
    await expect(h.bob.diffExecutions({ executionA: bobs.id, executionB: bobs.id })).resolves.toBeDefined();
  });

  test("malformed ids are InvalidArgument naming the field", async () => {
    const own = await ran();
    await expectCode(
      h.alice.diffExecutions({ executionA: own.id, executionB: "exec_nope" }),
      Code.InvalidArgument,
      "invalid execution_b: must be exec_ followed by 32 lowercase hex characters",
    );
    await expectCode(h.alice.diffExecutions({ executionA: "", executionB: own.id }), Code.InvalidArgument, "invalid execution_a");
  });
});
