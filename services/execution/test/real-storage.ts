// A real storage-service on a free loopback port, keeping its objects in files under a scratch
// directory: for tests of execution-service's code against the thing itself.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { silentLogger } from "@rgrid/common";
import type { RunningServer } from "@rgrid/common";
import { createStorageServer, openBackend, systemClock } from "@rgrid/storage";

export interface RealStorage {
  server: RunningServer;
  /** The scratch directory: the objects live under it, and tests may put their own files there. */
  work: string;
  /** Stops the server and removes the scratch directory. */
  close(): Promise<void>;
}

export async function startRealStorage(options: { name: string; internalToken: string; backendConcurrency: number }): Promise<RealStorage> {
  const work = await mkdtemp(join(tmpdir(), `rgrid-${options.name}-`));
  const listening: { url?: string } = {};
  const backend = await openBackend(
    { kind: "fs", dir: join(work, "objects"), signingKey: `${options.name}-test-signing-key-0123456789` },
    { clock: systemClock, maxObjectBytes: 1024 ** 2, listeningUrl: () => listening.url, logger: silentLogger },
  );
  const server = await createStorageServer({
    ...backend,
    internalTokens: [options.internalToken],
    grantTtlSeconds: 300,
    readMaxBytes: 4 * 1024 * 1024,
    backendConcurrency: options.backendConcurrency,
    logger: silentLogger,
  }).listen(0, "127.0.0.1");
  listening.url = server.url;
  return {
    server,
    work,
    async close() {
      await server.close(1000);
      await rm(work, { recursive: true, force: true });
    },
  };
}
