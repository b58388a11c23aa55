import { chmodSync, closeSync, existsSync, mkdirSync, openSync, statSync } from "node:fs";
import { dirname } from "node:path";
import { MikroORM } from "@mikro-orm/core";
import type { Options } from "@mikro-orm/core";
import { BetterSqliteDriver } from "@mikro-orm/better-sqlite";
import type { AbstractSqlDriver, EntityManager } from "@mikro-orm/knex";
import { Migrator } from "@mikro-orm/migrations";
import { PostgreSqlDriver } from "@mikro-orm/postgresql";
import type { DatabaseTarget } from "./database-url";
import { ENTITY_SCHEMAS } from "./entities";
import { MIGRATIONS } from "./migrations";

export type Dialect = DatabaseTarget["dialect"];

/** The ORM plus what callers need to know about it; request code only ever sees forks. */
export interface Database {
  readonly dialect: Dialect;
  /** A fresh EntityManager for one RPC or one job; never share it between requests. */
  fork(): EntityManager;
  /** Applies pending migrations; returns the names applied. */
  migrate(): Promise<string[]>;
  close(): Promise<void>;
  /** The underlying ORM, for maintenance tasks and tests. */
  readonly orm: MikroORM<AbstractSqlDriver>;
}

export async function openDatabase(target: DatabaseTarget): Promise<Database> {
  const common: Options = {
    entities: ENTITY_SCHEMAS,
    extensions: [Migrator],
    // Request code must use a fork; touching the global EntityManager is a bug we want loud.
    allowGlobalContext: false,
    discovery: { disableDynamicFileAccess: true },
    migrations: {
      migrationsList: MIGRATIONS,
      transactional: true,
      allOrNothing: true,
      snapshot: false,
      silent: true,
      tableName: "mikro_orm_migrations",
    },
  };
  const orm =
    target.dialect === "sqlite"
      ? await MikroORM.init({
          ...common,
          driver: BetterSqliteDriver,
          dbName: prepareSqliteFile(target.file),
          // One connection: an in-memory database exists per connection, and a single writer
          // is how SQLite serialises transactions anyway.
          pool: { min: 1, max: 1 },
        })
      : await MikroORM.init({ ...common, driver: PostgreSqlDriver, clientUrl: target.url });
  const sqlOrm = orm as unknown as MikroORM<AbstractSqlDriver>;
  if (target.dialect === "sqlite" && target.file !== ":memory:") {
    await tuneSqlite(sqlOrm);
  }

  return {
    dialect: target.dialect,
    orm: sqlOrm,
    fork: () => sqlOrm.em.fork() as EntityManager,
    async migrate() {
      const applied = await sqlOrm.getMigrator().up();
      return applied.map((migration) => migration.name);
    },
    close: () => sqlOrm.close(true),
  };
}

/**
 * The database holds every account's executions and hashed credentials: its directory is made
 * private, and the file is created (or closed, if an earlier version made it) readable by this
 * user only. SQLite gives its -wal and -shm files the database file's mode.
 */
function prepareSqliteFile(file: string): string {
  if (file !== ":memory:") {
    mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
    closeSync(openSync(file, "a", 0o600));
    for (const path of [file, `${file}-wal`, `${file}-shm`]) {
      if (existsSync(path) && (statSync(path).mode & 0o077) !== 0) {
        chmodSync(path, 0o600);
      }
    }
  }
  return file;
}

/**
 * Write-ahead logging lets reads proceed during a write and makes a commit one append instead of
 * several synced rewrites; with synchronous=NORMAL a commit survives a process crash and only an
 * OS crash may lose the last moments. WAL is recorded in the file; the rest is per connection,
 * and the pool keeps its one connection open.
 */
async function tuneSqlite(orm: MikroORM<AbstractSqlDriver>): Promise<void> {
  const connection = orm.em.getConnection();
  await connection.execute("pragma journal_mode = WAL");
  await connection.execute("pragma synchronous = NORMAL");
  await connection.execute("pragma busy_timeout = 5000");
}
