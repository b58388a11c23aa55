import { randomBytes } from "node:crypto";
import type { EntityManager } from "@mikro-orm/knex";
import { generateApiKey, hashApiKey } from "./auth";
import { Account, ApiKey } from "./db/entities";

export interface IssuedApiKey {
  /** The key itself: shown once, never stored. */
  key: string;
  apiKeyId: string;
  accountId: string;
}

/** Creates the named account if it does not exist yet and issues it a new API key. */
export async function issueApiKey(em: EntityManager, accountName: string, now: Date): Promise<IssuedApiKey> {
  return em.transactional(async (tx) => {
    let account = await tx.findOne(Account, { name: accountName });
    if (account === null) {
      account = tx.create(Account, { id: `acct_${randomBytes(16).toString("hex")}`, name: accountName, createdAt: now });
      // The key row references the account by a plain column, so the ORM cannot order the
      // inserts itself: the account goes first.
      await tx.flush();
    }
    const key = generateApiKey();
    const apiKey = tx.create(ApiKey, {
      id: `key_${randomBytes(16).toString("hex")}`,
      accountId: account.id,
      keyHash: hashApiKey(key),
      createdAt: now,
    });
    return { key, apiKeyId: apiKey.id, accountId: account.id };
  });
}
