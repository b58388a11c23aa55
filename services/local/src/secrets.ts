import { chmod, mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { randomToken } from "@rgrid/common";

/** Secrets the local grid's processes share, made once per data directory and kept there. */
export interface LocalSecrets {
  internalToken: string;
  runnerToken: string;
  signingKey: string;
  /** The API key of the local account, once created, and the database it was created in. */
  apiKey?: string;
  apiKeyDatabase?: string;
}

const FILE_NAME = "secrets.json";

export async function loadOrCreateSecrets(dataDir: string): Promise<LocalSecrets> {
  const path = join(dataDir, FILE_NAME);
  try {
    return JSON.parse(await readFile(path, "utf8")) as LocalSecrets;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") {
      throw error;
    }
  }
  const secrets: LocalSecrets = {
    internalToken: randomToken(),
    runnerToken: randomToken(),
    signingKey: randomToken(),
  };
  await saveSecrets(dataDir, secrets);
  return secrets;
}

export async function saveSecrets(dataDir: string, secrets: LocalSecrets): Promise<void> {
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  const path = join(dataDir, FILE_NAME);
  await writeFile(path, JSON.stringify(secrets, null, 2) + "\n", { mode: 0o600 });
  await chmod(path, 0o600);
}
