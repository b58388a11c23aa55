import { chmod, mkdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { Client } from "minio";
import type { Logger, NodeHandler } from "@rgrid/common";
import type { Clock } from "./clock";
import type { FileSystemBackendConfig, S3BackendConfig } from "./config";
import { PRIVATE_DIRECTORY, createFileSystemStore } from "./fs-store";
import type { ObjectStore } from "./object-store";
import { createS3Store } from "./s3-store";
import { createSignedUrlHandler } from "./signed-url-handler";
import { createUrlSigner } from "./url-signing";

export interface Backend {
  store: ObjectStore;
  /** Serves the backend's object URLs on the service's port, when it has its own. */
  objectHttpHandler?: NodeHandler;
}

export interface BackendContext {
  clock: Clock;
  maxObjectBytes: number;
  /** The URL the service listens on, once it does; the default base of signed URLs. */
  listeningUrl: () => string | undefined;
  logger: Logger;
}

/** The configured object store, ready for use (the S3 bucket exists once this resolves). */
export async function openBackend(config: FileSystemBackendConfig | S3BackendConfig, context: BackendContext): Promise<Backend> {
  return config.kind === "s3" ? openS3Backend(config, context) : openFileSystemBackend(config, context);
}

async function openFileSystemBackend(config: FileSystemBackendConfig, context: BackendContext): Promise<Backend> {
  // Created up front so that a directory the service cannot write fails the start, not an upload.
  await mkdir(config.dir, { recursive: true, mode: PRIVATE_DIRECTORY });
  await closeToOthers(config.dir, context.logger);
  const signer = createUrlSigner(config.signingKey);
  // Empty directories that earlier versions made ahead of copies, removed as they did at each start:
  // copies make their own directories now.
  await rm(join(config.dir, ".spare-directories"), { recursive: true, force: true });
  const store = createFileSystemStore({
    root: config.dir,
    signer,
    clock: context.clock,
    publicBaseUrl: () => {
      const base = config.publicUrl ?? context.listeningUrl();
      if (base === undefined) {
        throw new Error("signed URLs requested before the service is listening");
      }
      return base;
    },
  });
  const objectHttpHandler = createSignedUrlHandler({
    store,
    signer,
    clock: context.clock,
    maxObjectBytes: context.maxObjectBytes,
    logger: context.logger.child("objects"),
  });
  return { store, objectHttpHandler };
}

async function openS3Backend(config: S3BackendConfig, context: BackendContext): Promise<Backend> {
  const client = minioClient(config.endpoint, config);
  const store = createS3Store({
    client,
    presignClient: config.publicEndpoint === undefined ? client : minioClient(config.publicEndpoint, config),
    bucket: config.bucket,
    clock: context.clock,
  });
  await store.ensureBucket(config.region);
  return { store };
}

/** A minio client for an endpoint URL such as http://minio:9000. */
export function minioClient(endpoint: string, credentials: { accessKey: string; secretKey: string; region: string }): Client {
  const url = new URL(endpoint);
  const useSSL = url.protocol === "https:";
  return new Client({
    endPoint: url.hostname,
    port: url.port === "" ? (useSSL ? 443 : 80) : Number(url.port),
    useSSL,
    accessKey: credentials.accessKey,
    secretKey: credentials.secretKey,
    // A fixed region keeps presigning local: without it the client asks the server first.
    region: credentials.region,
    // MinIO and most S3-compatible servers address buckets by path, not by host name.
    pathStyle: true,
  });
}

/**
 * A directory made by an earlier version, or by hand, is closed to other users too. One this
 * user may not chmod (a mounted volume owned by another) is left as it is, and said so.
 */
async function closeToOthers(dir: string, logger: Logger): Promise<void> {
  try {
    await chmod(dir, PRIVATE_DIRECTORY);
  } catch (error) {
    logger.warn("could not make the object directory private (mode 0700); other users may read objects", { dir, error });
  }
}
