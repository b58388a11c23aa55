// The entry point: the only place that reads process.env and calls process.exit.
import { homedir } from "node:os";
import { setTimeout as sleep } from "node:timers/promises";
import { readCliEnvironment } from "./config";
import type { CliEnvironment } from "./config";
import { ExitCode } from "./errors";
import { load } from "./lazy";
import { runCli } from "./program";
import { createProcessOutput } from "./terminal";

const POLL_INTERVAL_MS = 300;

async function main(): Promise<number> {
  const output = createProcessOutput({
    stdout: process.stdout,
    stderr: process.stderr,
    stderrIsTerminal: process.stderr.isTTY === true,
    columns: () => process.stderr.columns,
  });
  let environment: CliEnvironment;
  try {
    environment = readCliEnvironment(process.env, homedir());
  } catch (error) {
    const failure = load.failures().describeFailure(error, undefined);
    failure.lines.forEach(output.stderr);
    return failure.exitCode;
  }
  return runCli(process.argv.slice(2), {
    environment,
    output,
    clock: { sleep: (ms) => sleep(ms), now: () => new Date() },
    cwd: process.cwd(),
    createTransport: (connection) => load.transport().createServerTransport(connection),
    pollIntervalMs: POLL_INTERVAL_MS,
    confirm: process.stdin.isTTY === true && process.stderr.isTTY === true ? askOnTerminal : undefined,
  });
}

/** A yes/no question on the terminal: only "y" or "yes" is a yes. */
async function askOnTerminal(question: string): Promise<boolean> {
  // Only `retry --where` ever asks.
  const terminal = load.readline().createInterface({ input: process.stdin, output: process.stderr });
  try {
    return /^y(es)?$/i.test((await terminal.question(question)).trim());
  } finally {
    terminal.close();
  }
}

// `rgrid list | head` closes our stdout early: that is the reader's choice, not an error.
process.stdout.on("error", (error: NodeJS.ErrnoException) => {
  process.exit(error.code === "EPIPE" ? ExitCode.success : ExitCode.failed);
});

// Ctrl-C while following an execution stops following; the execution itself goes on.
process.once("SIGINT", () => process.exit(130));
process.once("SIGTERM", () => process.exit(143));

/**
 * Exits once everything written so far has reached stdout and stderr: writes to a pipe are
 * queued in Node, and exiting at once would cut off the end of e.g. a long `rgrid logs`.
 */
function exitAfterOutput(code: number): void {
  let waiting = 2;
  const done = () => {
    waiting -= 1;
    if (waiting === 0) {
      process.exit(code);
    }
  };
  process.stdout.write("", done);
  process.stderr.write("", done);
}

main().then(exitAfterOutput, (error: unknown) => {
  // runCli reports every failure itself; reaching this means a bug, still shown without a stack.
  process.stderr.write(`Error: ${error instanceof Error ? error.message : String(error)}\n`);
  exitAfterOutput(ExitCode.failed);
});
