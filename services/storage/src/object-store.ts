import type { Grant } from "@rgrid/common";

/** A grant plus the moment it stops being honoured. */
export interface ObjectGrant extends Grant {
  expiresAt: Date;
}

export interface StoredObject {
  key: string;
  sizeBytes: number;
}

/** A copy as the backend made it: its source, and its target (undefined if it is not there). */
export interface CopiedObject {
  source: StoredObject;
  target: StoredObject | undefined;
}

/** An execution that has objects, and when the newest of them was stored under its key. */
export interface StoredExecutionSummary {
  executionId: string;
  newestObjectAt: Date;
}

/**
 * Where object bytes live. Users' files never pass through this interface: clients move them
 * with grants (presigned or signed URLs), and copies happen inside the backend. Only the small
 * records execution-service keeps itself (its logs) are written through `put`.
 */
export interface ObjectStore {
  /**
   * A URL the holder may PUT the object's bytes to until `ttlSeconds` have passed. With
   * `expectedSha256`, a backend that sees the bytes arrive refuses any others.
   */
  uploadGrant(key: string, ttlSeconds: number, expectedSha256?: string): Promise<ObjectGrant>;
  /** A URL the holder may GET the object's bytes from until `ttlSeconds` have passed. */
  downloadGrant(key: string, ttlSeconds: number): Promise<ObjectGrant>;
  /** The object's size, or undefined when there is no such object. */
  stat(key: string): Promise<StoredObject | undefined>;
  /** Every object whose key starts with `prefix`. */
  list(prefix: string): Promise<StoredObject[]>;
  /**
   * Copies inside the backend, never through this process's memory, and answers with the source
   * as it was copied and the target as the backend has it afterwards (read back, not taken from
   * the copy's reply: some S3 servers reply without an ETag), undefined if it is not there.
   * Throws ObjectNotFoundError when the source does not exist. A failed copy may leave what it
   * made on the way (a file system's directories): the caller deletes the target, as it does
   * after any failed copy.
   */
  copy(sourceKey: string, targetKey: string): Promise<CopiedObject>;
  /**
   * Up to `limit` executions that have objects, in id order, starting after `afterExecutionId`
   * ("" for the first). Memory grows with `limit`, never with the number of stored executions.
   * A copy counts as stored when it was copied, not when its source was written, so objects
   * copied for a retry that is not yet recorded look young.
   */
  listExecutions(afterExecutionId: string, limit: number): Promise<StoredExecutionSummary[]>;
  /**
   * Puts the object at `sourceKey` in place at `targetKey` (replacing what is there) and
   * removes the source, inside the backend. Throws ObjectNotFoundError when the source does
   * not exist.
   */
  move(sourceKey: string, targetKey: string): Promise<void>;
  /** Removes the objects; keys that do not exist are ignored. */
  delete(keys: readonly string[]): Promise<void>;
  /** Writes `content` as the object, replacing what is there: readers see the old or the new, never a part. */
  put(key: string, content: Uint8Array): Promise<void>;
}

/** The object a store operation needed does not exist. */
export class ObjectNotFoundError extends Error {
  constructor(readonly key: string) {
    super(`object ${key} does not exist`);
    this.name = "ObjectNotFoundError";
  }
}

/** The backend could not be reached or answered with a server-side failure; retrying may help. */
export class StorageUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "StorageUnavailableError";
  }
}

/**
 * The key cannot be stored because it collides with another object's path, e.g. "a" exists and
 * "a/b" is written on a file system, where "a" cannot be both a file and a directory.
 */
export class ObjectConflictError extends Error {
  constructor(readonly key: string) {
    super(`object ${key} collides with another object's path`);
    this.name = "ObjectConflictError";
  }
}
