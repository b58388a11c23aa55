import { ExecutionStatus } from "@rgrid/proto";
import { FakeExecutionService } from "./fake-execution-service";
import { runAgainst } from "./harness";

describe("rgrid retry", () => {
  it("prints the pinned lines for a retry of a failed execution", async () => {
    const fake = new FakeExecutionService();
    const original = fake.seed({ status: ExecutionStatus.FAILED, exitCode: 1 });

    const result = await runAgainst(fake, ["retry", original.id]);

    const retryId = fake.executions.get(original.id)!.retriedAs[0];
    expect(retryId).toMatch(/^exec_[0-9a-f]{32}$/);
    expect(result.exitCode).toBe(0);
    expect(result.stdout).toEqual([
      `Retry started: ${retryId}`,
      `Original: ${original.id}`,
      "Status: queued",
      "",
      `Check status: rgrid status ${retryId}`,
      `View logs: rgrid logs ${retryId}`,
    ]);
    expect(result.stderr).toEqual([]);
    expect(fake.retryRequests[0].force).toBe(false);
    expect(fake.authorizations).toEqual(["Bearer test-api-key"]);
  });

  it("shows the original's error, shortened to one line of about 100 characters", async () => {
    const fake = new FakeExecutionService();
    const longError = `ConnectionError: upstream\nrefused ${"x".repeat(200)}`;
    const original = fake.seed({ status: ExecutionStatus.FAILED, errorMessage: longError });

    const result = await runAgainst(fake, ["retry", original.id]);

    expect(result.exitCode).toBe(0);
    expect(result.stdout[1]).toBe(`Original: ${original.id}`);
    const errorLine = result.stdout[2];
    expect(errorLine.startsWith("Original error: ConnectionError: upstream refused xxx")).toBe(true);
    expect(errorLine.endsWith("...")).toBe(true);
    expect(errorLine.length).toBe("Original error: ".length + 100);
    expect(result.stdout[3]).toBe("Status: queued");
  });

  it("prints one JSON object describing the new execution with --json", async () => {
    const fake = new FakeExecutionService();
    const original = fake.seed({ status: ExecutionStatus.TIMED_OUT, args: ["input.json"], env: { MODE: "fast" } });

    const result = await runAgainst(fake, ["retry", original.id, "--json"]);

    expect(result.exitCode).toBe(0);
    const view = JSON.parse(result.stdout.join("\n"));
    expect(view).toMatchObject({
      status: "queued",
      retry_of: original.id,
      root_id: original.id,
      attempt: 2,
      retry_kind: "manual",
      args: ["input.json"],
      env: { MODE: "fast" },
      exit_code: null,
      finished_at: null,
    });
    expect(view.id).toBe(fake.executions.get(original.id)!.retriedAs[0]);
    expect(typeof view.created_at).toBe("string");
  });

  it("refuses a running execution without --force: warning, exit 1, nothing created", async () => {
    const fake = new FakeExecutionService();
    const original = fake.seed({ status: ExecutionStatus.RUNNING });

    const result = await runAgainst(fake, ["retry", original.id]);

    expect(result.exitCode).toBe(1);
    expect(result.stdout).toEqual(["Warning: Execution status is 'running'", "Use --force to retry anyway."]);
    expect(result.stderr).toEqual([]);
    expect(fake.executions.size).toBe(1);
    // The refusal's ErrorInfo says the status: one call, the CLI does not ask the server again.
    expect(fake.authorizations).toHaveLength(1);
  });

  it("names the actual status when the original is still queued", async () => {
    const fake = new FakeExecutionService();
    const original = fake.seed({ status: ExecutionStatus.QUEUED });

    const result = await runAgainst(fake, ["retry", original.id]);

    expect(result.exitCode).toBe(1);
    expect(result.stdout[0]).toBe("Warning: Execution status is 'queued'");
  });

  it("passes force=true with --force and creates the retry of a running execution", async () => {
    const fake = new FakeExecutionService();
    const original = fake.seed({ status: ExecutionStatus.RUNNING });

    const result = await runAgainst(fake, ["retry", original.id, "--force"]);

    expect(result.exitCode).toBe(0);
    expect(fake.retryRequests.map((request) => request.force)).toEqual([true]);
    expect(fake.executions.size).toBe(2);
    expect(result.stdout[0]).toMatch(/^Retry started: exec_[0-9a-f]{32}$/);
  });

  it("re-sends with the same request_id after a lost connection, creating one retry", async () => {
    const fake = new FakeExecutionService();
    const original = fake.seed({ status: ExecutionStatus.FAILED });
    fake.outages.set("retryExecution", 1);

    const result = await runAgainst(fake, ["retry", original.id]);

    expect(result.exitCode).toBe(0);
    expect(result.stderr).toEqual(["Connection lost. Retrying... (attempt 2/5)"]);
    expect(result.sleeps).toEqual([200]);
    expect(fake.retryRequests).toHaveLength(2);
    const [first, second] = fake.retryRequests;
    expect(first.requestId.length).toBeGreaterThanOrEqual(16);
    expect(second.requestId).toBe(first.requestId);
    expect(fake.executions.size).toBe(2);
  });

  it("uses a new request_id for each invocation", async () => {
    const fake = new FakeExecutionService();
    const original = fake.seed({ status: ExecutionStatus.FAILED });

    await runAgainst(fake, ["retry", original.id]);
    await runAgainst(fake, ["retry", original.id]);

    expect(fake.retryRequests[0].requestId).not.toBe(fake.retryRequests[1].requestId);
    expect(fake.executions.size).toBe(3);
  });

  it("gives up after the configured attempts with exit 3, doubling the wait each time", async () => {
    const fake = new FakeExecutionService();
    const original = fake.seed({ status: ExecutionStatus.FAILED });
    fake.outages.set("retryExecution", 10);

    const result = await runAgainst(fake, ["retry", original.id]);

    expect(result.exitCode).toBe(3);
    expect(result.sleeps).toEqual([200, 400, 800, 1600]);
    expect(result.stderr.slice(0, 4)).toEqual([2, 3, 4, 5].map((n) => `Connection lost. Retrying... (attempt ${n}/5)`));
    expect(result.stderr[4]).toMatch(/^Error: cannot reach the rgrid server at http:\/\/rgrid\.test:8080: .*npm start/);
    expect(fake.executions.size).toBe(1);
  });

  it("reports an unknown execution in one sentence with exit 1", async () => {
    const fake = new FakeExecutionService();

    const result = await runAgainst(fake, ["retry", "exec_0123456789abcdef0123456789abcdef"]);

    expect(result.exitCode).toBe(1);
    expect(result.stderr).toEqual([
      "Error: execution exec_0123456789abcdef0123456789abcdef not found. Check the id with 'rgrid list'.",
    ]);
  });
});
