import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { createHash } from "node:crypto";
import { mkdir, readFile, readdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { newExecutionId } from "@rgrid/common/ids";
import { ExecutionStatus, FailureKind, LogEntry_Stream, RetryKind } from "@rgrid/proto";
import { FakeExecutionService } from "./fake-execution-service";
import type { GrantTarget, ScriptedRun } from "./fake-execution-service";
import { runAgainst, temporaryDirectory } from "./harness";
import { objectPath, startObjectStorage } from "./object-storage";
import type { FakeObjectStorage } from "./object-storage";

describe("rgrid run", () => {
  let workspace: { path: string; remove: () => Promise<void> };
  let elsewhere: { path: string; remove: () => Promise<void> };
  let storage: FakeObjectStorage;

  beforeEach(async () => {
    workspace = await temporaryDirectory();
    elsewhere = await temporaryDirectory();
    storage = await startObjectStorage();
  });

  afterEach(async () => {
    await storage.close();
    await workspace.remove();
    await elsewhere.remove();
  });

  /** Writes a process.py that prints "ok"; the fake's run of it prints "ok" and completes with exit 0 unless `run` differs. */
  async function printOkRun(target: GrantTarget, run: Partial<ScriptedRun> = {}): Promise<FakeExecutionService> {
    await writeFile(join(workspace.path, "process.py"), "print('ok')\n");
    const fake = new FakeExecutionService(target);
    fake.scriptedRun = {
      lines: [],
      finalLine: [LogEntry_Stream.STDOUT, "ok"],
      status: ExecutionStatus.COMPLETED,
      exitCode: 0,
      ...run,
    };
    return fake;
  }

  it("uploads the script and file arguments through their grants, keeping or rewriting args", async () => {
    await writeFile(join(workspace.path, "process.py"), "print('hi')\n");
    await mkdir(join(workspace.path, "data"));
    await writeFile(join(workspace.path, "data", "input.json"), '{"n": 1}');
    const outsidePath = join(elsewhere.path, "lookup.csv");
    await writeFile(outsidePath, "a,b\n1,2\n");
    const fake = new FakeExecutionService(storage);

    const result = await runAgainst(
      fake,
      [
        "run", "process.py", "./data/input.json", outsidePath, "fast", "missing.txt",
        "--env", "MODE=fast", "--env", "EQ=a=b", "--metadata", "team=data", "--timeout", "90", "--runtime", "python:3.11",
      ],
      { cwd: workspace.path },
    );

    expect(result.stderr).toEqual([]);
    expect(result.exitCode).toBe(0);
    const [request] = fake.createRequests;
    const id = [...fake.executions.keys()][0];
    expect(result.stdout).toEqual([`Execution started: ${id}`]);
    expect(request.script?.name).toBe("process.py");
    expect(request.script?.sha256).toBe(createHash("sha256").update("print('hi')\n").digest("hex"));
    expect(request.runtime).toBe("python:3.11");
    expect(request.args).toEqual(["./data/input.json", "lookup.csv", "fast", "missing.txt"]);
    expect(request.inputs.map((input) => [input.name, Number(input.sizeBytes)])).toEqual([
      ["data/input.json", 8],
      ["lookup.csv", 8],
    ]);
    expect(request.env).toEqual({ MODE: "fast", EQ: "a=b" });
    expect(request.metadata).toEqual({ team: "data" });
    expect(request.timeoutSeconds).toBe(90);
    expect(request.requestId).not.toBe("");

    expect(storage.objects.get(objectPath(id, "script", "process.py"))?.toString()).toBe("print('hi')\n");
    expect(storage.objects.get(objectPath(id, "inputs", "data/input.json"))?.toString()).toBe('{"n": 1}');
    expect(storage.objects.get(objectPath(id, "inputs", "lookup.csv"))?.toString()).toBe("a,b\n1,2\n");
    expect(storage.grantHeaders.get(objectPath(id, "script", "process.py"))).toBe("signed");
    expect(fake.executions.get(id)?.status).toBe(ExecutionStatus.QUEUED);
  });

  it("infers the runtime from the extension", async () => {
    await writeFile(join(workspace.path, "job.mjs"), "console.log(1)\n");
    const fake = new FakeExecutionService(storage);

    const result = await runAgainst(fake, ["run", "job.mjs", "--json"], { cwd: workspace.path });

    expect(result.exitCode).toBe(0);
    expect(fake.createRequests[0].runtime).toBe("node");
    expect(fake.createRequests[0].timeoutSeconds).toBe(0);
    expect(JSON.parse(result.stdout.join("\n"))).toMatchObject({ status: "queued", runtime: "node", script: "job.mjs" });
  });

  it("re-sends CreateExecution with the same request_id after a lost connection", async () => {
    await writeFile(join(workspace.path, "process.py"), "pass\n");
    const fake = new FakeExecutionService(storage);
    fake.outages.set("createExecution", 1);
    fake.outages.set("confirmUploads", 1);

    const result = await runAgainst(fake, ["run", "process.py"], { cwd: workspace.path });

    expect(result.exitCode).toBe(0);
    expect(result.stderr).toEqual([
      "Connection lost. Retrying... (attempt 2/5)",
      "Connection lost. Retrying... (attempt 2/5)",
    ]);
    expect(fake.createRequests).toHaveLength(2);
    expect(fake.createRequests[1].requestId).toBe(fake.createRequests[0].requestId);
    expect(fake.executions.size).toBe(1);
  });

  it.each([
    [["run", "absent.py"], /^Error: script absent\.py not found/],
    [["run", "script.txt"], /^Error: cannot tell the runtime of script\.txt.*--runtime/],
    [["run", "process.py", "--env", "NOEQUALS"], /^Error: option '--env <KEY=VALUE>' argument 'NOEQUALS' is invalid/],
    [["run", "process.py", "--timeout", "soon"], /^Error: option '--timeout <seconds>' argument 'soon' is invalid/],
    [["run", "process.py", "--bogus"], /^Error: unknown option '--bogus'/],
    // The server refuses an input with the script's name; it is caught before anything is sent.
    [["run", "process.py", "process.py"], /^Error: the script process\.py cannot also be one of its own input files\.$/],
  ])("treats %j as a usage error (exit 2) and creates nothing", async (argv, message) => {
    await writeFile(join(workspace.path, "process.py"), "pass\n");
    await writeFile(join(workspace.path, "script.txt"), "pass\n");
    const fake = new FakeExecutionService(storage);

    const result = await runAgainst(fake, argv, { cwd: workspace.path });

    expect(result.exitCode).toBe(2);
    expect(result.stderr[0]).toMatch(message);
    expect(fake.createRequests).toEqual([]);
  });

  it("refuses with exit 2 an input whose directory has the script's name, and creates nothing", async () => {
    // The script comes from elsewhere as "tool"; the input keeps its path "tool/x.csv".
    await writeFile(join(elsewhere.path, "tool"), "pass\n");
    await mkdir(join(workspace.path, "tool"));
    await writeFile(join(workspace.path, "tool", "x.csv"), "1\n");
    const fake = new FakeExecutionService(storage);

    const result = await runAgainst(fake, ["run", join(elsewhere.path, "tool"), "--runtime", "python", "tool/x.csv"], {
      cwd: workspace.path,
    });

    expect(result.exitCode).toBe(2);
    expect(result.stderr).toEqual(["Error: tool cannot be a file and also the directory of tool/x.csv on the runner."]);
    expect(fake.createRequests).toEqual([]);
  });

  it("with --wait streams logs as they appear and exits with the script's exit code", async () => {
    await writeFile(join(workspace.path, "process.py"), "raise SystemExit(3)\n");
    const fake = new FakeExecutionService(storage);
    fake.followPageSize = 1;
    fake.scriptedRun = {
      lines: [
        [LogEntry_Stream.STDOUT, "starting"],
        [LogEntry_Stream.STDERR, "warning: slow"],
      ],
      finalLine: [LogEntry_Stream.STDOUT, "giving up"],
      status: ExecutionStatus.FAILED,
      exitCode: 3,
    };

    const result = await runAgainst(fake, ["run", "process.py", "--wait"], { cwd: workspace.path });

    const id = [...fake.executions.keys()][0];
    expect(result.stdout).toEqual([
      `Execution started: ${id}`,
      "starting",
      "giving up",
      `Execution ${id} failed (exit code 3)`,
    ]);
    expect(result.stderr).toEqual(["warning: slow"]);
    expect(result.exitCode).toBe(3);
    // One live stream, no polling.
    expect(fake.followRequests.map((request) => request.afterSequence)).toEqual([0n]);
    expect(result.sleeps).toEqual([]);
  });

  it("with --wait exits 0 when the script completes", async () => {
    const fake = await printOkRun(storage);

    const result = await runAgainst(fake, ["run", "process.py", "--wait"], { cwd: workspace.path });

    expect({ code: result.exitCode, stderr: result.stderr }).toEqual({ code: 0, stderr: [] });
    expect(result.stdout.at(-1)).toMatch(/^Execution exec_[0-9a-f]{32} completed in \d/);
  });

  it("with --wait follows the server's automatic retry and exits with its outcome", async () => {
    await writeFile(join(workspace.path, "process.py"), "pass\n");
    const fake = new FakeExecutionService(storage);
    fake.scriptedRunOf = (execution) => ({
      lines: [[LogEntry_Stream.STDOUT, `attempt ${execution.attempt}`]],
      finalLine: [LogEntry_Stream.STDOUT, execution.attempt === 1 ? "retrying soon" : "done"],
      status: execution.attempt === 1 ? ExecutionStatus.FAILED : ExecutionStatus.COMPLETED,
      exitCode: execution.attempt === 1 ? 75 : 0,
      outputs: execution.attempt === 1 ? [] : [["result.txt", "42\n"]],
    });
    fake.onRunEnded = (execution) => {
      if (execution.attempt === 1) {
        execution.failureKind = FailureKind.SCRIPT;
        const retry = fake.seed({
          ...execution,
          id: newExecutionId(),
          status: ExecutionStatus.QUEUED,
          attempt: 2,
          retryOf: execution.id,
          retryKind: RetryKind.AUTOMATIC,
          autoRetryNumber: 1,
          retryReason: "exit code 75",
          outputs: [],
          finishedAt: undefined,
        });
        execution.retriedAs.push(retry.id);
      }
    };

    const result = await runAgainst(fake, ["run", "process.py", "--wait", "--retry-on-exit", "75"], { cwd: workspace.path });

    const [first, retry] = [...fake.executions.keys()];
    expect(result.stdout).toEqual([
      `Execution started: ${first}`,
      "attempt 1",
      "retrying soon",
      "attempt 2",
      "done",
      expect.stringMatching(new RegExp(`^Execution ${retry} completed`)),
    ]);
    expect(result.stderr).toEqual([
      `Execution ${first} failed (exit code 75)`,
      `Auto-retry 1/2 after exit code 75: ${retry}`,
      "Downloaded result.txt (3 B)",
    ]);
    expect(result.exitCode).toBe(0);
    expect(await readFile(join(workspace.path, "result.txt"), "utf8")).toBe("42\n");
  });

  it.each([
    ["times out", ExecutionStatus.TIMED_OUT, 143],
    ["is cancelled", ExecutionStatus.CANCELLED, undefined],
  ])("with --wait exits 1 when the execution %s, whatever code the killed script had", async (_name, status, exitCode) => {
    const fake = await printOkRun(storage, { status, exitCode });

    const result = await runAgainst(fake, ["run", "process.py", "--wait", "--remote-only"], { cwd: workspace.path });

    expect(result.exitCode).toBe(1);
  });

  it("with --wait downloads the outputs into the current directory, reporting them on stderr", async () => {
    await writeFile(join(workspace.path, "process.py"), "raise SystemExit(3)\n");
    await writeFile(join(workspace.path, "report.txt"), "from an earlier run");
    const fake = new FakeExecutionService(storage);
    fake.scriptedRun = {
      lines: [[LogEntry_Stream.STDOUT, "writing"]],
      finalLine: [LogEntry_Stream.STDOUT, "giving up"],
      status: ExecutionStatus.FAILED,
      exitCode: 3,
      outputs: [["report.txt", "partial report\n"]],
    };

    const result = await runAgainst(fake, ["run", "process.py", "--wait"], { cwd: workspace.path });

    const id = [...fake.executions.keys()][0];
    expect(result.stdout).toEqual([`Execution started: ${id}`, "writing", "giving up", `Execution ${id} failed (exit code 3)`]);
    expect(result.stderr).toEqual(["Downloaded report.txt (15 B)"]);
    expect(result.exitCode).toBe(3);
    expect(await readFile(join(workspace.path, "report.txt"), "utf8")).toBe("partial report\n");
  });

  it("with --wait --remote-only leaves the outputs on the server", async () => {
    const fake = await printOkRun(storage, { outputs: [["out/result.txt", "42\n"]] });

    const result = await runAgainst(fake, ["run", "process.py", "--wait", "--remote-only"], { cwd: workspace.path });

    expect({ code: result.exitCode, stderr: result.stderr }).toEqual({ code: 0, stderr: [] });
    expect(await readdir(workspace.path)).toEqual(["process.py"]);
    // The output exists on the server: the download was skipped, not impossible.
    expect([...fake.executions.values()][0].outputs.map((output) => output.name)).toEqual(["out/result.txt"]);
  });

  it("with --wait and --json keeps stdout one JSON object and still downloads", async () => {
    const fake = await printOkRun(storage, { outputs: [["out/result.txt", "42\n"]] });

    const result = await runAgainst(fake, ["run", "process.py", "--wait", "--json"], { cwd: workspace.path });

    expect(result.exitCode).toBe(0);
    expect(JSON.parse(result.stdout.join("\n"))).toMatchObject({ status: "completed", outputs: [{ name: "out/result.txt" }] });
    expect(result.stderr).toEqual(["Downloaded out/result.txt (3 B)"]);
    expect(await readFile(join(workspace.path, "out", "result.txt"), "utf8")).toBe("42\n");
  });

  it.each([
    ["completed", ExecutionStatus.COMPLETED, 0, "completed", 1],
    ["failed", ExecutionStatus.FAILED, 3, "failed \\(exit code 3\\)", 3],
  ])(
    "with --wait reports outputs that cannot be downloaded after a %s script, keeping a failed script's exit code",
    async (_name, status, scriptExitCode, outcome, expectedExitCode) => {
      // The runner's uploads land in a map object storage does not serve: recorded, but gone.
      const fake = await printOkRun(
        { url: storage.url, objects: new Map() },
        { status, exitCode: scriptExitCode, outputs: [["result.txt", "42\n"]] },
      );

      const result = await runAgainst(fake, ["run", "process.py", "--wait"], { cwd: workspace.path });

      const id = [...fake.executions.keys()][0];
      expect(result.stdout.at(-1)).toMatch(new RegExp(`^Execution ${id} ${outcome}`));
      expect(result.stderr).toEqual([
        "Error: downloading result.txt failed: download refused with HTTP 404: NoSuchKey. " +
          `Run 'rgrid download ${id}' again.`,
      ]);
      expect(result.exitCode).toBe(expectedExitCode);
      expect(await readdir(workspace.path)).toEqual(["process.py"]);
    },
  );

  it("fails with exit 1 and a plain message when object storage refuses an upload", async () => {
    await writeFile(join(workspace.path, "process.py"), "pass\n");
    const refusing = createServer((_request, response) => response.writeHead(403).end("<Code>AccessDenied</Code>"));
    await new Promise<void>((resolve) => refusing.listen(0, "127.0.0.1", resolve));
    const fake = new FakeExecutionService({ url: `http://127.0.0.1:${(refusing.address() as AddressInfo).port}` });

    try {
      const result = await runAgainst(fake, ["run", "process.py"], { cwd: workspace.path });

      expect(result.exitCode).toBe(1);
      expect(result.stderr).toEqual([
        "Error: uploading to object storage failed: upload refused with HTTP 403: AccessDenied. Run the command again.",
      ]);
      expect(result.stdout).toEqual([]);
      // Never confirmed, so never queued.
      expect([...fake.executions.values()].map((execution) => execution.status)).toEqual([ExecutionStatus.UPLOADING]);
    } finally {
      await new Promise<void>((resolve) => refusing.close(() => resolve()));
    }
  });
});
