import { createHash, randomBytes } from "node:crypto";

// Credentials this service hands out (API keys, session cookies, sign-in tokens): made from 32
// random bytes, and stored only as their SHA-256, so a database leak yields none of them.

export function newSecret(): string {
  return randomBytes(32).toString("base64url");
}

export function hashSecret(secret: string): string {
  return createHash("sha256").update(secret, "utf8").digest("hex");
}
