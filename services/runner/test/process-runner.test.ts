import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { buildCommand } from "../src/command";
import type { OutputStream, ProcessResult } from "../src/process-runner";
import { runProcess } from "../src/process-runner";
import { reportFromProcess } from "../src/outcome";
import { detectRuntimes } from "../src/runtimes";
import { Outcome } from "@rgrid/proto";

const { catalog } = detectRuntimes({ searchPath: process.env.PATH ?? "", nodeBinary: process.execPath });

interface Captured {
  result: ProcessResult;
  lines: { stream: OutputStream; line: string }[];
}

let workDir: string;

beforeEach(async () => {
  workDir = await mkdtemp(path.join(tmpdir(), "rgrid-process-runner-"));
});

afterEach(async () => {
  await rm(workDir, { recursive: true, force: true });
});

async function runScript(
  runtimeName: "python" | "node",
  source: string,
  options: { args?: string[]; env?: Record<string, string>; timeoutMs?: number; signal?: AbortSignal } = {},
): Promise<Captured> {
  const runtime = catalog.resolve(runtimeName, runtimeName);
  if (runtime === undefined) {
    throw new Error(`${runtimeName} is needed for this test`);
  }
  const scriptName = runtimeName === "python" ? "script.py" : "script.js";
  await writeFile(path.join(workDir, scriptName), source);
  const lines: Captured["lines"] = [];
  const result = await runProcess(
    buildCommand({ runtime, scriptName, args: options.args ?? [], env: options.env ?? {}, workDir }),
    {
      timeoutMs: options.timeoutMs ?? 20_000,
      killGraceMs: 500,
      onLine: (stream, line) => lines.push({ stream, line }),
      signal: options.signal,
    },
  );
  return { result, lines };
}

function linesOf(captured: Captured, stream: OutputStream): string[] {
  return captured.lines.filter((entry) => entry.stream === stream).map((entry) => entry.line);
}

/** True when the process no longer exists or is only a zombie waiting to be reaped. */
async function isGone(pid: number): Promise<boolean> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z");
  } catch {
    return true;
  }
}

/** Signals are delivered asynchronously, so a killed process may take a moment to go. */
async function disappearsWithin(pid: number, millis: number): Promise<boolean> {
  const deadline = Date.now() + millis;
  while (!(await isGone(pid))) {
    if (Date.now() > deadline) {
      return false;
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return true;
}

describe("runProcess", () => {
  it("completes a python script with its stdout lines in order and its args as given", async () => {
    const captured = await runScript(
      "python",
      "import sys\nfor i in range(1, 4):\n    print(f'line {i}')\nprint('args', sys.argv[1:])\n",
      { args: ["a b", "--flag", "data/in.json"] },
    );
    expect(captured.result.termination).toEqual({ kind: "exited", exitCode: 0 });
    expect(linesOf(captured, "stdout")).toEqual(["line 1", "line 2", "line 3", "args ['a b', '--flag', 'data/in.json']"]);
    expect(reportFromProcess(captured.result, { timeoutMs: 20_000 })).toEqual({ outcome: Outcome.COMPLETED, exitCode: 0, errorMessage: "" });
  });

  it("reports a non-zero exit with the last stderr line as the error", async () => {
    const captured = await runScript(
      "python",
      "import sys\nprint('working')\nprint('first problem', file=sys.stderr)\nprint('input.json is not valid JSON', file=sys.stderr)\nprint('', file=sys.stderr)\nsys.exit(3)\n",
    );
    expect(captured.result.termination).toEqual({ kind: "exited", exitCode: 3 });
    expect(linesOf(captured, "stderr")).toEqual(["first problem", "input.json is not valid JSON", ""]);
    expect(reportFromProcess(captured.result, { timeoutMs: 20_000 })).toEqual({
      outcome: Outcome.FAILED,
      exitCode: 3,
      errorMessage: "input.json is not valid JSON",
    });
  });

  it("says which code a script exited with when it printed nothing to stderr", async () => {
    const captured = await runScript("python", "import sys\nsys.exit(7)\n");
    expect(reportFromProcess(captured.result, { timeoutMs: 20_000 })).toEqual({
      outcome: Outcome.FAILED,
      exitCode: 7,
      errorMessage: "exited with code 7",
    });
  });

  it("times out, stopping the script and the processes it started", async () => {
    const captured = await runScript(
      "python",
      [
        "import subprocess, time",
        "child = subprocess.Popen(['sleep', '300'])",
        "print('child', child.pid, flush=True)",
        "time.sleep(300)",
      ].join("\n"),
      { timeoutMs: 1000 },
    );
    expect(captured.result.termination).toEqual({ kind: "timed_out" });
    expect(reportFromProcess(captured.result, { timeoutMs: 1000 })).toEqual({
      outcome: Outcome.TIMED_OUT,
      errorMessage: "timed out after 1s",
    });
    const childPid = Number(/^child (\d+)$/.exec(linesOf(captured, "stdout")[0] ?? "")?.[1]);
    expect(childPid).toBeGreaterThan(0);
    expect(await disappearsWithin(childPid, 2000)).toBe(true);
    expect(linesOf(captured, "system")).toContain("timed out after 1s; sending SIGTERM");
  });

  it("sends SIGKILL after the grace period when SIGTERM is ignored", async () => {
    const captured = await runScript(
      "python",
      "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nprint('ready', flush=True)\ntime.sleep(300)\n",
      { timeoutMs: 1000 },
    );
    expect(captured.result.termination).toEqual({ kind: "timed_out" });
    expect(linesOf(captured, "system")).toEqual([
      "timed out after 1s; sending SIGTERM",
      "still running 0.5s after SIGTERM; sending SIGKILL",
    ]);
  });

  it("stops the script when aborted, e.g. because the runner shuts down", async () => {
    const controller = new AbortController();
    const running = runScript("python", "import time\nprint('started', flush=True)\ntime.sleep(300)\n", {
      signal: controller.signal,
    });
    setTimeout(() => controller.abort(), 500);
    const captured = await running;
    expect(captured.result.termination).toEqual({ kind: "stopped", reason: "shutdown" });
    expect(reportFromProcess(captured.result, { timeoutMs: 20_000 })).toEqual({
      outcome: Outcome.INFRASTRUCTURE_ERROR,
      errorMessage: "runner shutting down",
    });
  });

  it("stops a cancelled script and reports it as cancelled", async () => {
    const controller = new AbortController();
    const running = runScript("python", "import time\nprint('started', flush=True)\ntime.sleep(300)\n", {
      signal: controller.signal,
    });
    setTimeout(() => controller.abort("cancelled"), 500);
    const captured = await running;
    expect(captured.result.termination).toEqual({ kind: "stopped", reason: "cancelled" });
    expect(linesOf(captured, "system")).toEqual(["cancelled by its owner; stopping the script"]);
    expect(reportFromProcess(captured.result, { timeoutMs: 20_000 })).toEqual({ outcome: Outcome.CANCELLED, errorMessage: "cancelled by its owner" });
  });

  it("finishes when a process that left the group keeps the output open, with nothing to kill it", async () => {
    const captured = await runScript(
      "python",
      "import subprocess\nchild = subprocess.Popen(['sleep', '300'], start_new_session=True)\nprint('detached', child.pid, flush=True)\n",
    );
    const pid = Number(/^detached (\d+)$/.exec(linesOf(captured, "stdout")[0] ?? "")?.[1]);
    try {
      expect(pid).toBeGreaterThan(0);
      expect(captured.result.termination).toEqual({ kind: "exited", exitCode: 0 });
      expect(await isGone(pid)).toBe(false);
    } finally {
      if (pid > 0) {
        process.kill(pid, "SIGKILL");
      }
    }
  });

  it("says when the output has ended, with every line passed on, though the script still runs", async () => {
    const runtime = catalog.resolve("python", "python")!;
    await writeFile(path.join(workDir, "script.py"), "import os, sys, time\nprint('out')\nprint('last, no newline', end='', file=sys.stderr)\nsys.stdout.flush()\nsys.stderr.flush()\nos.close(1)\nos.close(2)\ntime.sleep(0.5)\n");
    const events: string[] = [];
    const started = Date.now();
    let endedAfterMillis = -1;
    const result = await runProcess(buildCommand({ runtime, scriptName: "script.py", args: [], env: {}, workDir }), {
      timeoutMs: 20_000,
      killGraceMs: 500,
      onLine: (stream, line) => events.push(`${stream}: ${line}`),
      onOutputEnd: () => {
        events.push("output ended");
        endedAfterMillis = Date.now() - started;
      },
    });
    expect(result.termination).toEqual({ kind: "exited", exitCode: 0 });
    expect(events.at(-1)).toBe("output ended");
    expect([...events].sort()).toEqual(["output ended", "stderr: last, no newline", "stdout: out"]);
    // Told while the script slept on, not at its exit.
    expect(endedAfterMillis).toBeGreaterThanOrEqual(0);
    expect(Date.now() - started - endedAfterMillis).toBeGreaterThanOrEqual(300);
  });

  it("reports a script killed by a signal", async () => {
    const captured = await runScript("python", "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n");
    expect(reportFromProcess(captured.result, { timeoutMs: 20_000 })).toEqual({ outcome: Outcome.FAILED, errorMessage: "killed by SIGKILL" });
  });

  it("gives the script only the execution's env plus PATH, HOME and LANG", async () => {
    process.env.RGRID_RUNNER_TOKEN = "runner-secret-token-value";
    try {
      const captured = await runScript(
        "python",
        "import os, json\nprint(json.dumps(dict(os.environ), sort_keys=True))\n",
        { env: { GREETING: "hello", LANG: "de_DE.UTF-8", PATH: "/evil" } },
      );
      const seen = JSON.parse(linesOf(captured, "stdout")[0] ?? "{}") as Record<string, string>;
      expect(seen).toEqual({
        GREETING: "hello",
        HOME: workDir,
        LANG: "de_DE.UTF-8",
        PATH: "/usr/local/bin:/usr/bin:/bin",
        PYTHONDONTWRITEBYTECODE: "1",
        PYTHONUNBUFFERED: "1",
        // Python sets this itself on some platforms when the locale is coerced.
        ...(seen.LC_CTYPE !== undefined ? { LC_CTYPE: seen.LC_CTYPE } : {}),
      });
      expect(JSON.stringify(seen)).not.toContain("runner-secret-token-value");
    } finally {
      delete process.env.RGRID_RUNNER_TOKEN;
    }
  });

  it("runs a node script in the working directory", async () => {
    const captured = await runScript(
      "node",
      "console.log(process.cwd());\nconsole.log(JSON.stringify(process.argv.slice(2)));\nconsole.error('warning');\n",
      { args: ["x", "y"] },
    );
    expect(captured.result.termination).toEqual({ kind: "exited", exitCode: 0 });
    expect(linesOf(captured, "stdout")).toEqual([workDir, '["x","y"]']);
    expect(linesOf(captured, "stderr")).toEqual(["warning"]);
  });

  it("captures a last line without a newline, and replaces invalid UTF-8", async () => {
    const captured = await runScript(
      "python",
      "import sys\nsys.stdout.write('complete\\n')\nsys.stdout.buffer.write(b'bad \\xff byte\\n')\nsys.stdout.write('partial')\n",
    );
    expect(linesOf(captured, "stdout")).toEqual(["complete", "bad \uFFFD byte", "partial"]);
  });

  it("reports a missing interpreter as a failure to start", async () => {
    const lines: string[] = [];
    const result = await runProcess(
      { command: path.join(workDir, "no-such-interpreter"), args: [], env: {}, cwd: workDir },
      { timeoutMs: 5000, killGraceMs: 100, onLine: (_stream, line) => lines.push(line) },
    );
    expect(result.termination.kind).toBe("spawn_failed");
    const report = reportFromProcess(result, { timeoutMs: 5000 });
    expect(report.outcome).toBe(Outcome.INFRASTRUCTURE_ERROR);
    expect(report.exitCode).toBeUndefined();
    expect(report.errorMessage).toMatch(/^could not start the script: .*ENOENT/);
  });
});
