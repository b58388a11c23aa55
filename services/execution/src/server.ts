import type { ConnectRouter, Interceptor } from "@connectrpc/connect";
import { createConnectServer, hideUnknownErrors } from "@rgrid/common";
import type { ConnectServer, Logger } from "@rgrid/common";
import { authenticate } from "./auth";
import type { Database } from "./db/orm";
import { mapKnownErrors } from "./errors";
import { WorkNotifier } from "./executions/work-notifier";
import { createRoutes } from "./routes";
import { createStorageGateway } from "./storage";
import type { StorageClient } from "./storage";

export interface ExecutionServerDeps {
  db: Database;
  storage: StorageClient;
  logger: Logger;
  runnerTokens: readonly string[];
  defaultTimeoutSeconds: number;
  maxTimeoutSeconds: number;
  readMaxBytes: number;
  /** With a certificate and key the port speaks TLS; the listening URL is then https. */
  tls?: { cert: string | Buffer; key: string | Buffer };
  clock?: () => Date;
  /** How often a waiting claim re-checks for work queued by other replicas. */
  claimRecheckMillis?: number;
}

export interface ExecutionService {
  routes: (router: ConnectRouter) => void;
  /** Outermost first: unknown errors hidden, known ones mapped, then authentication. */
  interceptors: Interceptor[];
}

/** Routes and interceptors, for serving on a port or through an in-memory router transport. */
export function createExecutionService(deps: ExecutionServerDeps): ExecutionService {
  return {
    routes: createRoutes({
      db: deps.db,
      storage: createStorageGateway(deps.storage),
      notifier: new WorkNotifier(),
      logActivity: new WorkNotifier(),
      clock: deps.clock ?? (() => new Date()),
      logger: deps.logger,
      maxTimeoutSeconds: deps.maxTimeoutSeconds,
      defaultTimeoutSeconds: deps.defaultTimeoutSeconds,
      recheckMillis: deps.claimRecheckMillis,
    }),
    interceptors: [
      hideUnknownErrors(deps.logger),
      mapKnownErrors(),
      authenticate({ db: deps.db, runnerTokens: deps.runnerTokens }),
    ],
  };
}

/** The server, built apart from listening so tests and main.ts choose the address. */
export function createExecutionServer(deps: ExecutionServerDeps): ConnectServer {
  const service = createExecutionService(deps);
  return createConnectServer({
    routes: service.routes,
    interceptors: service.interceptors,
    readMaxBytes: deps.readMaxBytes,
    tls: deps.tls,
    logger: deps.logger,
  });
}
