// Ctrl-C of `npm start` with a script running: the launcher stops the runners first (the script
// is stopped and its execution reported, never left running), then execution-service, then
// storage-service, within seconds.
import { spawn } from "node:child_process";
import { chmod, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { ExecutionService, ExecutionStatus } from "@rgrid/proto";
import { openDatabase } from "@rgrid/execution";
import { clientFor } from "../support/executions";
import { REPO_ROOT, pollUntil, runCli, startedId } from "../support/grid";
import { hostProcessesWith, uniqueMarker } from "../support/processes";

jest.setTimeout(90_000);

const LAUNCHER = join(REPO_ROOT, "services", "local", "dist", "main.js");
const MARKER = uniqueMarker("stop-test");

let dataDir: string;
beforeEach(async () => {
  dataDir = await mkdtemp(join(tmpdir(), "rgrid-local-stop-"));
  await chmod(dataDir, 0o711);
});
afterEach(async () => {
  await rm(dataDir, { recursive: true, force: true });
});

test("Ctrl-C stops the runner first, reports its running execution, and the grid is down within seconds", async () => {
  const configPath = join(dataDir, "cli.json");
  // Its own process group, as a shell gives a foreground job: Ctrl-C signals the whole group.
  const launcher = spawn(process.execPath, [LAUNCHER], {
    cwd: dataDir,
    env: {
      PATH: process.env.PATH,
      HOME: dataDir,
      RGRID_HOME: join(dataDir, "grid"),
      RGRID_CONFIG: configPath,
      RGRID_LOCAL_EXECUTION_PORT: "0",
      RGRID_LOCAL_STORAGE_PORT: "0",
    },
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  // Each line with when it arrived, so that a slow stop shows which process took the time.
  const lines: string[] = [];
  const record = (line: string) => lines.push(`${(performance.now() / 1000).toFixed(3)} ${line}`);
  const exited = new Promise<number | null>((resolve) => launcher.once("exit", (code) => resolve(code)));
  const ready = new Promise<void>((resolve) => {
    createInterface({ input: launcher.stdout }).on("line", (line) => {
      record(line);
      if (line.includes("press Ctrl-C to stop")) resolve();
    });
    createInterface({ input: launcher.stderr }).on("line", record);
  });
  try {
    await Promise.race([ready, exited.then(() => Promise.reject(new Error(`launcher exited:\n${lines.join("\n")}`)))]);
    const { apiUrl, apiKey } = JSON.parse(await readFile(configPath, "utf8")) as { apiUrl: string; apiKey: string };
    const api = clientFor(ExecutionService, apiUrl, apiKey);

    await writeFile(join(dataDir, "ticks.py"), "import sys, time\nwhile True:\n    print('tick', flush=True)\n    time.sleep(0.1)\n");
    const run = await runCli({ executionUrl: apiUrl, apiKey, dataDir }, ["run", "ticks.py", MARKER], { cwd: dataDir });
    const id = startedId(run.stdout);
    await pollUntil(
      async () => (await api.getExecution({ executionId: id })).execution?.status,
      (status) => status === ExecutionStatus.RUNNING,
      (status) => `the script never ran (${String(status)})`,
    );
    // Running is recorded at the claim; the script starts a moment later.
    await pollUntil(
      async () => hostProcessesWith(MARKER),
      (found) => found.length > 0,
      () => "the script's process never appeared",
    );

    const pressed = performance.now();
    record("Ctrl-C");
    process.kill(-(launcher.pid as number), "SIGINT");
    expect(await exited).toBe(0);
    const stopMillis = performance.now() - pressed;
    // About 0.1–0.4 s on this machine, with four busy loops beside it too.
    if (stopMillis >= 3_000) {
      process.stderr.write(`the stop took ${Math.round(stopMillis)} ms:\n${lines.join("\n")}\n`);
    }
    expect(stopMillis).toBeLessThan(3_000);
    expect(hostProcessesWith(MARKER)).toEqual([]);
    expect(lines.some((line) => line.endsWith("grid     | stopped"))).toBe(true);

    // The runner reported the execution before execution-service stopped: it is not left running.
    const db = await openDatabase({ dialect: "sqlite", file: join(dataDir, "grid", "rgrid.db") });
    try {
      const [row] = await db.fork().getConnection().execute(`select status, failure_kind from executions where id = '${id}'`);
      expect(row).toMatchObject({ status: "failed", failure_kind: "infrastructure" });
    } finally {
      await db.close();
    }
  } finally {
    if (launcher.exitCode === null) process.kill(-(launcher.pid as number), "SIGKILL");
  }
});
