import { resolve } from "node:path";
import type { Env, LogFormat, TlsFiles } from "@rgrid/common";
import { EnvReader, readLogFormat, readMetricsToken, readTlsFiles } from "@rgrid/common";
import { MAX_GRANT_TTL_SECONDS } from "./validation";

export interface FileSystemBackendConfig {
  kind: "fs";
  /** Absolute directory holding the objects. */
  dir: string;
  signingKey: string;
  /** Base URL of the signed object URLs; the listening URL when absent. */
  publicUrl?: string;
}

export interface S3BackendConfig {
  kind: "s3";
  endpoint: string;
  /** Endpoint written into presigned URLs; `endpoint` when absent. */
  publicEndpoint?: string;
  accessKey: string;
  secretKey: string;
  bucket: string;
  region: string;
}

export interface StorageConfig {
  host: string;
  port: number;
  /** Absent: plain text (h2c and HTTP/1.1 on one port). */
  tls?: TlsFiles;
  internalToken: string;
  backend: FileSystemBackendConfig | S3BackendConfig;
  grantTtlSeconds: number;
  maxObjectBytes: number;
  maxRequestBytes: number;
  logFormat: LogFormat;
  /** When set, GET /metrics requires it as a bearer token. */
  metricsToken?: string;
}

const GIB = 1024 ** 3;
const MIB = 1024 ** 2;

/**
 * Reads the storage service's configuration, reporting every problem at once (ConfigError).
 * Relative directories are resolved against `cwd`.
 */
export function loadStorageConfig(env: Env, cwd: string): StorageConfig {
  const reader = new EnvReader(env);
  const config: StorageConfig = {
    host: reader.string("RGRID_STORAGE_HOST", "127.0.0.1"),
    port: reader.port("RGRID_STORAGE_PORT", 7401),
    tls: readTlsFiles(reader, cwd),
    internalToken: reader.secret("RGRID_INTERNAL_TOKEN"),
    backend:
      reader.oneOf("RGRID_STORAGE_BACKEND", ["fs", "s3"], "fs") === "s3"
        ? readS3Backend(reader)
        : readFileSystemBackend(reader, cwd),
    grantTtlSeconds: reader.integer("RGRID_GRANT_TTL_SECONDS", 900, 1, MAX_GRANT_TTL_SECONDS),
    maxObjectBytes: reader.integer("RGRID_MAX_OBJECT_BYTES", 10 * GIB, 1, Number.MAX_SAFE_INTEGER),
    maxRequestBytes: reader.integer("RGRID_MAX_REQUEST_BYTES", 4 * MIB, 1024, 1024 * MIB),
    logFormat: readLogFormat(reader),
    metricsToken: readMetricsToken(reader),
  };
  reader.finish();
  return config;
}

function readFileSystemBackend(reader: EnvReader, cwd: string): FileSystemBackendConfig {
  return {
    kind: "fs",
    dir: resolve(cwd, reader.string("RGRID_STORAGE_DIR", ".rgrid/objects")),
    signingKey: reader.secret("RGRID_STORAGE_SIGNING_KEY"),
    publicUrl: optionalUrl(reader, "RGRID_STORAGE_PUBLIC_URL"),
  };
}

function readS3Backend(reader: EnvReader): S3BackendConfig {
  const bucket = reader.string("RGRID_S3_BUCKET", "rgrid");
  if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket)) {
    reader.problem(`RGRID_S3_BUCKET must be a valid S3 bucket name, got "${bucket}"`);
  }
  return {
    kind: "s3",
    endpoint: reader.url("RGRID_S3_ENDPOINT"),
    publicEndpoint: optionalUrl(reader, "RGRID_S3_PUBLIC_ENDPOINT"),
    // MinIO's own minimum lengths for access and secret keys.
    accessKey: reader.secret("RGRID_S3_ACCESS_KEY", 3),
    secretKey: reader.secret("RGRID_S3_SECRET_KEY", 8),
    bucket,
    region: reader.string("RGRID_S3_REGION", "us-east-1"),
  };
}

function optionalUrl(reader: EnvReader, name: string): string | undefined {
  return reader.optionalString(name) === undefined ? undefined : reader.url(name);
}
