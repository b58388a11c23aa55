import { EntitySchema } from "@mikro-orm/core";

/**
 * A signed-in browser. The cookie carries a random token; only its SHA-256 is stored, so a
 * database leak signs nobody in. Revoked at sign-out, and worthless after `expiresAt`.
 */
export class Session {
  /** "sess_" + 32 hex: names the session in records (who retried), never a credential. */
  id!: string;
  accountId!: string;
  tokenHash!: string;
  /** The API key the session was opened with, or null for a sign-in link. */
  apiKeyId!: string | null;
  createdAt!: Date;
  expiresAt!: Date;
  revokedAt!: Date | null;
}

export const SessionSchema = new EntitySchema<Session>({
  class: Session,
  tableName: "sessions",
  properties: {
    id: { type: "string", primary: true },
    accountId: { type: "string" },
    tokenHash: { type: "string", unique: true },
    apiKeyId: { type: "string", nullable: true },
    createdAt: { type: "datetime" },
    expiresAt: { type: "datetime" },
    revokedAt: { type: "datetime", nullable: true },
  },
});

/** A single-use sign-in link's token (stored hashed): spent by the first CreateSession. */
export class SignInToken {
  tokenHash!: string;
  accountId!: string;
  createdAt!: Date;
  expiresAt!: Date;
  usedAt!: Date | null;
}

export const SignInTokenSchema = new EntitySchema<SignInToken>({
  class: SignInToken,
  tableName: "sign_in_tokens",
  properties: {
    tokenHash: { type: "string", primary: true },
    accountId: { type: "string" },
    createdAt: { type: "datetime" },
    expiresAt: { type: "datetime" },
    usedAt: { type: "datetime", nullable: true },
  },
});
