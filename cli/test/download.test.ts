import { createHash, randomBytes } from "node:crypto";
import { mkdir, readFile, readdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { ExecutionStatus } from "@rgrid/proto";
import { FakeExecutionService } from "./fake-execution-service";
import { runAgainst, temporaryDirectory } from "./harness";
import { startObjectStorage } from "./object-storage";
import type { FakeObjectStorage } from "./object-storage";

/** Every file below `directory`, as '/'-separated relative paths, sorted. */
async function filesBelow(directory: string): Promise<string[]> {
  const entries = await readdir(directory, { recursive: true, withFileTypes: true });
  return entries
    .filter((entry) => entry.isFile())
    .map((entry) => join(entry.parentPath, entry.name).slice(directory.length + 1).split("\\").join("/"))
    .sort();
}

const sha256 = (bytes: Buffer | string) => createHash("sha256").update(bytes).digest("hex");

describe("rgrid download", () => {
  let workspace: { path: string; remove: () => Promise<void> };
  let storage: FakeObjectStorage;
  let fake: FakeExecutionService;

  beforeEach(async () => {
    workspace = await temporaryDirectory();
    storage = await startObjectStorage();
    fake = new FakeExecutionService(storage);
  });

  afterEach(async () => {
    await storage.close();
    await workspace.remove();
  });

  it("writes byte-identical files at their relative paths below --dir, overwriting what is there", async () => {
    const binary = randomBytes(300_000);
    const execution = fake.seed({ status: ExecutionStatus.COMPLETED });
    fake.addOutput(execution, "out/result.txt", "hello world\n");
    fake.addOutput(execution, "out/deep/data.bin", binary);
    fake.addOutput(execution, "summary.json", '{"ok":true}');
    await mkdir(join(workspace.path, "results", "out"), { recursive: true });
    await writeFile(join(workspace.path, "results", "out", "result.txt"), "stale content from before");

    const result = await runAgainst(fake, ["download", execution.id, "--dir", "results"], { cwd: workspace.path });

    expect(result.stderr).toEqual([]);
    expect(result.exitCode).toBe(0);
    const target = join(workspace.path, "results");
    expect(await filesBelow(target)).toEqual(["out/deep/data.bin", "out/result.txt", "summary.json"]);
    expect(await readFile(join(target, "out", "result.txt"), "utf8")).toBe("hello world\n");
    expect((await readFile(join(target, "out", "deep", "data.bin"))).equals(binary)).toBe(true);
    expect(await readFile(join(target, "summary.json"), "utf8")).toBe('{"ok":true}');
    // Downloads run in parallel, so the per-file lines come in any order; the summary is last.
    expect([...result.stdout.slice(0, 3)].sort()).toEqual([
      "Downloaded out/deep/data.bin (293.0 KiB)",
      "Downloaded out/result.txt (12 B)",
      "Downloaded summary.json (11 B)",
    ]);
    expect(result.stdout.slice(3)).toEqual([`Downloaded 3 files (293.0 KiB) to ${target}`]);
  });

  it("downloads into the current directory without --dir", async () => {
    const execution = fake.seed({ status: ExecutionStatus.FAILED, exitCode: 1 });
    fake.addOutput(execution, "partial.csv", "a,b\n");

    const result = await runAgainst(fake, ["download", execution.id], { cwd: workspace.path });

    expect(result.exitCode).toBe(0);
    expect(await readFile(join(workspace.path, "partial.csv"), "utf8")).toBe("a,b\n");
    expect(result.stdout).toEqual(["Downloaded partial.csv (4 B)", `Downloaded 1 file (4 B) to ${workspace.path}`]);
  });

  it("prints one JSON array of name, size_bytes, sha256 and path with --json", async () => {
    const execution = fake.seed({ status: ExecutionStatus.COMPLETED });
    fake.addOutput(execution, "b/second.txt", "second");
    fake.addOutput(execution, "a.txt", "first");

    const result = await runAgainst(fake, ["download", execution.id, "--dir", workspace.path, "--json"]);

    expect(result.exitCode).toBe(0);
    expect(JSON.parse(result.stdout.join("\n"))).toEqual([
      { name: "b/second.txt", size_bytes: 6, sha256: sha256("second"), path: join(workspace.path, "b", "second.txt") },
      { name: "a.txt", size_bytes: 5, sha256: sha256("first"), path: join(workspace.path, "a.txt") },
    ]);
  });

  it("says so and exits 0 when the execution has no outputs", async () => {
    const execution = fake.seed({ status: ExecutionStatus.COMPLETED });

    const text = await runAgainst(fake, ["download", execution.id], { cwd: workspace.path });
    const json = await runAgainst(fake, ["download", execution.id, "--json"], { cwd: workspace.path });

    expect(text).toMatchObject({ exitCode: 0, stdout: [`Execution ${execution.id} has no output files.`], stderr: [] });
    expect(json).toMatchObject({ exitCode: 0, stdout: ["[]"], stderr: [] });
    expect(await readdir(workspace.path)).toEqual([]);
  });

  it.each([
    ["queued", ExecutionStatus.QUEUED],
    ["running", ExecutionStatus.RUNNING],
  ])("refuses an execution that is still %s", async (name, status) => {
    const execution = fake.seed({ status });
    fake.addOutput(execution, "early.txt", "not final");

    const result = await runAgainst(fake, ["download", execution.id], { cwd: workspace.path });

    expect(result.exitCode).toBe(1);
    expect(result.stdout).toEqual([]);
    expect(result.stderr).toHaveLength(1);
    expect(result.stderr[0]).toMatch(
      new RegExp(`^Error: execution ${execution.id} is ${name}; its outputs are collected when it ends\\.`),
    );
    expect(await readdir(workspace.path)).toEqual([]);
  });

  it("reports an unknown execution as not found", async () => {
    const result = await runAgainst(fake, ["download", "exec_" + "0".repeat(32)], { cwd: workspace.path });

    expect(result.exitCode).toBe(1);
    expect(result.stderr[0]).toMatch(/^Error: execution exec_0{32} not found\. Check the id with 'rgrid list'\./);
  });

  it.each([["../escaped.txt"], ["/tmp/rgrid-absolute-output.txt"], ["out/../../escaped.txt"]])(
    "refuses the unsafe output name %j and writes nothing, inside or outside the directory",
    async (unsafeName) => {
      const execution = fake.seed({ status: ExecutionStatus.COMPLETED });
      fake.addOutput(execution, "fine.txt", "fine");
      fake.addOutput(execution, unsafeName, "escaped");
      const target = join(workspace.path, "inner", "target");
      await mkdir(target, { recursive: true });

      const result = await runAgainst(fake, ["download", execution.id, "--dir", target]);

      expect(result.exitCode).toBe(1);
      expect(result.stdout).toEqual([]);
      expect(result.stderr).toEqual([
        `Error: the server named an output ${JSON.stringify(unsafeName)} that would be written outside ${target}; ` +
          "nothing was downloaded.",
      ]);
      expect(await filesBelow(workspace.path)).toEqual([]);
      await expect(readFile("/tmp/rgrid-absolute-output.txt")).rejects.toThrow(/ENOENT/);
    },
  );

  it("fails with exit 1 and leaves no file when an output does not match its recorded sha256", async () => {
    const execution = fake.seed({ status: ExecutionStatus.COMPLETED });
    fake.addOutput(execution, "tampered.txt", "changed after upload", { sha256: sha256("what the runner uploaded") });

    const result = await runAgainst(fake, ["download", execution.id], { cwd: workspace.path });

    expect(result.exitCode).toBe(1);
    expect(result.stderr).toHaveLength(1);
    expect(result.stderr[0]).toMatch(/^Error: downloading tampered\.txt failed: downloaded content does not match/);
    expect(result.stderr[0]).toContain(`Run 'rgrid download ${execution.id}' again.`);
    expect(await readdir(workspace.path)).toEqual([]);
  });

  it("fails with exit 1 naming the file when object storage no longer has it", async () => {
    const execution = fake.seed({ status: ExecutionStatus.COMPLETED });
    fake.addOutput(execution, "gone.txt", "soon deleted");
    storage.objects.clear();

    const result = await runAgainst(fake, ["download", execution.id], { cwd: workspace.path });

    expect(result.exitCode).toBe(1);
    expect(result.stderr[0]).toMatch(/^Error: downloading gone\.txt failed: download refused with HTTP 404: NoSuchKey\./);
    expect(await readdir(workspace.path)).toEqual([]);
  });

  it("re-sends GetOutputDownloads after a lost connection", async () => {
    const execution = fake.seed({ status: ExecutionStatus.COMPLETED });
    fake.addOutput(execution, "result.txt", "ok");
    fake.outages.set("getOutputDownloads", 1);

    const result = await runAgainst(fake, ["download", execution.id], { cwd: workspace.path });

    expect(result.exitCode).toBe(0);
    expect(result.stderr).toEqual(["Connection lost. Retrying... (attempt 2/5)"]);
    expect(await readFile(join(workspace.path, "result.txt"), "utf8")).toBe("ok");
  });

  it("shows progress on a status line only when stderr is a terminal, and clears it at the end", async () => {
    const execution = fake.seed({ status: ExecutionStatus.COMPLETED });
    fake.addOutput(execution, "only.txt", "x".repeat(2048));

    const onTerminal = await runAgainst(fake, ["download", execution.id], { cwd: workspace.path, terminal: true });
    const piped = await runAgainst(fake, ["download", execution.id], { cwd: workspace.path });

    expect(onTerminal.exitCode).toBe(0);
    expect(onTerminal.status).toEqual([
      "Downloading outputs: 0/1 files, 0 B of 2.0 KiB (only.txt)",
      "Downloading outputs: 1/1 files, 2.0 KiB of 2.0 KiB",
      "",
    ]);
    expect(piped.status).toEqual([]);
    expect(piped.stdout).toEqual(onTerminal.stdout);
  });
});
