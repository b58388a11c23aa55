import { ConfigError, boundHeapGrowth, createLogger, exitOnStopSignal } from "@rgrid/common";
import { openBackend } from "./backend";
import { systemClock } from "./clock";
import { loadStorageConfig } from "./config";
import { createStorageServer } from "./server";

const logger = createLogger("storage");

async function main(): Promise<void> {
  // Garbage from a burst of requests is collected soon instead of held as room (see heap.ts).
  boundHeapGrowth();
  const config = loadStorageConfig(process.env, process.cwd());
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
    logger,
  });
  const running = await server.listen(config.port, config.host);
  listening.url = running.url;
  logger.info("listening", { url: running.url });

  exitOnStopSignal(logger, () => running.close());
}

main().catch((error: unknown) => {
  if (error instanceof ConfigError) {
    logger.error(error.message);
  } else {
    logger.error("storage service failed to start", { error });
  }
  process.exit(1);
});
