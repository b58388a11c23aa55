// better-sqlite3 compiles a statement on every prepare(), which for the short statements of an
// RPC costs more than running them. The statements run on a held connection (sql-session.ts)
// are a few fixed SQL texts with bound values, so each connection keeps the ones it prepared,
// keyed by their SQL. Statements are only ever run to completion at once (all() or run(), never
// iterate()), so one statement serves every run of the same SQL. (MikroORM's own queries carry
// their values in the SQL text: caching those would only churn.)

/** The part of a better-sqlite3 Database this touches. */
interface PreparingConnection<Statement> {
  prepare(sql: string): Statement;
}

/** Distinct SQL texts kept per connection; the least recently used goes first. */
const CACHED_STATEMENTS = 200;

const caches = new WeakMap<object, Map<string, unknown>>();

/** `sql` prepared on `connection`, once. */
export function preparedStatement<Statement>(connection: PreparingConnection<Statement>, sql: string, capacity = CACHED_STATEMENTS): Statement {
  let cache = caches.get(connection);
  if (cache === undefined) {
    cache = new Map();
    caches.set(connection, cache);
  }
  let statement = cache.get(sql) as Statement | undefined;
  if (statement === undefined) {
    statement = connection.prepare(sql);
    if (cache.size >= capacity) {
      cache.delete(cache.keys().next().value as string);
    }
  } else {
    cache.delete(sql); // refreshed as the most recently used
  }
  cache.set(sql, statement);
  return statement;
}
