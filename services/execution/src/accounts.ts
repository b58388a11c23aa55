import { randomHex } from "@rgrid/common";
import type { EntityManager } from "@mikro-orm/knex";
import { generateApiKey, hashApiKey } from "./auth";
import { Account, ApiKey } from "./db/entities";
import { inOrmTransaction } from "./db/orm-transaction";

export interface IssuedApiKey {
  /** The key itself: shown once, never stored. */
  key: string;
  apiKeyId: string;
  accountId: string;
}

/** Creates the named account if it does not exist yet and issues it a new API key. */
export async function issueApiKey(em: EntityManager, accountName: string, now: Date): Promise<IssuedApiKey> {
  return inOrmTransaction(em, async (tx) => {
    let account = await tx.findOne(Account, { name: accountName });
    if (account === null) {
      account = { id: `acct_${randomHex(16)}`, name: accountName, createdAt: now };
      await tx.insert(Account, account);
    }
    const key = generateApiKey();
    const apiKeyId = `key_${randomHex(16)}`;
    await tx.insert(ApiKey, { id: apiKeyId, accountId: account.id, keyHash: hashApiKey(key), createdAt: now });
    return { key, apiKeyId, accountId: account.id };
  });
}
