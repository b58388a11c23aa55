import type { ConnectServer, Logger, MetricsOptions, NodeHandler, RpcLines } from "@rgrid/common";
import { createConnectServer, hideUnknownErrors, validateRequests } from "@rgrid/common";
import { StorageService } from "@rgrid/proto";
import { requireInternalToken } from "./auth";
import { createCopyMetrics, instrumentCopies } from "./copy-metrics";
import { mapStorageErrors } from "./error-map";
import { createStorageHandlers } from "./handlers";
import type { ObjectStore } from "./object-store";
import { storageRoutes } from "./routes";
import { storageCodeRules } from "./validation";

export interface StorageServerDeps {
  store: ObjectStore;
  /** Serves the backend's own object URLs on the same port (filesystem backend); absent for S3. */
  objectHttpHandler?: NodeHandler;
  /** Tokens accepted from callers; more than one while a token is being rotated. */
  internalTokens: readonly string[];
  grantTtlSeconds: number;
  /** Largest RPC request accepted (Connect readMaxBytes). */
  readMaxBytes: number;
  /** Backend calls one request runs at once (see StorageHandlerDeps). */
  backendConcurrency?: number;
  /** With a certificate and key the port speaks TLS; the listening URL is then https. */
  tls?: { cert: string | Buffer; key: string | Buffer };
  /** GET /metrics and the metrics recorded for it; none without. */
  metrics?: MetricsOptions;
  logger: Logger;
  /** Which RPCs get a log line (see ServerOptions.rpcLines); all unless told otherwise. */
  rpcLines?: RpcLines;
}

/** Backend calls one request runs at once unless told otherwise. */
const DEFAULT_BACKEND_CONCURRENCY = 8;

/** The storage service, built but not listening: the caller picks host and port. */
export function createStorageServer(deps: StorageServerDeps): ConnectServer {
  const handlers = createStorageHandlers({
    store: deps.metrics ? instrumentCopies(deps.store, createCopyMetrics(deps.metrics.registry)) : deps.store,
    grantTtlSeconds: deps.grantTtlSeconds,
    backendConcurrency: deps.backendConcurrency ?? DEFAULT_BACKEND_CONCURRENCY,
    logger: deps.logger,
  });
  return createConnectServer({
    routes: storageRoutes(handlers),
    fallback: deps.objectHttpHandler,
    // Outermost first: unknown errors are hidden after known ones have been mapped, and
    // authentication, then validation, run before any handler.
    interceptors: [
      hideUnknownErrors(deps.logger),
      mapStorageErrors(),
      requireInternalToken(StorageService.typeName, deps.internalTokens),
      validateRequests(storageCodeRules),
    ],
    readMaxBytes: deps.readMaxBytes,
    tls: deps.tls,
    metrics: deps.metrics,
    logger: deps.logger,
    rpcLines: deps.rpcLines,
  });
}
