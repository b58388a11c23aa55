// MikroORM executes every query with its values written into the SQL text, so to the database
// each is a statement never seen before: parsed and planned again, and on SQLite prepared again.
// The hot paths (a retry's reads and inserts) run the same query builders through knex with the
// values bound instead: one SQL text per shape of query, which the driver's statement cache
// (statement-cache.ts) reuses. Values are converted by MikroORM as for any query.
import type { EntityDictionary, EntityName } from "@mikro-orm/core";
import type { EntityManager, QueryBuilder } from "@mikro-orm/knex";

/** Runs the builder's query with bound values, in the transaction of `em` when it has one. */
export async function runBound<T>(em: EntityManager, query: Pick<QueryBuilder<object>, "getKnexQuery">): Promise<T> {
  const knexQuery = query.getKnexQuery();
  const transaction = em.getTransactionContext();
  if (transaction !== undefined) {
    knexQuery.transacting(transaction);
  }
  try {
    return (await knexQuery) as T;
  } catch (error) {
    // As MikroORM reports them (UniqueConstraintViolationException, ...), whatever the driver.
    throw em.getDriver().convertException(error as Error);
  }
}

/**
 * The entities the builder's select finds, read with bound values. They are mapped in a fork of
 * their own, so `em`'s unit of work does not track them: nothing read this way is ever written
 * back by a flush.
 */
export async function findBound<T extends object>(em: EntityManager, entity: EntityName<T>, query: QueryBuilder<T>): Promise<T[]> {
  const rows = await runBound<Array<EntityDictionary<T>>>(em, query);
  const mapping = em.fork({ clear: true });
  return rows.map((row) => mapping.map(entity, row));
}
