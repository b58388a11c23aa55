// The backends a benchmark can run the grid on: the embedded defaults (SQLite, local files) or
// the production shape (PostgreSQL in a scratch database, S3 with s3rver standing in for MinIO).
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openDatabase } from "@rgrid/execution";
import type { LocalGridOptions } from "@rgrid/local";

export interface Backend {
  kind: "embedded" | "production";
  /** Shown in every table the benchmark prints. */
  label: string;
  gridOptions: Pick<LocalGridOptions, "databaseUrl" | "storageEnv">;
  close(): Promise<void>;
}

export const embeddedBackend: Backend = {
  kind: "embedded",
  label: "embedded defaults (SQLite + local files)",
  gridOptions: {},
  close: async () => undefined,
};

/** The server the scratch databases are made on; the machine's own PostgreSQL unless told. */
const POSTGRES_SERVER_URL = process.env["RGRID_BENCH_POSTGRES_URL"] || "postgres://postgres@127.0.0.1:5432/postgres";

/**
 * PostgreSQL + s3rver, or the reason they are unavailable (PostgreSQL not reachable): the
 * benchmark then says so and skips that part instead of failing.
 */
async function productionBackend(): Promise<Backend | { unavailable: string }> {
  const database = await scratchPostgres();
  if ("unavailable" in database) {
    return database;
  }
  const dropDatabase = database.drop;
  let s3: S3rverFixture;
  try {
    s3 = await startS3rver();
  } catch (error) {
    await dropDatabase();
    throw error;
  }
  return {
    kind: "production",
    label: "PostgreSQL + S3 (s3rver)",
    gridOptions: {
      databaseUrl: database.url,
      storageEnv: {
        RGRID_STORAGE_BACKEND: "s3",
        RGRID_S3_ENDPOINT: s3.endpoint,
        RGRID_S3_ACCESS_KEY: "S3RVER",
        RGRID_S3_SECRET_KEY: "S3RVER-secret",
        RGRID_S3_BUCKET: "rgrid-bench",
      },
    },
    async close() {
      await s3.stop();
      await dropDatabase();
    },
  };
}

/** A scratch PostgreSQL database of its own: for measuring the database part alone. */
export async function scratchPostgres(): Promise<{ url: string; drop(): Promise<void> } | { unavailable: string }> {
  const databaseName = `rgrid_bench_${randomBytes(6).toString("hex")}`;
  try {
    await onPostgresServer(`CREATE DATABASE ${databaseName}`);
  } catch (error) {
    return { unavailable: `PostgreSQL at ${redacted(POSTGRES_SERVER_URL)} is not reachable (${(error as Error).message})` };
  }
  const url = new URL(POSTGRES_SERVER_URL);
  url.pathname = `/${databaseName}`;
  return { url: url.toString(), drop: () => onPostgresServer(`DROP DATABASE IF EXISTS ${databaseName} WITH (FORCE)`) };
}

/** PostgreSQL with the local-file store, so that a figure shows the database's part, not S3's. */
export async function postgresFilesBackend(): Promise<Backend | { unavailable: string }> {
  const database = await scratchPostgres();
  if ("unavailable" in database) {
    return database;
  }
  return {
    kind: "production",
    label: "PostgreSQL + local files",
    gridOptions: { databaseUrl: database.url },
    close: () => database.drop(),
  };
}

async function onPostgresServer(statement: string): Promise<void> {
  const admin = await openDatabase({ dialect: "postgresql", url: POSTGRES_SERVER_URL });
  try {
    await admin.fork().getConnection().execute(statement);
  } finally {
    await admin.close();
  }
}

function redacted(url: string): string {
  const parsed = new URL(url);
  parsed.password = parsed.password ? "***" : "";
  return parsed.toString();
}

interface S3rverInstance {
  run(): Promise<{ port: number; address: string }>;
  close(): Promise<void>;
}
type S3rverConstructor = new (options: { port: number; address: string; directory: string; silent: boolean }) => S3rverInstance;
// s3rver ships no type declarations; this is the part of its API used here.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const S3rver = require("s3rver") as S3rverConstructor;

interface S3rverFixture {
  endpoint: string;
  stop(): Promise<void>;
}

/** A real S3 HTTP server on a free loopback port, storing into a temporary directory. */
async function startS3rver(): Promise<S3rverFixture> {
  const directory = await mkdtemp(join(tmpdir(), "rgrid-bench-s3rver-"));
  const server = new S3rver({ port: 0, address: "127.0.0.1", directory, silent: true });
  const { port } = await server.run();
  return {
    endpoint: `http://127.0.0.1:${port}`,
    stop: async () => {
      await server.close();
      await rm(directory, { recursive: true, force: true });
    },
  };
}

/**
 * Runs `benchmark` on the backend named by the first command-line argument ("embedded" or
 * "production"), or on both when none is named; a production backend that is unavailable is
 * reported as skipped under `title`.
 */
export async function onChosenBackends(title: string, benchmark: (backend: Backend) => Promise<void>): Promise<void> {
  const only = process.argv[2];
  if (only !== undefined && only !== "embedded" && only !== "production") {
    throw new Error(`unknown backend ${only}: expected embedded or production`);
  }
  if (only !== "production") {
    await benchmark(embeddedBackend);
  }
  if (only !== "embedded") {
    const production = await productionBackend();
    if ("unavailable" in production) {
      process.stdout.write(`\n${title} on PostgreSQL + S3: SKIPPED, ${production.unavailable}\n`);
      return;
    }
    try {
      await benchmark(production);
    } finally {
      await production.close();
    }
  }
}
