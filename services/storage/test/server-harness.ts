import type { Client, Transport } from "@connectrpc/connect";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import type { RunningServer } from "@rgrid/common";
import { bearerAuth, createInternalClient, silentLogger } from "@rgrid/common";
import { StorageService } from "@rgrid/proto";
import { openBackend } from "../src/backend";
import { systemClock } from "../src/clock";
import type { ObjectStore } from "../src/object-store";
import { createStorageServer } from "../src/server";
import { tempDir } from "./helpers";

export const INTERNAL_TOKEN = "internal-token-for-tests-0123456789";

export interface RunningStorage {
  running: RunningServer;
  /** gRPC over HTTP/2, the way execution-service calls. */
  grpc: Client<typeof StorageService>;
  /** The Connect protocol over HTTP/1.1 with the given token (none when undefined). */
  connect(token: string | undefined): Transport;
  stop(): Promise<void>;
}

/** Starts a storage server on a free port over `store`, or over a fresh filesystem backend. */
export async function startStorage(store?: ObjectStore): Promise<RunningStorage> {
  const dir = await tempDir("server");
  const listening: { url?: string } = {};
  const backend =
    store === undefined
      ? await openBackend(
          { kind: "fs", dir: dir.path, signingKey: "signing-key-for-tests-0123456789" },
          { clock: systemClock, maxObjectBytes: 1024 ** 3, listeningUrl: () => listening.url, logger: silentLogger },
        )
      : { store, close: async () => undefined };
  const server = createStorageServer({
    ...backend,
    internalTokens: [INTERNAL_TOKEN],
    grantTtlSeconds: 300,
    readMaxBytes: 4 * 1024 * 1024,
    backendConcurrency: 2,
    logger: silentLogger,
  });
  const running = await server.listen(0, "127.0.0.1");
  listening.url = running.url;
  return {
    running,
    grpc: createInternalClient(StorageService, running.url, INTERNAL_TOKEN),
    connect: (token) =>
      createConnectTransport({
        baseUrl: running.url,
        httpVersion: "1.1",
        interceptors: token === undefined ? [] : [bearerAuth(token)],
      }),
    stop: async () => {
      await running.close(1000);
      await dir.remove();
    },
  };
}

export function storageClient(transport: Transport): Client<typeof StorageService> {
  return createClient(StorageService, transport);
}
