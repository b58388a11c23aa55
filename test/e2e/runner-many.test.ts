// Many runner processes against one pile of queued work, on SQLite and on PostgreSQL: every
// execution runs exactly once, on one runner, and the work is shared between the runners.
import { mapWithLimit } from "@rgrid/common";
import { ExecutionStatus, LogEntry_Stream } from "@rgrid/proto";
import { startTestGrid, printGridLogsOnFailure } from "../support/grid";
import type { TestGrid } from "../support/grid";
import { GRID_DATABASES } from "../support/postgres";
import type { ScratchDatabase } from "../support/postgres";
import { createQueuedExecution, executionClient, isTerminal, storedLogs, waitForExecution } from "../support/runner-api";
import { startRunners } from "../support/runner-processes";
import type { ExtraRunners } from "../support/runner-processes";

jest.setTimeout(600_000);

const EXECUTIONS = 200;
const RUNNERS = 3;

const SCRIPT = {
  name: "once.py",
  content: `import sys
print("ran " + sys.argv[1])
`,
};

describe.each(GRID_DATABASES)("$name", ({ enabled, open }) => {
  const maybe = enabled ? test : test.skip;
  let database: ScratchDatabase | undefined;
  let grid: TestGrid | undefined;
  let runners: ExtraRunners | undefined;

  afterAll(async () => {
    await runners?.stop();
    await grid?.shutdown();
    await database?.drop();
  });

  printGridLogsOnFailure(() => grid, 120);

  maybe(`${EXECUTIONS} queued executions on ${RUNNERS} runners each run exactly once, spread over the runners`, async () => {
    database = await open();
    // No runner yet: the whole pile is queued before the runners compete for it.
    grid = await startTestGrid({ runners: 0, databaseUrl: database?.url });
    const client = executionClient(grid);
    const ids = await mapWithLimit(
      Array.from({ length: EXECUTIONS }, (_, index) => index),
      16,
      (index) => createQueuedExecution(client, { script: SCRIPT, runtime: "python", args: [String(index)] }, `many-${index}`),
    );
    expect(new Set(ids).size).toBe(EXECUTIONS);

    runners = startRunners(grid, RUNNERS, { RGRID_RUNNER_RUNTIMES: "python" });
    const finished = [];
    for (const id of ids) {
      // Each wait has its own deadline, so the whole pile may take as long as steady progress needs.
      finished.push(await waitForExecution(client, id, isTerminal, "terminal"));
    }

    for (const [index, execution] of finished.entries()) {
      expect({ id: execution.id, status: execution.status, exitCode: execution.exitCode }).toEqual({
        id: ids[index],
        status: ExecutionStatus.COMPLETED,
        exitCode: 0,
      });
      expect(execution.runnerId).not.toBe("");
      expect(execution.retriedAs).toEqual([]);
      // One run's output: a second run, by this runner or another, would have printed again.
      const entries = await storedLogs(client, execution.id);
      expect(entries.filter((entry) => entry.stream === LogEntry_Stream.STDOUT).map((entry) => entry.line)).toEqual([`ran ${index}`]);
      expect(entries.map((entry) => Number(entry.sequence))).toEqual(entries.map((_, position) => position + 1));
      // No runner process started it twice, or started it while another held it.
      const starts = grid.logs.filter((line) => line.startsWith("runner-") && line.includes(`execution started id=${execution.id}`));
      expect(starts).toHaveLength(1);
    }
    const runnersUsed = new Set(finished.map((execution) => execution.runnerId));
    expect(runnersUsed.size).toBeGreaterThan(1);
    expect(runnersUsed.size).toBeLessThanOrEqual(RUNNERS);
  });
});
