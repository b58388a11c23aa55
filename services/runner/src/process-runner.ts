// Runs one script process: its own process group, stdout/stderr captured line by line, a
// timeout, and termination of the whole group (SIGTERM, a grace period, then SIGKILL).

import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import type { CommandSpec } from "./command";
import { READY_MARKER } from "./command";
import { LineSplitter } from "./line-splitter";

export type OutputStream = "stdout" | "stderr" | "system";

export interface RunProcessOptions {
  timeoutMs: number;
  /** Time between SIGTERM and SIGKILL when the process has to be stopped. */
  killGraceMs: number;
  /** Receives every line, in the order it was read from its stream. */
  onLine(stream: OutputStream, line: string): void;
  /**
   * Aborting stops the process the way a timeout does; the abort reason (a StopReason) says why:
   * the runner is shutting down, the owner cancelled, or the runner lost the execution.
   */
  signal?: AbortSignal;
  /** Kills processes that left the process group (e.g. via setsid); called whenever the group is. */
  killStragglers?(): void;
  /**
   * Called once when stdout and stderr have both ended, every line of them passed to onLine: in
   * a short run, moments before the exit (the sandbox's wrappers keep no copy of either).
   */
  onOutputEnd?(): void;
}

export type StopReason = "shutdown" | "cancelled" | "lost";

const STOP_NOTES: Record<StopReason, string> = {
  shutdown: "runner shutting down; stopping the script",
  cancelled: "cancelled by its owner; stopping the script",
  lost: "this runner no longer holds the execution; stopping the script",
};

export type Termination =
  | { kind: "exited"; exitCode: number }
  | { kind: "signaled"; signal: NodeJS.Signals }
  | { kind: "timed_out" }
  | { kind: "stopped"; reason: StopReason }
  | { kind: "spawn_failed"; message: string }
  /** The sandbox's wrappers failed before the script started. */
  | { kind: "setup_failed"; message: string };

export interface ProcessResult {
  termination: Termination;
  /** The last non-empty stderr line, the most likely explanation of a failure. */
  lastStderrLine: string | undefined;
  /** The last few non-empty stderr lines (a stack trace's message may precede its frames). */
  stderrTail: string[];
}

const STDERR_TAIL_LINES = 20;

/** Output still in the pipes when the script exits is read well within this, even with no kill grace. */
const MIN_DRAIN_MS = 1000;

export function runProcess(spec: CommandSpec, options: RunProcessOptions): Promise<ProcessResult> {
  return new Promise((resolve) => {
    const stderrTail: string[] = [];
    let stopReason: Termination | undefined;
    let exitStatus: { code: number | null; signal: NodeJS.Signals | null } | undefined;
    let readiness = "";
    let timeoutTimer: NodeJS.Timeout | undefined;
    let killTimer: NodeJS.Timeout | undefined;
    let stragglerTimer: NodeJS.Timeout | undefined;
    let drainTimer: NodeJS.Timeout | undefined;
    let settled = false;

    const stdout = new LineSplitter((line) => options.onLine("stdout", line));
    const stderr = new LineSplitter((line) => {
      if (line.trim() !== "") {
        stderrTail.push(line);
        if (stderrTail.length > STDERR_TAIL_LINES) {
          stderrTail.shift();
        }
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
      clearInterval(stragglerTimer);
      clearTimeout(drainTimer);
      options.signal?.removeEventListener("abort", onAbort);
      resolve({ termination, lastStderrLine: stderrTail.at(-1), stderrTail });
    };

    let child: ChildProcess;
    try {
      child = spawn(spec.command, spec.args, {
        cwd: spec.cwd,
        env: spec.env,
        // Its own process group, so that a timeout reaches every process the script started.
        detached: true,
        stdio: ["ignore", "pipe", "pipe", ...(spec.reportsReadiness === true ? (["pipe"] as const) : [])],
      });
    } catch (error) {
      // Invalid arguments (e.g. NUL in an environment variable) throw synchronously.
      finish({ kind: "spawn_failed", message: errorMessage(error) });
      return;
    }

    const killEverything = () => {
      signalGroup(child, "SIGKILL");
      options.killStragglers?.();
    };
    const stop = (reason: Termination, note: string) => {
      if (stopReason !== undefined || settled) {
        return;
      }
      stopReason = reason;
      options.onLine("system", note);
      signalGroup(child, "SIGTERM");
      killTimer = setTimeout(() => {
        options.onLine("system", `still running ${formatSeconds(options.killGraceMs)} after SIGTERM; sending SIGKILL`);
        killEverything();
      }, options.killGraceMs);
    };
    const onAbort = () => {
      const reason = stopReasonOf(options.signal) ?? "shutdown";
      stop({ kind: "stopped", reason }, STOP_NOTES[reason]);
    };
    /** Once the process has exited and its output is read (or given up on). */
    const complete = () => {
      if (exitStatus === undefined) {
        return;
      }
      stdout.end();
      stderr.end();
      const { code, signal } = exitStatus;
      if (stopReason !== undefined) {
        finish(stopReason);
      } else if (spec.reportsReadiness === true && readiness !== READY_MARKER) {
        const status = signal !== null ? `killed by ${signal}` : `exit code ${code}`;
        finish({ kind: "setup_failed", message: `${stderrTail.at(-1) ?? "no error message"} (${status})` });
      } else if (signal !== null) {
        finish({ kind: "signaled", signal });
      } else {
        finish({ kind: "exited", exitCode: code ?? 0 });
      }
    };

    child.once("spawn", () => {
      timeoutTimer = setTimeout(
        () => stop({ kind: "timed_out" }, `timed out after ${formatSeconds(options.timeoutMs)}; sending SIGTERM`),
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
    let openOutputs = 2;
    const outputEnded = () => {
      if (--openOutputs === 0) {
        stdout.end();
        stderr.end();
        options.onOutputEnd?.();
      }
    };
    child.stdout?.once("end", outputEnded);
    child.stderr?.once("end", outputEnded);
    child.stdio[3]?.on("data", (chunk: Buffer) => {
      readiness += chunk.toString("latin1").trim();
    });
    child.once("exit", (code: number | null, signal: NodeJS.Signals | null) => {
      exitStatus = { code, signal };
      // Background processes the script left behind would hold the pipes open and outlive the
      // execution; the run is over, so the rest of its group goes too, and whatever they fork
      // meanwhile until the pipes close.
      killEverything();
      stragglerTimer = setInterval(killEverything, 100);
      // A process that left the group and that nothing can kill (no cgroup) may hold the pipes
      // open for ever: what it prints after the grace is not the run's any more.
      drainTimer = setTimeout(() => {
        for (const stream of child.stdio) {
          stream?.destroy();
        }
        complete();
      }, Math.max(options.killGraceMs, MIN_DRAIN_MS));
    });
    child.once("close", complete);
  });
}

/** Why `signal` was aborted; undefined while it was not. Any other abort counts as a shutdown. */
export function stopReasonOf(signal: AbortSignal | undefined): StopReason | undefined {
  if (signal?.aborted !== true) {
    return undefined;
  }
  const reason: unknown = signal.reason;
  return reason === "cancelled" || reason === "lost" ? reason : "shutdown";
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
