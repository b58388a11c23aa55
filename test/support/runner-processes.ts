// The processes of the runner end-to-end tests: the CLI as a child still running while the test
// watches its output, the runner process holding an execution, runners started after work was
// queued, and scripts written to a directory the CLI runs from.
import { spawn } from "node:child_process";
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { serviceEntry } from "@rgrid/local";
import type { LocalGrid } from "@rgrid/local";
import { pollUntil, startCliProcess } from "./grid";
import type { CliResult, TestGrid } from "./grid";

type ServiceProcess = LocalGrid["processes"][number];

export interface LiveCli {
  stdout(): string;
  stderr(): string;
  /** Resolves when the CLI exits by itself (or is killed), with everything it printed. */
  readonly exited: Promise<CliResult>;
  /** Resolves once stdout matches `pattern`; fails if the CLI exits first or after pollUntil's deadline. */
  waitForStdout(pattern: RegExp): Promise<void>;
  hasExited(): boolean;
  kill(): void;
}

/** Starts the built `rgrid` binary against the grid without waiting for it. */
export function spawnCli(grid: TestGrid, args: string[], options: { cwd?: string } = {}): LiveCli {
  const child = startCliProcess(grid, args, options);
  let stdout = "";
  let stderr = "";
  let exitedYet = false;
  child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString("utf8")));
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString("utf8")));
  const exited = new Promise<CliResult>((resolve, reject) => {
    child.once("error", reject);
    // "close", not "exit": every byte the CLI wrote has been read by then.
    child.once("close", (code) => {
      exitedYet = true;
      resolve({ code, stdout, stderr });
    });
  });
  return {
    stdout: () => stdout,
    stderr: () => stderr,
    exited,
    hasExited: () => exitedYet,
    async waitForStdout(pattern) {
      await pollUntil(
        async () => exitedYet,
        (done) => done || pattern.test(stdout),
        () => `rgrid ${args.join(" ")} never printed ${pattern}; stdout so far:\n${stdout}\nstderr:\n${stderr}`,
      );
      if (!pattern.test(stdout)) {
        throw new Error(`rgrid ${args.join(" ")} exited without printing ${pattern}; stdout:\n${stdout}\nstderr:\n${stderr}`);
      }
    },
    kill: () => child.kill("SIGKILL"),
  };
}

/** A fresh directory holding the given files, for the CLI to run scripts from. */
export async function writeScripts(files: Record<string, string>): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "rgrid-scripts-"));
  for (const [name, content] of Object.entries(files)) {
    await writeFile(join(dir, name), content);
  }
  return dir;
}

/**
 * The runner process that registered under `runnerId`: the grid prefixes every line with the
 * process's name, and only that runner's own output mentions the id it was given.
 */
export function runnerProcessOf(grid: TestGrid, runnerId: string): ServiceProcess {
  const runners = grid.processes.filter((process) => process.name.startsWith("runner"));
  const owner = runners.find((runner) => grid.logs.some((line) => line.startsWith(`${runner.name}: `) && line.includes(runnerId)));
  if (!owner) {
    throw new Error(`no runner process mentions runner id ${runnerId}; runners: ${runners.map((runner) => runner.name).join(", ")}`);
  }
  return owner;
}

export interface ExtraRunners {
  stop(): Promise<void>;
}

/**
 * Starts `count` more runner processes against the grid, named runner-a, runner-b, ...; their
 * lines go to grid.logs like the grid's own. Lets a test queue work before any runner claims.
 */
export function startRunners(grid: TestGrid, count: number, env: Record<string, string> = {}): ExtraRunners {
  const children = Array.from({ length: count }, (_, index) => {
    const name = `runner-${String.fromCharCode(97 + index)}`;
    const child = spawn(process.execPath, [serviceEntry("@rgrid/runner")], {
      cwd: grid.dataDir,
      env: {
        PATH: process.env.PATH ?? "/usr/bin:/bin",
        HOME: grid.dataDir,
        RGRID_EXECUTION_URL: grid.executionUrl,
        RGRID_RUNNER_TOKEN: grid.runnerToken,
        RGRID_RUNNER_NAME: `test-${name}`,
        RGRID_RUNNER_WORK_DIR: join(grid.dataDir, "work", name),
        ...env,
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    for (const stream of [child.stdout, child.stderr]) {
      createInterface({ input: stream, crlfDelay: Infinity }).on("line", (line) => grid.logs.push(`${name}: ${line}`));
    }
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    return { child, exited };
  });
  return {
    async stop() {
      await Promise.all(
        children.map(async ({ child, exited }) => {
          if (child.exitCode !== null || child.signalCode !== null) {
            return;
          }
          child.kill("SIGTERM");
          const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
          await exited;
          clearTimeout(timer);
        }),
      );
    },
  };
}
