// `npm run bench:trivial`: trivial executions end to end against the floor of running them. 300
// executions of a one-line script (`print(1)`), submitted at once through the API (create, upload,
// confirm, concurrency 16) to a grid of 3 runners × 2 slots on the embedded defaults, timed from
// the first submission to the last completion. The floor is the same sandboxed python3 — the
// runner's own command line (namespaces, limits, the PID namespace's init, the dropped uid) —
// spawned 6 at a time, each in a fresh working directory with the script in it. Beside the
// rates: the CPU each process spent per execution, and the calls each service answered per
// execution (from their /metrics), which is where the grid's share of that CPU goes.
//
//   node bench/dist/trivial.js
import { readFileSync } from "node:fs";
import { chmod, chown, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { mapWithLimit, newBatchId } from "@rgrid/common";
import { ExecutionStatus } from "@rgrid/proto";
import { buildCommand, detectRuntimes, loadRunnerConfig, probeSandbox, runProcess, setprivArgs } from "@rgrid/runner";
import { startBenchGrid } from "./bench-grid";
import { runBenchmark } from "./entry";
import { createUploaded, sleep, submitBatch, writeScript } from "./executions";
import { printTable, processCpuMillis, rpcCallCounts } from "./stats";

const EXECUTIONS = 300;
const RUNNERS = 3;
const SLOTS_PER_RUNNER = 2;
const SCRIPT = "print(1)\n";
/** A little over execution-service's log archive interval (RGRID_EXECUTION_LOG_ARCHIVE_SECONDS, 5 s by default). */
const LOG_ARCHIVE_PASS_MILLIS = 6_000;

async function main(): Promise<void> {
  const floor = await sandboxedSpawns();
  const grid = await endToEnd();
  process.stdout.write(`\nTrivial executions, ${EXECUTIONS} of \`print(1)\`, ${RUNNERS} runners × ${SLOTS_PER_RUNNER} slots, embedded defaults\n\n`);
  printTable([
    ["measure", "executions per second", "note"],
    ["rgrid, submitted → all completed", grid.perSecond.toFixed(1), `${(grid.perSecond / floor.perSecond).toFixed(2)}× the floor (target ≥ 0.60×)`],
    [`floor: the runner's sandboxed python3, ${RUNNERS * SLOTS_PER_RUNNER} at a time`, floor.perSecond.toFixed(1), ""],
  ]);
  process.stdout.write(`\nCPU per execution (ms), where the time goes\n\n`);
  printTable([
    ["part", "rgrid", "floor"],
    ...Object.entries(grid.cpuPerExecution).map(([part, millis]): [string, string, string] => [part, millis.toFixed(1), part === "scripts and their sandbox (the rest of the machine)" ? floor.cpuPerExecution.toFixed(1) : ""]),
  ]);
  process.stdout.write(`\nCalls per execution, as the services counted them (including one pass of the log archive)\n\n`);
  printTable([["service", "method", "calls per execution"], ...grid.callsPerExecution]);
}

/** Executions per second through the grid, the CPU each process spent per execution, and the calls each service answered per execution. */
async function endToEnd(): Promise<{ perSecond: number; cpuPerExecution: Record<string, number>; callsPerExecution: Array<[string, string, string]> }> {
  const bench = await startBenchGrid({ runners: RUNNERS, runnerEnv: { RGRID_RUNNER_CONCURRENCY: String(SLOTS_PER_RUNNER) } });
  try {
    const script = await writeScript(bench.dataDir, "t.py", SCRIPT);
    // A first execution warms the runners' python and the connections.
    const warm = await createUploaded(bench.client, script);
    await bench.client.confirmUploads({ executionId: warm });
    await waitForBatch(bench.client, undefined, [warm]);
    const batchId = newBatchId();
    const processes = bench.grid.processes.map((service) => ({ name: service.name, pid: service.pid as number }));
    const cpuBefore = processes.map((service) => processCpuMillis(service.pid));
    const services = [
      { name: "execution-service", url: bench.grid.executionUrl },
      { name: "storage-service", url: bench.grid.storageUrl },
    ];
    const callsBefore = await Promise.all(services.map((service) => rpcCallCounts(service.url)));
    const clientBefore = process.cpuUsage();
    const machineBefore = machineCpuMillis();
    const started = performance.now();
    await submitBatch(bench.client, script, EXECUTIONS, batchId);
    await waitForBatch(bench.client, batchId, []);
    const perSecond = EXECUTIONS / ((performance.now() - started) / 1000);
    const cpuPerExecution: Record<string, number> = {};
    processes.forEach((service, index) => {
      const part = service.name.startsWith("runner") ? "runners (node)" : `${service.name}-service`;
      cpuPerExecution[part] = (cpuPerExecution[part] ?? 0) + (processCpuMillis(service.pid) - cpuBefore[index]!) / EXECUTIONS;
    });
    const clientUsage = process.cpuUsage(clientBefore);
    cpuPerExecution["this client (create, upload, confirm, polling)"] = (clientUsage.user + clientUsage.system) / 1000 / EXECUTIONS;
    const accounted = Object.values(cpuPerExecution).reduce((sum, millis) => sum + millis, 0);
    cpuPerExecution["scripts and their sandbox (the rest of the machine)"] = (machineCpuMillis() - machineBefore) / EXECUTIONS - accounted;
    // The archive's pass runs every 5 s: waiting for one counts its calls too, outside the timing.
    await sleep(LOG_ARCHIVE_PASS_MILLIS);
    const callsPerExecution = (
      await Promise.all(
        services.map(async (service, index) =>
          [...(await rpcCallCounts(service.url))].flatMap(([method, after]): Array<[string, string, string]> => {
            const calls = (after - (callsBefore[index]!.get(method) ?? 0)) / EXECUTIONS;
            return calls > 0 ? [[service.name, method, calls.toFixed(2)]] : [];
          }),
        ),
      )
    ).flat();
    return { perSecond, cpuPerExecution, callsPerExecution };
  } finally {
    await bench.stop();
  }
}

type Client = Awaited<ReturnType<typeof startBenchGrid>>["client"];

/** Until every execution of the batch (or each of `ids`) has completed; any other end fails the bench. */
async function waitForBatch(client: Client, batchId: string | undefined, ids: string[]): Promise<void> {
  const deadline = Date.now() + 600_000;
  for (;;) {
    if (batchId !== undefined) {
      const batch = await client.getBatch({ batchId });
      const completed = batch.counts.find((count) => count.status === ExecutionStatus.COMPLETED)?.count ?? 0;
      const failed = batch.counts.filter((count) => count.status !== ExecutionStatus.COMPLETED && isTerminal(count.status)).reduce((sum, count) => sum + count.count, 0);
      if (failed > 0) throw new Error(`${failed} trivial executions did not complete`);
      if (completed === EXECUTIONS) return;
    } else {
      const statuses = await Promise.all(ids.map(async (executionId) => (await client.getExecution({ executionId })).execution!.status));
      if (statuses.every((status) => status === ExecutionStatus.COMPLETED)) return;
    }
    if (Date.now() > deadline) throw new Error("trivial executions did not all complete in time");
    // As often as `rgrid run --wait` looks (300 ms): the looking costs execution-service CPU too.
    await sleep(250);
  }
}

const isTerminal = (status: ExecutionStatus) =>
  [ExecutionStatus.COMPLETED, ExecutionStatus.FAILED, ExecutionStatus.TIMED_OUT, ExecutionStatus.CANCELLED].includes(status);

/** CPU milliseconds the whole machine spent busy, from /proc/stat. */
function machineCpuMillis(): number {
  const [, ...ticks] = readFileSync("/proc/stat", "utf8").split("\n")[0]!.trim().split(/\s+/).map(Number);
  const idle = (ticks[3] ?? 0) + (ticks[4] ?? 0);
  return (ticks.reduce((sum, tick) => sum + tick, 0) - idle) * 10;
}

/** Executions per second of the runner's own sandboxed command, SLOTS at a time, no grid at all; and the machine's CPU per run. */
async function sandboxedSpawns(): Promise<{ perSecond: number; cpuPerExecution: number }> {
  const root = await mkdtemp(join(tmpdir(), "rgrid-trivial-floor-"));
  try {
    await chmod(root, 0o711);
    const config = loadRunnerConfig({ ...process.env, RGRID_EXECUTION_URL: "http://127.0.0.1:1", RGRID_RUNNER_TOKEN: "floor-token-0123456789", RGRID_RUNNER_WORK_DIR: root });
    const isRoot = process.getuid?.() === 0;
    const capabilities = probeSandbox({ config: config.sandbox, searchPath: config.searchPath, isRoot });
    const drop = capabilities.dropPrivileges;
    // As the runner does: an interpreter that works for the scripts' uids, not only for root.
    const { catalog } = detectRuntimes({
      searchPath: config.searchPath,
      wanted: ["python"],
      nodeBinary: process.execPath,
      runAs: drop === undefined ? undefined : [drop.setpriv, ...setprivArgs(drop.uidBase)],
    });
    const runtime = catalog.resolve("python", "python");
    if (runtime === undefined) throw new Error("python3 is not installed");
    const slots = RUNNERS * SLOTS_PER_RUNNER;
    const runOne = async (index: number) => {
      const slot = index % slots;
      const uid = (capabilities.dropPrivileges?.uidBase ?? 0) + slot;
      const workDir = join(root, `run-${index}`);
      await mkdir(workDir, { mode: 0o700 });
      await writeFile(join(workDir, "t.py"), SCRIPT);
      if (capabilities.dropPrivileges !== undefined) {
        await chown(workDir, uid, uid);
        await chown(join(workDir, "t.py"), uid, uid);
      }
      const command = buildCommand({
        runtime,
        scriptName: "t.py",
        args: [],
        env: {},
        workDir,
        sandbox: { capabilities, network: false, uid, cgroupProcsFiles: [] },
      });
      const result = await runProcess(command, { timeoutMs: 60_000, killGraceMs: 1_000, onLine: () => undefined });
      if (result.termination.kind !== "exited" || result.termination.exitCode !== 0) {
        throw new Error(`the sandboxed floor run failed: ${JSON.stringify(result)}`);
      }
      await rm(workDir, { recursive: true, force: true });
    };
    await mapWithLimit(Array.from({ length: slots }, (_, index) => index), slots, runOne); // warm
    const started = performance.now();
    const machineBefore = machineCpuMillis();
    await mapWithLimit(Array.from({ length: EXECUTIONS }, (_, index) => index), slots, runOne);
    return { perSecond: EXECUTIONS / ((performance.now() - started) / 1000), cpuPerExecution: (machineCpuMillis() - machineBefore) / EXECUTIONS };
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

runBenchmark(main);
