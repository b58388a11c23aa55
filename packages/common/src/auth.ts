import { createHash, timingSafeEqual } from "node:crypto";

/** The token of an `Authorization: Bearer <token>` header, or undefined when absent or malformed. */
export function bearerToken(headers: Headers): string | undefined {
  const value = headers.get("authorization");
  if (value === null) {
    return undefined;
  }
  const match = /^Bearer\s+(\S+)\s*$/i.exec(value);
  return match?.[1];
}

/**
 * Compares a presented secret with the configured ones in constant time, so response timing
 * reveals nothing about how much of a guess was right. Hashing first gives equal lengths.
 */
export function matchesAnySecret(presented: string, secrets: readonly string[]): boolean {
  const presentedDigest = sha256(presented);
  let matched = false;
  for (const secret of secrets) {
    matched = timingSafeEqual(presentedDigest, sha256(secret)) || matched;
  }
  return matched;
}

function sha256(value: string): Buffer {
  return createHash("sha256").update(value, "utf8").digest();
}
