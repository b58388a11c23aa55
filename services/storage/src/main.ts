import { ConfigError, boundHeapGrowth, createMetricsRegistry, createProcessLogger, exitOnStopSignal, rpcLinesFor } from "@rgrid/common";
import type { Logger } from "@rgrid/common";
import { openBackend } from "./backend";
import { systemClock } from "./clock";
import { loadStorageConfig } from "./config";
import type { StorageConfig } from "./config";
import { createStorageServer } from "./server";

async function serve(config: StorageConfig, logger: Logger): Promise<void> {
  // Known only once listening; signed URLs default to it.
  const listening: { url?: string } = {};
  const backend = await openBackend(config.backend, {
    clock: systemClock,
    maxObjectBytes: config.maxObjectBytes,
    listeningUrl: () => listening.url,
    logger,
  });
  logger.info("object store ready", {
    backend: config.backend.kind,
    location: config.backend.kind === "fs" ? config.backend.dir : `${config.backend.endpoint}/${config.backend.bucket}`,
  });

  const server = createStorageServer({
    store: backend.store,
    objectHttpHandler: backend.objectHttpHandler,
    internalTokens: [config.internalToken],
    grantTtlSeconds: config.grantTtlSeconds,
    readMaxBytes: config.maxRequestBytes,
    tls: config.tls,
    metrics: { registry: createMetricsRegistry(), token: config.metricsToken },
    logger,
    rpcLines: rpcLinesFor(config.logFormat),
  });
  const running = await server.listen(config.port, config.host);
  listening.url = running.url;
  logger.info("listening", { url: running.url });

  exitOnStopSignal(logger, async () => {
    await running.close();
  });
}

async function main(): Promise<void> {
  // Garbage from a burst of requests is collected soon instead of held as room (see heap.ts).
  boundHeapGrowth();
  const config = loadStorageConfig(process.env, process.cwd());
  const logger = createProcessLogger("storage", config.logFormat);
  await serve(config, logger).catch((error: unknown) => {
    logger.error("storage service failed to start", { error });
    process.exit(1);
  });
}

main().catch((error: unknown) => {
  // Only reading the configuration fails before there is a logger in the configured format;
  // its problems are a list for the person starting the service.
  const shown = error instanceof ConfigError ? error.message : `storage service failed to start: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`;
  process.stderr.write(`${shown}\n`);
  process.exit(1);
});
