// A database of its own for each PostgreSQL test, on the server RGRID_TEST_POSTGRES_URL names,
// dropped afterwards, so suites never see each other's rows.
import { randomBytes } from "node:crypto";
import { openDatabase } from "@rgrid/execution";

export const postgresServerUrl: string | undefined = process.env["RGRID_TEST_POSTGRES_URL"] || undefined;

/**
 * Whether suites that run on each database include SQLite. `RGRID_TEST_DATABASES=postgresql`
 * leaves it out, so the run that adds the PostgreSQL suites (npm run test:postgres) does not
 * repeat the SQLite half that `npm test` already ran.
 */
export const sqliteSuitesEnabled: boolean = process.env["RGRID_TEST_DATABASES"] !== "postgresql";

export interface ScratchDatabase {
  url: string;
  drop(): Promise<void>;
}

/**
 * The databases an end-to-end suite runs its grid on, for `describe.each`: SQLite (the grid's own
 * file: `open` gives none) and a scratch PostgreSQL database when a server is named.
 */
export const GRID_DATABASES: ReadonlyArray<{ name: string; enabled: boolean; open: () => Promise<ScratchDatabase | undefined> }> = [
  { name: "SQLite", enabled: sqliteSuitesEnabled, open: async () => undefined },
  { name: "PostgreSQL", enabled: postgresServerUrl !== undefined, open: () => createScratchDatabase(postgresServerUrl!) },
];

export async function createScratchDatabase(serverUrl: string): Promise<ScratchDatabase> {
  const name = `rgrid_test_${randomBytes(6).toString("hex")}`;
  await onServer(serverUrl, `CREATE DATABASE ${name}`);
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: () => onServer(serverUrl, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`),
  };
}

async function onServer(serverUrl: string, statement: string): Promise<void> {
  const admin = await openDatabase({ dialect: "postgresql", url: serverUrl });
  try {
    await admin.fork().getConnection().execute(statement);
  } finally {
    await admin.close();
  }
}
