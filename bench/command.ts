import { spawn } from "node:child_process";

export interface CommandResult {
  code: number | null;
  stdout: string;
  stderr: string;
  wallMillis: number;
}

const COMMAND_TIMEOUT_MILLIS = 120_000;

/**
 * Runs a command to its end without blocking this process: s3rver lives in it and must keep
 * answering the command's uploads. Killed after two minutes so a hang cannot stall a benchmark.
 */
export function runCommand(command: string, args: string[], options: { cwd?: string; env: NodeJS.ProcessEnv }): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(command, args, { cwd: options.cwd, env: options.env, stdio: ["ignore", "pipe", "pipe"] });
    const timer = setTimeout(() => child.kill("SIGKILL"), COMMAND_TIMEOUT_MILLIS);
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString("utf8")));
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString("utf8")));
    child.once("error", reject);
    child.once("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, wallMillis: performance.now() - started });
    });
  });
}
