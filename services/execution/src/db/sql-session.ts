// The hottest statements (a retry's) run on one of MikroORM's own pooled connections, held from
// its pool for the few statements of one step and handed straight to the driver: better-sqlite3
// synchronously, each statement prepared once (statement-cache.ts); `pg` as named statements,
// which PostgreSQL parses and plans once per connection. Going through knex per statement cost
// more CPU than the statements themselves, and on SQLite's one connection every await inside a
// knex transaction kept all other queries waiting for it.
import { createHash } from "node:crypto";
import type { MetadataStorage } from "@mikro-orm/core";
import type { Knex } from "@mikro-orm/knex";
import type { Database } from "./orm";
import { preparedStatement } from "./statement-cache";

export type Row = Record<string, unknown>;

/** Statements with `?` placeholders and bound values, on one connection. */
export interface SqlSession {
  /** The rows `sql` returns (none for a write). Errors are MikroORM's (UniqueConstraintViolationException, ...). */
  query(sql: string, values: readonly unknown[]): Promise<Row[]>;
  /** The ORM's metadata, for row codecs (row-codec.ts). */
  getMetadata(): MetadataStorage;
}

/** `?, …`: one placeholder per value, for an `in (…)` list. */
export function placeholders(values: readonly unknown[]): string {
  return values.map(() => "?").join(", ");
}

/** Runs `work` holding one pooled connection; nothing else uses it meanwhile, so keep `work` short and local. */
export async function withSqlSession<T>(db: Database, work: (sql: SqlSession) => Promise<T>): Promise<T> {
  const client = db.orm.em.getConnection().getKnex().client as Knex.Client;
  const connection: unknown = await client.acquireConnection();
  try {
    return await work(sessionOn(db, connection));
  } finally {
    await client.releaseConnection(connection);
  }
}

/** Runs `work` in one transaction on one pooled connection: committed when it returns, rolled back when it throws. */
export function inSqlTransaction<T>(db: Database, work: (sql: SqlSession) => Promise<T>): Promise<T> {
  return withSqlSession(db, async (sql) => {
    // IMMEDIATE takes SQLite's write lock at once: a transaction that reads and then writes
    // cannot then fail to upgrade its lock half-way.
    await sql.query(db.dialect === "sqlite" ? "begin immediate" : "begin", []);
    let result: T;
    try {
      result = await work(sql);
    } catch (error) {
      await sql.query("rollback", []).catch(() => undefined);
      throw error;
    }
    await sql.query("commit", []);
    return result;
  });
}

function sessionOn(db: Database, connection: unknown): SqlSession {
  const driver = db.orm.em.getDriver();
  const run = db.dialect === "sqlite" ? sqliteRunner(connection as SqliteConnection) : postgresRunner(connection as PgConnection);
  return {
    getMetadata: () => db.orm.getMetadata(),
    async query(sql, values) {
      try {
        return await run(sql, values);
      } catch (error) {
        // As MikroORM reports them, whatever the driver.
        throw driver.convertException(error as Error);
      }
    },
  };
}

// The few calls made of the drivers, which ship no types of their own.
interface SqliteStatement {
  readonly reader: boolean;
  all(values: readonly unknown[]): Row[];
  run(values: readonly unknown[]): unknown;
}
interface SqliteConnection {
  prepare(sql: string): SqliteStatement;
}
interface PgConnection {
  query(config: { name: string; text: string; values: readonly unknown[] }): Promise<{ rows: Row[] }>;
}

type Runner = (sql: string, values: readonly unknown[]) => Promise<Row[]>;

function sqliteRunner(connection: SqliteConnection): Runner {
  return async (sql, values) => {
    const statement = preparedStatement(connection, sql);
    const bound = values.map(sqliteValue);
    if (statement.reader) {
      return statement.all(bound);
    }
    statement.run(bound);
    return [];
  };
}

/** As knex binds them on SQLite, so rows read the same whichever way they were written: times as milliseconds, booleans as 0 or 1. */
function sqliteValue(value: unknown): unknown {
  if (value instanceof Date) {
    return value.getTime();
  }
  return typeof value === "boolean" ? Number(value) : value;
}

/** A statement's name and `$n` text, by its `?` text: the same SQL is the same prepared statement on every connection. */
const pgStatements = new Map<string, { name: string; text: string }>();

function postgresRunner(connection: PgConnection): Runner {
  return async (sql, values) => {
    let statement = pgStatements.get(sql);
    if (statement === undefined) {
      let position = 0;
      // The statements given here are the code's own and hold no quoted question marks.
      const text = sql.replace(/\?/g, () => `$${++position}`);
      statement = { name: `rgrid_${createHash("sha256").update(text).digest("hex").slice(0, 32)}`, text };
      pgStatements.set(sql, statement);
    }
    // A literal, not a spread of `statement`: a key added after a spread costs V8 a new hidden class per call.
    return (await connection.query({ name: statement.name, text: statement.text, values })).rows;
  };
}
