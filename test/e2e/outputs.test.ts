// Output files over real sockets: the built `rgrid` binary against real storage-service,
// execution-service and runner processes. The script writes word_counts.json in its working
// directory on the runner; the CLI brings it home.
import { createHash } from "node:crypto";
import { copyFile, mkdir, mkdtemp, readFile, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { REPO_ROOT, runCli, startTestGrid, startedId } from "../support/grid";
import type { TestGrid } from "../support/grid";

jest.setTimeout(60_000);

const SCRIPT = "examples/word_count.py";
const POEM = "examples/data/poem.txt";

let grid: TestGrid;
let workDir: string;

beforeAll(async () => {
  grid = await startTestGrid();
});

afterAll(async () => {
  await grid?.shutdown();
});

beforeEach(async () => {
  // A copy of the example with its relative layout, so outputs land here and not in the repo.
  workDir = await mkdtemp(join(tmpdir(), "rgrid-outputs-"));
  await mkdir(join(workDir, "examples", "data"), { recursive: true });
  await copyFile(join(REPO_ROOT, SCRIPT), join(workDir, SCRIPT));
  await copyFile(join(REPO_ROOT, POEM), join(workDir, POEM));
});

afterEach(async () => {
  const state = expect.getState();
  if (state.assertionCalls !== state.numPassingAsserts) {
    process.stderr.write(`grid logs:\n${grid.logs.slice(-80).join("\n")}\n`);
  }
  await rm(workDir, { recursive: true, force: true });
});

interface WordCounts {
  words: number;
  distinct: number;
  top: Array<[string, number]>;
}

function expectPoemCounts(json: string): void {
  const counts = JSON.parse(json) as WordCounts;
  expect(counts.words).toBe(21);
  expect(counts.distinct).toBe(18);
  expect(counts.top.slice(0, 2)).toEqual([
    ["on", 3],
    ["and", 2],
  ]);
}

test("run --wait downloads the script's output into the working directory, and download fetches it again", async () => {
  const run = await runCli(grid, ["run", SCRIPT, POEM, "--wait"], { cwd: workDir });
  expect(run.code).toBe(0);
  const id = startedId(run.stdout);
  expect(run.stdout).toContain("21 words, 18 distinct");
  expect(run.stdout.trimEnd().split("\n").at(-1)).toMatch(new RegExp(`^Execution ${id} completed`));
  expect(run.stderr).toMatch(/^Downloaded word_counts\.json \(\d+ B\)$/m);
  const local = await readFile(join(workDir, "word_counts.json"), "utf8");
  expectPoemCounts(local);

  const target = join(workDir, "fetched");
  const download = await runCli(grid, ["download", id, "--dir", target, "--json"], { cwd: workDir });
  expect(download.stderr).toBe("");
  expect(download.code).toBe(0);
  const listed = JSON.parse(download.stdout) as Array<{ name: string; size_bytes: number; sha256: string; path: string }>;
  expect(listed).toEqual([
    {
      name: "word_counts.json",
      size_bytes: Buffer.byteLength(local),
      sha256: createHash("sha256").update(local).digest("hex"),
      path: join(target, "word_counts.json"),
    },
  ]);
  expect(await readFile(join(target, "word_counts.json"), "utf8")).toBe(local);

  const status = await runCli(grid, ["status", id, "--json"]);
  expect((JSON.parse(status.stdout) as { outputs: unknown[] }).outputs).toEqual([
    { name: "word_counts.json", size_bytes: listed[0].size_bytes, sha256: listed[0].sha256 },
  ]);
});

test("run --wait --remote-only leaves the output on the server", async () => {
  const run = await runCli(grid, ["run", SCRIPT, POEM, "--wait", "--remote-only"], { cwd: workDir });
  expect(run.code).toBe(0);
  expect(run.stderr).toBe("");
  expect((await readdir(workDir)).sort()).toEqual(["examples"]);

  const id = startedId(run.stdout);
  const download = await runCli(grid, ["download", id], { cwd: workDir });
  expect(download.code).toBe(0);
  expect(download.stdout).toMatch(/^Downloaded word_counts\.json \(\d+ B\)\n/);
  expectPoemCounts(await readFile(join(workDir, "word_counts.json"), "utf8"));
});
