import { chmod, mkdir, readFile, writeFile } from "node:fs/promises";
import { dirname } from "node:path";

export type CliConfigOutcome = "written" | "kept-other-server";

/**
 * Points the rgrid CLI at the local grid so that `npx rgrid run …` works right after start.
 * A config for another server is left alone: the user chose it.
 */
export async function writeCliConfig(path: string, apiUrl: string, apiKey: string): Promise<CliConfigOutcome> {
  const existing = await readExisting(path);
  if (existing?.apiUrl !== undefined && existing.apiUrl !== apiUrl) {
    return "kept-other-server";
  }
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  await writeFile(path, JSON.stringify({ ...existing, apiUrl, apiKey }, null, 2) + "\n", { mode: 0o600 });
  await chmod(path, 0o600);
  return "written";
}

async function readExisting(path: string): Promise<{ apiUrl?: string } | undefined> {
  try {
    return JSON.parse(await readFile(path, "utf8")) as { apiUrl?: string };
  } catch {
    return undefined;
  }
}
