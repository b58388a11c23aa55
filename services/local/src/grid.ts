import { existsSync } from "node:fs";
import { chmod, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { firstUnsearchableAncestor } from "@rgrid/runner";
import { spawnService, runServiceCommand } from "./child-process";
import type { ServiceProcess } from "./child-process";
import { loadOrCreateSecrets, saveSecrets } from "./secrets";

export interface LocalGridOptions {
  /** Holds the database, the objects, the runner's work dirs and the generated secrets. */
  dataDir: string;
  host: string;
  /** 0 picks free ports (tests); the local grid uses fixed ones so the CLI config stays valid. */
  executionPort: number;
  storagePort: number;
  /** Defaults to SQLite in the data dir. */
  databaseUrl?: string;
  /** Extra environment for storage-service, e.g. the S3 backend's settings. */
  storageEnv?: Record<string, string>;
  /** Extra environment for execution-service, e.g. a short lease or log cap for tests. */
  executionEnv?: Record<string, string>;
  /** Extra environment for the runners. */
  runnerEnv?: Record<string, string>;
  runners: number;
  /**
   * execution-service processes on the one database (PostgreSQL only, for more than one); the
   * first listens on executionPort and serves the runners, the others on free ports. One unless told.
   */
  executionReplicas?: number;
  /** Environment every process inherits (PATH and the like); never parsed here. */
  baseEnv: Record<string, string>;
  onLine: (processName: string, line: string) => void;
}

export interface LocalGrid {
  executionUrl: string;
  /** Every execution-service replica's URL, executionUrl first. */
  replicaUrls: string[];
  storageUrl: string;
  apiKey: string;
  internalToken: string;
  runnerToken: string;
  processes: ServiceProcess[];
  /** A new single-use link that signs the local account in to the console. */
  createSignInLink(): Promise<string>;
  /** Resolves when any process exits on its own, with its name. */
  unexpectedExit: Promise<string>;
  stop(): Promise<void>;
}

/** The account the local grid makes for whoever runs it. */
const LOCAL_ACCOUNT = "local";

/** The built main.js of a service package of this repository. */
export const serviceEntry = (packageName: string) =>
  join(dirname(require.resolve(`${packageName}/package.json`)), "dist", "main.js");

/**
 * Starts storage-service, execution-service and the runners as separate processes, in that order;
 * `stop` stops them in the reverse order, so runners report what they were running while
 * execution-service is still there to hear it.
 */
export async function startLocalGrid(options: LocalGridOptions): Promise<LocalGrid> {
  const dataDir = resolve(options.dataDir);
  const secrets = await loadOrCreateSecrets(dataDir);
  const databaseUrl = options.databaseUrl ?? `sqlite:${join(dataDir, "rgrid.db")}`;
  const started: ServiceProcess[] = [];
  let stopping = false;
  let temporaryWorkRoot: string | undefined;
  const stopAll = async () => {
    stopping = true;
    for (const service of [...started].reverse()) {
      await service.stop();
    }
    if (temporaryWorkRoot !== undefined) {
      await rm(temporaryWorkRoot, { recursive: true, force: true });
    }
  };

  try {
    const storage = spawnService({
      name: "storage",
      entry: serviceEntry("@rgrid/storage"),
      cwd: dataDir,
      env: {
        ...options.baseEnv,
        RGRID_STORAGE_HOST: options.host,
        RGRID_STORAGE_PORT: String(options.storagePort),
        RGRID_INTERNAL_TOKEN: secrets.internalToken,
        RGRID_STORAGE_DIR: join(dataDir, "objects"),
        RGRID_STORAGE_SIGNING_KEY: secrets.signingKey,
        ...options.storageEnv,
      },
      onLine: options.onLine,
    });
    started.push(storage);
    const storageUrl = await storage.listening;

    const executionEnv = {
      ...options.baseEnv,
      RGRID_EXECUTION_HOST: options.host,
      RGRID_EXECUTION_PORT: String(options.executionPort),
      RGRID_DATABASE_URL: databaseUrl,
      RGRID_STORAGE_URL: storageUrl,
      RGRID_INTERNAL_TOKEN: secrets.internalToken,
      RGRID_RUNNER_TOKENS: secrets.runnerToken,
      ...options.executionEnv,
    };
    const executionMain = serviceEntry("@rgrid/execution");
    if (!secrets.apiKey || secrets.apiKeyDatabase !== databaseUrl || !databaseExists(databaseUrl)) {
      // A database new to this grid has no local account yet: make it and remember its key.
      secrets.apiKey = await runServiceCommand(executionMain, ["create-api-key", "--account", LOCAL_ACCOUNT], executionEnv, dataDir);
      secrets.apiKeyDatabase = databaseUrl;
      await saveSecrets(dataDir, secrets);
    }
    const execution = spawnService({ name: "execution", entry: executionMain, cwd: dataDir, env: executionEnv, onLine: options.onLine });
    started.push(execution);
    const executionUrl = await execution.listening;
    const replicas = Array.from({ length: (options.executionReplicas ?? 1) - 1 }, (_, index) =>
      spawnService({
        name: `execution-${index + 2}`,
        entry: executionMain,
        cwd: dataDir,
        env: { ...executionEnv, RGRID_EXECUTION_PORT: "0" },
        onLine: options.onLine,
      }),
    );
    started.push(...replicas);
    const replicaUrls = [executionUrl, ...(await Promise.all(replicas.map((replica) => replica.listening)))];

    const workRoot = await runnersWorkRoot(dataDir);
    temporaryWorkRoot = workRoot.temporary ? workRoot.path : undefined;
    for (let index = 0; index < options.runners; index++) {
      const name = options.runners === 1 ? "runner" : `runner-${index + 1}`;
      started.push(
        spawnService({
          name,
          entry: serviceEntry("@rgrid/runner"),
          cwd: dataDir,
          env: {
            ...options.baseEnv,
            RGRID_EXECUTION_URL: executionUrl,
            RGRID_RUNNER_TOKEN: secrets.runnerToken,
            RGRID_RUNNER_NAME: `local-${name}`,
            RGRID_RUNNER_WORK_DIR: join(workRoot.path, name),
            // Stopping the local grid means now: a running script is stopped at once and its
            // execution reported (an infrastructure error, retried automatically), not waited for.
            RGRID_RUNNER_SHUTDOWN_GRACE_SECONDS: "0",
            ...options.runnerEnv,
          },
          onLine: options.onLine,
        }),
      );
    }

    const unexpectedExit = Promise.race(
      started.map((service) => service.exited.then(() => service.name)),
    ).then((name) => {
      if (stopping) {
        return new Promise<string>(() => undefined); // a requested stop is not unexpected
      }
      return name;
    });

    return {
      executionUrl,
      replicaUrls,
      storageUrl,
      apiKey: secrets.apiKey,
      internalToken: secrets.internalToken,
      runnerToken: secrets.runnerToken,
      processes: started,
      async createSignInLink() {
        const token = await runServiceCommand(executionMain, ["create-sign-in-token", "--account", LOCAL_ACCOUNT], executionEnv, dataDir);
        // In the fragment, the token never reaches a server log or a Referer header.
        return `${executionUrl}/sign-in#token=${token}`;
      },
      unexpectedExit,
      stop: stopAll,
    };
  } catch (error) {
    await stopAll();
    throw error;
  }
}

/** Only SQLite files can vanish under us; a server database is assumed to persist. */
function databaseExists(databaseUrl: string): boolean {
  if (!databaseUrl.startsWith("sqlite:")) {
    return true;
  }
  const path = databaseUrl.slice("sqlite:".length);
  return path !== ":memory:" && existsSync(path);
}

/**
 * Where the runners' work roots go: beside the grid's data, unless scripts running as other users
 * could not reach it there (a checkout inside a private home directory, or a 0700 temporary data
 * directory); then in a fresh directory under the system's temporary directory — made with an
 * unguessable name, so no other local user can have planted it — removed when the grid stops.
 */
async function runnersWorkRoot(dataDir: string): Promise<{ path: string; temporary: boolean }> {
  const beside = join(dataDir, "work");
  if (firstUnsearchableAncestor(join(beside, "runner")) === undefined) {
    return { path: beside, temporary: false };
  }
  const path = await mkdtemp(join(tmpdir(), "rgrid-work-"));
  await chmod(path, 0o711);
  return { path, temporary: true };
}
