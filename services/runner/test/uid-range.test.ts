// Runners on one host run their scripts as uids no other runner there uses. Real runners, real
// scripts; needs root (only root can switch scripts to other uids).

import { create } from "@bufbuild/protobuf";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { newExecutionId } from "@rgrid/common";
import { AssignmentSchema, LogEntry_Stream, Outcome } from "@rgrid/proto";
import type { Runner } from "../src/runner";
import { detectRuntimes } from "../src/runtimes";
import type { SandboxCapabilities } from "../src/sandbox";
import { probeSandbox, setprivArgs } from "../src/sandbox";
import { UID_RANGE_SIZE, UidRangeTakenError } from "../src/uid-range";
import { createFakeRunnerService } from "./fake-runner-service";
import { outputGrantsOn, sha256, startGrantServer } from "./grant-server";
import type { GrantServer } from "./grant-server";
import { createTestRunner } from "./test-runner";

const isRoot = process.getuid?.() === 0;
const describeAsRoot = isRoot ? describe : describe.skip;
const BASE = 64000;
const LIMITS = { cpuSeconds: 60, maxFileBytes: 1024 ** 3, maxProcesses: 64, maxOpenFiles: 1024, memoryBytes: 256 * 1024 ** 2 };

let scratch: string;
let grants: GrantServer;
const runners: Runner[] = [];

describeAsRoot("uid ranges of the runners on one host (as root)", () => {
  beforeEach(async () => {
    scratch = await mkdtemp(path.join(tmpdir(), "rgrid-uid-range-"));
    grants = await startGrantServer();
  });

  afterEach(async () => {
    for (const runner of runners.splice(0)) {
      await runner.stop();
    }
    await grants.close();
    await rm(scratch, { recursive: true, force: true });
  });

  function sandboxWith(explicit: boolean): SandboxCapabilities {
    const probed = probeSandbox({
      config: { isolation: "required", limits: LIMITS, uidBase: BASE, uidBaseExplicit: explicit, cgroupRoot: "/sys/fs/cgroup" },
      searchPath: process.env.PATH ?? "",
      isRoot,
    });
    // No cgroups: the ranges must not depend on them (cgroup v2 hosts have none the runner uses).
    return { ...probed, cgroups: {} };
  }

  /** Starts a runner of its own fake service; resolves with the uid its script ran as. */
  async function startRunnerAndRunAs(explicit = false): Promise<number> {
    const service = createFakeRunnerService(outputGrantsOn(grants));
    const sandbox = sandboxWith(explicit);
    const { catalog } = detectRuntimes({
      searchPath: process.env.PATH ?? "",
      nodeBinary: process.execPath,
      runAs: ["setpriv", ...setprivArgs(BASE)],
    });
    const runner = createTestRunner(service, {
      name: `uid-runner-${runners.length}`,
      runtimes: catalog,
      workDir: path.join(scratch, `work-${runners.length}`),
      concurrency: 1,
      sandbox,
      uidRangeRegistry: path.join(scratch, "registry"),
    });
    await runner.start();
    runners.push(runner);
    const id = newExecutionId();
    const source = "import os\nprint(os.getuid(), flush=True)\n";
    grants.objects.set(`scripts/${id}`, Buffer.from(source));
    service.enqueue(
      create(AssignmentSchema, {
        execution: { id, script: { name: "uid.py", sizeBytes: BigInt(source.length), sha256: sha256(source) }, runtime: "python" },
        scriptDownload: { name: "uid.py", method: "GET", url: grants.urlFor(`scripts/${id}`), headers: {} },
        runtimeName: "python",
        timeoutSeconds: 30,
      }),
    );
    expect((await service.completionOf(id)).outcome).toBe(Outcome.COMPLETED);
    const stdout = (service.logs.get(id) ?? []).filter((entry) => entry.stream === LogEntry_Stream.STDOUT);
    return Number(stdout[0]?.line);
  }

  it("gives two runners disjoint ranges, and the first range back once its runner stopped", async () => {
    const first = await startRunnerAndRunAs();
    const second = await startRunnerAndRunAs();
    expect(first).toBe(BASE);
    expect(second).toBe(BASE + UID_RANGE_SIZE);

    await runners.shift()?.stop();
    expect(await startRunnerAndRunAs()).toBe(BASE);
  });

  it("refuses to start on a configured base another runner uses", async () => {
    await startRunnerAndRunAs();
    await expect(startRunnerAndRunAs(true)).rejects.toThrow(UidRangeTakenError);
  });
});
