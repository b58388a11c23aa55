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
  for (const secretDigest of digestsOf(secrets)) {
    matched = timingSafeEqual(presentedDigest, secretDigest) || matched;
  }
  return matched;
}

/**
 * Callers check every request against the same configured array, so its digests are computed
 * once per array rather than once per request. Keyed by identity: the array is read-only config.
 */
const digestsBySecrets = new WeakMap<readonly string[], readonly Buffer[]>();

function digestsOf(secrets: readonly string[]): readonly Buffer[] {
  let digests = digestsBySecrets.get(secrets);
  if (digests === undefined) {
    digests = secrets.map(sha256);
    digestsBySecrets.set(secrets, digests);
  }
  return digests;
}

function sha256(value: string): Buffer {
  return createHash("sha256").update(value, "utf8").digest();
}
