import { create } from "@bufbuild/protobuf";
import { existsSync } from "node:fs";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { newExecutionId } from "@rgrid/common";
import { AssignmentSchema, LogEntry_Stream, Outcome } from "@rgrid/proto";
import type { Assignment, CompleteExecutionRequest, LogEntry } from "@rgrid/proto";
import type { Runner } from "../src/runner";
import type { SandboxCapabilities } from "../src/sandbox";
import { detectRuntimes } from "../src/runtimes";
import type { FakeRunnerService } from "./fake-runner-service";
import { createFakeRunnerService } from "./fake-runner-service";
import type { GrantServer } from "./grant-server";
import { outputGrantsOn, sha256, startGrantServer } from "./grant-server";
import { createTestRunner } from "./test-runner";
import { waitFor } from "./wait-for";

const PROCESS_SCRIPT = `
import json, os, sys
with open(sys.argv[1]) as f:
    data = json.load(f)
print("processing", data["name"])
print("warning: almost done", file=sys.stderr)
os.makedirs("out", exist_ok=True)
with open("out/result.txt", "w") as f:
    f.write("hello " + data["name"] + "\\n")
print("done")
`;

let grants: GrantServer;
let service: FakeRunnerService;
let workRoot: string;
let scratch: string;
let runner: Runner | undefined;

beforeEach(async () => {
  grants = await startGrantServer();
  service = createFakeRunnerService(outputGrantsOn(grants));
  workRoot = await mkdtemp(path.join(tmpdir(), "rgrid-runner-work-"));
  scratch = await mkdtemp(path.join(tmpdir(), "rgrid-runner-scratch-"));
});

afterEach(async () => {
  await runner?.stop();
  runner = undefined;
  await grants.close();
  await rm(workRoot, { recursive: true, force: true });
  await rm(scratch, { recursive: true, force: true });
});

function startRunner(overrides: { shutdownGraceMs?: number; sandbox?: SandboxCapabilities; logFlushIntervalMs?: number } = {}): Promise<string> {
  const { catalog } = detectRuntimes({ searchPath: process.env.PATH ?? "", nodeBinary: process.execPath });
  runner = createTestRunner(service, {
    name: "test-runner",
    runtimes: catalog,
    workDir: workRoot,
    concurrency: 2,
    shutdownGraceMs: overrides.shutdownGraceMs ?? 5000,
    sandbox: overrides.sandbox,
    ...(overrides.logFlushIntervalMs === undefined ? {} : { logFlushIntervalMs: overrides.logFlushIntervalMs }),
  });
  return runner.start();
}

const LIMITS = { cpuSeconds: 60, maxFileBytes: 1024 ** 3, maxProcesses: 256, maxOpenFiles: 1024, memoryBytes: 1024 ** 3 };

/** A script that prints its pid, then a start marker, and sleeps until it is killed. */
const SLEEPER = "import os, time\nprint('pid', os.getpid(), flush=True)\nopen('partial.txt', 'w').write('so far')\nprint('started', flush=True)\ntime.sleep(300)\n";

function pidOf(id: string): number {
  const line = lines(service.logs.get(id), LogEntry_Stream.STDOUT).find((text) => text.startsWith("pid "));
  return Number(line?.slice(4));
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

interface FileSpec {
  name: string;
  content: string;
  /** Bytes the object store really holds, when they should differ from what was declared. */
  storedContent?: string;
}

/** Stores the files on the grant server and describes them as execution-service would. */
function assignmentFor(options: { script: FileSpec; inputs?: FileSpec[]; args?: string[]; timeoutSeconds?: number; batchId?: string }): Assignment {
  const id = newExecutionId();
  const describe = (kind: string, file: FileSpec) => {
    const key = `executions/${id}/${kind}/${file.name}`;
    grants.objects.set(key, Buffer.from(file.storedContent ?? file.content));
    return {
      info: { name: file.name, sizeBytes: BigInt(Buffer.byteLength(file.content)), sha256: sha256(file.content) },
      grant: { name: file.name, method: "GET", url: grants.urlFor(key), headers: {} },
    };
  };
  const script = describe("script", options.script);
  const inputs = (options.inputs ?? []).map((input) => describe("inputs", input));
  return create(AssignmentSchema, {
    execution: {
      id,
      script: script.info,
      runtime: "python",
      args: options.args ?? [],
      env: {},
      inputs: inputs.map((input) => input.info),
      batchId: options.batchId ?? "",
    },
    scriptDownload: script.grant,
    inputDownloads: inputs.map((input) => input.grant),
    runtimeName: "python",
    timeoutSeconds: options.timeoutSeconds ?? 30,
  });
}

function executionId(assignment: Assignment): string {
  return assignment.execution?.id ?? "";
}

/** Hands `assignment` to the runner and waits for its CompleteExecution report. */
async function runToCompletion(assignment: Assignment): Promise<{ id: string; completion: CompleteExecutionRequest }> {
  service.enqueue(assignment);
  const id = executionId(assignment);
  return { id, completion: await service.completionOf(id) };
}

function lines(entries: LogEntry[] | undefined, stream: LogEntry_Stream): string[] {
  return (entries ?? []).filter((entry) => entry.stream === stream).map((entry) => entry.line);
}

describe("runner", () => {
  it("registers, runs a claimed script with its input, ships logs, uploads outputs and reports completion", async () => {
    expect(await startRunner()).toBe("runner_test_1");
    expect(service.registered).toEqual([
      { name: "test-runner", runtimes: expect.arrayContaining(["python", "node"]), sandboxWarnings: [] },
    ]);

    const assignment = assignmentFor({
      script: { name: "process.py", content: PROCESS_SCRIPT },
      inputs: [{ name: "data/in.json", content: JSON.stringify({ name: "world" }) }],
      args: ["data/in.json"],
    });
    const { id, completion } = await runToCompletion(assignment);

    expect(completion.outcome).toBe(Outcome.COMPLETED);
    expect(completion.exitCode).toBe(0);
    expect(completion.errorMessage).toBe("");
    const expectedOutput = "hello world\n";
    expect(completion.outputs.map(({ name, sizeBytes, sha256: digest }) => ({ name, sizeBytes, digest }))).toEqual([
      { name: "out/result.txt", sizeBytes: BigInt(expectedOutput.length), digest: sha256(expectedOutput) },
    ]);
    expect(grants.objects.get(`executions/${id}/outputs/out/result.txt`)?.toString()).toBe(expectedOutput);

    const entries = service.logs.get(id);
    expect(entries?.map((entry) => entry.sequence)).toEqual(entries?.map((_, index) => BigInt(index + 1)));
    expect(lines(entries, LogEntry_Stream.STDOUT)).toEqual(["processing world", "done"]);
    expect(lines(entries, LogEntry_Stream.STDERR)).toEqual(["warning: almost done"]);

    // The working directory is gone once the execution is reported.
    expect(await readdir(workRoot)).toEqual([]);
  });

  it("downloads a batch's files once and writes them from memory for its next executions, each a fresh copy", async () => {
    await startRunner();
    // Changes its own file: the next execution of the batch must still get the original.
    const script = { name: "grow.py", content: "import os\nprint(os.path.getsize(__file__))\nopen(__file__, 'a').write('#' * 10)\n" };
    const shared = { name: "lookup.json", content: "{}" };
    const batchId = `batch_${"a".repeat(32)}`;
    const sizes: string[] = [];
    for (let run = 0; run < 3; run++) {
      const { id, completion } = await runToCompletion(assignmentFor({ script, inputs: [shared], batchId }));
      expect(completion.outcome).toBe(Outcome.COMPLETED);
      sizes.push(...lines(service.logs.get(id), LogEntry_Stream.STDOUT));
    }
    expect(sizes).toEqual(Array(3).fill(String(Buffer.byteLength(script.content))));
    expect(grants.gets.filter((key) => key.endsWith("/script/grow.py"))).toHaveLength(1);
    expect(grants.gets.filter((key) => key.endsWith("/inputs/lookup.json"))).toHaveLength(1);

    // Another batch, and an execution in none, download their own.
    await runToCompletion(assignmentFor({ script, batchId: `batch_${"b".repeat(32)}` }));
    await runToCompletion(assignmentFor({ script }));
    expect(grants.gets.filter((key) => key.endsWith("/script/grow.py"))).toHaveLength(3);
  });

  it("takes its next execution with each report while work is queued, and claims once there is none", async () => {
    const queued = Array.from({ length: 6 }, (_, index) => assignmentFor({ script: { name: "n.py", content: `print(${index})\n` } }));
    queued.forEach((assignment) => service.enqueue(assignment));
    await startRunner();

    const completions = await Promise.all(queued.map((assignment) => service.completionOf(executionId(assignment))));

    expect(completions.map((completion) => completion.outcome)).toEqual(Array(6).fill(Outcome.COMPLETED));
    expect(completions.every((completion) => completion.claimNext)).toBe(true);
    // Two slots claimed one each; every other execution came with a report.
    expect(service.handedOut).toEqual({ byClaim: 2, withReport: 4 });
  });

  it("claims each execution itself from a service that ignores claim_next", async () => {
    service.actAsOlderService();
    const queued = Array.from({ length: 3 }, (_, index) => assignmentFor({ script: { name: "n.py", content: `print(${index})\n` } }));
    queued.forEach((assignment) => service.enqueue(assignment));
    await startRunner();

    await Promise.all(queued.map((assignment) => service.completionOf(executionId(assignment))));

    expect(service.handedOut).toEqual({ byClaim: 3, withReport: 0 });
  });

  it("hands the log's last lines to the completion, which the service said it stores", async () => {
    // No batch is due before the end: every line is one of the last.
    await startRunner({ logFlushIntervalMs: 60_000 });
    const { id, completion } = await runToCompletion(assignmentFor({ script: { name: "two.py", content: "print('one')\nprint('two')\n" } }));
    expect(completion.finalEntries.map((entry) => [entry.sequence, entry.line])).toEqual([[1n, "one"], [2n, "two"]]);
    expect(lines(service.logs.get(id), LogEntry_Stream.STDOUT)).toEqual(["one", "two"]);
  });

  it("sends every log line through AppendLogs to a service that does not store a completion's lines", async () => {
    service.actAsOlderService();
    await startRunner({ logFlushIntervalMs: 60_000 });
    const { id, completion } = await runToCompletion(assignmentFor({ script: { name: "two.py", content: "print('one')\nprint('two')\n" } }));
    expect(completion.finalEntries).toEqual([]);
    expect(lines(service.logs.get(id), LogEntry_Stream.STDOUT)).toEqual(["one", "two"]);
  });

  it("registers again when execution-service has forgotten it, and goes on claiming", async () => {
    expect(await startRunner()).toBe("runner_test_1");
    service.forgetRunners();
    const assignment = assignmentFor({ script: { name: "process.py", content: "print('after a reset')\n" } });

    const { completion } = await runToCompletion(assignment);
    expect(completion.outcome).toBe(Outcome.COMPLETED);
    expect(completion.runnerId).toBe("runner_test_2");
    expect(service.registered).toHaveLength(2);
  });

  it("reports an infrastructure error without running the script when an input does not match its hash", async () => {
    await startRunner();
    const marker = path.join(scratch, "script-ran");
    const assignment = assignmentFor({
      script: { name: "touch.py", content: `open(${JSON.stringify(marker)}, "w").close()\nprint("ran")\n` },
      inputs: [{ name: "data/in.json", content: '{"name": "world"}', storedContent: '{"name": "tampered"}' }],
    });
    const { id, completion } = await runToCompletion(assignment);

    expect(completion.outcome).toBe(Outcome.INFRASTRUCTURE_ERROR);
    expect(completion.exitCode).toBeUndefined();
    expect(completion.errorMessage).toMatch(/^could not fetch input 'data\/in\.json': downloaded content does not match/);
    expect(existsSync(marker)).toBe(false);
    expect(lines(service.logs.get(id), LogEntry_Stream.STDOUT)).toEqual([]);
    expect(lines(service.logs.get(id), LogEntry_Stream.SYSTEM)).toEqual([completion.errorMessage]);
    expect(service.outputUploadRequests).toEqual([]);
    expect(await readdir(workRoot)).toEqual([]);
  });

  it("reports a failing script with its exit code and last stderr line, re-sending logs after transport errors", async () => {
    await startRunner();
    service.failNextAppends(2);
    const assignment = assignmentFor({
      script: {
        name: "fail.py",
        content: "import sys\nfor i in range(1200):\n    print(i)\nprint('cannot parse input', file=sys.stderr)\nsys.exit(3)\n",
      },
    });
    const { id, completion } = await runToCompletion(assignment);

    expect(completion.outcome).toBe(Outcome.FAILED);
    expect(completion.exitCode).toBe(3);
    expect(completion.errorMessage).toBe("cannot parse input");
    const entries = service.logs.get(id) ?? [];
    expect(lines(entries, LogEntry_Stream.STDOUT)).toEqual(Array.from({ length: 1200 }, (_, i) => String(i)));
    expect(entries.map((entry) => entry.sequence)).toEqual(entries.map((_, index) => BigInt(index + 1)));
  });

  it("reports a script that runs past its timeout as timed out", async () => {
    await startRunner();
    const assignment = assignmentFor({
      script: { name: "slow.py", content: "import time\nprint('sleeping', flush=True)\ntime.sleep(60)\n" },
      timeoutSeconds: 1,
    });
    const { id, completion } = await runToCompletion(assignment);

    expect(completion.outcome).toBe(Outcome.TIMED_OUT);
    expect(completion.errorMessage).toBe("timed out after 1s");
    expect(lines(service.logs.get(id), LogEntry_Stream.SYSTEM)).toContain(
      "timed out after 1s; sending SIGTERM",
    );
  });

  it("on stop, lets running executions finish within the grace and then reports the rest as an infrastructure error", async () => {
    await startRunner({ shutdownGraceMs: 300 });
    const quick = assignmentFor({ script: { name: "quick.py", content: "print('quick')\n" } });
    const slow = assignmentFor({
      script: { name: "slow.py", content: "import time\nprint('started', flush=True)\ntime.sleep(60)\n" },
    });
    expect((await runToCompletion(quick)).completion.outcome).toBe(Outcome.COMPLETED);
    service.enqueue(slow);
    while (lines(service.logs.get(executionId(slow)), LogEntry_Stream.STDOUT).length === 0) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }

    await runner?.stop();
    const completion = service.completions.find((request) => request.executionId === executionId(slow));
    expect(completion?.outcome).toBe(Outcome.INFRASTRUCTURE_ERROR);
    expect(completion?.errorMessage).toBe("runner shutting down");
    expect(completion?.exitCode).toBeUndefined();
    // A stopping runner takes no more work with its report.
    expect(completion?.claimNext).toBe(false);
  });

  it("fails an execution whose runtime this runner does not have", async () => {
    await startRunner();
    const assignment = assignmentFor({ script: { name: "x.rb", content: "puts 1\n" } });
    assignment.execution!.runtime = "ruby";
    assignment.runtimeName = "ruby";
    const { completion } = await runToCompletion(assignment);
    expect(completion.outcome).toBe(Outcome.INFRASTRUCTURE_ERROR);
    expect(completion.errorMessage).toBe("runtime 'ruby' is not available on this runner");
  });

  it("tells execution-service which isolation measures it lacks", async () => {
    const warnings = ["the runner is not root: scripts run as the runner's own user, not a separate unprivileged one"];
    await startRunner({ sandbox: { limits: LIMITS, shell: "/bin/sh", env: "/usr/bin/env", cgroups: {}, warnings } });
    expect(service.registered[0]?.sandboxWarnings).toEqual(warnings);
  });

  it("sends heartbeats while idle and while running, naming what runs", async () => {
    await startRunner();
    await waitFor(() => service.heartbeats.length >= 2, "idle heartbeats");
    expect(service.heartbeats[0]).toEqual({ runnerId: "runner_test_1", executionIds: [] });

    const assignment = assignmentFor({ script: { name: "sleep.py", content: SLEEPER } });
    service.enqueue(assignment);
    const id = executionId(assignment);
    await waitFor(() => service.heartbeats.some((beat) => beat.executionIds.includes(id)), "a heartbeat naming the execution");
    service.cancel(id);
    await service.completionOf(id);
  });

  it("gives up a hung heartbeat and sends the next one within the lease", async () => {
    // Long enough that a busy machine's delays stay far below the lease.
    service = createFakeRunnerService(outputGrantsOn(grants), 400);
    await startRunner();
    await waitFor(() => service.heartbeats.length >= 1, "a first heartbeat");
    service.holdNextHeartbeat();
    const answeredBefore = service.heartbeats.length;
    await waitFor(() => service.heartbeats.length >= answeredBefore + 2, "heartbeats after the hung one");
    expect(service.leaseExpiries()).toBe(0);
  });

  it("stops a cancelled execution, keeps its outputs so far and reports it cancelled", async () => {
    await startRunner();
    const assignment = assignmentFor({ script: { name: "sleep.py", content: SLEEPER } });
    service.enqueue(assignment);
    const id = executionId(assignment);
    await waitFor(() => lines(service.logs.get(id), LogEntry_Stream.STDOUT).includes("started"), "the script to start");
    const pid = pidOf(id);
    service.cancel(id);

    const completion = await service.completionOf(id);
    expect(completion.outcome).toBe(Outcome.CANCELLED);
    expect(completion.errorMessage).toBe("cancelled by its owner");
    expect(completion.outputs.map((output) => output.name)).toEqual(["partial.txt"]);
    expect(grants.objects.get(`executions/${id}/outputs/partial.txt`)?.toString()).toBe("so far");
    expect(lines(service.logs.get(id), LogEntry_Stream.SYSTEM)).toContain("cancelled by its owner; stopping the script");
    expect(isAlive(pid)).toBe(false);
  });

  it("stops an execution the service says it lost, and reports nothing about it", async () => {
    await startRunner();
    const lost = assignmentFor({ script: { name: "sleep.py", content: SLEEPER } });
    service.enqueue(lost);
    const id = executionId(lost);
    await waitFor(() => lines(service.logs.get(id), LogEntry_Stream.STDOUT).includes("started"), "the script to start");
    const pid = pidOf(id);
    service.loseExecution(id);

    await waitFor(() => !isAlive(pid), "the lost script to be killed");
    // The slot is free again and the next execution is reported as usual.
    const next = assignmentFor({ script: { name: "next.py", content: "print('next')\n" } });
    expect((await runToCompletion(next)).completion.outcome).toBe(Outcome.COMPLETED);
    await waitFor(() => service.heartbeats.some((beat) => beat.executionIds.length === 0), "an idle heartbeat");
    expect(service.completions.map((completion) => completion.executionId)).toEqual([executionId(next)]);
    expect(service.outputUploadRequests).toEqual([]);
  });

  it("kills everything and registers again when a heartbeat finds the runner unknown", async () => {
    await startRunner();
    const orphan = assignmentFor({ script: { name: "sleep.py", content: SLEEPER } });
    service.enqueue(orphan);
    await waitFor(() => lines(service.logs.get(executionId(orphan)), LogEntry_Stream.STDOUT).includes("started"), "the script to start");
    const pid = pidOf(executionId(orphan));
    service.forgetRunners();

    await waitFor(() => !isAlive(pid), "the orphaned script to be killed");
    await waitFor(() => service.registered.length === 2, "registering again");
    const next = assignmentFor({ script: { name: "next.py", content: "print('next')\n" } });
    const { completion } = await runToCompletion(next);
    expect(completion.runnerId).toBe("runner_test_2");
    expect(service.completions.map((request) => request.executionId)).toEqual([executionId(next)]);
  });

  it("reports an infrastructure error when an output cannot be stored", async () => {
    // The object store answers this grant with 405, as it would a grant it no longer honours.
    service = createFakeRunnerService(outputGrantsOn(grants, "POST"));
    await startRunner();
    const assignment = assignmentFor({ script: { name: "out.py", content: "open('result.txt', 'w').write('data')\n" } });
    const { id, completion } = await runToCompletion(assignment);
    expect(completion.outcome).toBe(Outcome.INFRASTRUCTURE_ERROR);
    expect(completion.errorMessage).toBe("could not upload output 'result.txt': upload refused with HTTP 405: (empty body)");
    expect(completion.outputs).toEqual([]);
    expect(lines(service.logs.get(id), LogEntry_Stream.SYSTEM)).toContain(completion.errorMessage);
  });

  it("ships each line while the script is still running", async () => {
    await startRunner();
    const assignment = assignmentFor({
      script: { name: "live.py", content: "import time\nprint('first')\ntime.sleep(300)\n" },
    });
    service.enqueue(assignment);
    const id = executionId(assignment);
    await waitFor(() => lines(service.logs.get(id), LogEntry_Stream.STDOUT).includes("first"), "the first line to arrive");
    expect(service.completions).toEqual([]);
    service.cancel(id);
    await service.completionOf(id);
  });
});
