import { readdir, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { createLinker } from "../src/fs-links";
import { inTempDir, turnCounter } from "./helpers";

test("many links at once leave the event loop turns in between, and each answers its file's size", () =>
  inTempDir("links", async (root) => {
    const source = join(root, "source");
    await writeFile(source, "twelve bytes");
    const linker = createLinker({ root, directoryMode: 0o700 });
    const turns = turnCounter();

    // 600 links are several slices' work even on a fast disk (each link is a few system calls),
    // and little enough to finish in seconds on a loaded one.
    const sizes = await Promise.all(Array.from({ length: 600 }, (_, index) => linker.link(source, join(root, "executions", `t${index % 30}`, "inputs", `${index}`))));
    turns.stop();

    expect(new Set(sizes)).toEqual(new Set([12]));
    // Linked in slices, with other work let in between: not in one turn of the loop.
    expect(turns.now()).toBeGreaterThan(1);
  }));

test("a missing source is thrown; a taken target answers undefined, for the caller to copy otherwise", () =>
  inTempDir("links", async (root) => {
    const linker = createLinker({ root, directoryMode: 0o700 });
    const target = join(root, "executions", "t", "inputs", "a");
    await expect(linker.link(join(root, "missing"), target)).rejects.toMatchObject({ code: "ENOENT" });
    const source = join(root, "source");
    await writeFile(source, "x");
    expect(await linker.link(source, target)).toBe(1);
    expect(await linker.link(source, target)).toBeUndefined();
  }));

test("an execution's objects share the private directories made for the first of them", () =>
  inTempDir("links", async (root) => {
    const linker = createLinker({ root, directoryMode: 0o700 });
    const source = join(root, "source");
    await writeFile(source, "twelve bytes");
    const targets = ["script/s.py", "inputs/a", "inputs/b", "inputs/deep/c"].map((name) => join(root, "executions", "e1", name));
    expect(await Promise.all(targets.map((target) => linker.link(source, target)))).toEqual([12, 12, 12, 12]);
    for (const dir of ["executions", "executions/e1", "executions/e1/script", "executions/e1/inputs", "executions/e1/inputs/deep"]) {
      expect((await stat(join(root, dir))).mode & 0o777).toBe(0o700);
    }
    expect((await readdir(join(root, "executions", "e1"))).sort()).toEqual(["inputs", "script"]);
    expect((await readdir(join(root, "executions", "e1", "inputs"))).sort()).toEqual(["a", "b", "deep"]);
  }));
