// Real scripts in the real sandbox of this machine (root, unshare, prlimit, setpriv, cgroup v1):
// every test runs an execution end to end and checks what the script could or could not do.

import { create } from "@bufbuild/protobuf";
import { createClient } from "@connectrpc/connect";
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { chmod, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from "node:fs/promises";
import * as net from "node:net";
import { homedir, tmpdir } from "node:os";
import * as path from "node:path";
import { newExecutionId, silentLogger } from "@rgrid/common";
import { AssignmentSchema, LogEntry_Stream, Outcome, RunnerService } from "@rgrid/proto";
import type { CompleteExecutionRequest, LogEntry } from "@rgrid/proto";
import type { CgroupParents } from "../src/cgroup";
import type { ResourceLimits } from "../src/config";
import type { ExecutionSummary } from "../src/execute";
import { buildCommand } from "../src/command";
import { executeAssignment } from "../src/execute";
import { runProcess } from "../src/process-runner";
import { openRunnerCgroup } from "../src/runner-cgroup";
import type { RunnerCgroup } from "../src/runner-cgroup";
import { detectRuntimes, findExecutable } from "../src/runtimes";
import { hostProcessesWith, uniqueMarker } from "../../../test/support/processes";
import type { SandboxCapabilities } from "../src/sandbox";
import { SandboxUnavailableError, probeSandbox, setprivArgs } from "../src/sandbox";
import { createFakeRunnerService } from "./fake-runner-service";
import type { FakeRunnerService } from "./fake-runner-service";
import { outputGrantsOn, sha256, startGrantServer } from "./grant-server";
import type { GrantServer } from "./grant-server";
import { waitFor } from "./wait-for";

const isRoot = process.getuid?.() === 0;
const NO_PERL_WARNING =
  "no PID namespace (perl, which runs its init, is not installed): scripts can see every process on this machine with its command line";
const NO_PID_NAMESPACE_WARNING =
  "no PID namespace (unshare --pid with its own /proc is not possible here): scripts can see every process on this machine with its command line";
// Not the default base, so that runners other tests start on this machine use other uids.
const UID_BASE = 62000;
const LIMITS: ResourceLimits = {
  cpuSeconds: 2,
  maxFileBytes: 1024 * 1024,
  maxProcesses: 64,
  maxOpenFiles: 256,
  memoryBytes: 128 * 1024 * 1024,
};

function probe(limits: ResourceLimits = LIMITS): SandboxCapabilities {
  return probeSandbox({
    config: { isolation: "required", limits, uidBase: UID_BASE, uidBaseExplicit: false, cgroupRoot: "/sys/fs/cgroup" },
    searchPath: process.env.PATH ?? "",
    isRoot,
  });
}

let grants: GrantServer;
let service: FakeRunnerService;
let workRoot: string;
let listener: net.Server | undefined;
/** The cgroup this test process owns as a runner would; the runs' cgroups go below it. */
let runnerCgroup: RunnerCgroup | undefined;

beforeEach(async () => {
  grants = await startGrantServer();
  service = createFakeRunnerService(outputGrantsOn(grants));
  // Below /tmp and inside a 0700 directory, as test clusters lay it out: the private /tmp of
  // the sandbox must still show the script its working directory.
  workRoot = path.join(await mkdtemp(path.join(tmpdir(), "rgrid-sandbox-")), "work");
  await mkdir(workRoot);
});

afterEach(async () => {
  listener?.close();
  listener = undefined;
  await grants.close();
  await rm(path.dirname(workRoot), { recursive: true, force: true });
});

interface RunOptions {
  runtime?: "python" | "node";
  /** The script's own arguments, on its command line. */
  args?: string[];
  /** Aborting it stops the run, with the abort reason as the runner's StopReason. */
  signal?: AbortSignal;
  network?: boolean;
  slot?: number;
  timeoutSeconds?: number;
  sandbox?: SandboxCapabilities;
  env?: Record<string, string>;
  inputs?: { name: string; content: Buffer }[];
  /** Where the run's cgroups go instead of below the test's runner cgroup. */
  cgroups?: CgroupParents;
  /** As against a service whose CompleteExecution stores the last log lines. */
  completionStoresLogs?: boolean;
}

interface Run {
  summary: ExecutionSummary;
  completion: CompleteExecutionRequest;
  stdout: string[];
  stderr: string[];
  system: string[];
  entries: LogEntry[];
}

async function run(source: string, options: RunOptions = {}): Promise<Run> {
  const probed = options.sandbox ?? probe();
  const sandbox = { ...probed, cgroups: options.cgroups ?? runnerCgroup?.parents ?? probed.cgroups };
  const runtime = options.runtime ?? "python";
  const drop = sandbox.dropPrivileges;
  const { catalog } = detectRuntimes({
    searchPath: process.env.PATH ?? "",
    nodeBinary: process.execPath,
    // The setpriv on PATH: a test may break the sandbox's own on purpose.
    runAs: drop === undefined ? undefined : ["setpriv", ...setprivArgs(drop.uidBase)],
  });
  const id = newExecutionId();
  const name = runtime === "python" ? "script.py" : "script.js";
  grants.objects.set(`scripts/${id}`, Buffer.from(source));
  const inputs = options.inputs ?? [];
  for (const input of inputs) {
    grants.objects.set(`inputs/${id}/${input.name}`, input.content);
  }
  const assignment = create(AssignmentSchema, {
    execution: {
      id,
      script: { name, sizeBytes: BigInt(Buffer.byteLength(source)), sha256: sha256(source) },
      runtime,
      args: options.args ?? [],
      env: options.env ?? {},
      network: options.network ?? false,
      inputs: inputs.map((input) => ({ name: input.name, sizeBytes: BigInt(input.content.length), sha256: sha256(input.content) })),
    },
    scriptDownload: { name, method: "GET", url: grants.urlFor(`scripts/${id}`), headers: {} },
    inputDownloads: inputs.map((input) => ({ name: input.name, method: "GET", url: grants.urlFor(`inputs/${id}/${input.name}`), headers: {} })),
    runtimeName: runtime,
    timeoutSeconds: options.timeoutSeconds ?? 60,
  });
  const summary = await executeAssignment(
    {
      client: createClient(RunnerService, service.transport),
      logger: silentLogger,
      runtimes: catalog,
      workRoot,
      killGraceMs: 500,
      retryPolicy: { initialDelayMs: 10, maxDelayMs: 50, maxAttempts: 3 },
      maxOutputFiles: 100,
      logFlushIntervalMs: 10,
      completionStoresLogs: options.completionStoresLogs,
      sandbox,
    },
    "runner_test_1",
    assignment,
    options.signal ?? new AbortController().signal,
    options.slot ?? 0,
  );
  const entries = service.logs.get(id) ?? [];
  const of = (stream: LogEntry_Stream) => entries.filter((entry) => entry.stream === stream).map((entry) => entry.line);
  return {
    summary,
    completion: await service.completionOf(id),
    stdout: of(LogEntry_Stream.STDOUT),
    stderr: of(LogEntry_Stream.STDERR),
    system: of(LogEntry_Stream.SYSTEM),
    entries,
  };
}

async function listen(): Promise<number> {
  listener = net.createServer((socket) => socket.end("hello from the host\n"));
  await new Promise<void>((resolve) => listener?.listen(0, "127.0.0.1", resolve));
  return (listener.address() as net.AddressInfo).port;
}

const CONNECT = (port: number) => `
import socket
try:
    with socket.create_connection(("127.0.0.1", ${port}), timeout=5) as s:
        print("connected:", s.recv(100).decode().strip())
except OSError as e:
    print("no connection:", type(e).__name__)
`;

/**
 * Prints which of `markers` any command line in /proc holds (the markers are in the source, not
 * on the script's own command line), its own pid, then every process it can see, one per line.
 */
const PROCESS_LISTING = (markers: readonly string[]) => `
import json, os, shutil, subprocess
markers = ${JSON.stringify(markers)}
processes = []
for name in sorted((n for n in os.listdir("/proc") if n.isdigit()), key=int):
    try:
        with open(f"/proc/{name}/cmdline", "rb") as f:
            command_line = f.read().replace(b"\\0", b" ").decode(errors="replace").strip()
        with open(f"/proc/{name}/status") as f:
            uid = int(next(line.split()[1] for line in f if line.startswith("Uid:")))
    except OSError:
        continue
    processes.append({"pid": int(name), "uid": uid, "cmdline": command_line})
print("seen", json.dumps([marker for marker in markers if any(marker in p["cmdline"] for p in processes)]))
print("self", os.getpid())
for p in processes:
    print("process", json.dumps(p))
if shutil.which("ps"):
    for line in subprocess.run(["ps", "-e", "-o", "pid=,args="], capture_output=True, text=True).stdout.splitlines():
        print("ps", line.strip())
`;

interface ProcessListing {
  seen: string[];
  self: number;
  processes: { pid: number; uid: number; cmdline: string }[];
  /** Absent without a ps to run. */
  ps?: string[];
}

function parseListing(stdout: readonly string[]): ProcessListing {
  const listing: ProcessListing = { seen: [], self: 0, processes: [] };
  for (const line of stdout) {
    const [kind] = line.split(" ", 1);
    const rest = line.slice((kind?.length ?? 0) + 1);
    if (kind === "seen") {
      listing.seen = JSON.parse(rest) as string[];
    } else if (kind === "self") {
      listing.self = Number(rest);
    } else if (kind === "process") {
      listing.processes.push(JSON.parse(rest) as ProcessListing["processes"][number]);
    } else if (kind === "ps") {
      listing.ps = [...(listing.ps ?? []), rest];
    }
  }
  return listing;
}

const describeAsRoot = isRoot ? describe : describe.skip;

describeAsRoot("the sandbox (as root)", () => {
  beforeAll(async () => {
    runnerCgroup = await openRunnerCgroup(probe().cgroups, silentLogger);
  });

  afterAll(async () => {
    await runnerCgroup?.remove();
    runnerCgroup = undefined;
  });

  it("finds every measure on this machine", () => {
    const sandbox = probe();
    expect(sandbox.warnings).toEqual([]);
    expect(sandbox.unshare).toMatchObject({ network: true, privateTmp: true, ipc: true, pid: true, userNamespace: false });
    expect(sandbox.dropPrivileges?.uidBase).toBe(UID_BASE);
    expect(sandbox.cgroups.memory).toBe("/sys/fs/cgroup/memory/rgrid");
  });

  it("has no network unless the execution asks for it", async () => {
    const port = await listen();
    const without = await run(CONNECT(port));
    expect(without.completion.outcome).toBe(Outcome.COMPLETED);
    expect(without.stdout).toEqual([expect.stringMatching(/^no connection: /)]);

    const withNetwork = await run(CONNECT(port), { network: true });
    expect(withNetwork.stdout).toEqual(["connected: hello from the host"]);
  });

  it("shows the script only its own environment, in env and /proc/self/environ alike", async () => {
    process.env.RGRID_RUNNER_TOKEN = "runner-secret-token-value";
    try {
      const result = await run(
        [
          "import subprocess",
          "print(open('/proc/self/environ', 'rb').read().replace(b'\\0', b' ').decode())",
          "print(subprocess.run(['env'], capture_output=True, text=True).stdout.replace('\\n', ' '))",
        ].join("\n"),
        { env: { GREETING: "hello" } },
      );
      expect(result.completion.outcome).toBe(Outcome.COMPLETED);
      for (const line of result.stdout) {
        const names = line.trim().split(" ").map((pair) => pair.split("=")[0]).sort();
        expect(names).toEqual(["GREETING", "HOME", "LANG", "PATH", "PYTHONDONTWRITEBYTECODE", "PYTHONUNBUFFERED"]);
        expect(line).not.toContain("runner-secret-token-value");
      }
    } finally {
      delete process.env.RGRID_RUNNER_TOKEN;
    }
  });

  it("runs the script as its slot's own uid, which can write only its working directory", async () => {
    const other = await mkdtemp(path.join(workRoot, "other-workspace-"));
    await chmod(other, 0o700);
    const script = (target: string) => `
import os
def attempt(label, action):
    try:
        action()
        print(label, "allowed")
    except OSError as e:
        print(label, "denied", e.errno)
print("uid", os.getuid(), os.getgid(), os.getgroups())
attempt("etc", lambda: open("/etc/rgrid-sandbox-test", "w"))
attempt("work root", lambda: open(${JSON.stringify(workRoot)} + "/planted", "w"))
attempt("other workspace", lambda: os.listdir(${JSON.stringify(target)}))
attempt("tmp", lambda: open("/tmp/planted-by-script", "w").write("x"))
attempt("dev shm", lambda: open("/dev/shm/planted-by-script", "w").write("x"))
open("result.txt", "w").write("written in the working directory")
print("tmp holds", sorted(os.listdir("/tmp")))
`;
    const first = await run(script(other), { slot: 1 });
    expect(first.completion.outcome).toBe(Outcome.COMPLETED);
    expect(first.stdout[0]).toBe(`uid ${UID_BASE + 1} ${UID_BASE + 1} []`);
    expect(first.stdout).toEqual(expect.arrayContaining(["etc denied 13", "work root denied 13", "tmp allowed", "dev shm allowed"]));
    // Below /tmp the other workspace is not even there (2); elsewhere its mode keeps it out (13).
    expect(first.stdout.find((line) => line.startsWith("other workspace"))).toMatch(/^other workspace denied (2|13)$/);
    expect(first.completion.outputs.map((output) => output.name)).toEqual(["result.txt"]);
    expect(grants.objects.get(`executions/${first.completion.executionId}/outputs/result.txt`)?.toString()).toBe(
      "written in the working directory",
    );
    // What it left in /tmp and /dev/shm was private to the run.
    expect(existsSync("/tmp/planted-by-script")).toBe(false);
    expect(existsSync("/dev/shm/planted-by-script")).toBe(false);
    expect(existsSync(path.join(workRoot, "planted"))).toBe(false);
    const second = await run("import os\nprint(sorted(os.listdir('/tmp')))\n", { slot: 1 });
    expect(second.stdout[0]).not.toContain("planted-by-script");
    // Only the other workspace remains: the runs' own directories are gone.
    expect(readdirSync(workRoot)).toEqual([path.basename(other)]);
  });

  it("keeps the execution's environment away from the root-run wrappers, and gives it to the script exactly", async () => {
    const compiler = ["cc", "gcc"].find((name) => spawnSync(name, ["--version"], { stdio: "ignore" }).status === 0);
    if (compiler === undefined) {
      return; // nothing to build the library with on this machine
    }
    const build = await mkdtemp(path.join(tmpdir(), "rgrid-preload-"));
    try {
      // Loaded into any process that honours LD_PRELOAD: marks root processes, announces others.
      const marker = path.join(build, "loaded-as-root");
      await writeFile(
        path.join(build, "evil.c"),
        `#include <stdio.h>
#include <unistd.h>
__attribute__((constructor)) static void init(void) {
  if (geteuid() == 0) { FILE *f = fopen(${JSON.stringify(marker)}, "a"); if (f) { fprintf(f, "pid %d\\n", getpid()); fclose(f); } }
  else { fprintf(stderr, "preloaded as %d\\n", geteuid()); }
}
`,
      );
      execFileSync(compiler, ["-shared", "-fPIC", "-o", path.join(build, "evil.so"), path.join(build, "evil.c")]);
      const env = {
        LD_PRELOAD: "./evil.so",
        LD_LIBRARY_PATH: ".",
        TRICKY: "two words; $(id) `id` 'quoted' \"double\"\nsecond line = -i --",
        "-n": "dash name",
      };
      const result = await run(
        "import os, json\nprint(json.dumps({k: os.environ.get(k) for k in ['LD_PRELOAD', 'LD_LIBRARY_PATH', 'TRICKY', '-n']}))\n",
        { env, inputs: [{ name: "evil.so", content: await readFile(path.join(build, "evil.so")) }] },
      );
      expect(result.completion.outcome).toBe(Outcome.COMPLETED);
      expect(JSON.parse(result.stdout[0] ?? "{}")).toEqual(env);
      // The library did load, into the script (which is allowed it), and into nothing run as root.
      expect(result.stderr).toContain(`preloaded as ${UID_BASE}`);
      expect(existsSync(marker)).toBe(false);
    } finally {
      await rm(build, { recursive: true, force: true });
    }
  });

  it("gives each run its own System V IPC namespace", async () => {
    const key = 0x52470000 + Math.floor(Math.random() * 0xffff);
    const result = await run(
      `import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\nprint("shmid", libc.shmget(${key}, 4096, 0o1000 | 0o600))\n`,
    );
    expect(result.completion.outcome).toBe(Outcome.COMPLETED);
    expect(Number(result.stdout[0]?.split(" ")[1])).toBeGreaterThanOrEqual(0);
    const hostSegments = (await readFile("/proc/sysvipc/shm", "utf8")).split("\n").slice(1);
    const leaked = hostSegments.filter((line) => Number(line.trim().split(/\s+/)[0]) === key);
    for (const line of leaked) {
      spawnSync("ipcrm", ["-m", line.trim().split(/\s+/)[1] ?? ""]);
    }
    expect(leaked).toEqual([]);
  });

  it("shows the script only its own processes: nothing outside its sandbox, nor another run's command line", async () => {
    const hostMarker = uniqueMarker("host-secret");
    const otherMarker = uniqueMarker("other-run-secret");
    const stopHost = await hostProcess(hostMarker);
    const stopOther = new AbortController();
    try {
      // Another account's run on the next slot, with a secret among its arguments.
      const other = run("import time\nprint('started', flush=True)\ntime.sleep(300)\n", {
        slot: 1,
        args: [otherMarker],
        signal: stopOther.signal,
      });
      // From the host both are there to be seen: what the script does not see is hidden from it.
      await waitFor(() => hostProcessesWith(otherMarker).length > 0, "the other run to start");
      expect(hostProcessesWith(hostMarker)).not.toEqual([]);

      const looking = await run(PROCESS_LISTING([hostMarker, otherMarker]), { slot: 2 });
      expect(looking.completion.outcome).toBe(Outcome.COMPLETED);
      const seen = parseListing(looking.stdout);
      expect(seen.seen).toEqual([]);
      // Its own pid namespace: a minimal init as PID 1, then the script alone (not PID 1 itself).
      expect(seen.self).not.toBe(1);
      expect(seen.processes).toEqual([
        { pid: 1, uid: 0, cmdline: "rgrid-init" },
        { pid: seen.self, uid: UID_BASE + 2, cmdline: expect.stringMatching(/python\S* script\.py$/) },
      ]);
      if (seen.ps !== undefined) {
        expect(seen.ps.map((line) => line.trim().split(/\s+/).slice(1).join(" "))).toEqual([
          "rgrid-init",
          expect.stringMatching(/python\S* script\.py$/),
          "ps -e -o pid=,args=",
        ]);
      }

      stopOther.abort("cancelled");
      expect((await other).completion.outcome).toBe(Outcome.CANCELLED);
    } finally {
      stopOther.abort("cancelled");
      stopHost();
    }
  });

  it("reports the script's exit codes and the signals that killed it exactly as they were", async () => {
    const cases: { source: string; exitCode?: number; errorMessage: string }[] = [
      { source: "import sys\nsys.exit(3)\n", exitCode: 3, errorMessage: "exited with code 3" },
      // A code above 128 stays a code: nothing mistakes it for a signal.
      { source: "import sys\nsys.exit(137)\n", exitCode: 137, errorMessage: "exited with code 137" },
      { source: "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n", errorMessage: "killed by SIGKILL" },
      { source: "import os, signal\nos.kill(os.getpid(), signal.SIGTERM)\n", errorMessage: "killed by SIGTERM" },
      { source: "import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)\n", errorMessage: "killed by SIGSEGV" },
    ];
    for (const { source, exitCode, errorMessage } of cases) {
      const result = await run(source);
      expect({ outcome: result.completion.outcome, exitCode: result.completion.exitCode, errorMessage: result.completion.errorMessage }).toEqual({
        outcome: Outcome.FAILED,
        exitCode,
        errorMessage,
      });
      // No core of the script or of its wrappers ends up among the outputs.
      expect(result.completion.outputs).toEqual([]);
    }
  });

  it("lets a script's last lines travel with its report: no wrapper keeps its output open after it", async () => {
    // The output ends 200 ms before the exit, long after the 10 ms log batching: the lines wait
    // for the report only because the runner sees the end of the output coming first.
    const result = await run(
      "import os, sys, time\nprint('last words')\nprint('and a warning', file=sys.stderr)\nsys.stdout.flush()\nos.close(1)\nos.close(2)\ntime.sleep(0.2)\n",
      { completionStoresLogs: true },
    );
    expect(result.completion.outcome).toBe(Outcome.COMPLETED);
    expect(result.completion.finalEntries.map((entry) => entry.line).sort()).toEqual(["and a warning", "last words"]);
    expect(result.entries).toHaveLength(2);
  });

  it("sends one SIGTERM to each process of a timed-out script, then SIGKILL to what is still running", async () => {
    const result = await run(
      [
        // Each line is one write(2), so the two processes' lines cannot interleave on the shared stdout.
        "import os, signal, subprocess, sys, time",
        "child = subprocess.Popen([sys.executable, '-c', 'import os, signal, time\\n" +
          "signal.signal(signal.SIGTERM, lambda *_: os.write(1, b\"child got SIGTERM\\\\n\"))\\n" +
          "os.write(1, b\"child ready\\\\n\")\\ntime.sleep(300)\\n'])",
        "signal.signal(signal.SIGTERM, lambda *_: os.write(1, b'script got SIGTERM\\n'))",
        "print('leads its process group', os.getpgrp() == os.getpid(), flush=True)",
        "time.sleep(300)",
      ].join("\n"),
      { timeoutSeconds: 2 },
    );
    expect(result.completion.outcome).toBe(Outcome.TIMED_OUT);
    expect(result.stdout.filter((line) => line !== "child ready").sort()).toEqual([
      "child got SIGTERM",
      "leads its process group True",
      "script got SIGTERM",
    ]);
    expect(result.system).toEqual(
      expect.arrayContaining(["timed out after 2s; sending SIGTERM", "still running 0.5s after SIGTERM; sending SIGKILL"]),
    );
  });

  it("stops a cancelled script and the children it started", async () => {
    const marker = uniqueMarker("cancelled-child");
    const cancel = new AbortController();
    const running = run(
      `import subprocess, time\nsubprocess.Popen(["/bin/sh", "-c", "sleep 300; exit 0", "sh", ${JSON.stringify(marker)}])\ntime.sleep(300)\n`,
      { signal: cancel.signal },
    );
    await waitFor(() => hostProcessesWith(marker).length > 0, "the script's child to start");
    cancel.abort("cancelled");
    const result = await running;
    expect(result.completion.outcome).toBe(Outcome.CANCELLED);
    expect(result.system).toContain("cancelled by its owner; stopping the script");
    await waitFor(() => hostProcessesWith(marker).length === 0, "the cancelled script's child to be gone");
  });

  it("stops a run with its SIGTERM at whatever moment of its start the stop comes, without waiting for the SIGKILL", async () => {
    // The stop lands anywhere from before the PID namespace's init runs to after the script
    // has started; a SIGTERM lost in between would leave the script running for the whole grace.
    const sandbox = { ...probe(), cgroups: runnerCgroup?.parents ?? probe().cgroups };
    const { catalog } = detectRuntimes({
      searchPath: process.env.PATH ?? "",
      nodeBinary: process.execPath,
      runAs: ["setpriv", ...setprivArgs(UID_BASE)],
    });
    const runtime = catalog.resolve("python", "python");
    if (runtime === undefined) throw new Error("this test needs a python3 that the slot's uid can run");
    await chmod(workRoot, 0o755);
    await writeFile(path.join(workRoot, "script.py"), "import time\nwhile True:\n    time.sleep(0.05)\n", { mode: 0o644 });
    const command = buildCommand({
      runtime,
      scriptName: "script.py",
      args: [],
      env: {},
      workDir: workRoot,
      sandbox: { capabilities: sandbox, network: false, uid: UID_BASE, cgroupProcsFiles: [] },
    });
    const endings: string[] = [];
    for (let delayMs = 0; delayMs <= 90; delayMs += 3) {
      const stop = new AbortController();
      const lines: string[] = [];
      const stopping = setTimeout(() => stop.abort("shutdown"), delayMs);
      const result = await runProcess(command, {
        timeoutMs: 60_000,
        killGraceMs: 20_000,
        onLine: (stream, line) => stream !== "stdout" && lines.push(line),
        signal: stop.signal,
      });
      clearTimeout(stopping);
      endings.push(`${delayMs} ms: ${result.termination.kind}; ${lines.join("; ")}`);
    }
    expect(endings.filter((ending) => !ending.endsWith(" ms: stopped; runner shutting down; stopping the script"))).toEqual([]);
  });

  it("ends the run when the script exits, and stops the children it left running", async () => {
    const marker = uniqueMarker("left-behind");
    const started = Date.now();
    // The child keeps the script's stdout open, so the run must not wait for it.
    const result = await run(
      `import subprocess\nsubprocess.Popen(["/bin/sh", "-c", "sleep 300; exit 0", "sh", ${JSON.stringify(marker)}])\nprint("leaving")\n`,
    );
    expect(result.completion.outcome).toBe(Outcome.COMPLETED);
    expect(result.completion.exitCode).toBe(0);
    expect(result.stdout).toEqual(["leaving"]);
    expect(Date.now() - started).toBeLessThan(10_000);
    await waitFor(() => hostProcessesWith(marker).length === 0, "the left-behind child to be gone");
  });

  it("reports a failing sandbox wrapper as an infrastructure error, and the script's own exit codes as its own", async () => {
    const probed = probe();
    const drop = probed.dropPrivileges;
    if (drop === undefined) {
      throw new Error("setpriv is needed for this test");
    }
    const broken = await run("print('never runs')\n", { sandbox: { ...probed, dropPrivileges: { ...drop, setpriv: "/nonexistent/setpriv" } } });
    expect(broken.completion.outcome).toBe(Outcome.INFRASTRUCTURE_ERROR);
    expect(broken.completion.errorMessage).toMatch(/^the sandbox could not start the script: .*\/nonexistent\/setpriv/);
    expect(broken.stdout).toEqual([]);

    const unjoinable = await run("print('never runs')\n", { cgroups: { memory: path.join(workRoot, "no-such-cgroup-area") } });
    expect(unjoinable.completion.outcome).toBe(Outcome.INFRASTRUCTURE_ERROR);

    const own = await run("import sys\nsys.exit(125)\n");
    expect(own.completion.outcome).toBe(Outcome.FAILED);
    expect(own.completion.exitCode).toBe(125);
  });

  it("keeps the run's result when its cgroup cannot be removed", async () => {
    // An ordinary directory passes for a cgroup until it is to be removed: it is not empty.
    const notACgroup = path.join(path.dirname(workRoot), "not-a-cgroup");
    await mkdir(notACgroup);
    const result = await run("print('done')\n", { cgroups: { memory: notACgroup } });
    expect(result.completion.outcome).toBe(Outcome.COMPLETED);
    expect(result.stdout).toEqual(["done"]);
  });

  it("stops a script over its memory limit and says so", async () => {
    const result = await run("blocks = []\nwhile True:\n    blocks.append(bytearray(16 * 1024 * 1024))\n");
    expect(result.completion.outcome).toBe(Outcome.FAILED);
    expect(result.completion.errorMessage).toBe("memory limit of 128 MiB exceeded");
    expect(result.system).toContain("memory limit of 128 MiB exceeded");
  });

  it("stops a script over its CPU time limit and says so", async () => {
    const result = await run("while True:\n    pass\n");
    expect(result.completion.outcome).toBe(Outcome.FAILED);
    expect(result.completion.errorMessage).toBe("CPU time limit of 2 s exceeded");
  });

  it("stops a node script writing a file over the size limit and says so", async () => {
    const result = await run("require('fs').writeFileSync('big.bin', Buffer.alloc(2 * 1024 * 1024));\n", { runtime: "node" });
    expect(result.completion.outcome).toBe(Outcome.FAILED);
    expect(result.completion.errorMessage).toBe("file size limit of 1 MiB exceeded");
  });

  it("names the file size limit when python reports it as an error", async () => {
    const result = await run("open('big.bin', 'wb').write(bytes(2 * 1024 * 1024))\n");
    expect(result.completion.outcome).toBe(Outcome.FAILED);
    expect(result.completion.exitCode).toBe(1);
    expect(result.completion.errorMessage).toBe("file size limit of 1 MiB exceeded");
  });

  it("names the process limit when a script cannot start more processes", async () => {
    const result = await run(
      "import subprocess\nchildren = [subprocess.Popen(['sleep', '30']) for _ in range(100)]\n",
      { sandbox: probe({ ...LIMITS, maxProcesses: 16 }) },
    );
    expect(result.completion.outcome).toBe(Outcome.FAILED);
    expect(result.completion.errorMessage).toBe("process limit of 16 reached");
  });

  it("kills processes that left the process group when the run times out", async () => {
    // Found by its command line: the pid the script sees is not the host's.
    const marker = uniqueMarker("detached");
    const running = run(
      [
        "import os, subprocess, time",
        `child = subprocess.Popen(['/bin/sh', '-c', 'sleep 300; exit 0', 'sh', '${marker}'], start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)`,
        "print('detached', flush=True)",
        "time.sleep(300)",
      ].join("\n"),
      { timeoutSeconds: 3 },
    );
    await waitFor(() => hostProcessesWith(marker).length > 0, "the detached child to start");
    const [pid] = hostProcessesWith(marker);
    if (pid === undefined) throw new Error("the detached child's pid was not found");
    const result = await running;
    expect(result.completion.outcome).toBe(Outcome.TIMED_OUT);
    expect(result.stdout).toEqual(["detached"]);
    await expect(gone(pid)).resolves.toBe(true);
    const executionCgroups = Object.values(runnerCgroup?.parents ?? {}).flatMap((parent) =>
      readdirSync(parent).filter((name) => name.startsWith(result.completion.executionId)),
    );
    expect(executionCgroups).toEqual([]);
  });

  it("writes each missing measure into the log of every run", async () => {
    const sandbox = { ...probe(), warnings: ["no network namespace (unshare --net is not possible here): scripts can reach the network"] };
    const result = await run("print('hi')\n", { sandbox });
    expect(result.entries[0]).toMatchObject({
      stream: LogEntry_Stream.SYSTEM,
      line: "sandbox: no network namespace (unshare --net is not possible here): scripts can reach the network",
    });
    expect(result.stdout).toEqual(["hi"]);
  });

  it("has no PID namespace without perl to run its init: a warning, or a refusal when isolation is required", async () => {
    // The tools root runs, outside /tmp, which the sandbox hides; sh and env are found anyway.
    const tools = await mkdtemp(path.join(homedir(), ".rgrid-tools-"));
    try {
      for (const name of ["mount", "unshare", "prlimit", "setpriv"]) {
        await symlink(findExecutable(name, process.env.PATH ?? "") ?? `/missing/${name}`, path.join(tools, name));
      }
      const config = { limits: LIMITS, uidBase: UID_BASE, uidBaseExplicit: false, cgroupRoot: "/sys/fs/cgroup" };
      expect(() => probeSandbox({ config: { ...config, isolation: "required" }, searchPath: tools, isRoot })).toThrow(
        /no PID namespace \(perl, which runs its init, is not installed\)/,
      );
      const available = probeSandbox({ config: { ...config, isolation: "available" }, searchPath: tools, isRoot });
      expect(available.warnings).toEqual([NO_PERL_WARNING]);
      expect(available.unshare).toMatchObject({ network: true, privateTmp: true, ipc: true, pid: false });
      const result = await run("print('runs all the same')\n", { sandbox: available });
      expect(result.completion.outcome).toBe(Outcome.COMPLETED);
      expect(result.system[0]).toBe(`sandbox: ${NO_PERL_WARNING}`);
      expect(result.stdout).toEqual(["runs all the same"]);
    } finally {
      await rm(tools, { recursive: true, force: true });
    }
  });

  it("gives a runner without root the PID namespace through a user namespace where the kernel allows it", async () => {
    const sandbox = probeSandbox({
      config: { isolation: "available", limits: LIMITS, uidBase: UID_BASE, uidBaseExplicit: false, cgroupRoot: "/nonexistent-cgroup-root" },
      searchPath: process.env.PATH ?? "",
      isRoot: false,
    });
    if (sandbox.unshare?.pid !== true) {
      expect(sandbox.warnings).toContain(NO_PID_NAMESPACE_WARNING);
      return; // this kernel allows no such namespace to an unprivileged user
    }
    expect(sandbox.unshare).toMatchObject({ userNamespace: true, pid: true });
    const hostMarker = uniqueMarker("host-secret");
    const stopHost = await hostProcess(hostMarker);
    try {
      const looking = await run(PROCESS_LISTING([hostMarker]), { sandbox, cgroups: {} });
      expect(looking.completion.outcome).toBe(Outcome.COMPLETED);
      const seen = parseListing(looking.stdout);
      expect(seen.seen).toEqual([]);
      expect(seen.processes.map((process) => [process.pid, process.cmdline])).toEqual([
        [1, "rgrid-init"],
        [seen.self, expect.stringMatching(/python\S* script\.py$/)],
      ]);
    } finally {
      stopHost();
    }
  });

  it("refuses to start when isolation is required and a measure is missing", () => {
    expect(() =>
      probeSandbox({
        config: { isolation: "required", limits: LIMITS, uidBase: UID_BASE, uidBaseExplicit: false, cgroupRoot: path.join(workRoot, "no-cgroups") },
        searchPath: process.env.PATH ?? "",
        isRoot,
      }),
    ).toThrow(SandboxUnavailableError);
    const available = probeSandbox({
      config: { isolation: "available", limits: LIMITS, uidBase: UID_BASE, uidBaseExplicit: false, cgroupRoot: "/nonexistent-cgroup-root" },
      searchPath: process.env.PATH ?? "",
      isRoot,
    });
    expect(available.warnings).toEqual([
      "no writable cgroup v1 memory controller at /nonexistent-cgroup-root/memory: memory is not limited",
      "no writable cgroup: processes a script detaches from its process group may outlive the run",
    ]);
  });
});

describe("the sandbox without a uid per slot", () => {
  it("limits no process count of the runner's own user, and says so", () => {
    const sandbox = probeSandbox({
      config: { isolation: "available", limits: LIMITS, uidBase: UID_BASE, uidBaseExplicit: false, cgroupRoot: "/nonexistent-cgroup-root" },
      searchPath: process.env.PATH ?? "",
      isRoot: false,
    });
    if (sandbox.prlimit === undefined) {
      return; // no limits at all here, which the warnings already say
    }
    expect(sandbox.warnings).toContain(
      "no per-script process limit (RLIMIT_NPROC needs a uid of its own per slot): the number of processes a script starts is not limited",
    );
    const { catalog } = detectRuntimes({ searchPath: process.env.PATH ?? "", nodeBinary: process.execPath });
    const runtime = catalog.resolve("node", "node");
    const command = buildCommand({
      runtime: runtime as NonNullable<typeof runtime>,
      scriptName: "script.js",
      args: [],
      env: {},
      workDir: tmpdir(),
      sandbox: { capabilities: sandbox, network: false, uid: UID_BASE, cgroupProcsFiles: [] },
    });
    expect(command.args.filter((arg) => arg.startsWith("--nproc"))).toEqual([]);
    expect(command.args).toContain(`--nofile=${LIMITS.maxOpenFiles}`);
  });
});

/** The pid is gone (or a zombie) within a generous while; signals are delivered asynchronously. */
async function gone(pid: number): Promise<boolean> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    const stat = await readFile(`/proc/${pid}/stat`, "utf8").catch(() => undefined);
    if (stat === undefined || stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z")) {
      return true;
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return false;
}

/** Processes outside any sandbox, one with `marker` in its command line; the returned function kills them. */
async function hostProcess(marker: string): Promise<() => void> {
  const child = spawn("/bin/sh", ["-c", "sleep 300; exit 0", "sh", marker], { stdio: "ignore", detached: true });
  const stop = () => {
    try {
      // Never kill(0): with no pid that would signal this test runner's own process group.
      if (child.pid !== undefined) process.kill(-child.pid, "SIGKILL");
    } catch {
      // already gone
    }
  };
  await waitFor(() => hostProcessesWith(marker).length > 0, `the host process ${marker} to start`).catch((error: unknown) => {
    stop();
    throw error;
  });
  return stop;
}
