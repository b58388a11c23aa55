import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { ExecutionStatus, FailureKind, FileInfoSchema, LogEntry_Stream, RetryKind } from "@rgrid/proto";
import { FakeExecutionService } from "./fake-execution-service";
import { runAgainst } from "./harness";
import { localTime } from "../src/present";

describe("rgrid status", () => {
  it("prints identity, status, times, outcome and lineage", async () => {
    const fake = new FakeExecutionService();
    const root = fake.seed({ status: ExecutionStatus.FAILED });
    const execution = fake.seed({
      status: ExecutionStatus.FAILED,
      args: ["input.json"],
      createdAt: timestampFromDate(new Date("2025-03-01T10:00:00Z")),
      startedAt: timestampFromDate(new Date("2025-03-01T10:00:01Z")),
      finishedAt: timestampFromDate(new Date("2025-03-01T10:00:03.500Z")),
      exitCode: 2,
      errorMessage: "script exited with code 2",
      attempt: 2,
      retryOf: root.id,
      rootId: root.id,
      retryKind: RetryKind.MANUAL,
      retriedAs: ["exec_ffffffffffffffffffffffffffffffff"],
    });

    const result = await runAgainst(fake, ["status", execution.id]);

    expect(result.exitCode).toBe(0);
    expect(result.stdout).toEqual([
      `Execution: ${execution.id}`,
      "Status: failed",
      "Runtime: python",
      "Script: process.py",
      "Args: input.json",
      "Created: 2025-03-01 10:00:00 UTC",
      "Started: 2025-03-01 10:00:01 UTC",
      "Finished: 2025-03-01 10:00:03 UTC",
      "Duration: 2.5s",
      "Exit code: 2",
      "Error: script exited with code 2",
      "Attempt: 2",
      `Retry of: ${root.id}`,
      `Root: ${root.id}`,
      "Retried as: exec_ffffffffffffffffffffffffffffffff",
    ]);
  });

  it("shows an automatic retry: its number and reason, its backoff while queued, its batch", async () => {
    const fake = new FakeExecutionService();
    const failed = fake.seed({ status: ExecutionStatus.FAILED, failureKind: FailureKind.RUNNER_LOST });
    const retry = fake.seed({
      status: ExecutionStatus.QUEUED,
      attempt: 2,
      retryOf: failed.id,
      rootId: failed.id,
      retryKind: RetryKind.AUTOMATIC,
      autoRetryNumber: 1,
      maxRetries: 2,
      retryReason: "runner lost",
      notBefore: timestampFromDate(new Date("2025-03-01T10:00:05Z")),
      batchId: `batch_${"c".repeat(32)}`,
      batchParallelism: 4,
      network: true,
    });

    const result = await runAgainst(fake, ["status", retry.id], { now: new Date("2025-03-01T10:00:01Z") });

    expect(result.stdout).toContain(`Queued until ${localTime(retry.notBefore!)}`);
    expect(result.stdout).toContain("Auto-retry 1/2 after runner lost");
    expect(result.stdout).toContain(`Batch: batch_${"c".repeat(32)} (at most 4 running at once)`);
    expect(result.stdout).toContain("Network: enabled");
    expect(result.stdout).toContain(`Retry of: ${failed.id}`);

    const original = await runAgainst(fake, ["status", failed.id]);
    expect(original.stdout).toContain("Failure: runner lost (it stopped reporting while running the script)");
  });

  it("shows the runner, its sandbox warnings and a pending cancel of a running execution", async () => {
    const fake = new FakeExecutionService();
    const execution = fake.seed({
      status: ExecutionStatus.RUNNING,
      runnerId: "runner-7",
      startedAt: timestampFromDate(new Date("2025-03-01T10:00:01Z")),
      sandboxWarnings: ["memory is not limited (no writable cgroup v2)", "network is not isolated (unshare not permitted)"],
      cancelRequestedAt: timestampFromDate(new Date("2025-03-01T10:00:09Z")),
    });

    const result = await runAgainst(fake, ["status", execution.id]);

    expect(result.stdout).toEqual([
      `Execution: ${execution.id}`,
      "Status: running",
      "Cancel requested: 2025-03-01 10:00:09 UTC (the runner stops it at its next heartbeat)",
      "Runtime: python",
      "Script: process.py",
      expect.stringMatching(/^Created: /),
      "Started: 2025-03-01 10:00:01 UTC",
      "Runner: runner-7",
      "Sandbox: memory is not limited (no writable cgroup v2)",
      "Sandbox: network is not isolated (unshare not permitted)",
      "Attempt: 1",
    ]);
  });

  it("prints the JSON view with lowercase status names and ISO times", async () => {
    const fake = new FakeExecutionService();
    const execution = fake.seed({
      status: ExecutionStatus.TIMED_OUT,
      createdAt: timestampFromDate(new Date("2025-03-01T10:00:00Z")),
      metadata: { team: "data" },
    });

    const result = await runAgainst(fake, ["status", execution.id, "--json"]);

    const view = JSON.parse(result.stdout.join("\n"));
    expect(Object.keys(view).sort()).toEqual(
      [
        "id", "status", "script", "runtime", "args", "env", "inputs", "metadata", "timeout_seconds", "created_at",
        "started_at", "finished_at", "exit_code", "error_message", "runner_id", "retry_of", "root_id", "attempt",
        "retry_kind", "retried_as", "outputs", "network", "max_retries", "retry_on_exit_codes", "batch_id",
        "batch_parallelism", "failure_kind", "auto_retry_number", "retry_reason", "sandbox_warnings",
        "cancel_requested_at", "not_before", "overrides",
      ].sort(),
    );
    expect(view).toMatchObject({
      id: execution.id,
      status: "timed_out",
      created_at: "2025-03-01T10:00:00.000Z",
      metadata: { team: "data" },
      retry_kind: "original",
      retry_of: null,
      root_id: execution.id,
    });
  });

  it("exits 1 with a plain sentence for an unknown id", async () => {
    const result = await runAgainst(new FakeExecutionService(), ["status", "exec_00000000000000000000000000000000"]);
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toEqual([
      "Error: execution exec_00000000000000000000000000000000 not found. Check the id with 'rgrid list'.",
    ]);
  });
});

describe("rgrid logs", () => {
  it("pages through stored logs, stdout entries to stdout and stderr entries to stderr", async () => {
    const fake = new FakeExecutionService();
    const execution = fake.seed({ status: ExecutionStatus.COMPLETED });
    fake.logPageSize = 2;
    fake.addLog(execution.id, LogEntry_Stream.STDOUT, "one");
    fake.addLog(execution.id, LogEntry_Stream.STDERR, "two");
    fake.addLog(execution.id, LogEntry_Stream.STDOUT, "three");
    fake.addLog(execution.id, LogEntry_Stream.SYSTEM, "output truncated");
    fake.addLog(execution.id, LogEntry_Stream.STDOUT, "five");

    const result = await runAgainst(fake, ["logs", execution.id]);

    expect(result.exitCode).toBe(0);
    expect(result.stdout).toEqual(["one", "three", "five"]);
    expect(result.stderr).toEqual(["two", "[rgrid] output truncated"]);
  });

  it("prints one JSON array with --json", async () => {
    const fake = new FakeExecutionService();
    const execution = fake.seed();
    fake.addLog(execution.id, LogEntry_Stream.STDERR, "oops");

    const result = await runAgainst(fake, ["logs", execution.id, "--json"]);

    expect(JSON.parse(result.stdout.join("\n"))).toEqual([
      { sequence: 1, stream: "stderr", line: "oops", time: expect.any(String) },
    ]);
  });
});

describe("rgrid list", () => {
  it("prints a table, newest first, filtered by --status and cut at --limit", async () => {
    const fake = new FakeExecutionService();
    const failedOld = fake.seed({ status: ExecutionStatus.FAILED });
    fake.seed({ status: ExecutionStatus.COMPLETED });
    const failedNew = fake.seed({ status: ExecutionStatus.FAILED, attempt: 2, runtime: "node", script: create(FileInfoSchema, { name: "job.js" }) });
    fake.seed({ status: ExecutionStatus.TIMED_OUT });

    const result = await runAgainst(fake, ["list", "--status", "failed", "--status", "timed_out", "--limit", "2"]);

    expect(result.exitCode).toBe(0);
    expect(result.stdout).toHaveLength(3);
    expect(result.stdout[0].split(/\s+/)).toEqual(["ID", "STATUS", "RUNTIME", "SCRIPT", "ATTEMPT", "CREATED"]);
    expect(result.stdout[1]).toMatch(/^exec_\w{32} {2}timed_out {2}python {3}process\.py {2}1 {8}\d{4}-\d\d-\d\d /);
    expect(result.stdout[2].split(/\s+/).slice(0, 5)).toEqual([failedNew.id, "failed", "node", "job.js", "2"]);
    expect(result.stdout.join("\n")).not.toContain(failedOld.id);
  });

  it("follows page tokens until the limit and prints JSON", async () => {
    const fake = new FakeExecutionService();
    for (let index = 0; index < 30; index++) {
      fake.seed({ status: ExecutionStatus.COMPLETED });
    }
    const result = await runAgainst(fake, ["list", "--limit", "25", "--json"]);

    const views = JSON.parse(result.stdout.join("\n")) as Array<{ status: string }>;
    expect(views).toHaveLength(25);
    expect(new Set(views.map((view) => view.status))).toEqual(new Set(["completed"]));
  });

  it("rejects an unknown --status with exit 2, listing the valid names", async () => {
    const fake = new FakeExecutionService();
    const result = await runAgainst(fake, ["list", "--status", "done"]);

    expect(result.exitCode).toBe(2);
    expect(result.stderr[0]).toContain(
      "valid statuses are: uploading, queued, running, completed, failed, timed_out, cancelled",
    );
    expect(fake.authorizations).toEqual([]);
  });
});
