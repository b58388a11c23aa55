// Transactions through MikroORM that leave its unit of work alone. `em.transactional()` and
// `em.flush()` run their work inside an AsyncLocalStorage, and on Node 20 the first such run turns
// on promise hooks for the whole process, for good: from then on every promise any request makes
// calls a JavaScript hook (about 50 ns here, beside 30 ns for the promise itself). So the service
// writes with native statements (`insert`, `nativeUpdate`, raw SQL), inside transactions begun
// here; the lint rule in eslint.config.mjs keeps flushes out, and test/promise-hooks.test.ts
// fails if a request runs an AsyncLocalStorage.
import type { EntityManager } from "@mikro-orm/knex";

/**
 * Runs `work` on a fork of `em` inside one transaction: committed when `work` returns, rolled
 * back when it throws. Nothing is flushed; `work` writes with native statements, which run in
 * the fork's transaction.
 */
export async function inOrmTransaction<T>(em: EntityManager, work: (tx: EntityManager) => Promise<T>): Promise<T> {
  const tx = em.fork();
  const connection = tx.getConnection("write");
  const transaction = await connection.begin();
  tx.setTransactionContext(transaction);
  try {
    const result = await work(tx);
    await connection.commit(transaction);
    return result;
  } catch (error) {
    // The error that ended the work matters more than one from the rollback.
    await connection.rollback(transaction).catch(() => undefined);
    throw error;
  } finally {
    tx.resetTransactionContext();
  }
}
