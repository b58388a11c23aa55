import { resolve } from "node:path";
import { EnvReader, corsOriginProblem, readLogFormat, readMetricsToken, readTlsFiles } from "@rgrid/common";
import type { Env, LogFormat, TlsFiles } from "@rgrid/common";
import { parseDatabaseUrl, redactPassword } from "./db/database-url";
import type { DatabaseTarget } from "./db/database-url";
import { DEFAULT_SESSION_TTL_SECONDS } from "./sessions/sessions";

export interface ExecutionConfig {
  host: string;
  port: number;
  /** Absent: plain text (h2c and HTTP/1.1 on one port). */
  tls?: TlsFiles;
  database: DatabaseTarget;
  /** For logs: the database URL without its password. */
  databaseLabel: string;
  storageUrl: string;
  internalToken: string;
  runnerTokens: string[];
  defaultTimeoutSeconds: number;
  maxTimeoutSeconds: number;
  maxRequestBytes: number;
  /** A runner silent for longer than this loses the executions it holds ("runner lost"). */
  leaseTimeoutMillis: number;
  /** How often runners heartbeat; also how often the lease sweep runs. */
  heartbeatIntervalMillis: number;
  /** The first automatic retry waits this long, each further one twice as long (capped). */
  retryBackoffBaseMillis: number;
  /** Log text stored per execution before later lines are dropped. */
  maxLogBytes: number;
  /** How often the janitor looks for objects of executions that do not exist; 0 (the default): never. */
  janitorIntervalMillis: number;
  /** Such objects younger than this are left alone (a retry copies before it records). */
  janitorGraceMillis: number;
  /** Exact origins whose pages may call ExecutionService with an API key (CORS). */
  corsOrigins: string[];
  /** Serve the browser console on this port; a deployment without one turns it off. */
  consoleEnabled: boolean;
  /** Where the built console is; absent: the @rgrid/web package's build. */
  consoleDir?: string;
  /** How long a console sign-in lasts. */
  sessionTtlSeconds: number;
  /** Retries a bulk retry (`rgrid retry --where`) starts per second, on each replica. */
  bulkRetriesPerSecond: number;
  /**
   * On PostgreSQL, the replicas' cluster channel (LISTEN/NOTIFY, the maintenance leader's lock).
   * Off for a database reached through a pooler that cannot LISTEN or hold a session's lock
   * (PgBouncer in transaction mode): replicas then poll every second, and each one sweeps.
   */
  clusterChannel: boolean;
  /** How often finished executions' logs move from the database to storage; 0: never. */
  logArchiveIntervalMillis: number;
  /** Lineages finished more than this many days ago are removed; 0: kept for ever. */
  retentionDays: number;
  retentionIntervalMillis: number;
  logFormat: LogFormat;
  /** When set, GET /metrics requires it as a bearer token; this port is public, see docs/operations.md. */
  metricsToken?: string;
}

export const DEFAULT_DATABASE_URL = "sqlite:.rgrid/rgrid.db";
const ONE_DAY_SECONDS = 86_400;
const ONE_YEAR_SECONDS = 365 * ONE_DAY_SECONDS;

/** Defaults of the runner-facing settings, shared with createExecutionService. */
export const RUNNER_DEFAULTS = {
  leaseTimeoutMillis: 15_000,
  retryBackoffBaseMillis: 5_000,
  maxLogBytes: 10 * 1024 * 1024,
} as const;

export const DEFAULT_BULK_RETRIES_PER_SECOND = 20;

/** Only the database: what the admin commands need. */
export function loadDatabaseConfig(env: Env, cwd: string): { database: DatabaseTarget; databaseLabel: string } {
  const reader = new EnvReader(env);
  const result = readDatabase(reader, cwd);
  reader.finish();
  return result;
}

/** The service's whole configuration; every problem is reported at once. */
export function loadExecutionConfig(env: Env, cwd: string): ExecutionConfig {
  const reader = new EnvReader(env);
  const { database, databaseLabel } = readDatabase(reader, cwd);
  const defaultTimeoutSeconds = reader.integer("RGRID_DEFAULT_TIMEOUT_SECONDS", 3600, 1, ONE_YEAR_SECONDS);
  const maxTimeoutSeconds = reader.integer("RGRID_MAX_TIMEOUT_SECONDS", ONE_DAY_SECONDS, 1, ONE_YEAR_SECONDS);
  if (defaultTimeoutSeconds > maxTimeoutSeconds) {
    reader.problem(
      `RGRID_DEFAULT_TIMEOUT_SECONDS (${defaultTimeoutSeconds}) must not exceed RGRID_MAX_TIMEOUT_SECONDS (${maxTimeoutSeconds})`,
    );
  }
  const config: ExecutionConfig = {
    host: reader.string("RGRID_EXECUTION_HOST", "127.0.0.1"),
    port: reader.port("RGRID_EXECUTION_PORT", 7400),
    tls: readTlsFiles(reader, cwd),
    database,
    databaseLabel,
    // An https URL makes the StorageService client verify storage's certificate against the
    // system CAs plus NODE_EXTRA_CA_CERTS, which is how an operator trusts a self-signed one
    // (Node reads it at process start); verification is never switched off.
    storageUrl: reader.url("RGRID_STORAGE_URL"),
    internalToken: reader.secret("RGRID_INTERNAL_TOKEN"),
    runnerTokens: reader.secretList("RGRID_RUNNER_TOKENS"),
    defaultTimeoutSeconds,
    maxTimeoutSeconds,
    maxRequestBytes: reader.integer("RGRID_MAX_REQUEST_BYTES", 4 * 1024 * 1024, 64 * 1024, 256 * 1024 * 1024),
    ...readLeases(env, reader),
    retryBackoffBaseMillis: readSeconds(env, reader, "RGRID_EXECUTION_RETRY_BACKOFF_SECONDS", RUNNER_DEFAULTS.retryBackoffBaseMillis / 1000, 0, 300) * 1000,
    maxLogBytes: reader.integer("RGRID_EXECUTION_MAX_LOG_BYTES", RUNNER_DEFAULTS.maxLogBytes, 1, 2 ** 40),
    // Off unless asked for: pointed at the wrong database, the janitor would take every object
    // for an orphan.
    janitorIntervalMillis: reader.integer("RGRID_EXECUTION_JANITOR_INTERVAL_SECONDS", 0, 0, ONE_DAY_SECONDS) * 1000,
    // Far longer than any copy-then-insert of a retry takes, so only true orphans qualify.
    janitorGraceMillis: reader.integer("RGRID_EXECUTION_JANITOR_GRACE_SECONDS", 3600, 0, ONE_YEAR_SECONDS) * 1000,
    corsOrigins: reader.list("RGRID_CORS_ORIGINS", corsOriginProblem),
    consoleEnabled: reader.oneOf("RGRID_CONSOLE", ["on", "off"], "on") === "on",
    consoleDir: optionalPath(reader.optionalString("RGRID_CONSOLE_DIR"), cwd),
    sessionTtlSeconds: reader.integer("RGRID_SESSION_TTL_SECONDS", DEFAULT_SESSION_TTL_SECONDS, 60, 90 * ONE_DAY_SECONDS),
    bulkRetriesPerSecond: reader.integer("RGRID_BULK_RETRIES_PER_SECOND", DEFAULT_BULK_RETRIES_PER_SECOND, 1, 10_000),
    clusterChannel: reader.oneOf("RGRID_CLUSTER_CHANNEL", ["on", "off"], "on") === "on",
    logArchiveIntervalMillis: reader.integer("RGRID_EXECUTION_LOG_ARCHIVE_SECONDS", 5, 0, ONE_DAY_SECONDS) * 1000,
    retentionDays: reader.integer("RGRID_RETENTION_DAYS", 0, 0, 100 * 365),
    retentionIntervalMillis: reader.integer("RGRID_RETENTION_INTERVAL_SECONDS", 3600, 1, ONE_DAY_SECONDS) * 1000,
    logFormat: readLogFormat(reader),
    metricsToken: readMetricsToken(reader),
  };
  reader.finish();
  return config;
}

function readLeases(env: Env, reader: EnvReader): Pick<ExecutionConfig, "leaseTimeoutMillis" | "heartbeatIntervalMillis"> {
  const leaseSeconds = readSeconds(env, reader, "RGRID_EXECUTION_LEASE_TIMEOUT_SECONDS", RUNNER_DEFAULTS.leaseTimeoutMillis / 1000, 0.1, 3600);
  // Several heartbeats fit in one lease, so one lost or late heartbeat does not lose the runner.
  const heartbeatSeconds = readSeconds(env, reader, "RGRID_EXECUTION_HEARTBEAT_INTERVAL_SECONDS", leaseSeconds / 5, 0.02, 3600);
  if (heartbeatSeconds >= leaseSeconds) {
    reader.problem(
      `RGRID_EXECUTION_HEARTBEAT_INTERVAL_SECONDS (${heartbeatSeconds}) must be less than ` +
        `RGRID_EXECUTION_LEASE_TIMEOUT_SECONDS (${leaseSeconds})`,
    );
  }
  return { leaseTimeoutMillis: Math.round(leaseSeconds * 1000), heartbeatIntervalMillis: Math.round(heartbeatSeconds * 1000) };
}

/** A duration in seconds, fractions allowed (tests use e.g. 0.5). */
function readSeconds(env: Env, reader: EnvReader, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === "") {
    return fallback;
  }
  const value = Number(raw);
  if (!/^\d+(\.\d+)?$/.test(raw.trim()) || !Number.isFinite(value) || value < min || value > max) {
    reader.problem(`${name} must be a number of seconds from ${min} to ${max}, got "${raw}"`);
    return fallback;
  }
  return value;
}

function optionalPath(path: string | undefined, cwd: string): string | undefined {
  return path === undefined ? undefined : resolve(cwd, path);
}

function readDatabase(reader: EnvReader, cwd: string): { database: DatabaseTarget; databaseLabel: string } {
  const url = reader.string("RGRID_DATABASE_URL", DEFAULT_DATABASE_URL);
  const parsed = parseDatabaseUrl(url, cwd);
  if (typeof parsed === "string") {
    reader.problem(parsed);
    return { database: { dialect: "sqlite", file: ":memory:" }, databaseLabel: redactPassword(url) };
  }
  return { database: parsed, databaseLabel: redactPassword(url) };
}

