// What the tests on S3 (s3rver) read straight from the bucket, behind the services' backs.
import { createHash } from "node:crypto";
import type { Client as MinioClient } from "minio";

/** The storage-service settings that put its objects in `bucket` on s3rver at `endpoint`. */
export function s3StorageEnv(endpoint: string, bucket: string): Record<string, string> {
  return {
    RGRID_STORAGE_BACKEND: "s3",
    RGRID_S3_ENDPOINT: endpoint,
    RGRID_S3_ACCESS_KEY: "S3RVER",
    RGRID_S3_SECRET_KEY: "S3RVER-secret",
    RGRID_S3_BUCKET: bucket,
  };
}

/** The SHA-256 of an object's bytes. */
export async function objectDigest(client: MinioClient, bucket: string, key: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of await client.getObject(bucket, key)) {
    hash.update(chunk as Buffer);
  }
  return hash.digest("hex");
}

/** Every key under `prefix`. */
export async function keysUnder(client: MinioClient, bucket: string, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  for await (const item of client.listObjectsV2(bucket, prefix, true)) {
    keys.push((item as { name: string }).name);
  }
  return keys;
}
