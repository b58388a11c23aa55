import { mkdir, writeFile } from "node:fs/promises";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { Code, ConnectError } from "@connectrpc/connect";
import { newExecutionId } from "@rgrid/common/ids";
import { ExecutionStatus, FailureKind, LogEntry_Stream, RetryKind } from "@rgrid/proto";
import type { Execution } from "@rgrid/proto";
import { FakeExecutionService } from "./fake-execution-service";
import { runAgainst, temporaryDirectory } from "./harness";
import { objectPath, startObjectStorage } from "./object-storage";
import type { FakeObjectStorage } from "./object-storage";

const BATCH_ID = /^batch_[0-9a-f]{32}$/;

describe("rgrid run flags for retries and the network", () => {
  let workspace: { path: string; remove: () => Promise<void> };
  let storage: FakeObjectStorage;

  beforeEach(async () => {
    workspace = await temporaryDirectory();
    storage = await startObjectStorage();
    await writeFile(join(workspace.path, "process.py"), "pass\n");
  });
  afterEach(async () => {
    await storage.close();
    await workspace.remove();
  });

  it("sends --network, --max-retries and every --retry-on-exit", async () => {
    const fake = new FakeExecutionService(storage);

    const result = await runAgainst(
      fake,
      ["run", "process.py", "--network", "--max-retries", "3", "--retry-on-exit", "75", "--retry-on-exit", "111"],
      { cwd: workspace.path },
    );

    expect(result.exitCode).toBe(0);
    const [request] = fake.createRequests;
    expect({ network: request.network, max: request.maxRetries, codes: request.retryOnExitCodes }).toEqual({
      network: true,
      max: 3,
      codes: [75, 111],
    });
    expect(request.batchId).toBe("");
  });

  it("leaves the network off and the retry budget to the server by default", async () => {
    const fake = new FakeExecutionService(storage);

    await runAgainst(fake, ["run", "process.py"], { cwd: workspace.path });

    const [request] = fake.createRequests;
    expect({ network: request.network, max: request.maxRetries, codes: request.retryOnExitCodes }).toEqual({
      network: false,
      max: undefined,
      codes: [],
    });
  });

  it.each([
    [["--max-retries", "11"], /^Error: option '--max-retries <n>' argument '11' is invalid\. expected a whole number from 0 to 10\./],
    [["--max-retries", "-1"], /^Error: option '--max-retries <n>' argument '-1' is invalid/],
    [["--max-retries", "two"], /^Error: option '--max-retries <n>' argument 'two' is invalid/],
    [["--retry-on-exit", "0"], /^Error: option '--retry-on-exit <code>' argument '0' is invalid\. expected a whole number from 1 to 255\./],
    [["--retry-on-exit", "256"], /^Error: option '--retry-on-exit <code>' argument '256' is invalid/],
    [["--parallel", "2"], /^Error: --parallel limits the executions of a batch; use it with --batch <pattern>\./],
    [["--batch", "*.csv", "--parallel", "-3"], /^Error: option '--parallel <n>' argument '-3' is invalid/],
    [["--batch", "*.nothing"], /^Error: --batch \*\.nothing matches no files/],
  ])("treats %j as a usage error (exit 2) and sends nothing", async (flags, message) => {
    await writeFile(join(workspace.path, "a.csv"), "1\n");
    const fake = new FakeExecutionService(storage);

    const result = await runAgainst(fake, ["run", "process.py", ...flags], { cwd: workspace.path });

    expect(result.exitCode).toBe(2);
    expect(result.stderr[0]).toMatch(message);
    expect(fake.authorizations).toEqual([]);
  });
});

describe("rgrid run --batch", () => {
  let workspace: { path: string; remove: () => Promise<void> };
  let storage: FakeObjectStorage;

  beforeEach(async () => {
    workspace = await temporaryDirectory();
    storage = await startObjectStorage();
    await writeFile(join(workspace.path, "process.py"), "import sys\n");
    await mkdir(join(workspace.path, "data"));
    for (const name of ["a", "b", "c", "d", "e"]) {
      await writeFile(join(workspace.path, "data", `${name}.csv`), `${name}\n`);
    }
    await writeFile(join(workspace.path, "data", "ignored.txt"), "x\n");
    await writeFile(join(workspace.path, "lookup.json"), "{}");
  });
  afterEach(async () => {
    await storage.close();
    await workspace.remove();
  });

  /** The executions of the fake, in the order they were created. */
  const created = (fake: FakeExecutionService): Execution[] => [...fake.executions.values()];

  it("runs the script once per matching file, the file first, in one batch with its parallelism", async () => {
    const fake = new FakeExecutionService(storage);

    const result = await runAgainst(
      fake,
      ["run", "process.py", "--batch", "data/*.csv", "--parallel", "2", "fast", "lookup.json", "--max-retries", "1"],
      { cwd: workspace.path },
    );

    expect(result.stderr).toEqual([]);
    expect(result.exitCode).toBe(0);
    const requests = [...fake.createRequests].sort((x, y) => x.args[0].localeCompare(y.args[0]));
    expect(requests.map((request) => request.args)).toEqual(
      ["a", "b", "c", "d", "e"].map((name) => [`data/${name}.csv`, "fast", "lookup.json"]),
    );
    expect(requests.map((request) => request.inputs.map((input) => input.name))).toEqual(
      ["a", "b", "c", "d", "e"].map((name) => [`data/${name}.csv`, "lookup.json"]),
    );
    const batchId = requests[0].batchId;
    expect(batchId).toMatch(BATCH_ID);
    expect(new Set(requests.map((request) => request.batchId))).toEqual(new Set([batchId]));
    expect(new Set(requests.map((request) => request.batchParallelism))).toEqual(new Set([2]));
    expect(new Set(requests.map((request) => request.maxRetries))).toEqual(new Set([1]));
    expect(new Set(requests.map((request) => request.requestId)).size).toBe(5);

    const byFile = new Map(created(fake).map((execution) => [execution.args[0], execution.id]));
    expect(result.stdout).toEqual([
      `Batch started: ${batchId} (5 executions)`,
      ...["a", "b", "c", "d", "e"].map((name) => `Execution started: ${byFile.get(`data/${name}.csv`)} data/${name}.csv`),
    ]);
    for (const execution of created(fake)) {
      expect(execution.status).toBe(ExecutionStatus.QUEUED);
      const file = execution.args[0];
      expect(storage.objects.get(objectPath(execution.id, "inputs", file))?.toString()).toBe(`${file.slice(5, 6)}\n`);
      expect(storage.objects.get(objectPath(execution.id, "script", "process.py"))?.toString()).toBe("import sys\n");
    }
  });

  it("creates and confirms the batch's executions one call each, uploading the script once", async () => {
    const fake = new FakeExecutionService(storage);

    const result = await runAgainst(fake, ["run", "process.py", "--batch", "data/*.csv"], { cwd: workspace.path });

    expect(result.exitCode).toBe(0);
    expect(fake.methodCalls).toEqual(["batchCreateExecutions", "batchConfirmUploads"]);
    const scriptPuts = [...storage.grantHeaders.keys()].filter((key) => key.endsWith("/script/process.py"));
    expect(scriptPuts).toHaveLength(1);
    expect(created(fake).map((execution) => execution.status)).toEqual(Array(5).fill(ExecutionStatus.QUEUED));
  });

  it("sends a batch of 250 files in three calls of at most 100, printing every execution in file order", async () => {
    await mkdir(join(workspace.path, "many"));
    const names = Array.from({ length: 250 }, (_, index) => `many/${String(index).padStart(3, "0")}.csv`);
    for (const name of names) {
      await writeFile(join(workspace.path, name), `${name}\n`);
    }
    const fake = new FakeExecutionService(storage);

    const result = await runAgainst(fake, ["run", "process.py", "--batch", "many/*.csv"], { cwd: workspace.path });

    expect(result.exitCode).toBe(0);
    expect(fake.methodCalls.filter((method) => method === "batchCreateExecutions")).toHaveLength(3);
    expect(fake.methodCalls.filter((method) => method === "batchConfirmUploads")).toHaveLength(3);
    const byFile = new Map(created(fake).map((execution) => [execution.args[0], execution.id]));
    expect(result.stdout.slice(1)).toEqual(names.map((name) => `Execution started: ${byFile.get(name)} ${name}`));
    expect(new Set(created(fake).map((execution) => execution.status))).toEqual(new Set([ExecutionStatus.QUEUED]));
  });

  it("submits one execution at a time to a server without the batch calls, with the same output", async () => {
    const fake = new FakeExecutionService(storage);
    fake.batchCalls = false;

    const result = await runAgainst(fake, ["run", "process.py", "--batch", "data/*.csv"], { cwd: workspace.path });

    expect(result.exitCode).toBe(0);
    expect(fake.methodCalls.filter((method) => method === "createExecution")).toHaveLength(5);
    const byFile = new Map(created(fake).map((execution) => [execution.args[0], execution.id]));
    expect(result.stdout.slice(1)).toEqual(["a", "b", "c", "d", "e"].map((name) => `Execution started: ${byFile.get(`data/${name}.csv`)} data/${name}.csv`));
    for (const execution of created(fake)) {
      expect(execution.status).toBe(ExecutionStatus.QUEUED);
      expect(storage.objects.get(objectPath(execution.id, "script", "process.py"))?.toString()).toBe("import sys\n");
    }
  });

  it("leaves out only the execution whose input could not be uploaded, even the one that uploaded the script", async () => {
    const fake = new FakeExecutionService(storage);
    // data/a.csv's execution is the first, which uploads the script the others are copied from.
    fake.unreachableUploadOf = (name) => name === "data/a.csv";

    const result = await runAgainst(fake, ["run", "process.py", "--batch", "data/*.csv"], { cwd: workspace.path });

    expect(result.exitCode).toBe(1);
    expect(result.stderr[0]).toBe(`Error: 1 of 5 files of batch ${created(fake)[0].batchId} was not submitted:`);
    expect(result.stderr[1]).toMatch(/^ {2}data\/a\.csv: uploading to object storage failed: cannot reach object storage/);
    const statusOf = new Map(created(fake).map((execution) => [execution.args[0], execution.status]));
    expect(statusOf.get("data/a.csv")).toBe(ExecutionStatus.UPLOADING);
    for (const name of ["b", "c", "d", "e"]) {
      expect(statusOf.get(`data/${name}.csv`)).toBe(ExecutionStatus.QUEUED);
    }
  });

  it("sends no parallelism limit without --parallel", async () => {
    const fake = new FakeExecutionService(storage);

    await runAgainst(fake, ["run", "process.py", "--batch", "data/a.csv"], { cwd: workspace.path });

    expect(fake.createRequests.map((request) => request.batchParallelism)).toEqual([0]);
  });

  it("prints the batch id and its executions as one JSON object with --json", async () => {
    const fake = new FakeExecutionService(storage);

    const result = await runAgainst(fake, ["run", "process.py", "--batch", "data", "--json"], { cwd: workspace.path });

    expect(result.exitCode).toBe(0);
    const printed = JSON.parse(result.stdout.join("\n")) as { batch_id: string; executions: Array<{ id: string; args: string[] }> };
    expect(printed.batch_id).toMatch(BATCH_ID);
    expect(printed.executions.map((view) => view.args[0])).toEqual([
      "data/a.csv", "data/b.csv", "data/c.csv", "data/d.csv", "data/e.csv", "data/ignored.txt",
    ]);
    expect(printed.executions.map((view) => view.id).sort()).toEqual(created(fake).map((execution) => execution.id).sort());
  });

  it("stops with exit 2 and creates nothing when the pattern matches the script itself", async () => {
    await writeFile(join(workspace.path, "other.py"), "pass\n");
    const fake = new FakeExecutionService(storage);

    const result = await runAgainst(fake, ["run", "process.py", "--batch", "*.py"], { cwd: workspace.path });

    expect(result.exitCode).toBe(2);
    expect(result.stderr).toEqual([
      "Error: --batch file process.py: the script process.py cannot also be one of its own input files. Nothing was submitted.",
    ]);
    expect(result.stdout).toEqual([]);
    expect(fake.createRequests).toEqual([]);
  });

  it("stops with exit 2 and creates nothing when one file's inputs cannot be planned", async () => {
    // Outside the current directory a file travels under its base name, which data/b.csv's
    // execution then needs twice: matched by the absolute pattern, and given as b.csv.
    await writeFile(join(workspace.path, "b.csv"), "other b\n");
    const fake = new FakeExecutionService(storage);

    const result = await runAgainst(fake, ["run", "process.py", "--batch", `${workspace.path}/data/*.csv`, "b.csv"], {
      cwd: workspace.path,
    });

    expect(result.exitCode).toBe(2);
    expect(result.stderr).toHaveLength(1);
    expect(result.stderr[0]).toMatch(/^Error: --batch file .*b\.csv: input files .* would both be named b\.csv on the runner\. .*Nothing was submitted\.$/);
    expect(fake.createRequests).toEqual([]);
  });

  it("submits the other files when one is refused, prints each started one, and says what to do", async () => {
    const fake = new FakeExecutionService(storage);
    fake.onCreate = (request) => {
      if (request.args[0] === "data/b.csv") {
        throw new ConnectError("the account's queue is full", Code.ResourceExhausted);
      }
    };

    const result = await runAgainst(fake, ["run", "process.py", "--batch", "data/*.csv"], { cwd: workspace.path });

    expect(result.exitCode).toBe(1);
    const batchId = created(fake)[0].batchId;
    const byFile = new Map(created(fake).map((execution) => [execution.args[0], execution.id]));
    expect(result.stdout).toEqual([
      `Batch started: ${batchId} (5 executions)`,
      ...["a", "c", "d", "e"].map((name) => `Execution started: ${byFile.get(`data/${name}.csv`)} data/${name}.csv`),
    ]);
    expect(result.stderr).toEqual([
      `Error: 1 of 5 files of batch ${batchId} was not submitted:`,
      "  data/b.csv: the account's queue is full",
      "The other 4 were submitted and will run.",
      `See them with: rgrid list --batch ${batchId}`,
      "Cancel one with: rgrid cancel <id>",
    ]);
    expect(created(fake).map((execution) => execution.status)).toEqual(Array(4).fill(ExecutionStatus.QUEUED));
  });

  it("with --json prints the batch id, the submitted executions and the failures", async () => {
    const fake = new FakeExecutionService(storage);
    fake.onCreate = (request) => {
      if (request.args[0] === "data/a.csv") {
        throw new ConnectError("the account's queue is full", Code.ResourceExhausted);
      }
    };

    const result = await runAgainst(fake, ["run", "process.py", "--batch", "data/*.csv", "--json"], { cwd: workspace.path });

    expect(result.exitCode).toBe(1);
    const printed = JSON.parse(result.stdout.join("\n")) as {
      batch_id: string;
      executions: Array<{ id: string; args: string[] }>;
      failures: Array<{ file: string; error: string }>;
    };
    expect(printed.batch_id).toBe(created(fake)[0].batchId);
    expect(printed.executions.map((view) => view.args[0])).toEqual(["data/b.csv", "data/c.csv", "data/d.csv", "data/e.csv"]);
    expect(printed.failures).toEqual([{ file: "data/a.csv", error: "the account's queue is full" }]);
  });

  it("does not advise running the whole batch again when uploads fail", async () => {
    const refusing = createServer((_request, response) => response.writeHead(403).end("<Code>AccessDenied</Code>"));
    await new Promise<void>((resolve) => refusing.listen(0, "127.0.0.1", resolve));
    const fake = new FakeExecutionService({ url: `http://127.0.0.1:${(refusing.address() as AddressInfo).port}` });

    try {
      const result = await runAgainst(fake, ["run", "process.py", "--batch", "data/*.csv"], { cwd: workspace.path });

      expect(result.exitCode).toBe(1);
      expect(result.stderr).toEqual([
        `Error: 5 of 5 files of batch ${created(fake)[0].batchId} were not submitted:`,
        ...["a", "b", "c", "d", "e"].map(
          (name) => `  data/${name}.csv: uploading to object storage failed: upload refused with HTTP 403: AccessDenied`,
        ),
      ]);
      // Never confirmed, so none will run.
      expect(new Set(created(fake).map((execution) => execution.status))).toEqual(new Set([ExecutionStatus.UPLOADING]));
    } finally {
      await new Promise<void>((resolve) => refusing.close(() => resolve()));
    }
  });

  it("with --wait waits for the submitted executions and counts the others as not submitted", async () => {
    const fake = new FakeExecutionService(storage);
    fake.onCreate = (request) => {
      if (request.args[0] === "data/c.csv") {
        throw new ConnectError("the account's queue is full", Code.ResourceExhausted);
      }
    };
    fake.scriptedRun = { lines: [], finalLine: [LogEntry_Stream.STDOUT, "done"], status: ExecutionStatus.COMPLETED, exitCode: 0 };

    const result = await runAgainst(fake, ["run", "process.py", "--batch", "data/*.csv", "--wait"], { cwd: workspace.path });

    expect(result.stdout.at(-1)).toBe("4 completed, 1 not submitted");
    expect(result.stderr[1]).toBe("  data/c.csv: the account's queue is full");
    expect(result.exitCode).toBe(1);
  });

  it("with --wait waits for every execution, prints each outcome and a summary, exit 1 when any failed", async () => {
    const fake = new FakeExecutionService(storage);
    fake.scriptedRunOf = (execution) => {
      const failing = execution.args[0] === "data/b.csv" || execution.args[0] === "data/d.csv";
      return {
        lines: [],
        finalLine: [LogEntry_Stream.STDOUT, "done"],
        status: failing ? ExecutionStatus.FAILED : ExecutionStatus.COMPLETED,
        exitCode: failing ? 3 : 0,
      };
    };

    const result = await runAgainst(fake, ["run", "process.py", "--batch", "data/*.csv", "--wait"], { cwd: workspace.path });

    expect(result.exitCode).toBe(1);
    expect(result.stdout.at(-1)).toBe("3 completed, 2 failed");
    const outcomes = result.stdout.filter((line) => / (completed|failed)/.test(line) && line.startsWith("Execution exec_"));
    expect(outcomes).toHaveLength(5);
    const byFile = new Map(created(fake).map((execution) => [execution.args[0], execution.id]));
    expect(outcomes).toContain(`Execution ${byFile.get("data/b.csv")} failed (exit code 3)`);
    expect(result.sleeps.length).toBeGreaterThan(0);
  });

  it("with --wait counts an automatic retry's outcome instead of the failure it replaced", async () => {
    const fake = new FakeExecutionService(storage);
    fake.scriptedRunOf = (execution) => ({
      lines: [],
      finalLine: [LogEntry_Stream.SYSTEM, "end"],
      // The first attempt loses its runner; its automatic retry completes.
      status: execution.attempt === 1 ? ExecutionStatus.FAILED : ExecutionStatus.COMPLETED,
      exitCode: execution.attempt === 1 ? undefined : 0,
    });
    // The server records the failure first and makes the retry a moment later: the poll that sees
    // the failure does not see its retry yet; the next one does.
    let lostRunner: Execution | undefined;
    fake.onRunEnded = (execution) => {
      if (execution.attempt === 1) {
        execution.failureKind = FailureKind.RUNNER_LOST;
        execution.maxRetries = 2;
        lostRunner = execution;
      }
    };
    fake.onList = () => {
      if (lostRunner && lostRunner.retriedAs.length === 0) {
        const retry = fake.seed({
          ...lostRunner,
          id: newExecutionId(),
          status: ExecutionStatus.QUEUED,
          attempt: 2,
          retryOf: lostRunner.id,
          retryKind: RetryKind.AUTOMATIC,
          autoRetryNumber: 1,
        });
        lostRunner.retriedAs.push(retry.id);
      }
    };

    const result = await runAgainst(fake, ["run", "process.py", "--batch", "data/a.csv", "--wait"], { cwd: workspace.path });

    expect(result.stdout.at(-1)).toBe("1 completed");
    expect(result.exitCode).toBe(0);
    expect(fake.executions.size).toBe(2);
  });

  it("with --wait --json prints the finished executions", async () => {
    const fake = new FakeExecutionService(storage);
    fake.scriptedRunOf = () => ({
      lines: [],
      finalLine: [LogEntry_Stream.STDOUT, "done"],
      status: ExecutionStatus.COMPLETED,
      exitCode: 0,
    });

    const result = await runAgainst(fake, ["run", "process.py", "--batch", "data/*.csv", "--wait", "--json"], {
      cwd: workspace.path,
    });

    expect(result.exitCode).toBe(0);
    const printed = JSON.parse(result.stdout.join("\n")) as { executions: Array<{ status: string }> };
    expect(printed.executions.map((view) => view.status)).toEqual(Array(5).fill("completed"));
  });
});

describe("rgrid list --batch", () => {
  it("asks for the batch's executions only", async () => {
    const fake = new FakeExecutionService();
    const batchId = `batch_${"1".repeat(32)}`;
    const inBatch = fake.seed({ batchId, status: ExecutionStatus.COMPLETED });
    const outside = fake.seed({ status: ExecutionStatus.COMPLETED });

    const result = await runAgainst(fake, ["list", "--batch", batchId]);

    expect(result.exitCode).toBe(0);
    expect(result.stdout.join("\n")).toContain(inBatch.id);
    expect(result.stdout.join("\n")).not.toContain(outside.id);
  });

  it("rejects a malformed batch id with exit 2 and sends nothing", async () => {
    const fake = new FakeExecutionService();

    const result = await runAgainst(fake, ["list", "--batch", "exec_123"]);

    expect(result.exitCode).toBe(2);
    expect(result.stderr[0]).toMatch(/argument 'exec_123' is invalid\. expected a batch id/);
    expect(fake.authorizations).toEqual([]);
  });
});

describe("rgrid retry --batch", () => {
  const batchId = `batch_${"ab".repeat(16)}`;

  function batchOfFour(fake: FakeExecutionService): Execution[] {
    return [
      fake.seed({ batchId, status: ExecutionStatus.FAILED, errorMessage: "boom" }),
      fake.seed({ batchId, status: ExecutionStatus.COMPLETED }),
      fake.seed({ batchId, status: ExecutionStatus.TIMED_OUT }),
      fake.seed({ batchId, status: ExecutionStatus.RUNNING }),
    ];
  }

  it("prints ORIGINAL, STATUS and NEW for each execution, skipped ones with their reason, and a summary", async () => {
    const fake = new FakeExecutionService();
    const [failed, completed, timedOut, running] = batchOfFour(fake);

    const result = await runAgainst(fake, ["retry", "--batch", batchId, "--failed-only"]);

    expect(result.exitCode).toBe(0);
    expect(fake.retryBatchRequests.map((request) => [request.batchId, request.failedOnly])).toEqual([[batchId, true]]);
    const newId = (original: Execution): string => fake.executions.get(original.id)!.retriedAs[0];
    expect(result.stdout.map((line) => line.split(/\s{2,}/))).toEqual([
      ["ORIGINAL", "STATUS", "NEW"],
      [failed.id, "failed", newId(failed)],
      [completed.id, "completed", "skipped: completed"],
      [timedOut.id, "timed_out", newId(timedOut)],
      [running.id, "running", "skipped: still running"],
      [""],
      ["Retried 2 of 4 executions; 2 skipped."],
      [`Check progress: rgrid list --batch ${batchId}`],
    ]);
  });

  it("re-sends with the same request_id after a lost connection", async () => {
    const fake = new FakeExecutionService();
    batchOfFour(fake);
    fake.outages.set("retryBatch", 1);

    const result = await runAgainst(fake, ["retry", "--batch", batchId]);

    expect(result.exitCode).toBe(0);
    expect(result.stderr).toEqual(["Connection lost. Retrying... (attempt 2/5)"]);
    const [first, second] = fake.retryBatchRequests;
    expect(first.requestId.length).toBeGreaterThanOrEqual(16);
    expect(second.requestId).toBe(first.requestId);
    expect(first.failedOnly).toBe(false);
    expect(result.stdout.at(-2)).toBe("Retried 3 of 4 executions; 1 skipped.");
  });

  it("prints every item as JSON with --json", async () => {
    const fake = new FakeExecutionService();
    const [failed] = batchOfFour(fake);

    const result = await runAgainst(fake, ["retry", "--batch", batchId, "--failed-only", "--json"]);

    const printed = JSON.parse(result.stdout.join("\n"));
    expect(printed).toMatchObject({ batch_id: batchId, retried_count: 2, skipped_count: 2 });
    expect(printed.items[0]).toMatchObject({
      original_id: failed.id,
      original_status: "failed",
      retry: { retry_of: failed.id, status: "queued", batch_id: batchId },
      skipped: null,
    });
    expect(printed.items[1]).toMatchObject({ retry: null, skipped: "completed" });
  });

  it("exits 1 with a plain sentence for a batch with no executions", async () => {
    const fake = new FakeExecutionService();

    const result = await runAgainst(fake, ["retry", "--batch", batchId]);

    expect(result.exitCode).toBe(1);
    expect(result.stderr).toEqual([
      `Error: batch ${batchId} has no executions. Check the id with 'rgrid list --batch ${batchId}'.`,
    ]);
  });

  it.each([
    [["retry", "exec_0123456789abcdef0123456789abcdef", "--batch", batchId], /^Error: give either an execution id or --batch/],
    [["retry"], /^Error: name the execution to retry/],
    [["retry", "--batch", "batch_xyz"], /argument 'batch_xyz' is invalid\. expected a batch id/],
    [["retry", "--batch", batchId, "--force"], /^Error: --force applies to one execution/],
    [["retry", "exec_0123456789abcdef0123456789abcdef", "--failed-only"], /^Error: --failed-only chooses among a batch's executions/],
  ])("treats %j as a usage error (exit 2) and sends nothing", async (argv, message) => {
    const fake = new FakeExecutionService();

    const result = await runAgainst(fake, argv);

    expect(result.exitCode).toBe(2);
    expect(result.stderr[0]).toMatch(message);
    expect(fake.authorizations).toEqual([]);
  });
});
