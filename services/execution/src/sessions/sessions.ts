import { randomHex } from "@rgrid/common";
import type { EntityManager } from "@mikro-orm/knex";
import { Session, SignInToken } from "../db/entities";
import { hashSecret, newSecret } from "../secrets";

/** Sessions last a week unless configured otherwise; sign-in links a day, and only once. */
export const DEFAULT_SESSION_TTL_SECONDS = 7 * 24 * 3600;
export const SIGN_IN_TOKEN_TTL_SECONDS = 24 * 3600;

export interface OpenedSession {
  /** The cookie's value: shown to the browser once, stored only as a hash. */
  token: string;
  session: Session;
}

/** Records a new session for the account; expired sessions of anyone are pruned on the way. */
export async function openSession(
  em: EntityManager,
  account: { accountId: string; apiKeyId: string | null },
  now: Date,
  ttlSeconds: number,
): Promise<OpenedSession> {
  await em.nativeDelete(Session, { expiresAt: { $lt: now } });
  const token = newSecret();
  const session: Session = {
    id: `sess_${randomHex(16)}`,
    accountId: account.accountId,
    tokenHash: hashSecret(token),
    apiKeyId: account.apiKeyId,
    createdAt: now,
    expiresAt: new Date(now.getTime() + ttlSeconds * 1000),
    revokedAt: null,
  };
  await em.insert(Session, session);
  return { token, session };
}

/** The live session a cookie names: not revoked and not expired. */
export async function findLiveSession(em: EntityManager, token: string, now: Date): Promise<Session | undefined> {
  const session = await em.findOne(Session, { tokenHash: hashSecret(token), revokedAt: null, expiresAt: { $gt: now } });
  return session ?? undefined;
}

export async function revokeSession(em: EntityManager, sessionId: string, now: Date): Promise<void> {
  await em.nativeUpdate(Session, { id: sessionId, revokedAt: null }, { revokedAt: now });
}

/** A new single-use sign-in token for the account; the link that carries it is the caller's to build. */
export async function issueSignInToken(em: EntityManager, accountId: string, now: Date): Promise<string> {
  const token = newSecret();
  await em.insert(SignInToken, {
    tokenHash: hashSecret(token),
    accountId,
    createdAt: now,
    expiresAt: new Date(now.getTime() + SIGN_IN_TOKEN_TTL_SECONDS * 1000),
    usedAt: null,
  });
  return token;
}

/**
 * Spends a sign-in token: the conditional update lets exactly one of any number of concurrent
 * uses through. Returns the account it signs in, or undefined when it is unknown, used or expired.
 */
export async function spendSignInToken(em: EntityManager, token: string, now: Date): Promise<string | undefined> {
  const tokenHash = hashSecret(token);
  const spent = await em.nativeUpdate(SignInToken, { tokenHash, usedAt: null, expiresAt: { $gt: now } }, { usedAt: now });
  if (spent !== 1) {
    return undefined;
  }
  const row = await em.findOneOrFail(SignInToken, { tokenHash }, { fields: ["accountId"] });
  return row.accountId;
}
