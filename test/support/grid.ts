// Starts the real grid — storage-service, execution-service and runners as separate processes on
// free ports, with their data in a temporary directory — for tests that go over the wire.
import { spawn } from "node:child_process";
import { chmod, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { startLocalGrid } from "@rgrid/local";
import type { LocalGrid, LocalGridOptions } from "@rgrid/local";

export const REPO_ROOT = resolve(__dirname, "../..");
const CLI_ENTRY = join(REPO_ROOT, "cli", "bin", "rgrid.js");

export interface TestGrid extends LocalGrid {
  dataDir: string;
  /** Everything the processes printed, for diagnosing a failure. */
  logs: string[];
  shutdown(): Promise<void>;
}

export async function startTestGrid(overrides: Partial<LocalGridOptions> = {}): Promise<TestGrid> {
  const dataDir = await mkdtemp(join(tmpdir(), "rgrid-test-"));
  // Runners put their work roots in here, and scripts run as other users must pass through.
  await chmod(dataDir, 0o711);
  const logs: string[] = [];
  const grid = await startLocalGrid({
    dataDir,
    host: "127.0.0.1",
    executionPort: 0,
    storagePort: 0,
    runners: 1,
    baseEnv: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: process.env.HOME ?? dataDir },
    onLine: (name, line) => logs.push(`${name}: ${line}`),
    ...overrides,
  });
  return {
    ...grid,
    dataDir,
    logs,
    async shutdown() {
      await grid.stop();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

type CliTarget = { executionUrl: string; apiKey: string; dataDir: string };

/** Starts the built `rgrid` binary as a user would, against the given grid, its output piped. */
export function startCliProcess(grid: CliTarget, args: string[], options: { cwd?: string; apiKey?: string } = {}) {
  return spawn(process.execPath, [CLI_ENTRY, ...args], {
    cwd: options.cwd ?? REPO_ROOT,
    env: {
      PATH: process.env.PATH,
      HOME: grid.dataDir,
      RGRID_CONFIG: join(grid.dataDir, "cli-config.json"),
      RGRID_API_URL: grid.executionUrl,
      RGRID_API_KEY: options.apiKey ?? grid.apiKey,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
}

/** Runs the built `rgrid` binary to its end, with everything it printed. */
export function runCli(grid: CliTarget, args: string[], options: { cwd?: string; apiKey?: string } = {}): Promise<CliResult> {
  return new Promise((resolvePromise, reject) => {
    const child = startCliProcess(grid, args, options);
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString("utf8")));
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString("utf8")));
    child.once("error", reject);
    // "close", not "exit": the pipes may still hold output when the process has exited.
    child.once("close", (code) => resolvePromise({ code, stdout, stderr }));
  });
}

/** After each failed test, the last `lines` lines the grid printed, to tell what it was doing. */
export function printGridLogsOnFailure(grid: () => TestGrid | undefined, lines = 80): void {
  afterEach(() => {
    const state = expect.getState();
    const current = grid();
    if (current && state.assertionCalls !== state.numPassingAsserts) {
      process.stderr.write(`grid logs:\n${current.logs.slice(-lines).join("\n")}\n`);
    }
  });
}

/** The id in an `Execution started: exec_…` or `Retry started: exec_…` line. */
export function startedId(output: string): string {
  const match = /(?:Execution|Retry) started: (exec_[0-9a-f]{32})/.exec(output);
  if (!match) {
    throw new Error(`no execution id in output:\n${output}`);
  }
  return match[1];
}

/**
 * Calls `read` every 100 ms until `done` accepts its answer, and returns that answer; gives up
 * after 30 s, describing the last answer with `timeoutMessage`.
 */
export async function pollUntil<T>(
  read: () => Promise<T>,
  done: (answer: T) => boolean,
  timeoutMessage: (lastAnswer: T) => string,
): Promise<T> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const answer = await read();
    if (done(answer)) {
      return answer;
    }
    if (Date.now() > deadline) {
      throw new Error(timeoutMessage(answer));
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
