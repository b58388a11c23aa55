import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { writeCliConfig } from "../src/cli-config";
import { loadOrCreateSecrets } from "../src/secrets";

let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "rgrid-local-"));
});

afterEach(() => rm(dir, { recursive: true, force: true }));

const readJson = async (path: string) => JSON.parse(await readFile(path, "utf8")) as Record<string, string>;

test("a missing CLI config is written, private to the user", async () => {
  const path = join(dir, "nested", "config.json");
  expect(await writeCliConfig(path, "http://127.0.0.1:7400", "rgrid_key")).toBe("written");
  expect(await readJson(path)).toEqual({ apiUrl: "http://127.0.0.1:7400", apiKey: "rgrid_key" });
  expect((await stat(path)).mode & 0o777).toBe(0o600);
});

test("a config for this grid gets the current key, keeping other settings", async () => {
  const path = join(dir, "config.json");
  await writeFile(path, JSON.stringify({ apiUrl: "http://127.0.0.1:7400", apiKey: "old", extra: "kept" }));
  expect(await writeCliConfig(path, "http://127.0.0.1:7400", "new")).toBe("written");
  expect(await readJson(path)).toEqual({ apiUrl: "http://127.0.0.1:7400", apiKey: "new", extra: "kept" });
});

test("a config for another server is left alone", async () => {
  const path = join(dir, "config.json");
  const theirs = JSON.stringify({ apiUrl: "https://rgrid.example.com", apiKey: "theirs" });
  await writeFile(path, theirs);
  expect(await writeCliConfig(path, "http://127.0.0.1:7400", "new")).toBe("kept-other-server");
  expect(await readFile(path, "utf8")).toBe(theirs);
});

test("secrets are made once per data directory and kept private", async () => {
  const first = await loadOrCreateSecrets(dir);
  expect(first.internalToken.length).toBeGreaterThanOrEqual(32);
  expect(new Set([first.internalToken, first.runnerToken, first.signingKey]).size).toBe(3);
  expect((await stat(join(dir, "secrets.json"))).mode & 0o777).toBe(0o600);
  expect(await loadOrCreateSecrets(dir)).toEqual(first);
});
