import { create } from "@bufbuild/protobuf";
import type { Knex } from "@mikro-orm/knex";
import { newExecutionId } from "@rgrid/common";
import { CreateExecutionRequestSchema } from "@rgrid/proto";
import type { DatabaseTarget } from "../src/db/database-url";
import { Execution } from "../src/db/entities";
import { openDatabase } from "../src/db/orm";
import type { Database } from "../src/db/orm";
import { originalRecord } from "../src/executions/new-executions";
import { createScratchDatabase, postgresServerUrl, sqliteSuitesEnabled } from "../../../test/support/postgres";

// Suites that must hold on every database the service supports: SQLite always, and PostgreSQL when
// RGRID_TEST_POSTGRES_URL names a server. Each test gets a database of its own.

export interface DatabaseDriver {
  name: "sqlite" | "postgresql";
  /** A new, empty database; `drop` removes it once the test has closed its connections. */
  scratch(): Promise<{ target: DatabaseTarget; drop(): Promise<void> }>;
}

const sqlite: DatabaseDriver = {
  name: "sqlite",
  scratch: async () => ({ target: { dialect: "sqlite", file: ":memory:" }, drop: async () => undefined }),
};

const postgres: DatabaseDriver = {
  name: "postgresql",
  async scratch() {
    const scratch = await createScratchDatabase(postgresServerUrl ?? "");
    return { target: { dialect: "postgresql", url: scratch.url }, drop: scratch.drop };
  },
};

/**
 * Declares `suite` as "<title> on sqlite" and "<title> on postgresql", each skipped, saying why,
 * when left out (no server; RGRID_TEST_DATABASES=postgresql).
 */
export function describeOnEachDatabase(title: string, suite: (driver: DatabaseDriver) => void): void {
  if (sqliteSuitesEnabled) {
    describe(`${title} on ${sqlite.name}`, () => suite(sqlite));
  } else {
    describe.skip(`${title} on ${sqlite.name} (skipped: RGRID_TEST_DATABASES=postgresql)`, () => {
      test("runs in npm test", () => undefined);
    });
  }
  if (postgresServerUrl) {
    describe(`${title} on ${postgres.name}`, () => suite(postgres));
  } else {
    describe.skip(`${title} on ${postgres.name} (skipped: set RGRID_TEST_POSTGRES_URL to run)`, () => {
      test("needs RGRID_TEST_POSTGRES_URL", () => undefined);
    });
  }
}

/** Declares `suite` for what PostgreSQL alone runs, skipped, saying why, without a server. */
export function describeOnPostgres(title: string, suite: (driver: DatabaseDriver) => void): void {
  if (postgresServerUrl) {
    describe(`${title} on ${postgres.name}`, () => suite(postgres));
  } else {
    describe.skip(`${title} on ${postgres.name} (skipped: set RGRID_TEST_POSTGRES_URL to run)`, () => {
      test("needs RGRID_TEST_POSTGRES_URL", () => undefined);
    });
  }
}

export interface ScratchDatabase {
  db: Database;
  /** Closes the connection and drops the database. */
  close(): Promise<void>;
}

/** A migrated scratch database from `driver`, with one connection open. */
export async function openScratchDatabase(driver: DatabaseDriver): Promise<ScratchDatabase> {
  const { target, drop } = await driver.scratch();
  const db = await openDatabase(target);
  await db.migrate();
  return {
    db,
    close: async () => {
      await db.close();
      await drop();
    },
  };
}

/**
 * An original execution row as the service would store it once queued: for suites that write
 * records straight into the database. `overrides` set whatever the test is about.
 */
export function queuedExecutionRow(accountId: string, overrides: Partial<Execution> = {}): Execution {
  const request = create(CreateExecutionRequestSchema, {
    script: { name: "job.py", sizeBytes: 10n, sha256: "a".repeat(64) },
    runtime: "python",
    inputs: [{ name: "in.csv", sizeBytes: 4n, sha256: "b".repeat(64) }],
  });
  const original = originalRecord(request, { id: overrides.id ?? newExecutionId(), accountId, createdAt: new Date() });
  return Object.assign(new Execution(), original, { status: "queued" } as const, overrides);
}

/** Writes `executions` as they are, in one flush. */
export async function insertRows(db: Database, executions: readonly Execution[]): Promise<void> {
  const em = db.fork();
  executions.forEach((execution) => em.persist(execution));
  await em.flush();
}

/** The pool `db`'s statements take their connections from (db/sql-session.ts), to watch or to fail. */
export function connectionPoolOf(db: Database): Knex.Client {
  return db.orm.em.getConnection().getKnex().client as Knex.Client;
}

/** How many connections the pool hands out while `work` runs: one per statement run on a held connection. */
export async function connectionsAcquiredDuring(db: Database, work: () => Promise<unknown>): Promise<number> {
  const acquire = jest.spyOn(connectionPoolOf(db), "acquireConnection");
  try {
    await work();
    return acquire.mock.calls.length;
  } finally {
    acquire.mockRestore();
  }
}
