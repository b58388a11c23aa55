import { randomBytes } from "node:crypto";

export const EXECUTION_ID_PATTERN = /^exec_[0-9a-f]{32}$/;

/** Random bytes drawn ahead for randomHex: one call into the random source serves 256 ids of 16 bytes. */
const POOL_BYTES = 4096;
let pool = Buffer.alloc(0);
let poolOffset = 0;

/**
 * `bytes` bytes from a cryptographic random source, as lowercase hex. They come from a pool
 * refilled POOL_BYTES at a time, as Node's own randomUUID does: a call into the source of its own
 * costs about 10 µs, and the ids of every retry and audit entry pay it. No byte is used twice.
 */
export function randomHex(bytes: number): string {
  if (bytes > POOL_BYTES) {
    return randomBytes(bytes).toString("hex");
  }
  if (poolOffset + bytes > pool.length) {
    pool = randomBytes(POOL_BYTES);
    poolOffset = 0;
  }
  const hex = pool.toString("hex", poolOffset, poolOffset + bytes);
  poolOffset += bytes;
  return hex;
}

/** "exec_" and 32 lowercase hex characters from a cryptographic random source. */
export function newExecutionId(): string {
  return `exec_${randomHex(16)}`;
}

export function isExecutionId(value: string): boolean {
  return EXECUTION_ID_PATTERN.test(value);
}

/** A random token for secrets and idempotency keys, URL-safe. */
export function randomToken(bytes = 32): string {
  return randomBytes(bytes).toString("base64url");
}

export const BATCH_ID_PATTERN = /^batch_[0-9a-f]{32}$/;

/** "batch_" and 32 lowercase hex characters; made by the client that submits the batch. */
export function newBatchId(): string {
  return `batch_${randomHex(16)}`;
}

export function isBatchId(value: string): boolean {
  return BATCH_ID_PATTERN.test(value);
}
