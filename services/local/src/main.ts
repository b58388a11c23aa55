// `npm start`: the whole grid on this machine, in the foreground, on embedded defaults
// (SQLite and local files under .rgrid/). Ctrl-C stops every process cleanly.
import { homedir } from "node:os";
import { join, resolve } from "node:path";
import { ConfigError, EnvReader } from "@rgrid/common";
import { writeCliConfig } from "./cli-config";
import { startLocalGrid } from "./grid";

const COLOURS = ["\x1b[36m", "\x1b[35m", "\x1b[33m", "\x1b[32m", "\x1b[34m"];
const RESET = "\x1b[0m";

async function main(): Promise<number> {
  // Listened for from the start: the services run in process groups of their own, so a Ctrl-C
  // while they start must still reach their stop, not end this process on its own.
  const signalled = new Promise<string>((resolveSignal) => {
    process.once("SIGINT", () => resolveSignal("SIGINT"));
    process.once("SIGTERM", () => resolveSignal("SIGTERM"));
    // The terminal closed: the services would not hear it.
    process.once("SIGHUP", () => resolveSignal("SIGHUP"));
  });
  const env = new EnvReader(process.env);
  const dataDir = resolve(env.string("RGRID_HOME", ".rgrid"));
  const executionPort = env.port("RGRID_LOCAL_EXECUTION_PORT", 7400);
  const storagePort = env.port("RGRID_LOCAL_STORAGE_PORT", 7401);
  const runners = env.integer("RGRID_LOCAL_RUNNERS", 1, 1, 16);
  const cliConfigPath = env.string("RGRID_CONFIG", join(homedir(), ".rgrid", "config.json"));
  // The production backends, for trying them locally: PostgreSQL and S3/MinIO instead of the
  // embedded SQLite file and local files. Validated by the services themselves.
  const databaseUrl = env.optionalString("RGRID_DATABASE_URL");
  const storageEnv = passThrough(process.env, STORAGE_BACKEND_VARIABLES);
  const executionEnv = passThrough(process.env, EXECUTION_VARIABLES);
  env.finish();

  const useColour = process.stdout.isTTY === true && process.env.NO_COLOR === undefined;
  const colourOf = new Map<string, string>();
  const print = (name: string, line: string) => {
    if (!colourOf.has(name)) {
      colourOf.set(name, COLOURS[colourOf.size % COLOURS.length]);
    }
    const label = name.padEnd(9);
    process.stdout.write(useColour ? `${colourOf.get(name)}${label}|${RESET} ${line}\n` : `${label}| ${line}\n`);
  };

  print("grid", `starting in ${dataDir}`);
  const grid = await startLocalGrid({
    dataDir,
    host: "127.0.0.1",
    executionPort,
    storagePort,
    runners,
    databaseUrl,
    storageEnv,
    executionEnv,
    baseEnv: passThrough(process.env, INHERITED_VARIABLES),
    onLine: print,
  });

  const configOutcome = await writeCliConfig(cliConfigPath, grid.executionUrl, grid.apiKey);
  print("grid", `ready: execution-service ${grid.executionUrl}, storage-service ${grid.storageUrl}`);
  if (configOutcome === "written") {
    print("grid", `CLI configured in ${cliConfigPath}; try: npx rgrid run examples/word_count.py examples/data/poem.txt --wait`);
  } else {
    print("grid", `${cliConfigPath} points at another server and was left alone; to use this grid:`);
    print("grid", `  export RGRID_API_URL=${grid.executionUrl} RGRID_API_KEY=${grid.apiKey}`);
  }
  print("grid", `console: ${grid.executionUrl}/`);
  print("grid", `sign in to the console (single-use link): ${await grid.createSignInLink()}`);
  print("grid", "press Ctrl-C to stop");

  const reason = await Promise.race([signalled, grid.unexpectedExit.then((name) => `exit of ${name}`)]);
  print("grid", `stopping (${reason})`);
  await grid.stop();
  print("grid", "stopped");
  return reason.startsWith("exit of") ? 1 : 0;
}

/** What the services need from our environment; secrets of the caller's shell stay out. */
const INHERITED_VARIABLES = ["PATH", "HOME", "LANG", "TMPDIR", "NODE_OPTIONS", "NODE_EXTRA_CA_CERTS", "TZ"];

const STORAGE_BACKEND_VARIABLES = [
  "RGRID_STORAGE_BACKEND",
  "RGRID_S3_ENDPOINT",
  "RGRID_S3_PUBLIC_ENDPOINT",
  "RGRID_S3_ACCESS_KEY",
  "RGRID_S3_SECRET_KEY",
  "RGRID_S3_BUCKET",
  "RGRID_S3_REGION",
];

/** Settings of execution-service a local user may want to try, e.g. a page of their own calling the API. */
const EXECUTION_VARIABLES = ["RGRID_CORS_ORIGINS", "RGRID_CONSOLE", "RGRID_SESSION_TTL_SECONDS", "RGRID_BULK_RETRIES_PER_SECOND"];

function passThrough(env: NodeJS.ProcessEnv, names: readonly string[]): Record<string, string> {
  const picked: Record<string, string> = {};
  for (const name of names) {
    const value = env[name];
    if (value !== undefined && value !== "") {
      picked[name] = value;
    }
  }
  return picked;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    if (error instanceof ConfigError) {
      process.stderr.write(`${error.message}\n`);
    } else {
      process.stderr.write(`Could not start the local grid: ${(error as Error).message}\n`);
    }
    process.exit(1);
  },
);
