// The cgroups a runner leaves behind when it is killed mid-run: the next runner to start kills
// the scripts still running in them and removes them, and leaves the cgroups of live runners be.
// Real cgroups, real processes and a real runner; needs root.

import { create } from "@bufbuild/protobuf";
import type { ChildProcess } from "node:child_process";
import { spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { newExecutionId } from "@rgrid/common";
import { AssignmentSchema, LogEntry_Stream, Outcome } from "@rgrid/proto";
import type { CgroupParents } from "../src/cgroup";
import type { Runner } from "../src/runner";
import type { ProcessIdentity, RunnerCgroup } from "../src/runner-cgroup";
import { createRunnerCgroup, identify } from "../src/runner-cgroup";
import { detectRuntimes } from "../src/runtimes";
import type { SandboxCapabilities } from "../src/sandbox";
import { probeSandbox, setprivArgs } from "../src/sandbox";
import { createFakeRunnerService } from "./fake-runner-service";
import type { FakeRunnerService } from "./fake-runner-service";
import { outputGrantsOn, sha256, startGrantServer } from "./grant-server";
import type { GrantServer } from "./grant-server";
import { createTestRunner } from "./test-runner";
import { waitFor } from "./wait-for";

const isRoot = process.getuid?.() === 0;
const describeAsRoot = isRoot ? describe : describe.skip;
const CGROUP_ROOT = "/sys/fs/cgroup";
const LIMITS = { cpuSeconds: 60, maxFileBytes: 1024 ** 3, maxProcesses: 64, maxOpenFiles: 1024, memoryBytes: 256 * 1024 ** 2 };

let area: RunnerCgroup;
const areaDir = (controller: "memory" | "pids", ...below: string[]) => path.join(area.parents[controller] ?? "", ...below);
let sandbox: SandboxCapabilities;
let grants: GrantServer;
let service: FakeRunnerService;
let workRoot: string;
let runner: Runner | undefined;
const children: ChildProcess[] = [];

function startRunner(): Promise<string> {
  const drop = sandbox.dropPrivileges;
  const { catalog } = detectRuntimes({
    searchPath: process.env.PATH ?? "",
    nodeBinary: process.execPath,
    runAs: drop === undefined ? undefined : [drop.setpriv, ...setprivArgs(drop.uidBase)],
  });
  runner = createTestRunner(service, { name: "cgroup-test-runner", runtimes: catalog, workDir: workRoot, concurrency: 1, sandbox });
  return runner.start();
}

function spawnTracked(command: string, args: string[]): ChildProcess {
  const child = spawn(command, args, { stdio: "ignore" });
  children.push(child);
  return child;
}

/** A process that sleeps in the cgroup `parent/child` of every controller, as a script of a runner would. */
async function sleeperIn(parents: CgroupParents, child: string): Promise<ChildProcess> {
  const procsFiles: string[] = [];
  for (const parent of [parents.memory, parents.pids]) {
    if (parent !== undefined) {
      await mkdir(path.join(parent, child), { recursive: true });
      procsFiles.push(path.join(parent, child, "cgroup.procs"));
    }
  }
  const sleeper = spawnTracked("/bin/sh", ["-c", 'for file; do echo $$ > "$file"; done; exec sleep 300', "sleeper", ...procsFiles]);
  await waitFor(() => procsFiles.every((file) => readFileSync(file, "utf8").split("\n").includes(String(sleeper.pid))), "the sleeper to join its cgroups");
  return sleeper;
}

const killed = (child: ChildProcess) => child.signalCode === "SIGKILL";
const cgroupDirs = (cgroup: RunnerCgroup) => [cgroup.parents.memory, cgroup.parents.pids].filter((dir): dir is string => dir !== undefined);

describeAsRoot("runner cgroups (as root)", () => {
  beforeEach(async () => {
    // Its own uid base, so that its scripts do not count against other tests' process limits.
    const probed = probeSandbox({
      config: { isolation: "required", limits: LIMITS, uidBase: 63000, uidBaseExplicit: false, cgroupRoot: CGROUP_ROOT },
      searchPath: process.env.PATH ?? "",
      isRoot,
    });
    // An area of its own below the shared one, so that runners started elsewhere on this machine
    // do not sweep what the tests set up; named like a runner's, it is swept should the test die.
    area = await createRunnerCgroup(probed.cgroups, identify(process.pid) as ProcessIdentity);
    sandbox = { ...probed, cgroups: area.parents };
    grants = await startGrantServer();
    service = createFakeRunnerService(outputGrantsOn(grants));
    workRoot = path.join(await mkdtemp(path.join(tmpdir(), "rgrid-runner-cgroup-")), "work");
    await mkdir(workRoot);
  });

  afterEach(async () => {
    await runner?.stop();
    runner = undefined;
    for (const child of children.splice(0)) {
      child.kill("SIGKILL");
    }
    await grants.close();
    await rm(path.dirname(workRoot), { recursive: true, force: true });
    await area.remove();
  });

  it("kills the scripts of a runner that died mid-run and removes its cgroups when the next runner starts", async () => {
    const deadRunner = spawnTracked("sleep", ["300"]);
    const owner = identify(deadRunner.pid ?? 0) as ProcessIdentity;
    const leftover = await createRunnerCgroup(sandbox.cgroups, owner);
    const orphan = await sleeperIn(leftover.parents, "exec_orphaned");
    deadRunner.kill("SIGKILL");
    await waitFor(() => killed(deadRunner), "the old runner to die");
    expect(killed(orphan)).toBe(false);

    await startRunner();

    await waitFor(() => killed(orphan), "the orphaned script to be killed");
    expect(cgroupDirs(leftover).filter((dir) => existsSync(dir))).toEqual([]);
  });

  it("leaves the cgroups of live runners alone, and sweeps one whose pid now belongs to another process", async () => {
    const self = identify(process.pid) as ProcessIdentity;
    const live = await createRunnerCgroup(sandbox.cgroups, self);
    const reused = await createRunnerCgroup(sandbox.cgroups, { ...self, startTime: "1" });
    const liveScript = await sleeperIn(live.parents, "exec_running");
    const reusedScript = await sleeperIn(reused.parents, "exec_running");

    await startRunner();

    await waitFor(() => killed(reusedScript), "the script below the reused pid to be killed");
    expect(cgroupDirs(reused).filter((dir) => existsSync(dir))).toEqual([]);
    const running = (child: ChildProcess) => child.exitCode === null && child.signalCode === null;
    expect(running(liveScript)).toBe(true);
    expect(cgroupDirs(live).filter((dir) => existsSync(path.join(dir, "exec_running")))).toHaveLength(2);
  });

  it("runs executions below its own cgroup and removes it on a clean shutdown", async () => {
    await startRunner();
    const id = newExecutionId();
    const source = "print(open('/proc/self/cgroup').read(), flush=True)\n";
    grants.objects.set(`scripts/${id}`, Buffer.from(source));
    service.enqueue(
      create(AssignmentSchema, {
        execution: { id, script: { name: "script.py", sizeBytes: BigInt(source.length), sha256: sha256(source) }, runtime: "python" },
        scriptDownload: { name: "script.py", method: "GET", url: grants.urlFor(`scripts/${id}`), headers: {} },
        runtimeName: "python",
        timeoutSeconds: 30,
      }),
    );
    expect((await service.completionOf(id)).outcome).toBe(Outcome.COMPLETED);
    const stdout = (service.logs.get(id) ?? []).filter((entry) => entry.stream === LogEntry_Stream.STDOUT).map((entry) => entry.line);
    const memoryPath = stdout.find((line) => /^\d+:memory:/.test(line))?.replace(/^\d+:memory:/, "") ?? "";
    const self = identify(process.pid) as ProcessIdentity;
    expect(memoryPath).toMatch(new RegExp(`^/${path.relative(path.join(CGROUP_ROOT, "memory"), areaDir("memory"))}/runner-${self.pidNamespace}-${process.pid}-${self.startTime}-[0-9a-f]+/${id}-`));
    const runnerCgroup = path.dirname(memoryPath);
    expect(existsSync(path.join(CGROUP_ROOT, "memory", runnerCgroup))).toBe(true);
    expect(existsSync(path.join(CGROUP_ROOT, "pids", runnerCgroup))).toBe(true);

    await runner?.stop();
    runner = undefined;

    expect(existsSync(path.join(CGROUP_ROOT, "memory", runnerCgroup))).toBe(false);
    expect(existsSync(path.join(CGROUP_ROOT, "pids", runnerCgroup))).toBe(false);
  });
});
