// better-sqlite3 compiles a statement on every prepare(), and knex prepares each query afresh:
// for the short queries of an RPC that compiling costs more than running them. The connection's
// prepare is given a cache of the statements it made, keyed by their SQL. Statements are only
// ever run to completion at once (knex calls all() or run(), never iterate()), so one statement
// serves every query with the same SQL.

/** The part of a better-sqlite3 Database this touches. */
interface PreparingConnection {
  prepare(sql: string): unknown;
}

/** Distinct SQL texts kept; the least recently used goes first. */
const CACHED_STATEMENTS = 500;

export function cachePreparedStatements(connection: PreparingConnection, capacity = CACHED_STATEMENTS): void {
  const prepare = connection.prepare.bind(connection);
  const cache = new Map<string, unknown>();
  connection.prepare = (sql: string) => {
    let statement = cache.get(sql);
    if (statement === undefined) {
      statement = prepare(sql);
      if (cache.size >= capacity) {
        cache.delete(cache.keys().next().value as string);
      }
    } else {
      // Refreshed as the most recently used.
      cache.delete(sql);
    }
    cache.set(sql, statement);
    return statement;
  };
}
