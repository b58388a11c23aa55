import { create } from "@bufbuild/protobuf";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { durationFromMs } from "@bufbuild/protobuf/wkt";
import {
  DiffChange,
  DiffExecutionsResponseSchema,
  DiffSideSchema,
  ExecutionStatus,
  FailureKind,
  LogDiff_Result,
  LogEntry_Stream,
} from "@rgrid/proto";
import type { DiffExecutionsResponse } from "@rgrid/proto";
import { diffLines, diffView } from "../src/diff-report";

const A = `exec_${"a".repeat(32)}`;
const B = `exec_${"b".repeat(32)}`;

/** A response of two completed attempts that are the same in every part, but for `overrides`. */
function response(overrides: Exclude<MessageInitShape<typeof DiffExecutionsResponseSchema>, DiffExecutionsResponse>): DiffExecutionsResponse {
  const side = (id: string, fields: object) =>
    create(DiffSideSchema, {
      executionId: id,
      rootId: A,
      attempt: id === A ? 1 : 2,
      script: { name: "job.py", sizeBytes: 10n, sha256: "1".repeat(64) },
      runtime: "python",
      status: ExecutionStatus.COMPLETED,
      exitCode: 0,
      ...fields,
    });
  const same = DiffChange.SAME;
  return create(DiffExecutionsResponseSchema, {
    a: side(A, {}),
    b: side(B, {}),
    script: same,
    args: same,
    runtime: same,
    timeout: same,
    network: same,
    runner: same,
    sandboxWarnings: same,
    outcome: same,
    logs: { result: LogDiff_Result.SAME },
    ...overrides,
  });
}

test("every single-valued group that differs says how, and the same ones share one line", () => {
  const d = response({
    a: create(DiffSideSchema, {
      executionId: A,
      rootId: A,
      attempt: 1,
      script: { name: "job.py", sizeBytes: 10n, sha256: "1".repeat(64) },
      args: ["a b", ""],
      runtime: "python",
      timeoutSeconds: 0,
      runnerId: "runner_1",
      sandboxWarnings: ["no cgroup", "no pid namespace"],
      status: ExecutionStatus.TIMED_OUT,
      failureKind: FailureKind.UNSPECIFIED,
      duration: durationFromMs(61_000),
    }),
    b: create(DiffSideSchema, {
      executionId: B,
      rootId: A,
      attempt: 2,
      script: { name: "job.py", sizeBytes: 2048n, sha256: "2".repeat(64) },
      args: [],
      runtime: "python:3.11",
      timeoutSeconds: 90,
      network: true,
      runnerId: "",
      status: ExecutionStatus.FAILED,
      exitCode: 137,
      failureKind: FailureKind.RUNNER_LOST,
      errorMessage: "runner lost",
    }),
    script: DiffChange.CHANGED,
    args: DiffChange.CHANGED,
    runtime: DiffChange.CHANGED,
    timeout: DiffChange.CHANGED,
    network: DiffChange.CHANGED,
    runner: DiffChange.CHANGED,
    sandboxWarnings: DiffChange.CHANGED,
    outcome: DiffChange.CHANGED,
    logs: {
      result: LogDiff_Result.DIVERGED,
      line: 7n,
      a: { sequence: 7n, stream: LogEntry_Stream.SYSTEM, line: "x".repeat(500) },
    },
  });
  expect(diffLines(d)).toEqual([
    `a: ${A} (attempt 1, timed_out)`,
    `b: ${B} (attempt 2 of ${A}, failed)`,
    "",
    "Script: changed",
    `  a: job.py (10 B, sha256 ${"1".repeat(12)})`,
    `  b: job.py (2.0 KiB, sha256 ${"2".repeat(12)})`,
    "Args: changed",
    '  a: "a b" ""',
    "  b: (none)",
    "Runtime: python -> python:3.11",
    "Timeout: default -> 90s",
    "Network: off -> on",
    "Runner: runner_1 -> (none)",
    "Sandbox: changed",
    "  a: no cgroup; no pid namespace",
    "  b: (none)",
    "Outcome: changed",
    "  a: timed_out, 1m 01s",
    "  b: failed, exit code 137, runner lost failure: runner lost",
    "Logs: differ from line 7",
    `  a: [system] ${"x".repeat(197)}...`,
    "  b: (end of log)",
  ]);
});

test("logs that were not compared say why; with everything else the same, one line says so", () => {
  const d = response({ logs: { result: LogDiff_Result.NOT_COMPARED, reason: `${B} is running: its log is not complete yet` } });
  expect(diffLines(d).slice(3)).toEqual([
    `Logs: not compared (${B} is running: its log is not complete yet)`,
    "Same: Script, Args, Runtime, Timeout, Network, Runner, Sandbox, Outcome",
  ]);
  expect(diffView(d, false).logs).toEqual({
    result: "not_compared",
    reason: `${B} is running: its log is not complete yet`,
    line: null,
    a: null,
    b: null,
  });
});
