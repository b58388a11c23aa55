import { dirname, join } from "node:path";
import { parseArgs } from "node:util";
import {
  ConfigError,
  boundHeapGrowth,
  createInternalClient,
  createLogger,
  createMetricsRegistry,
  createProcessLogger,
  exitOnStopSignal,
  rpcLinesFor,
} from "@rgrid/common";
import type { Logger, RunningServer } from "@rgrid/common";
import { StorageService } from "@rgrid/proto";
import { issueApiKey } from "./accounts";
import { loadDatabaseConfig, loadExecutionConfig } from "./config";
import type { ExecutionConfig } from "./config";
import { loadConsoleFiles } from "./console";
import type { ConsoleFile } from "./console";
import { Account } from "./db/entities";
import { openDatabase } from "./db/orm";
import type { Database } from "./db/orm";
import { joinCluster } from "./cluster/cluster";
import { createJanitor, startJanitor } from "./janitor";
import type { Janitor } from "./janitor";
import { createExecutionServer } from "./server";
import { issueSignInToken } from "./sessions/sessions";
import { createStorageGateway } from "./storage";
import type { StorageClient } from "./storage";

const SHUTDOWN_GRACE_MILLIS = 10_000;

const USAGE = `usage:
  node main.js                                  serve ExecutionService and RunnerService
  node main.js create-api-key --account <name>  print a new API key for the account
  node main.js create-sign-in-token --account <name>
                                                print a single-use token for a console sign-in
                                                link (<console url>/sign-in#token=<token>)
  node main.js janitor                          remove, once, the stored objects of executions
                                                that do not exist (older than the grace period)`;

async function serve(config: ExecutionConfig, logger: Logger): Promise<void> {
  // Garbage from a burst of requests is collected soon instead of held as room (see heap.ts).
  boundHeapGrowth();
  const db = await openDatabase(config.database);
  const applied = await db.migrate();
  logger.info("database ready", { database: config.databaseLabel, migrationsApplied: applied.length });

  const storage = createInternalClient(StorageService, config.storageUrl, config.internalToken);
  // Replicas share a PostgreSQL database; a SQLite one belongs to this process alone.
  const cluster =
    config.database.dialect === "postgresql" && config.clusterChannel ? await joinCluster({ databaseUrl: config.database.url, logger }) : undefined;
  const server = createExecutionServer({
    db,
    cluster,
    logArchiveIntervalMillis: config.logArchiveIntervalMillis,
    retention: config.retentionDays > 0 ? { days: config.retentionDays, intervalMillis: config.retentionIntervalMillis } : undefined,
    storage,
    logger,
    rpcLines: rpcLinesFor(config.logFormat),
    runnerTokens: config.runnerTokens,
    defaultTimeoutSeconds: config.defaultTimeoutSeconds,
    maxTimeoutSeconds: config.maxTimeoutSeconds,
    readMaxBytes: config.maxRequestBytes,
    tls: config.tls,
    leaseTimeoutMillis: config.leaseTimeoutMillis,
    heartbeatIntervalMillis: config.heartbeatIntervalMillis,
    retryBackoffBaseMillis: config.retryBackoffBaseMillis,
    maxLogBytes: config.maxLogBytes,
    sessionTtlSeconds: config.sessionTtlSeconds,
    bulkRetriesPerSecond: config.bulkRetriesPerSecond,
    corsOrigins: config.corsOrigins,
    consoleFiles: config.consoleEnabled ? consoleFilesFor(config, logger) : undefined,
    metrics: { registry: createMetricsRegistry(), token: config.metricsToken },
  });
  const running = await server.listen(config.port, config.host);
  logger.info("listening", { url: running.url, console: config.consoleEnabled ? `${running.url}/` : "off" });
  const stopJanitor =
    config.janitorIntervalMillis > 0
      ? startJanitor(janitorFor(config, db, storage, logger), config.janitorIntervalMillis, logger, cluster?.leadership.isLeader)
      : async () => undefined;
  stopOnSignal(logger, running, db, async () => {
    await stopJanitor();
    await cluster?.close();
  });
}

function janitorFor(config: ExecutionConfig, db: Database, storage: StorageClient, logger: Logger): Janitor {
  return createJanitor({
    db,
    storage: createStorageGateway(storage),
    logger: logger.child("janitor"),
    clock: () => new Date(),
    graceMillis: config.janitorGraceMillis,
  });
}

/** The built console, from RGRID_CONSOLE_DIR or the @rgrid/web package beside this one. */
function consoleFilesFor(config: ExecutionConfig, logger: Logger): Map<string, ConsoleFile> {
  const dir = config.consoleDir ?? builtConsoleDir();
  const files = dir === undefined ? new Map<string, ConsoleFile>() : loadConsoleFiles(dir);
  if (files.size === 0) {
    logger.warn("the console is not built; its pages answer 503 until it is (npm run build)", { dir: dir ?? "@rgrid/web not installed" });
  }
  return files;
}

function builtConsoleDir(): string | undefined {
  try {
    return join(dirname(require.resolve("@rgrid/web/package.json")), "dist");
  } catch {
    return undefined;
  }
}

/** One janitor pass with the service's own configuration; prints each execution it cleaned up. */
async function janitorCommand(config: ExecutionConfig, logger: Logger): Promise<void> {
  const db = await openDatabase(config.database);
  try {
    await db.migrate();
    const storage = createInternalClient(StorageService, config.storageUrl, config.internalToken);
    const pass = await janitorFor(config, db, storage, logger).runOnce();
    for (const id of pass.removedIds) {
      process.stdout.write(`removed objects of ${id}\n`);
    }
    process.stdout.write(`${pass.removedExecutions} execution(s) cleaned up\n`);
  } finally {
    await db.close();
  }
}

/** Drains the server, then stops the background work (janitor, cluster channel) and closes the ORM. */
function stopOnSignal(logger: Logger, running: RunningServer, db: Database, stopBackground: () => Promise<void>): void {
  exitOnStopSignal(logger, async () => {
    await running.close(SHUTDOWN_GRACE_MILLIS);
    await stopBackground();
    await db.close();
  });
}

/** Prints only the token on stdout; the caller builds the link (it knows the console's URL). */
async function createSignInTokenCommand(args: string[]): Promise<void> {
  const accountName = requireAccountName(args, "create-sign-in-token");
  const { database } = loadDatabaseConfig(process.env, process.cwd());
  const db = await openDatabase(database);
  try {
    await db.migrate();
    const em = db.fork();
    const account = await em.findOne(Account, { name: accountName });
    if (account === null) {
      throw new UsageError(`no account named "${accountName}": create it with create-api-key first`);
    }
    process.stdout.write(`${await issueSignInToken(em, account.id, new Date())}\n`);
  } finally {
    await db.close();
  }
}

function requireAccountName(args: string[], command: string): string {
  const values = parseCommandArgs(args);
  if (values.account === undefined || values.account.trim() === "") {
    throw new UsageError(`${command} needs --account <name>`);
  }
  return values.account.trim();
}

/** Prints only the key on stdout, so scripts can capture it. */
async function createApiKeyCommand(args: string[]): Promise<void> {
  const accountName = requireAccountName(args, "create-api-key");
  const { database } = loadDatabaseConfig(process.env, process.cwd());
  const db = await openDatabase(database);
  try {
    await db.migrate();
    const issued = await issueApiKey(db.fork(), accountName, new Date());
    process.stdout.write(`${issued.key}\n`);
  } finally {
    await db.close();
  }
}

class UsageError extends Error {}

function parseCommandArgs(args: string[]): { account?: string } {
  try {
    return parseArgs({ args, options: { account: { type: "string" } }, strict: true }).values;
  } catch (error) {
    throw new UsageError(error instanceof Error ? error.message : String(error));
  }
}

async function main(): Promise<void> {
  // Readable until the configuration names a format (only serving and the janitor read it).
  let logger: Logger = createLogger("execution");
  const [command, ...rest] = process.argv.slice(2);
  try {
    if (command === undefined || (command === "janitor" && rest.length === 0)) {
      const config = loadExecutionConfig(process.env, process.cwd());
      logger = createProcessLogger("execution", config.logFormat);
      await (command === undefined ? serve(config, logger) : janitorCommand(config, logger));
    } else if (command === "create-api-key") {
      await createApiKeyCommand(rest);
    } else if (command === "create-sign-in-token") {
      await createSignInTokenCommand(rest);
    } else {
      throw new UsageError(`unknown command "${command}"`);
    }
  } catch (error) {
    if (error instanceof ConfigError || error instanceof UsageError) {
      process.stderr.write(`${error.message}\n${error instanceof UsageError ? USAGE + "\n" : ""}`);
      process.exit(2);
    }
    logger.error("failed to start", { error });
    process.exit(1);
  }
}

void main();
