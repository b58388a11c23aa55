// Runs one script process: its own process group, stdout/stderr captured line by line, a
// timeout, and termination of the whole group (SIGTERM, a grace period, then SIGKILL).

import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import type { CommandSpec } from "./command";
import { LineSplitter } from "./line-splitter";

export type OutputStream = "stdout" | "stderr" | "system";

export interface RunProcessOptions {
  timeoutMs: number;
  /** Time between SIGTERM and SIGKILL when the process has to be stopped. */
  killGraceMs: number;
  /** Receives every line, in the order it was read from its stream. */
  onLine(stream: OutputStream, line: string): void;
  /** Aborting stops the process the way a timeout does (e.g. the runner is shutting down). */
  signal?: AbortSignal;
}

export type Termination =
  | { kind: "exited"; exitCode: number }
  | { kind: "signaled"; signal: NodeJS.Signals }
  | { kind: "timed_out" }
  | { kind: "aborted" }
  | { kind: "spawn_failed"; message: string };

export interface ProcessResult {
  termination: Termination;
  /** The last non-empty stderr line, the most likely explanation of a failure. */
  lastStderrLine: string | undefined;
}

export function runProcess(spec: CommandSpec, options: RunProcessOptions): Promise<ProcessResult> {
  return new Promise((resolve) => {
    let lastStderrLine: string | undefined;
    let stopReason: "timed_out" | "aborted" | undefined;
    let timeoutTimer: NodeJS.Timeout | undefined;
    let killTimer: NodeJS.Timeout | undefined;
    let settled = false;

    const stdout = new LineSplitter((line) => options.onLine("stdout", line));
    const stderr = new LineSplitter((line) => {
      if (line.trim() !== "") {
        lastStderrLine = line;
      }
      options.onLine("stderr", line);
    });

    const finish = (termination: Termination) => {
      if (settled) {
        return;
      }
      settled = true;
      clearTimeout(timeoutTimer);
      clearTimeout(killTimer);
      options.signal?.removeEventListener("abort", onAbort);
      resolve({ termination, lastStderrLine });
    };

    let child: ChildProcess;
    try {
      child = spawn(spec.command, spec.args, {
        cwd: spec.cwd,
        env: spec.env,
        // Its own process group, so that a timeout reaches every process the script started.
        detached: true,
        stdio: ["ignore", "pipe", "pipe"],
      });
    } catch (error) {
      // Invalid arguments (e.g. NUL in an environment variable) throw synchronously.
      finish({ kind: "spawn_failed", message: errorMessage(error) });
      return;
    }

    const stop = (reason: "timed_out" | "aborted", note: string) => {
      if (stopReason !== undefined || settled) {
        return;
      }
      stopReason = reason;
      options.onLine("system", note);
      signalGroup(child, "SIGTERM");
      killTimer = setTimeout(() => {
        options.onLine("system", `still running ${formatSeconds(options.killGraceMs)} after SIGTERM; sending SIGKILL`);
        signalGroup(child, "SIGKILL");
      }, options.killGraceMs);
    };
    const onAbort = () => stop("aborted", "runner shutting down; stopping the script");

    child.once("spawn", () => {
      timeoutTimer = setTimeout(
        () => stop("timed_out", `timed out after ${formatSeconds(options.timeoutMs)}; sending SIGTERM`),
        options.timeoutMs,
      );
      if (options.signal?.aborted) {
        onAbort();
      } else {
        options.signal?.addEventListener("abort", onAbort, { once: true });
      }
    });
    child.once("error", (error) => {
      if (child.pid === undefined) {
        finish({ kind: "spawn_failed", message: error.message });
      }
    });
    child.stdout?.on("data", (chunk: Buffer) => stdout.push(chunk));
    child.stderr?.on("data", (chunk: Buffer) => stderr.push(chunk));
    child.once("exit", () => {
      // Background processes the script left behind would hold the pipes open and outlive the
      // execution; the run is over, so the rest of its group goes too.
      signalGroup(child, "SIGKILL");
    });
    child.once("close", (exitCode: number | null, signal: NodeJS.Signals | null) => {
      stdout.end();
      stderr.end();
      if (stopReason !== undefined) {
        finish({ kind: stopReason });
      } else if (signal !== null) {
        finish({ kind: "signaled", signal });
      } else {
        finish({ kind: "exited", exitCode: exitCode ?? 0 });
      }
    });
  });
}

function signalGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) {
    return;
  }
  try {
    // A negative pid addresses the whole process group the detached child leads.
    process.kill(-child.pid, signal);
  } catch {
    // ESRCH: the group is already gone, which is what we wanted.
  }
}

export function formatSeconds(millis: number): string {
  const seconds = millis / 1000;
  return `${Number.isInteger(seconds) ? seconds : seconds.toFixed(1)}s`;
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
