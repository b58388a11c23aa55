// The real grid — storage-service, execution-service and runners as separate processes on free
// loopback ports — with a client for it, for the benchmarks.
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createClient } from "@connectrpc/connect";
import type { Client } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { bearerAuth } from "@rgrid/common";
import { startLocalGrid } from "@rgrid/local";
import type { LocalGrid } from "@rgrid/local";
import { ExecutionService } from "@rgrid/proto";
import type { Backend } from "./backends";
import { embeddedBackend } from "./backends";
import { runCommand } from "./command";
import { removeWhenDone } from "./entry";
import { peakRssMiB } from "./stats";

/** The built `rgrid` command, as users run it (the bundle, through its compile cache). */
export const CLI = resolve(__dirname, "../../cli/bin/rgrid.js");

export type ExecutionClient = Client<typeof ExecutionService>;

export interface BenchGrid {
  grid: LocalGrid;
  dataDir: string;
  /** The grid's database: its SQLite file's URL, or the PostgreSQL URL it was given. */
  databaseUrl: string;
  client: ExecutionClient;
  /** Environment for the built CLI pointing at this grid. */
  cliEnv: NodeJS.ProcessEnv;
  /** Peak resident memory of one of the grid's processes ("execution", "storage", ...). */
  peakRss(processName: string): string;
  /** Stops every runner, so that queued work stays queued and off the measured cores. */
  stopRunners(): Promise<void>;
  stop(): Promise<void>;
}

export async function startBenchGrid(options: {
  runners: number;
  backend?: Backend;
  /** execution-service replicas on the backend's database (PostgreSQL for more than one). */
  replicas?: number;
  executionEnv?: Record<string, string>;
  runnerEnv?: Record<string, string>;
}): Promise<BenchGrid> {
  const backend = options.backend ?? embeddedBackend;
  const dataDir = await mkdtemp(join(tmpdir(), "rgrid-bench-"));
  const recentLines: string[] = [];
  let grid: LocalGrid;
  try {
    grid = await startLocalGrid({
      dataDir,
      host: "127.0.0.1",
      executionPort: 0,
      storagePort: 0,
      runners: options.runners,
      executionReplicas: options.replicas,
      executionEnv: options.executionEnv,
      runnerEnv: options.runnerEnv,
      ...backend.gridOptions,
      baseEnv: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: dataDir },
      onLine: (name, line) => {
        recentLines.push(`${name}: ${line}`);
        recentLines.splice(0, recentLines.length - 50);
      },
    });
  } catch (error) {
    await rm(dataDir, { recursive: true, force: true });
    throw error;
  }
  // A process dying mid-run would otherwise surface as a confusing timeout much later.
  const stopping = new Set<string>();
  for (const service of grid.processes) {
    void service.exited.then(() => {
      if (!stopping.has(service.name)) {
        process.stderr.write(`${service.name} exited unexpectedly; the grid's last lines:\n${recentLines.join("\n")}\n`);
        process.exit(1);
      }
    });
  }
  const stopProcesses = (services: LocalGrid["processes"]) => {
    services.forEach((service) => stopping.add(service.name));
    return Promise.all(services.map((service) => service.stop()));
  };

  const client = createClient(
    ExecutionService,
    createConnectTransport({
      baseUrl: grid.executionUrl,
      httpVersion: "2",
      useBinaryFormat: true,
      interceptors: [bearerAuth(grid.apiKey)],
    }),
  );
  const readStatus = (pid: number) => readFileSync(`/proc/${pid}/status`, "utf8");
  return {
    grid,
    dataDir,
    databaseUrl: backend.gridOptions.databaseUrl ?? `sqlite:${join(dataDir, "rgrid.db")}`,
    client,
    cliEnv: {
      PATH: process.env.PATH,
      HOME: dataDir,
      RGRID_CONFIG: join(dataDir, "cli-config.json"),
      RGRID_API_URL: grid.executionUrl,
      RGRID_API_KEY: grid.apiKey,
    },
    peakRss(processName) {
      const mib = peakRssMiB(grid.processes.find((process) => process.name === processName)?.pid, readStatus);
      return mib === undefined ? "n/a" : `${mib.toFixed(0)} MiB`;
    },
    async stopRunners() {
      await stopProcesses(grid.processes.filter((service) => service.name.startsWith("runner")));
    },
    async stop() {
      grid.processes.forEach((service) => stopping.add(service.name));
      await grid.stop();
      removeWhenDone(dataDir);
    },
  };
}

/** A failed execution with a script and three 1 MiB inputs, made with the CLI: what the retry benchmarks retry. */
export async function failedOriginalWithThreeInputs(dataDir: string, cliEnv: NodeJS.ProcessEnv): Promise<string> {
  const workDir = join(dataDir, "bench-inputs");
  await rm(workDir, { recursive: true, force: true });
  await mkdir(workDir, { recursive: true });
  await writeFile(join(workDir, "fail.py"), "import sys\nprint('failing on purpose', file=sys.stderr)\nsys.exit(1)\n");
  const names = ["a.bin", "b.bin", "c.bin"];
  for (const name of names) {
    await writeFile(join(workDir, name), randomBytes(1024 * 1024));
  }
  const run = await runCommand(process.execPath, [CLI, "run", "fail.py", ...names, "--wait", "--remote-only", "--json"], {
    cwd: workDir,
    env: cliEnv,
  });
  const id = /exec_[0-9a-f]{32}/.exec(run.stdout)?.[0];
  if (!id) {
    throw new Error(`could not create the original execution: ${run.stdout} ${run.stderr}`);
  }
  return id;
}
