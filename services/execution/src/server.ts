import type { ConnectRouter, Interceptor } from "@connectrpc/connect";
import { Registry, createConnectServer, hideUnknownErrors, validateRequests } from "@rgrid/common";
import type { ConnectServer, Logger, MetricsOptions, RpcLines } from "@rgrid/common";
import { authenticate } from "./auth";
import type { Cluster } from "./cluster/cluster";
import { soleLeader } from "./cluster/leadership";
import { connectClusterSignals } from "./cluster/signals";
import { DEFAULT_BULK_RETRIES_PER_SECOND, RUNNER_DEFAULTS } from "./config";
import { createConsoleHandler } from "./console";
import type { ConsoleFile } from "./console";
import { coalesceCopies } from "./copy-coalescing";
import type { Database } from "./db/orm";
import { mapKnownErrors } from "./errors";
import { createAutoRetry } from "./executions/auto-retry";
import { createBulkRetries } from "./executions/bulk-retry";
import type { BulkRetries } from "./executions/bulk-retry";
import { ExecutionActivity } from "./executions/execution-activity";
import { createLeaseSweeper } from "./executions/leases";
import type { LeaseSweeper } from "./executions/leases";
import { createLogArchive } from "./executions/log-archive";
import { createRetention } from "./executions/retention";
import { createRetryExecution } from "./executions/retry";
import { WorkNotifier } from "./executions/work-notifier";
import { allTasks, recurringTask } from "./maintenance";
import type { RecurringTask } from "./maintenance";
import { createDownloadGrants } from "./executions/download-grants";
import { createExecutionMetrics } from "./metrics";
import { createRoutes } from "./routes";
import { DEFAULT_SESSION_TTL_SECONDS } from "./sessions/sessions";
import { createStorageGateway } from "./storage";
import type { StorageClient } from "./storage";
import { executionCodeRules } from "./validation";

export interface ExecutionServerDeps {
  db: Database;
  storage: StorageClient;
  logger: Logger;
  /** Which RPCs get a log line (see ServerOptions.rpcLines); all unless told otherwise. */
  rpcLines?: RpcLines;
  runnerTokens: readonly string[];
  defaultTimeoutSeconds: number;
  maxTimeoutSeconds: number;
  readMaxBytes: number;
  /** With a certificate and key the port speaks TLS; the listening URL is then https. */
  tls?: { cert: string | Buffer; key: string | Buffer };
  clock?: () => Date;
  /** How often a waiting claim re-checks for work queued by other replicas. */
  claimRecheckMillis?: number;
  /** Defaults as in loadExecutionConfig: a 15 s lease, heartbeats every fifth of it. */
  leaseTimeoutMillis?: number;
  heartbeatIntervalMillis?: number;
  retryBackoffBaseMillis?: number;
  maxLogBytes?: number;
  /** Wakes FollowLogs streams per execution; given by tests that observe it. */
  logActivity?: ExecutionActivity;
  /** How long a console sign-in lasts; a week unless configured. */
  sessionTtlSeconds?: number;
  /** Exact origins whose pages may call with an API key (CORS). */
  corsOrigins?: readonly string[];
  /** The built browser console to serve on the same port (loadConsoleFiles); none: not served. */
  consoleFiles?: ReadonlyMap<string, ConsoleFile>;
  /** GET /metrics and the registry the service's metrics go to; without it they go nowhere. */
  metrics?: MetricsOptions;
  /** Retries a bulk retry (RetryWhere) starts per second; 20 unless configured. */
  bulkRetriesPerSecond?: number;
  /**
   * One of several replicas on a PostgreSQL database (cluster/cluster.ts): their waiting calls
   * wake on each other's changes, and only the leader sweeps leases. Alone without it.
   */
  cluster?: Pick<Cluster, "replicaId" | "channel" | "peers" | "leadership">;
  /** How often finished executions' logs move from the database to storage; off (0) unless set. */
  logArchiveIntervalMillis?: number;
  /** Lineages finished longer ago than `days` are removed every `intervalMillis`; never unless set. */
  retention?: { days: number; intervalMillis: number };
}

/**
 * How long a waiting claim or log stream may go without looking at the database, while the
 * cluster channel brings other replicas' changes: only a lost notification is waited out.
 */
const LISTENING_RECHECK_MILLIS = 10_000;

export interface ExecutionService {
  routes: (router: ConnectRouter) => void;
  /** Outermost first: unknown errors hidden, known ones mapped, authentication, then validation. */
  interceptors: Interceptor[];
  /** Gives up the executions of silent runners; started and stopped by whoever serves. */
  leases: LeaseSweeper;
  /** Works through bulk retries, and carries on those whose worker stopped; stopped before the database closes. */
  bulkRetries: Pick<BulkRetries, "start" | "stop">;
  /** The leader's recurring work besides lease sweeps: log archiving and retention. */
  maintenance: RecurringTask;
  /**
   * Ends the calls that would otherwise wait out the shutdown grace: waiting claims answer
   * "nothing to do" and log streams end (their clients reconnect elsewhere or after restart).
   */
  endLongCalls(): void;
}

/** Routes and interceptors, for serving on a port or through an in-memory router transport. */
export function createExecutionService(deps: ExecutionServerDeps): ExecutionService {
  const clock = deps.clock ?? (() => new Date());
  // Retries arriving together share their calls to storage (copy-coalescing.ts).
  const storage = coalesceCopies(createStorageGateway(deps.storage));
  const notifier = new WorkNotifier();
  const logActivity = deps.logActivity ?? new ExecutionActivity();
  const cluster = deps.cluster;
  if (cluster !== undefined) {
    connectClusterSignals({ db: deps.db, channel: cluster.channel, peers: cluster.peers, replicaId: cluster.replicaId, notifier, logActivity, logger: deps.logger.child("cluster") });
  }
  // Polling is the fallback while nothing tells this process of other replicas' changes.
  const pollingMillis = deps.claimRecheckMillis ?? 1000;
  const recheckMillis = () => (cluster?.channel.connected === true ? Math.max(pollingMillis, LISTENING_RECHECK_MILLIS) : pollingMillis);
  const stopping = new AbortController();
  const leaseTimeoutMillis = deps.leaseTimeoutMillis ?? RUNNER_DEFAULTS.leaseTimeoutMillis;
  const heartbeatIntervalMillis = deps.heartbeatIntervalMillis ?? Math.round(leaseTimeoutMillis / 5);
  // A registry nobody reads when none is given: recording costs little, and no code path differs.
  const metrics = createExecutionMetrics({ registry: deps.metrics?.registry ?? new Registry(), db: deps.db, logger: deps.logger });
  const retryExecution = createRetryExecution({ db: deps.db, storage, notifier, clock, logger: deps.logger, metrics });
  const autoRetry = createAutoRetry({
    db: deps.db,
    retryExecution,
    clock,
    logger: deps.logger,
    backoffBaseMillis: deps.retryBackoffBaseMillis ?? RUNNER_DEFAULTS.retryBackoffBaseMillis,
  });
  const bulkRetries = createBulkRetries({
    db: deps.db,
    retryExecution,
    clock,
    logger: deps.logger.child("bulk-retry"),
    retriesPerSecond: deps.bulkRetriesPerSecond ?? DEFAULT_BULK_RETRIES_PER_SECOND,
  });
  const logArchive = createLogArchive({ db: deps.db, storage, logger: deps.logger.child("log-archive") });
  const downloadGrants = createDownloadGrants({ storage, clock, logger: deps.logger.child("download-grants") });
  const isLeader = cluster?.leadership.isLeader ?? soleLeader.isLeader;
  const maintenanceLogger = deps.logger.child("maintenance");
  const maintenance = allTasks([
    recurringTask({
      name: "log archiving",
      intervalMillis: deps.logArchiveIntervalMillis ?? 0,
      isLeader,
      run: (stopping) => logArchive.archiveOnce(stopping),
      logger: maintenanceLogger,
    }),
    ...(deps.retention === undefined
      ? []
      : [
          recurringTask({
            name: "retention",
            intervalMillis: deps.retention.intervalMillis,
            isLeader,
            run: createRetention({ db: deps.db, storage, logger: maintenanceLogger, clock, days: deps.retention.days }).pruneOnce,
            logger: maintenanceLogger,
          }),
        ]),
  ]);
  return {
    routes: createRoutes({
      logArchive,
      db: deps.db,
      storage,
      notifier,
      logActivity,
      clock,
      logger: deps.logger,
      defaultTimeoutSeconds: deps.defaultTimeoutSeconds,
      recheckMillis,
      lease: { timeoutMillis: leaseTimeoutMillis, heartbeatIntervalMillis },
      maxLogBytes: deps.maxLogBytes ?? RUNNER_DEFAULTS.maxLogBytes,
      autoRetry,
      stopping: stopping.signal,
      sessionTtlSeconds: deps.sessionTtlSeconds ?? DEFAULT_SESSION_TTL_SECONDS,
      metrics,
      bulkRetries,
      downloadGrants,
    }),
    interceptors: [
      hideUnknownErrors(deps.logger),
      mapKnownErrors(),
      authenticate({ db: deps.db, runnerTokens: deps.runnerTokens, clock }),
      validateRequests(executionCodeRules({ maxTimeoutSeconds: deps.maxTimeoutSeconds })),
    ],
    leases: createLeaseSweeper({
      db: deps.db,
      logActivity,
      notifier,
      autoRetry,
      clock,
      logger: deps.logger.child("leases"),
      leaseTimeoutMillis,
      // Sweeping as often as runners heartbeat finds a lost runner soon after its lease ends.
      sweepIntervalMillis: heartbeatIntervalMillis,
      isLeader,
    }),
    bulkRetries,
    maintenance,
    endLongCalls: () => stopping.abort(),
  };
}

/**
 * The server, built apart from listening so tests and main.ts choose the address. The lease
 * sweep runs while the server listens and stops before it closes.
 */
export function createExecutionServer(deps: ExecutionServerDeps): ConnectServer {
  const service = createExecutionService(deps);
  const server = createConnectServer({
    routes: service.routes,
    interceptors: service.interceptors,
    readMaxBytes: deps.readMaxBytes,
    tls: deps.tls,
    corsOrigins: deps.corsOrigins,
    fallback: deps.consoleFiles ? createConsoleHandler(deps.consoleFiles) : undefined,
    metrics: deps.metrics,
    logger: deps.logger,
    rpcLines: deps.rpcLines,
  });
  return {
    async listen(port, host) {
      const running = await server.listen(port, host);
      service.leases.start();
      service.bulkRetries.start();
      service.maintenance.start();
      return {
        url: running.url,
        port: running.port,
        async close(graceMillis) {
          service.endLongCalls();
          await service.leases.stop();
          await service.bulkRetries.stop();
          await service.maintenance.stop();
          await running.close(graceMillis);
        },
      };
    },
  };
}
