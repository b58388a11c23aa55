import { createServer } from "node:http";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { createHash } from "node:crypto";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { ExecutionStatus, LogEntry_Stream } from "@rgrid/proto";
import { FakeExecutionService } from "./fake-execution-service";
import { runAgainst, temporaryDirectory } from "./harness";

/** A real HTTP server standing in for object storage: it keeps the bodies of grant PUTs. */
async function startUploadServer(): Promise<{ url: string; bodies: Map<string, Buffer>; headers: Map<string, string | undefined>; close: () => Promise<void> }> {
  const bodies = new Map<string, Buffer>();
  const headers = new Map<string, string | undefined>();
  const server: Server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => {
      const path = decodeURIComponent(request.url ?? "");
      if (request.method !== "PUT") {
        response.writeHead(405).end();
        return;
      }
      bodies.set(path, Buffer.concat(chunks));
      headers.set(path, request.headers["x-grant"] as string | undefined);
      response.writeHead(200).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    bodies,
    headers,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

describe("rgrid run", () => {
  let workspace: { path: string; remove: () => Promise<void> };
  let elsewhere: { path: string; remove: () => Promise<void> };
  let storage: Awaited<ReturnType<typeof startUploadServer>>;

  beforeEach(async () => {
    workspace = await temporaryDirectory();
    elsewhere = await temporaryDirectory();
    storage = await startUploadServer();
  });

  afterEach(async () => {
    await storage.close();
    await workspace.remove();
    await elsewhere.remove();
  });

  it("uploads the script and file arguments through their grants, keeping or rewriting args", async () => {
    await writeFile(join(workspace.path, "process.py"), "print('hi')\n");
    await mkdir(join(workspace.path, "data"));
    await writeFile(join(workspace.path, "data", "input.json"), '{"n": 1}');
    const outsidePath = join(elsewhere.path, "lookup.csv");
    await writeFile(outsidePath, "a,b\n1,2\n");
    const fake = new FakeExecutionService(storage.url);

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

    expect(storage.bodies.get(`/executions/${id}/script/process.py`)?.toString()).toBe("print('hi')\n");
    expect(storage.bodies.get(`/executions/${id}/inputs/data/input.json`)?.toString()).toBe('{"n": 1}');
    expect(storage.bodies.get(`/executions/${id}/inputs/lookup.csv`)?.toString()).toBe("a,b\n1,2\n");
    expect(storage.headers.get(`/executions/${id}/script/process.py`)).toBe("signed");
    expect(fake.executions.get(id)?.status).toBe(ExecutionStatus.QUEUED);
  });

  it("infers the runtime from the extension", async () => {
    await writeFile(join(workspace.path, "job.mjs"), "console.log(1)\n");
    const fake = new FakeExecutionService(storage.url);

    const result = await runAgainst(fake, ["run", "job.mjs", "--json"], { cwd: workspace.path });

    expect(result.exitCode).toBe(0);
    expect(fake.createRequests[0].runtime).toBe("node");
    expect(fake.createRequests[0].timeoutSeconds).toBe(0);
    expect(JSON.parse(result.stdout.join("\n"))).toMatchObject({ status: "queued", runtime: "node", script: "job.mjs" });
  });

  it("re-sends CreateExecution with the same request_id after a lost connection", async () => {
    await writeFile(join(workspace.path, "process.py"), "pass\n");
    const fake = new FakeExecutionService(storage.url);
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
  ])("treats %j as a usage error (exit 2) and creates nothing", async (argv, message) => {
    await writeFile(join(workspace.path, "process.py"), "pass\n");
    await writeFile(join(workspace.path, "script.txt"), "pass\n");
    const fake = new FakeExecutionService(storage.url);

    const result = await runAgainst(fake, argv, { cwd: workspace.path });

    expect(result.exitCode).toBe(2);
    expect(result.stderr[0]).toMatch(message);
    expect(fake.createRequests).toEqual([]);
  });

  it("with --wait prints logs as they appear and exits with the script's exit code", async () => {
    await writeFile(join(workspace.path, "process.py"), "raise SystemExit(3)\n");
    const fake = new FakeExecutionService(storage.url);
    fake.logPageSize = 1;
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
    expect(result.sleeps).toEqual([250]);
    expect(result.exitCode).toBe(3);
  });

  it("with --wait exits 0 when the script completes", async () => {
    await writeFile(join(workspace.path, "process.py"), "print('ok')\n");
    const fake = new FakeExecutionService(storage.url);
    fake.scriptedRun = {
      lines: [],
      finalLine: [LogEntry_Stream.STDOUT, "ok"],
      status: ExecutionStatus.COMPLETED,
      exitCode: 0,
    };

    const result = await runAgainst(fake, ["run", "process.py", "--wait"], { cwd: workspace.path });

    expect({ code: result.exitCode, stderr: result.stderr }).toEqual({ code: 0, stderr: [] });
    expect(result.stdout.at(-1)).toMatch(/^Execution exec_[0-9a-f]{32} completed in \d/);
  });

  it("fails with exit 1 and a plain message when object storage refuses an upload", async () => {
    await writeFile(join(workspace.path, "process.py"), "pass\n");
    const refusing = createServer((_request, response) => response.writeHead(403).end("<Code>AccessDenied</Code>"));
    await new Promise<void>((resolve) => refusing.listen(0, "127.0.0.1", resolve));
    const fake = new FakeExecutionService(`http://127.0.0.1:${(refusing.address() as AddressInfo).port}`);

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
