// Automatic retries on a real grid: a runner process killed while it runs a script loses its
// lease and the execution is re-run on the runner that survived; a script's own transient exit
// code is retried only when the user listed it, and only as often as allowed.
import { rm } from "node:fs/promises";
import { ExecutionStatus, FailureKind, RetryKind } from "@rgrid/proto";
import type { Execution } from "@rgrid/proto";
import { pollUntil, runCli, startTestGrid, startedId } from "../support/grid";
import type { TestGrid } from "../support/grid";
import { executionClient, getExecution, isTerminal, storedLogs, waitForExecution, waitForRetryOf } from "../support/runner-api";
import type { ExecutionClient } from "../support/runner-api";
import { runnerProcessOf, writeScripts } from "../support/runner-processes";
import { printLogsOnFailure } from "../support/failure-logs";

jest.setTimeout(120_000);

const SCRIPTS = {
  "slow_ok.py": `import time
print("started", flush=True)
time.sleep(4)
print("finished")
`,
  "exits.py": `import sys
print("transient trouble", flush=True)
sys.exit(int(sys.argv[1]))
`,
};

/**
 * Longer than the service needs to make an automatic retry after a failure (at once, or at the
 * next lease sweep); a retry that has not appeared by then is not coming.
 */
const NO_RETRY_SETTLE_MS = 5_000;

let grid: TestGrid;
let client: ExecutionClient;
let scriptsDir: string;

beforeAll(async () => {
  grid = await startTestGrid({
    runners: 2,
    runnerEnv: { RGRID_RUNNER_RUNTIMES: "python" },
    // Instead of the production 15 s lease and 5 s backoff: quick, yet no runner is lost to a
    // loaded machine's pauses.
    executionEnv: {
      RGRID_EXECUTION_LEASE_TIMEOUT_SECONDS: "2",
      RGRID_EXECUTION_HEARTBEAT_INTERVAL_SECONDS: "0.4",
      RGRID_EXECUTION_RETRY_BACKOFF_SECONDS: "0.2",
    },
  });
  client = executionClient(grid);
  scriptsDir = await writeScripts(SCRIPTS);
});

afterAll(async () => {
  await grid?.shutdown();
  if (scriptsDir) {
    await rm(scriptsDir, { recursive: true, force: true });
  }
});

printLogsOnFailure("grid", () => grid?.logs, 120);

const rgrid = (...args: string[]) => runCli(grid, args, { cwd: scriptsDir });

async function expectNoRetry(id: string): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, NO_RETRY_SETTLE_MS));
  expect((await getExecution(client, id)).retriedAs).toEqual([]);
}

test("a runner killed mid-run loses the execution, which is retried automatically on the surviving runner", async () => {
  const run = await rgrid("run", "slow_ok.py");
  expect(run.code).toBe(0);
  const id = startedId(run.stdout);
  const running = await waitForExecution(client, id, (execution) => execution.runnerId !== "", "claimed");
  await pollUntil(
    () => storedLogs(client, id),
    (entries) => entries.some((entry) => entry.line === "started"),
    () => `${id} never printed "started"`,
  );

  const victim = runnerProcessOf(grid, running.runnerId);
  process.kill(victim.pid!, "SIGKILL");
  await victim.exited;

  const lost = await waitForExecution(client, id, isTerminal, "terminal");
  expect(lost.status).toBe(ExecutionStatus.FAILED);
  expect(lost.errorMessage).toMatch(/^runner lost/);
  expect(lost.failureKind).toBe(FailureKind.RUNNER_LOST);

  const retry = await waitForRetryOf(client, id);
  expect(retry).toMatchObject<Partial<Execution>>({
    retryKind: RetryKind.AUTOMATIC,
    retryOf: id,
    rootId: id,
    attempt: 2,
    autoRetryNumber: 1,
    retryReason: "runner lost",
    retriedBy: "",
  });

  const finished = await waitForExecution(client, retry.id, isTerminal, "terminal");
  expect(finished.status).toBe(ExecutionStatus.COMPLETED);
  expect(finished.runnerId).not.toBe(running.runnerId);
  expect(runnerProcessOf(grid, finished.runnerId)).not.toBe(victim);
  expect((await storedLogs(client, retry.id)).map((entry) => entry.line)).toEqual(expect.arrayContaining(["started", "finished"]));

  const status = await rgrid("status", retry.id);
  expect(status.code).toBe(0);
  expect(status.stdout).toMatch(/^Auto-retry 1\/2 after runner lost$/m);
});

test("--retry-on-exit 75 --max-retries 2 retries a script exiting 75 exactly twice", async () => {
  const run = await rgrid("run", "exits.py", "75", "--retry-on-exit", "75", "--max-retries", "2");
  expect(run.code).toBe(0);
  const id = startedId(run.stdout);

  const first = await waitForRetryOf(client, id);
  const second = await waitForRetryOf(client, first.id);
  const lineage = [id, first.id, second.id];
  for (const [index, retry] of [first, second].entries()) {
    expect(retry).toMatchObject<Partial<Execution>>({
      retryKind: RetryKind.AUTOMATIC,
      retryOf: lineage[index],
      rootId: id,
      attempt: index + 2,
      autoRetryNumber: index + 1,
      retryReason: "exit code 75",
      maxRetries: 2,
      retryOnExitCodes: [75],
    });
  }
  await waitForExecution(client, second.id, isTerminal, "terminal");
  await expectNoRetry(second.id);

  for (const executionId of lineage) {
    const execution = await getExecution(client, executionId);
    expect(execution.status).toBe(ExecutionStatus.FAILED);
    expect(execution.exitCode).toBe(75);
    expect(execution.failureKind).toBe(FailureKind.SCRIPT);
  }
  const { executions } = await client.listExecutions({ pageSize: 500 });
  expect(executions.filter((execution) => execution.rootId === id).map((execution) => execution.id).sort()).toEqual([...lineage].sort());
  const status = await rgrid("status", second.id);
  expect(status.stdout).toMatch(/^Auto-retry 2\/2 after exit code 75$/m);
});

test("a script's failure is not retried when its exit code was not listed", async () => {
  const unlisted = await rgrid("run", "exits.py", "75", "--wait");
  expect(unlisted.code).toBe(75);
  const otherCode = await rgrid("run", "exits.py", "3", "--retry-on-exit", "75", "--wait");
  expect(otherCode.code).toBe(3);
  await expectNoRetry(startedId(unlisted.stdout));
  expect((await getExecution(client, startedId(otherCode.stdout))).retriedAs).toEqual([]);
});
