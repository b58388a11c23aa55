// The floors of a retry's parts, for the benchmarks that compare against them: the statements of
// one retry on the raw database driver (better-sqlite3, or `pg` prepared by name), and the bare
// hard links the local-file store makes. Each does what rgrid does for a retry and nothing else.
import { randomBytes, randomUUID } from "node:crypto";
import { link, mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { newExecutionId } from "@rgrid/common";
import { TERMINAL_STATES, openDatabase } from "@rgrid/execution";
import { scratchPostgres } from "./backends";
import type { BenchGrid } from "./bench-grid";

export interface RawDatabase {
  /** One retry's statements, as RetryExecution issues them, on the raw driver. */
  retryOnce(): Promise<void>;
  /** Adds `count` finished executions to the account, one millisecond apart, in one transaction. */
  addExecutions(count: number): Promise<void>;
  /** Finished executions of the grid whose logs the archiver has yet to move to storage. */
  logsAwaitingArchive(): Promise<number>;
  close(): Promise<void>;
}

/** The log archiver's predicate (log-archive.ts): finished, logs still in the database. */
const AWAITING_ARCHIVE = "logs_archived = false and finished_at is not null";

/** The objects of an execution with a script and three inputs of 1 MiB (failedOriginalWithThreeInputs). */
export const SCRIPT_AND_THREE_INPUTS = { "fail.py": 64, "a.bin": 1024 * 1024, "b.bin": 1024 * 1024, "c.bin": 1024 * 1024 };

/** The copies of one retry on the local-file store: a directory, and a hard link per object (name and size). */
export async function linkFloor(work: string, objects: Record<string, number>): Promise<() => Promise<void>> {
  const source = join(work, "objects");
  await mkdir(source, { recursive: true });
  const names = Object.keys(objects);
  for (const [name, bytes] of Object.entries(objects)) {
    await writeFile(join(source, name), randomBytes(bytes));
  }
  let count = 0;
  return async () => {
    const target = join(work, "copies", String(count++));
    await mkdir(target, { recursive: true });
    await Promise.all(names.map((name) => link(join(source, name), join(target, name))));
  };
}

// The raw drivers ship no types of their own; these are the few calls made of them.
interface SqliteStatement {
  get(...params: unknown[]): Record<string, unknown> | undefined;
  all(...params: unknown[]): Array<Record<string, unknown>>;
  run(...params: unknown[]): unknown;
}
interface SqliteDatabase {
  prepare(sql: string): SqliteStatement;
  pragma(text: string): unknown;
  close(): void;
}
interface PgClient {
  query(config: { name?: string; text: string; values?: unknown[] }): Promise<{ rows: Array<Record<string, unknown>> }>;
  release(): void;
}
interface PgPool {
  connect(): Promise<PgClient>;
  end(): Promise<void>;
}
/* eslint-disable @typescript-eslint/no-require-imports */
const BetterSqlite = require("better-sqlite3") as new (file: string, options?: { readonly?: boolean }) => SqliteDatabase;
const { Pool: PgPoolClass } = require("pg") as { Pool: new (config: { connectionString: string; max: number }) => PgPool };
/* eslint-enable @typescript-eslint/no-require-imports */

/** The statements of one retry (see services/execution/src/executions/retry.ts), on better-sqlite3. */
export async function rawSqlite(bench: BenchGrid, originalId: string, work: string): Promise<RawDatabase> {
  const file = join(work, "floor.db");
  const migrated = await openDatabase({ dialect: "sqlite", file });
  await migrated.migrate();
  await migrated.close();
  const source = new BetterSqlite(join(bench.dataDir, "rgrid.db"), { readonly: true });
  const original = source.prepare("select * from executions where id = ?").get(originalId)!;
  const account = source.prepare("select * from accounts where id = ?").get(original["account_id"])!;
  source.close();

  const db = new BetterSqlite(file);
  db.pragma("journal_mode = WAL");
  db.pragma("synchronous = NORMAL");
  insertRow(db, "accounts", account);
  insertRow(db, "executions", original);
  const columns = Object.keys(original);
  const auditColumns = ["id", "account_id", "actor", "action", "execution_id", "root_id", "batch_id", "request_id", "reason", "outcome", "created_at"];
  const lookup = db.prepare("select * from executions where account_id = ? and (id = ? or request_id = ?)");
  const begin = db.prepare("begin immediate");
  const current = db.prepare("select * from executions where id = ?");
  const insertRetry = db.prepare(`insert into executions (${columns.join(", ")}) values (${columns.map(() => "?").join(", ")})`);
  const insertAudit = db.prepare(`insert into audit_entries (${auditColumns.join(", ")}) values (${auditColumns.map(() => "?").join(", ")})`);
  const commit = db.prepare("commit");
  return {
    async addExecutions(count) {
      // Into the grid's own database (the listing is the grid's), beside the service's connection.
      const grid = new BetterSqlite(join(bench.dataDir, "rgrid.db"));
      try {
        grid.pragma("busy_timeout = 10000");
        const insert = grid.prepare(`insert into executions (${columns.join(", ")}) values (${columns.map(() => "?").join(", ")})`);
        const started = Date.now() - count;
        grid.prepare("begin immediate").run();
        for (let index = 0; index < count; index++) {
          const id = newExecutionId();
          insert.run(...columns.map((column) => listedValue(column, original, id, started + index)));
        }
        grid.prepare("commit").run();
      } finally {
        grid.close();
      }
    },
    async logsAwaitingArchive() {
      const grid = new BetterSqlite(join(bench.dataDir, "rgrid.db"), { readonly: true });
      try {
        return Number(grid.prepare(`select count(*) as n from executions where ${AWAITING_ARCHIVE}`).get()!["n"]);
      } finally {
        grid.close();
      }
    },
    async retryOnce() {
      const requestId = randomUUID();
      lookup.all(original["account_id"], originalId, requestId);
      begin.run();
      current.get(originalId);
      const id = newExecutionId();
      const now = Date.now();
      insertRetry.run(...columns.map((column) => retryValue(column, original, id, requestId, now)));
      insertAudit.run(`audit_${randomBytes(16).toString("hex")}`, original["account_id"], "key", "retry", originalId, original["root_id"], null, requestId, "", id, now);
      commit.run();
    },
    async close() {
      db.close();
    },
  };
}

/**
 * The same statements on `pg`, prepared by name once, as a statement cache would. They run on a
 * scratch database of their own, as on SQLite: the retries they insert must not join the grid's
 * rows (an original's retries, a batch's members). The listing's rows go to the grid's database.
 */
export async function rawPostgres(bench: BenchGrid, originalId: string, connections: number): Promise<RawDatabase> {
  const grid = new PgPoolClass({ connectionString: bench.databaseUrl, max: 1 });
  const source = await grid.connect();
  const original = (await source.query({ text: "select * from executions where id = $1", values: [originalId] })).rows[0]!;
  const account = (await source.query({ text: "select * from accounts where id = $1", values: [original["account_id"]] })).rows[0]!;
  source.release();
  const scratch = await scratchPostgres();
  if ("unavailable" in scratch) {
    throw new Error(scratch.unavailable);
  }
  const migrated = await openDatabase({ dialect: "postgresql", url: scratch.url });
  await migrated.migrate();
  await migrated.close();
  const columns = Object.keys(original);
  // As many connections as calls in flight, each preparing the statements once.
  const pool = new PgPoolClass({ connectionString: scratch.url, max: connections });
  const placeholders = (count: number, first = 1) => Array.from({ length: count }, (_, index) => `$${first + index}`).join(", ");
  const setUp = await pool.connect();
  for (const [table, row] of [["accounts", account], ["executions", original]] as const) {
    const names = Object.keys(row);
    await setUp.query({ text: `insert into ${table} (${names.join(", ")}) values (${placeholders(names.length)})`, values: names.map((name) => asParameter(row[name])) });
  }
  setUp.release();
  return {
    async addExecutions(count) {
      const started = Date.now() - count;
      const client = await grid.connect();
      await client.query({ text: "begin" });
      for (let offset = 0; offset < count; offset += 1000) {
        const rows = Array.from({ length: Math.min(1000, count - offset) }, (_, index) => {
          const id = newExecutionId();
          return columns.map((column) => listedValue(column, original, id, new Date(started + offset + index)));
        });
        await client.query({
          text: `insert into executions (${columns.join(", ")}) values ${rows
            .map((_, row) => `(${columns.map((__, column) => `$${row * columns.length + column + 1}`).join(", ")})`)
            .join(", ")}`,
          values: rows.flat(),
        });
      }
      await client.query({ text: "commit" });
      // What autovacuum does within a minute of such a load; measured at once, the planner
      // would still go by the statistics of the table before it.
      await client.query({ text: "analyze executions" });
      client.release();
    },
    async logsAwaitingArchive() {
      const client = await grid.connect();
      try {
        return Number((await client.query({ text: `select count(*) as n from executions where ${AWAITING_ARCHIVE}` })).rows[0]!["n"]);
      } finally {
        client.release();
      }
    },
    async retryOnce() {
      const requestId = randomUUID();
      const id = newExecutionId();
      const now = new Date();
      const client = await pool.connect();
      await client.query({ name: "lookup", text: "select * from executions where account_id = $1 and (id = $2 or request_id = $3)", values: [original["account_id"], originalId, requestId] });
      // A plain retry's one statement (retry-statement.ts): the original locked and re-checked,
      // the retry and its audit entry inserted.
      const audit = [`audit_${randomBytes(16).toString("hex")}`, original["account_id"], "key", "retry", originalId, original["root_id"], null, requestId, "", id, now];
      const auditFrom = 2 + columns.length + TERMINAL_STATES.length;
      await client.query({
        name: "retry",
        text:
          "with original as (select * from executions where id = $1 for share), " +
          `retry as (insert into executions (${columns.join(", ")}) select ${placeholders(columns.length, 2)} from original ` +
          `where status in (${placeholders(TERMINAL_STATES.length, 2 + columns.length)}) returning id), ` +
          "audit as (insert into audit_entries (id, account_id, actor, action, execution_id, root_id, batch_id, request_id, reason, outcome, created_at) " +
          `select ${placeholders(audit.length, auditFrom)} from retry) ` +
          "select *, exists (select 1 from retry) as inserted from original",
        values: [originalId, ...columns.map((column) => retryValue(column, original, id, requestId, now)), ...TERMINAL_STATES, ...audit],
      });
      client.release();
    },
    async close() {
      await pool.end();
      await grid.end();
      await scratch.drop();
    },
  };
}

/** A column of the retry's row: the original's value, but for who the retry is. */
function retryValue(column: string, original: Record<string, unknown>, id: string, requestId: string, now: number | Date): unknown {
  switch (column) {
    case "id":
      return id;
    case "request_id":
      return requestId;
    case "retry_of":
      return original["id"];
    case "status":
      return "queued";
    case "attempt":
      return Number(original["attempt"]) + 1;
    case "created_at":
      return now;
    default:
      return asParameter(original[column]);
  }
}

/** A value read by `pg`, to be written back: json columns are read as objects and go back as text. */
function asParameter(value: unknown): unknown {
  return value !== null && typeof value === "object" && !(value instanceof Date) ? JSON.stringify(value) : value;
}

/** A column of a listed execution: a finished original of its own, made at `createdAt`. */
function listedValue(column: string, original: Record<string, unknown>, id: string, createdAt: number | Date): unknown {
  switch (column) {
    case "id":
    case "root_id":
      return id;
    case "request_id":
    case "retry_of":
      return null;
    case "attempt":
      return 1;
    case "status":
      return original["status"];
    case "logs_archived":
      // Long finished, as a listing's rows mostly are: nothing left for the log archiver, which
      // would otherwise spend the measurements archiving 100k empty logs. In the type the driver
      // read (SQLite stores booleans as integers).
      return typeof original[column] === "number" ? 1 : true;
    default:
      return retryValue(column, original, id, "", createdAt);
  }
}

function insertRow(db: SqliteDatabase, table: string, row: Record<string, unknown>): void {
  const columns = Object.keys(row);
  db.prepare(`insert into ${table} (${columns.join(", ")}) values (${columns.map(() => "?").join(", ")})`).run(...columns.map((column) => row[column]));
}

