// The grid's services as separate processes the test controls one by one: each can be killed
// with any signal and started again with the same environment on the same port, which
// startTestGrid (one start, one stop) cannot do. Used by the fault and shutdown tests.
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmod, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { runServiceCommand, serviceEntry } from "@rgrid/local";

export interface ServiceExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface ManagedService {
  readonly name: string;
  /** The URL it listens on; the same after a restart. */
  readonly url: string;
  readonly env: Record<string, string>;
  /** Resolves when the current process exits. */
  exited(): Promise<ServiceExit>;
  isRunning(): boolean;
  /** Sends `signal` without waiting. */
  signal(signal: NodeJS.Signals): void;
  /** Sends `signal` and waits for the process to exit. */
  kill(signal: NodeJS.Signals): Promise<ServiceExit>;
  /** Starts the service again with the same environment and port. */
  restart(): Promise<void>;
}

export interface ClusterOptions {
  /** Defaults to SQLite in the data directory. */
  databaseUrl?: string;
  storageEnv?: Record<string, string>;
  executionEnv?: Record<string, string>;
  runnerEnv?: Record<string, string>;
  runners?: number;
  /** execution-service processes on the same database (PostgreSQL for more than one). */
  replicas?: number;
  /** Started once the replicas listen (a load balancer): runners then talk to it. */
  front?: (replicas: readonly ManagedService[]) => Promise<Front>;
}

/** What stands in front of the replicas, e.g. HAProxy (haproxy.ts). */
export interface Front {
  url: string;
  stop(): Promise<void>;
}

export interface Cluster {
  dataDir: string;
  /** Where the fs backend keeps objects: <objectsDir>/executions/<id>/… */
  objectsDir: string;
  databaseUrl: string;
  apiKey: string;
  internalToken: string;
  runnerToken: string;
  storage: ManagedService;
  /** The first replica. */
  execution: ManagedService;
  replicas: ManagedService[];
  /** Where runners (and clients meant to survive a replica) talk: the front's URL, or the one replica's. */
  frontUrl: string;
  runners: ManagedService[];
  /** Every line any process printed, prefixed with its name, for diagnosis and log checks. */
  logs: string[];
  /** Runs a one-shot execution-service command (create-api-key, janitor) with its environment. */
  executionCommand(args: string[], extraEnv?: Record<string, string>): Promise<string>;
  createApiKey(account: string): Promise<string>;
  shutdown(): Promise<void>;
}

const LISTENING_LINE = /listening url=(\S+)/;

function startProcess(
  name: string,
  entry: string,
  env: Record<string, string>,
  cwd: string,
  onLine: (line: string) => void,
): { child: ChildProcess; exited: Promise<ServiceExit>; listening: Promise<string> } {
  const child = spawn(process.execPath, [entry], { cwd, env, stdio: ["ignore", "pipe", "pipe"] });
  const exited = new Promise<ServiceExit>((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));
  const listening = new Promise<string>((resolve, reject) => {
    for (const stream of [child.stdout, child.stderr]) {
      createInterface({ input: stream!, crlfDelay: Infinity }).on("line", (line) => {
        onLine(line);
        const match = LISTENING_LINE.exec(line);
        if (match) resolve(match[1] as string);
      });
    }
    void exited.then((exit) => reject(new Error(`${name} exited (${exit.code ?? exit.signal}) before it was listening`)));
  });
  listening.catch(() => undefined);
  return { child, exited, listening };
}

/**
 * Starts a service. A server's `portVariable` is pinned to the first port it got, so restarts
 * keep it; a runner (no port) is ready once spawned, and its `url` is the one it talks to.
 */
async function startManaged(
  name: string,
  entry: string,
  env: Record<string, string>,
  listen: { portVariable: string } | { talksTo: string },
  cwd: string,
  logs: string[],
): Promise<ManagedService> {
  const onLine = (line: string) => logs.push(`${name}: ${line}`);
  let current = startProcess(name, entry, env, cwd, onLine);
  const url = "talksTo" in listen ? listen.talksTo : await current.listening;
  const pinnedEnv = "portVariable" in listen ? { ...env, [listen.portVariable]: new URL(url).port } : env;
  let running = true;
  const watch = () => void current.exited.then(() => (running = false));
  watch();
  return {
    name,
    url,
    env: pinnedEnv,
    exited: () => current.exited,
    isRunning: () => running,
    signal(signal) {
      if (running) current.child.kill(signal);
    },
    async kill(signal) {
      if (running) current.child.kill(signal);
      return current.exited;
    },
    async restart() {
      if (running) throw new Error(`${name} is still running`);
      current = startProcess(name, entry, pinnedEnv, cwd, onLine);
      running = true;
      watch();
      if ("portVariable" in listen) {
        const again = await current.listening;
        if (again !== url) throw new Error(`${name} came back on ${again}, not ${url}`);
      }
    },
  };
}

export async function startCluster(options: ClusterOptions = {}): Promise<Cluster> {
  const dataDir = await mkdtemp(join(tmpdir(), "rgrid-cluster-"));
  // Runners put their work roots in here, and scripts run as other users must pass through.
  await chmod(dataDir, 0o711);
  const objectsDir = join(dataDir, "objects");
  const logs: string[] = [];
  const secret = () => randomBytes(32).toString("base64url");
  const internalToken = secret();
  const runnerToken = secret();
  const databaseUrl = options.databaseUrl ?? `sqlite:${join(dataDir, "rgrid.db")}`;
  const baseEnv = { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: dataDir };
  const started: ManagedService[] = [];
  let front: Front | undefined;

  const stopAll = async () => {
    await front?.stop();
    for (const service of [...started].reverse()) {
      if (service.isRunning()) {
        const timer = setTimeout(() => void service.kill("SIGKILL"), 10_000);
        await service.kill("SIGTERM");
        clearTimeout(timer);
      }
    }
  };

  try {
    const storage = await startManaged(
      "storage",
      serviceEntry("@rgrid/storage"),
      {
        ...baseEnv,
        RGRID_STORAGE_HOST: "127.0.0.1",
        RGRID_STORAGE_PORT: "0",
        RGRID_INTERNAL_TOKEN: internalToken,
        RGRID_STORAGE_DIR: objectsDir,
        RGRID_STORAGE_SIGNING_KEY: secret(),
        ...options.storageEnv,
      },
      { portVariable: "RGRID_STORAGE_PORT" },
      dataDir,
      logs,
    );
    started.push(storage);

    const executionEnv = {
      ...baseEnv,
      RGRID_EXECUTION_HOST: "127.0.0.1",
      RGRID_EXECUTION_PORT: "0",
      RGRID_DATABASE_URL: databaseUrl,
      RGRID_STORAGE_URL: storage.url,
      RGRID_INTERNAL_TOKEN: internalToken,
      RGRID_RUNNER_TOKENS: runnerToken,
      ...options.executionEnv,
    };
    const executionMain = serviceEntry("@rgrid/execution");
    const executionCommand = (args: string[], extraEnv: Record<string, string> = {}) =>
      runServiceCommand(executionMain, args, { ...executionEnv, ...extraEnv }, dataDir);
    // Migrates the database, so it exists before the service starts.
    const apiKey = await executionCommand(["create-api-key", "--account", "local"]);

    const replicas: ManagedService[] = [];
    for (let index = 0; index < (options.replicas ?? 1); index++) {
      const name = index === 0 ? "execution" : `execution-${index + 1}`;
      const replica = await startManaged(name, executionMain, executionEnv, { portVariable: "RGRID_EXECUTION_PORT" }, dataDir, logs);
      started.push(replica);
      replicas.push(replica);
    }
    const execution = replicas[0] as ManagedService;
    front = options.front === undefined ? undefined : await options.front(replicas);
    const frontUrl = front?.url ?? execution.url;

    const runners: ManagedService[] = [];
    for (let index = 0; index < (options.runners ?? 0); index++) {
      const name = `runner-${index + 1}`;
      const runner = await startManaged(
        name,
        serviceEntry("@rgrid/runner"),
        {
          ...baseEnv,
          RGRID_EXECUTION_URL: frontUrl,
          RGRID_RUNNER_TOKEN: runnerToken,
          RGRID_RUNNER_NAME: `test-${name}`,
          RGRID_RUNNER_WORK_DIR: join(dataDir, "work", name),
          ...options.runnerEnv,
        },
        { talksTo: frontUrl },
        dataDir,
        logs,
      );
      started.push(runner);
      runners.push(runner);
    }

    return {
      dataDir,
      objectsDir,
      databaseUrl,
      apiKey,
      internalToken,
      runnerToken,
      storage,
      execution,
      replicas,
      frontUrl,
      runners,
      logs,
      executionCommand,
      createApiKey: (account) => executionCommand(["create-api-key", "--account", account]),
      async shutdown() {
        await stopAll();
        await rm(dataDir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    await stopAll();
    await rm(dataDir, { recursive: true, force: true });
    throw error;
  }
}
