import { randomBytes } from "node:crypto";

export const EXECUTION_ID_PATTERN = /^exec_[0-9a-f]{32}$/;

/** "exec_" and 32 lowercase hex characters from a cryptographic random source. */
export function newExecutionId(): string {
  return `exec_${randomBytes(16).toString("hex")}`;
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
  return `batch_${randomBytes(16).toString("hex")}`;
}

export function isBatchId(value: string): boolean {
  return BATCH_ID_PATTERN.test(value);
}
