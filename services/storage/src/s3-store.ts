import { setTimeout as sleep } from "node:timers/promises";
import { sendWithResends } from "@rgrid/common";
import type { BucketItem, Client } from "minio";
import { CopyDestinationOptions, CopySourceOptions, S3Error } from "minio";
import type { Clock } from "./clock";
import { EXECUTIONS_PREFIX, executionIdOfKey, keyAfterExecution } from "./keys";
import type { ObjectGrant, ObjectStore, StoredExecutionSummary, StoredObject } from "./object-store";
import { ObjectNotFoundError, StorageUnavailableError } from "./object-store";

export interface S3StoreOptions {
  /** Talks to the object store from this service. */
  client: Client;
  /**
   * Signs the URLs handed to clients; configured with the endpoint clients can reach, which may
   * differ from the one this service uses (e.g. a public host in front of an internal MinIO).
   * Its `region` must be set, or presigning would ask the server for the bucket's region.
   */
  presignClient: Client;
  bucket: string;
  clock: Clock;
  /** Attempts for a batch delete, which some S3 implementations fail transiently. */
  deleteAttempts?: number;
}

/** The S3 backend (MinIO in production) through the minio client. */
export interface S3Store extends ObjectStore {
  /** Creates the bucket when it does not exist yet. */
  ensureBucket(region: string): Promise<void>;
}

// S3 caps one DeleteObjects request at 1000 keys.
const DELETE_BATCH = 1000;

export function createS3Store(options: S3StoreOptions): S3Store {
  const { client, presignClient, bucket, clock } = options;
  const deleteAttempts = options.deleteAttempts ?? 4;

  const expiry = (ttlSeconds: number): Date => new Date(clock.now().getTime() + ttlSeconds * 1000);

  const stat = async (key: string): Promise<StoredObject | undefined> => {
    try {
      const info = await client.statObject(bucket, key);
      return { key, sizeBytes: info.size };
    } catch (error) {
      if (isNotFound(error)) {
        return undefined;
      }
      throw translate(error, `stat ${key}`);
    }
  };

  const deleteOnce = async (keys: string[]): Promise<void> => {
    const results = await client.removeObjects(bucket, keys);
    const failed = results.filter((result) => result?.Error !== undefined);
    if (failed.length > 0) {
      throw new StorageUnavailableError(`could not delete ${failed.length} object(s): ${failed[0]?.Error?.Code ?? "unknown error"}`);
    }
  };

  const deleteBatch = async (keys: string[]): Promise<void> => {
    try {
      await sendWithResends(() => deleteOnce(keys), {
        attempts: deleteAttempts,
        // Deleting is idempotent, so a transient failure is simply tried again.
        shouldResend: () => true,
        delayMs: (attempt) => 100 * 2 ** (attempt - 1),
        sleep,
      });
    } catch (error) {
      throw translate(error, `delete ${keys.length} object(s)`);
    }
  };

  return {
    async ensureBucket(region) {
      try {
        if (!(await client.bucketExists(bucket))) {
          await client.makeBucket(bucket, region);
        }
      } catch (error) {
        // Another instance may have created it between the check and the create.
        if (error instanceof S3Error && (error.code === "BucketAlreadyOwnedByYou" || error.code === "BucketAlreadyExists")) {
          return;
        }
        throw translate(error, `ensure bucket ${bucket}`);
      }
    },

    // A presigned PUT cannot bind the bytes' digest (only the method, key and expiry are
    // signed), so `expectedSha256` is not enforced here; the object is still immutable once
    // committed, because the grant's key is the staging key.
    async uploadGrant(key, ttlSeconds): Promise<ObjectGrant> {
      const url = await presignClient.presignedPutObject(bucket, key, ttlSeconds);
      return { method: "PUT", url, headers: {}, expiresAt: expiry(ttlSeconds) };
    },

    async downloadGrant(key, ttlSeconds): Promise<ObjectGrant> {
      const url = await presignClient.presignedGetObject(bucket, key, ttlSeconds);
      return { method: "GET", url, headers: {}, expiresAt: expiry(ttlSeconds) };
    },

    stat,

    async list(prefix) {
      const found: StoredObject[] = [];
      try {
        const stream = client.listObjectsV2(bucket, prefix, true);
        for await (const item of stream as AsyncIterable<BucketItem>) {
          if (item.name !== undefined) {
            found.push({ key: item.name, sizeBytes: item.size });
          }
        }
      } catch (error) {
        throw translate(error, `list ${prefix}`);
      }
      return found;
    },

    async listExecutions(afterExecutionId, limit) {
      const found: StoredExecutionSummary[] = [];
      const startAfter = afterExecutionId === "" ? "" : keyAfterExecution(afterExecutionId);
      // Keys arrive in order, so an execution's objects are adjacent; the listing is read one
      // S3 page at a time and abandoned (leaving the loop destroys the stream) once the
      // execution after the last wanted one appears.
      const stream = client.listObjectsV2(bucket, EXECUTIONS_PREFIX, true, startAfter);
      try {
        for await (const item of stream as AsyncIterable<BucketItem>) {
          const executionId = item.name === undefined ? undefined : executionIdOfKey(item.name);
          if (executionId === undefined || item.lastModified === undefined) {
            continue;
          }
          const current = found.at(-1);
          if (current?.executionId === executionId) {
            if (item.lastModified > current.newestObjectAt) {
              current.newestObjectAt = item.lastModified;
            }
          } else if (found.length === limit) {
            break;
          } else {
            found.push({ executionId, newestObjectAt: item.lastModified });
          }
        }
      } catch (error) {
        throw translate(error, `list executions after ${afterExecutionId || "the start"}`);
      }
      return found;
    },

    async copy(sourceKey, targetKey) {
      const copying = async () => {
        try {
          // Server-side copy; the reply's ETag is not relied on (some S3 servers leave it empty):
          // the target is stat'ed instead.
          await client.copyObject(
            new CopySourceOptions({ Bucket: bucket, Object: sourceKey }),
            new CopyDestinationOptions({ Bucket: bucket, Object: targetKey }),
          );
        } catch (error) {
          throw isNotFound(error) ? new ObjectNotFoundError(sourceKey) : translate(error, `copy ${sourceKey}`);
        }
        return stat(targetKey);
      };
      // The source's size is read while the copy is made, not before: one round trip less. Both
      // are awaited whatever happens to either, so that no copy outlives its caller's rollback.
      const [source, target] = await Promise.allSettled([stat(sourceKey), copying()]);
      if (target.status === "rejected") {
        throw target.reason;
      }
      if (source.status === "rejected") {
        throw source.reason;
      }
      if (source.value === undefined) {
        throw new ObjectNotFoundError(sourceKey);
      }
      return { source: source.value, target: target.value };
    },

    async move(sourceKey, targetKey) {
      // S3 has no rename: a server-side copy, checked by size, then the source goes.
      const { source, target } = await this.copy(sourceKey, targetKey);
      if (target?.sizeBytes !== source.sizeBytes) {
        throw new StorageUnavailableError(`moving ${sourceKey} left ${targetKey} with ${target?.sizeBytes ?? "no"} bytes, expected ${source.sizeBytes}`);
      }
      await this.delete([sourceKey]);
    },

    async delete(keys) {
      for (let start = 0; start < keys.length; start += DELETE_BATCH) {
        await deleteBatch(keys.slice(start, start + DELETE_BATCH));
      }
    },

    async put(key, content) {
      try {
        // One PUT: S3 makes the object visible whole or not at all.
        await client.putObject(bucket, key, Buffer.from(content.buffer, content.byteOffset, content.byteLength), content.byteLength);
      } catch (error) {
        throw translate(error, `put ${key}`);
      }
    },
  };
}

function isNotFound(error: unknown): boolean {
  return error instanceof S3Error && (error.code === "NoSuchKey" || error.code === "NotFound");
}

// Failures that say the backend is down or overloaded rather than that the request was wrong.
const UNREACHABLE_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EPIPE",
  "InternalError",
  "ServiceUnavailable",
  "SlowDown",
  "RequestTimeout",
]);

/** Store-level errors for the failures callers can act on; anything else passes unchanged. */
function translate(error: unknown, operation: string): unknown {
  if (error instanceof StorageUnavailableError) {
    return error;
  }
  const code = typeof error === "object" && error !== null && "code" in error ? String(error.code) : undefined;
  if (code !== undefined && UNREACHABLE_CODES.has(code)) {
    return new StorageUnavailableError(`object storage is unavailable (${operation}: ${code})`, { cause: error });
  }
  return error;
}

