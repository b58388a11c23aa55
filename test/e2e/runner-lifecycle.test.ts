// An execution's life on a real runner, as a user sees it through the built `rgrid` binary: logs
// that arrive while the script runs, cancelling, the script's exit code and the status report,
// and the sandbox (no network unless asked, none of the runner's environment, no other
// execution's processes).
import { existsSync } from "node:fs";
import { readdir, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import type { AddressInfo, Server } from "node:net";
import { basename, join } from "node:path";
import { ExecutionStatus, LogEntry_Stream } from "@rgrid/proto";
import { pollUntil, runCli, startTestGrid, startedId } from "../support/grid";
import type { TestGrid } from "../support/grid";
import { executionClient, getExecution, isTerminal, storedLogs, waitForExecution } from "../support/runner-api";
import type { ExecutionClient } from "../support/runner-api";
import { spawnCli, writeScripts } from "../support/runner-processes";
import { printLogsOnFailure } from "../support/failure-logs";
import { hostProcessesWith, uniqueMarker } from "../support/processes";

jest.setTimeout(120_000);

const SCRIPTS = {
  // Prints a line, then waits until the test drops a file named "release" into its working
  // directory, so the test knows the script is still running when it sees the first line.
  "live.py": `import os, sys, time
print("first line", flush=True)
print("cwd " + os.getcwd(), flush=True)
deadline = time.time() + 100
while not os.path.exists("release") and time.time() < deadline:
    time.sleep(0.05)
for number in range(1, 301):
    print(f"line {number}")
print("a line for stderr", file=sys.stderr)
`,
  // A sleeper with a child of its own: both must be gone after a cancel. Its argument is on both
  // command lines, so that the test finds them from outside the sandbox.
  "sleeper.py": `import subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)", sys.argv[1]])
print("started", flush=True)
time.sleep(300)
`,
  // Looks through /proc for the secret in LOOK_FOR (in its environment, not on its command line).
  "peek.py": `import os
secret = os.environ["LOOK_FOR"]
command_lines = {}
for name in os.listdir("/proc"):
    if name.isdigit():
        try:
            with open(f"/proc/{name}/cmdline", "rb") as f:
                command_lines[int(name)] = f.read().replace(b"\\0", b" ").decode(errors="replace").strip()
        except OSError:
            pass
print("seen:", "yes" if any(secret in line for line in command_lines.values()) else "none")
print("self:", os.getpid())
for pid in sorted(command_lines):
    print("process:", pid, command_lines[pid])
`,
  "exit3.py": `import sys
print("about to fail", flush=True)
sys.exit(3)
`,
  "quick.py": `print("done quickly")
`,
  // No runner of this grid has node, so this stays queued.
  "waits.js": `console.log("never runs");
`,
  "net_env.py": `import os, socket, sys
try:
    with socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5) as connection:
        connection.sendall(b"hello from the sandbox\\n")
    print("connected")
except OSError as error:
    print(f"could not connect: {error}")
print("env " + " ".join(sorted(os.environ)))
`,
};

let grid: TestGrid;
let client: ExecutionClient;
let scriptsDir: string;

beforeAll(async () => {
  grid = await startTestGrid({ runnerEnv: { RGRID_RUNNER_RUNTIMES: "python", RGRID_RUNNER_CONCURRENCY: "3" } });
  client = executionClient(grid);
  scriptsDir = await writeScripts(SCRIPTS);
});

afterAll(async () => {
  await grid?.shutdown();
  if (scriptsDir) {
    await rm(scriptsDir, { recursive: true, force: true });
  }
});

printLogsOnFailure("grid", () => grid?.logs);

const rgrid = (...args: string[]) => runCli(grid, args, { cwd: scriptsDir });

/** The directory on this machine the script reported as its working directory. */
async function workspaceOf(id: string, reportedCwd: string): Promise<string> {
  if (existsSync(reportedCwd)) {
    return reportedCwd;
  }
  // The sandbox may show the workspace under another path; the runner's own name for it
  // starts with the execution id.
  const workRoot = join(grid.dataDir, "work");
  const found = (await readdir(workRoot, { recursive: true })).find((path) => basename(path).startsWith(id));
  if (found === undefined) {
    throw new Error(`no workspace of ${id} under ${workRoot}, and ${reportedCwd} does not exist here`);
  }
  return join(workRoot, found);
}


describe("rgrid logs --follow", () => {
  test("shows lines while the script runs, ends with the execution, and matches the stored logs", async () => {
    const run = await rgrid("run", "live.py");
    expect(run.code).toBe(0);
    const id = startedId(run.stdout);

    const follow = spawnCli(grid, ["logs", id, "--follow"], { cwd: scriptsDir });
    try {
      await follow.waitForStdout(/^cwd (.+)$/m);
      // The script cannot end before the release file exists: the line arrived live.
      expect((await getExecution(client, id)).status).toBe(ExecutionStatus.RUNNING);
      expect(follow.hasExited()).toBe(false);
      expect(follow.stdout()).toMatch(/^first line$/m);

      const reportedCwd = /^cwd (.+)$/m.exec(follow.stdout())![1]!;
      await writeFile(join(await workspaceOf(id, reportedCwd), "release"), "");

      const followed = await follow.exited;
      expect(followed.code).toBe(0);
      const execution = await getExecution(client, id);
      expect(execution.status).toBe(ExecutionStatus.COMPLETED);

      const stored = await rgrid("logs", id);
      expect(stored.code).toBe(0);
      expect(followed.stdout).toBe(stored.stdout);
      expect(followed.stderr).toBe(stored.stderr);
      const expectedLines = ["first line", `cwd ${reportedCwd}`, ...Array.from({ length: 300 }, (_, index) => `line ${index + 1}`)];
      // Only the script's lines: rgrid's own system lines may be printed around them.
      const scriptLines = followed.stdout.split("\n").filter((line) => /^(first line|cwd |line \d+$)/.test(line));
      expect(scriptLines).toEqual(expectedLines);
      expect(followed.stderr).toContain("a line for stderr");

      const entries = await storedLogs(client, id);
      expect(entries.map((entry) => Number(entry.sequence))).toEqual(entries.map((_, index) => index + 1));
      expect(entries.filter((entry) => entry.stream === LogEntry_Stream.STDOUT).map((entry) => entry.line)).toEqual(expectedLines);
    } finally {
      follow.kill();
    }
  });
});

describe("rgrid cancel", () => {
  test("stops a running script and its children; the execution is cancelled and not retried", async () => {
    const marker = uniqueMarker("e2e");
    const id = startedId((await rgrid("run", "sleeper.py", marker)).stdout);
    await pollUntil(
      async () => (await storedLogs(client, id)).map((entry) => entry.line),
      (lines) => lines.includes("started"),
      () => `${id} never started`,
    );
    // From outside the sandbox the test sees the script and its child.
    const pids = await pollUntil(
      async () => hostProcessesWith(marker),
      (found) => found.length === 2,
      (found) => `expected the script and its child running with ${marker}, found ${found.length} processes`,
    );

    const cancel = await rgrid("cancel", id);
    expect(cancel.stderr).toBe("");
    expect(cancel.code).toBe(0);
    expect(cancel.stdout).toMatch(new RegExp(`^Cancel(led|lation requested): ${id}$`, "m"));

    const cancelled = await waitForExecution(client, id, isTerminal, "terminal");
    expect(cancelled.status).toBe(ExecutionStatus.CANCELLED);
    await pollUntil(
      async () => hostProcessesWith(marker),
      (found) => found.length === 0,
      (found) => `processes ${found.join(", ")} of cancelled ${id} (of ${pids.join(", ")}) are still running`,
    );
    const status = await rgrid("status", id);
    expect(status.stdout).toMatch(/^Status: cancelled$/m);
    expect((await getExecution(client, id)).retriedAs).toEqual([]);
  });

  test("cancels a queued execution at once", async () => {
    const id = startedId((await rgrid("run", "waits.js")).stdout);
    expect((await getExecution(client, id)).status).toBe(ExecutionStatus.QUEUED);

    const cancel = await rgrid("cancel", id);
    expect(cancel.stderr).toBe("");
    expect(cancel.code).toBe(0);
    expect(cancel.stdout).toMatch(new RegExp(`^Cancelled: ${id}$`, "m"));
    const execution = await getExecution(client, id);
    expect(execution.status).toBe(ExecutionStatus.CANCELLED);
    expect(execution.finishedAt).toBeDefined();
    expect(execution.retriedAs).toEqual([]);
  });

  test("refuses a completed execution with a clear sentence and exit code 1", async () => {
    const run = await rgrid("run", "quick.py", "--wait");
    expect(run.code).toBe(0);
    const id = startedId(run.stdout);

    const cancel = await rgrid("cancel", id);
    expect(cancel.code).toBe(1);
    expect(cancel.stderr).toContain(`${id} is already completed`);
    expect(cancel.stderr).toContain("nothing to cancel");
    expect(cancel.stderr).not.toMatch(/\n\s+at /);
    expect((await getExecution(client, id)).status).toBe(ExecutionStatus.COMPLETED);
  });

  test("of an unknown execution exits 1 saying it was not found", async () => {
    const cancel = await rgrid("cancel", `exec_${"0".repeat(32)}`);
    expect(cancel.code).toBe(1);
    expect(cancel.stderr).toContain("not found");
  });
});

describe("rgrid run --wait and rgrid status", () => {
  test("exit with the script's code; status shows times, runner, attempt and lineage both ways", async () => {
    const run = await rgrid("run", "exit3.py", "--wait");
    expect(run.code).toBe(3);
    expect(run.stdout).toContain("about to fail");
    const id = startedId(run.stdout);
    const execution = await getExecution(client, id);
    expect(execution.runnerId).not.toBe("");

    const status = await rgrid("status", id);
    expect(status.code).toBe(0);
    expect(status.stdout).toMatch(new RegExp(`^Execution: ${id}$`, "m"));
    expect(status.stdout).toMatch(/^Status: failed$/m);
    expect(status.stdout).toMatch(/^Started: \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$/m);
    expect(status.stdout).toMatch(/^Finished: \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$/m);
    expect(status.stdout).toMatch(/^Duration: \S+/m);
    expect(status.stdout).toMatch(new RegExp(`^Runner: .*${execution.runnerId}`, "m"));
    expect(status.stdout).toMatch(/^Exit code: 3$/m);
    expect(status.stdout).toMatch(/^Attempt: 1$/m);

    const retryId = startedId((await rgrid("retry", id)).stdout);
    const retried = await waitForExecution(client, retryId, isTerminal, "terminal");
    expect(retried.exitCode).toBe(3);

    const retryStatus = await rgrid("status", retryId);
    expect(retryStatus.stdout).toMatch(/^Attempt: 2$/m);
    expect(retryStatus.stdout).toMatch(new RegExp(`^Retry of: ${id}$`, "m"));
    const originalStatus = await rgrid("status", id);
    expect(originalStatus.stdout).toMatch(new RegExp(`^Retried as: ${retryId}$`, "m"));
  });
});

describe("the sandbox, through the whole grid", () => {
  let listener: Server;
  let port: number;
  let connections = 0;

  beforeAll(async () => {
    listener = createServer((socket) => {
      connections++;
      socket.resume();
    });
    await new Promise<void>((resolve) => listener.listen(0, "127.0.0.1", resolve));
    port = (listener.address() as AddressInfo).port;
  });

  afterAll(async () => {
    await new Promise((resolve) => listener.close(resolve));
  });

  test("a script has no network unless run with --network", async () => {
    const isolated = await rgrid("run", "net_env.py", String(port), "--wait");
    expect(isolated.code).toBe(0);
    expect(isolated.stdout).toMatch(/^could not connect: /m);
    expect(connections).toBe(0);

    const networked = await rgrid("run", "net_env.py", String(port), "--network", "--wait");
    expect(networked.code).toBe(0);
    expect(networked.stdout).toMatch(/^connected$/m);
    expect(connections).toBeGreaterThan(0);
    expect((await getExecution(client, startedId(networked.stdout))).network).toBe(true);
  });

  test("a script's environment is its own env plus the basics, with nothing of the runner's", async () => {
    const run = await rgrid("run", "net_env.py", String(port), "--env", "GREETING=hello", "--wait");
    expect(run.code).toBe(0);
    const names = /^env (.*)$/m.exec(run.stdout)?.[1]?.split(" ") ?? [];
    expect(names).toContain("GREETING");
    expect(names).toContain("PATH");
    // The runner itself runs with RGRID_RUNNER_TOKEN, RGRID_EXECUTION_URL and more.
    expect(names.filter((name) => name.startsWith("RGRID_"))).toEqual([]);
  });

  test("two executions running at once see neither each other's processes nor their command lines", async () => {
    const secret = uniqueMarker("e2e");
    const holder = startedId((await rgrid("run", "sleeper.py", secret)).stdout);
    try {
      await pollUntil(
        async () => (await storedLogs(client, holder)).map((entry) => entry.line),
        (lines) => lines.includes("started"),
        () => `${holder} never started`,
      );
      // The secret is on the running sleeper's command lines, as seen from this machine.
      await pollUntil(
        async () => hostProcessesWith(secret),
        (found) => found.length === 2,
        () => `${holder} never ran with its secret argument`,
      );
      const peek = await rgrid("run", "peek.py", "--env", `LOOK_FOR=${secret}`, "--wait");
      expect(peek.code).toBe(0);
      expect(peek.stdout).toMatch(/^seen: none$/m);
      // A PID namespace of its own: its init, and the script itself, which is not PID 1.
      const self = Number(/^self: (\d+)$/m.exec(peek.stdout)?.[1]);
      expect(self).toBeGreaterThan(1);
      const processes = peek.stdout.split("\n").filter((line) => line.startsWith("process: "));
      expect(processes).toEqual(["process: 1 rgrid-init", expect.stringMatching(new RegExp(`^process: ${self} \\S*python\\S* peek\\.py$`))]);
      expect((await getExecution(client, holder)).status).toBe(ExecutionStatus.RUNNING);
    } finally {
      await rgrid("cancel", holder);
    }
    expect((await waitForExecution(client, holder, isTerminal, "terminal")).status).toBe(ExecutionStatus.CANCELLED);
  });
});
