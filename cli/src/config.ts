// Where the CLI finds its server and key: RGRID_API_URL / RGRID_API_KEY override the config file
// ($RGRID_CONFIG, default ~/.rgrid/config.json) that `rgrid init` and the local stack write.
import { chmod, mkdir, readFile, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
// Single modules of @rgrid/common: its index also loads the server stack, which the CLI never uses.
import { EnvReader } from "@rgrid/common/config";
import type { Env } from "@rgrid/common/config";
import { UsageError } from "./errors";
import type { ResendPolicy } from "./resend";

/** The local stack's default address, used when neither the environment nor the file sets one. */
export const DEFAULT_API_URL = "http://127.0.0.1:7400";

/** What the environment says, parsed once by main.ts. */
export interface CliEnvironment {
  configPath: string;
  apiUrl?: string;
  apiKey?: string;
  resendPolicy: ResendPolicy;
}

export interface ConfigFile {
  apiUrl?: string;
  apiKey?: string;
}

/** How to reach the server, after applying precedence. */
export interface Connection {
  apiUrl: string;
  apiKey: string;
}

export function readCliEnvironment(env: Env, homeDir: string): CliEnvironment {
  const reader = new EnvReader(env);
  const environment: CliEnvironment = {
    configPath: reader.string("RGRID_CONFIG", join(homeDir, ".rgrid", "config.json")),
    apiUrl: reader.optionalString("RGRID_API_URL"),
    apiKey: reader.optionalString("RGRID_API_KEY"),
    resendPolicy: {
      attempts: reader.integer("RGRID_RETRY_ATTEMPTS", 5, 1, 20),
      firstDelayMs: reader.integer("RGRID_RETRY_DELAY_MS", 200, 0, 60_000),
    },
  };
  reader.finish();
  return environment;
}

/** The config file's settings; an absent file is an empty one. */
export async function readConfigFile(path: string): Promise<ConfigFile> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") {
      return {};
    }
    throw new UsageError(`cannot read the config file ${path}: ${(error as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new UsageError(`the config file ${path} is not valid JSON. Fix it or run 'rgrid init' again`);
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new UsageError(`the config file ${path} must hold a JSON object. Fix it or run 'rgrid init' again`);
  }
  const record = parsed as Record<string, unknown>;
  return { apiUrl: stringField(record, "apiUrl", path), apiKey: stringField(record, "apiKey", path) };
}

/** Writes the file readable by its owner only: it holds an API key. */
export async function writeConfigFile(path: string, config: Connection): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  await writeFile(path, JSON.stringify({ apiUrl: config.apiUrl, apiKey: config.apiKey }, null, 2) + "\n", {
    mode: 0o600,
  });
  // writeFile's mode applies only when it creates the file; an older file may be wider open.
  await chmod(path, 0o600);
}

/** Environment over file over default; the key has no default. */
export function resolveConnection(environment: CliEnvironment, file: ConfigFile): Connection {
  const reader = new EnvReader({ RGRID_API_URL: environment.apiUrl ?? file.apiUrl ?? DEFAULT_API_URL });
  const apiUrl = reader.url("RGRID_API_URL");
  const apiKey = environment.apiKey ?? file.apiKey;
  if (apiKey === undefined || apiKey === "") {
    reader.problem(
      `no API key configured. Run 'rgrid init --api-key <key>', set RGRID_API_KEY, ` +
        `or start the local grid with 'npm start' (it writes ${environment.configPath})`,
    );
  }
  reader.finish();
  return { apiUrl, apiKey: apiKey ?? "" };
}

function stringField(record: Record<string, unknown>, name: string, path: string): string | undefined {
  const value = record[name];
  if (value === undefined || value === null || value === "") {
    return undefined;
  }
  if (typeof value !== "string") {
    throw new UsageError(`"${name}" in the config file ${path} must be a string`);
  }
  return value;
}
