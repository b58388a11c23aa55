// Statements with bound values inside an EntityManager's transaction, for rows that must commit
// with the ORM's own changes (an audit entry beside a cancel or a sign-in). The hot paths hold a
// connection of their own instead (sql-session.ts). Rows are read and written with row-codec.ts.
import type { EntityManager, Knex } from "@mikro-orm/knex";
import type { SqlSession } from "./sql-session";

/** Runs `sql` (with `?` placeholders) with bound values, in the transaction of `em` when it has one; the rows it returns. */
export async function runRaw(em: EntityManager, sql: string, bindings: readonly unknown[]): Promise<Array<Record<string, unknown>>> {
  const query = em.getKnex().raw(sql, bindings as Knex.RawBinding[]);
  const transaction = em.getTransactionContext();
  if (transaction !== undefined) {
    query.transacting(transaction);
  }
  try {
    const result = (await query) as Array<Record<string, unknown>> | { rows?: Array<Record<string, unknown>> };
    // better-sqlite3 answers with the rows, pg with a result holding them.
    return Array.isArray(result) ? result : (result.rows ?? []);
  } catch (error) {
    // As MikroORM reports them (UniqueConstraintViolationException, ...), whatever the driver.
    throw em.getDriver().convertException(error as Error);
  }
}

/** The statements of `em` (its transaction, when it has one) as a SqlSession, for code that also runs on a held connection (sql-session.ts). */
export function sqlSessionOf(em: EntityManager): SqlSession {
  return {
    getMetadata: () => em.getMetadata(),
    query: (sql, values) => runRaw(em, sql, values),
  };
}
