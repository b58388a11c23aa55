import { ExecutionStatus } from "@rgrid/proto";
import { CANCEL_WAIT_MS } from "../src/commands/cancel";
import { FakeExecutionService } from "./fake-execution-service";
import { runAgainst } from "./harness";

describe("rgrid cancel", () => {
  it("cancels a queued execution at once", async () => {
    const fake = new FakeExecutionService();
    const execution = fake.seed({ status: ExecutionStatus.QUEUED });

    const result = await runAgainst(fake, ["cancel", execution.id]);

    expect(result.exitCode).toBe(0);
    expect(result.stdout).toEqual([`Cancelled: ${execution.id}`]);
    expect(result.stderr).toEqual([]);
    expect(fake.executions.get(execution.id)?.status).toBe(ExecutionStatus.CANCELLED);
    expect(result.sleeps).toEqual([]);
  });

  it("waits for the runner to stop a running execution", async () => {
    const fake = new FakeExecutionService();
    const execution = fake.seed({ status: ExecutionStatus.RUNNING });
    fake.runnerStopsAfterPolls = 3;

    const result = await runAgainst(fake, ["cancel", execution.id]);

    expect(result.exitCode).toBe(0);
    expect(result.stdout).toEqual([`Cancelled: ${execution.id}`]);
    expect(result.sleeps).toEqual([250, 250, 250]);
  });

  it("says the cancel was requested when the runner does not stop it in time", async () => {
    const fake = new FakeExecutionService();
    const execution = fake.seed({ status: ExecutionStatus.RUNNING });

    const result = await runAgainst(fake, ["cancel", execution.id], { terminal: true });

    expect(result.exitCode).toBe(0);
    expect(result.stdout).toEqual([
      `Cancellation requested: ${execution.id}`,
      `The runner stops it at its next heartbeat. Check with: rgrid status ${execution.id}`,
    ]);
    // Bounded: the waits add up to the limit, then the CLI stops waiting.
    expect(result.sleeps.reduce((sum, ms) => sum + ms, 0)).toBe(CANCEL_WAIT_MS);
    expect(result.status.at(-1)).toBe("");
    expect(fake.executions.get(execution.id)?.cancelRequestedAt).toBeDefined();
  });

  it.each([
    [ExecutionStatus.COMPLETED, "completed"],
    [ExecutionStatus.TIMED_OUT, "timed out"],
    [ExecutionStatus.CANCELLED, "cancelled"],
  ])("refuses a finished execution (%s) with exit 1 and a plain sentence", async (status, said) => {
    const fake = new FakeExecutionService();
    const execution = fake.seed({ status });

    const result = await runAgainst(fake, ["cancel", execution.id]);

    expect(result.exitCode).toBe(1);
    expect(result.stdout).toEqual([]);
    expect(result.stderr).toEqual([`Execution ${execution.id} is already ${said}; there is nothing to cancel.`]);
    expect(fake.executions.get(execution.id)?.status).toBe(status);
  });

  it("exits 1 with the usual sentence for an unknown execution", async () => {
    const result = await runAgainst(new FakeExecutionService(), ["cancel", "exec_00000000000000000000000000000000"]);

    expect(result.exitCode).toBe(1);
    expect(result.stderr).toEqual([
      "Error: execution exec_00000000000000000000000000000000 not found. Check the id with 'rgrid list'.",
    ]);
  });

  it("re-sends the cancel after a lost connection", async () => {
    const fake = new FakeExecutionService();
    const execution = fake.seed({ status: ExecutionStatus.QUEUED });
    fake.outages.set("cancelExecution", 1);

    const result = await runAgainst(fake, ["cancel", execution.id]);

    expect(result.exitCode).toBe(0);
    expect(result.stderr).toEqual(["Connection lost. Retrying... (attempt 2/5)"]);
    expect(result.stdout).toEqual([`Cancelled: ${execution.id}`]);
    expect(fake.cancelRequests).toHaveLength(2);
  });

  it("reports its own cancel as done when the answer was lost and the re-send is refused as already cancelled", async () => {
    const fake = new FakeExecutionService();
    const execution = fake.seed({ status: ExecutionStatus.QUEUED });
    fake.lostAnswers.set("cancelExecution", 1);

    const result = await runAgainst(fake, ["cancel", execution.id]);

    expect(fake.cancelRequests).toHaveLength(2);
    expect(result.stderr).toEqual(["Connection lost. Retrying... (attempt 2/5)"]);
    expect(result.stdout).toEqual([`Cancelled: ${execution.id}`]);
    expect(result.exitCode).toBe(0);
  });

  it("prints the execution its lost cancel cancelled as JSON with --json", async () => {
    const fake = new FakeExecutionService();
    const execution = fake.seed({ status: ExecutionStatus.QUEUED });
    fake.lostAnswers.set("cancelExecution", 1);

    const result = await runAgainst(fake, ["cancel", execution.id, "--json"]);

    expect(result.exitCode).toBe(0);
    expect(JSON.parse(result.stdout.join("\n"))).toMatchObject({ id: execution.id, status: "cancelled" });
  });

  it("still refuses a re-send that finds the execution finished some other way", async () => {
    const fake = new FakeExecutionService();
    const execution = fake.seed({ status: ExecutionStatus.COMPLETED });
    fake.outages.set("cancelExecution", 1);

    const result = await runAgainst(fake, ["cancel", execution.id]);

    expect(result.exitCode).toBe(1);
    expect(result.stderr.at(-1)).toBe(`Execution ${execution.id} is already completed; there is nothing to cancel.`);
  });

  it("prints the cancelled execution as JSON with --json", async () => {
    const fake = new FakeExecutionService();
    const execution = fake.seed({ status: ExecutionStatus.QUEUED });

    const result = await runAgainst(fake, ["cancel", execution.id, "--json"]);

    expect(result.exitCode).toBe(0);
    expect(JSON.parse(result.stdout.join("\n"))).toMatchObject({ id: execution.id, status: "cancelled" });
  });

  it("treats a missing id as a usage error and sends nothing", async () => {
    const fake = new FakeExecutionService();

    const result = await runAgainst(fake, ["cancel"]);

    expect(result.exitCode).toBe(2);
    expect(result.stderr[0]).toMatch(/^Error: missing required argument 'id'/);
    expect(fake.authorizations).toEqual([]);
  });
});
