import { mkdir, readdir, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { keepSpareDirectories } from "../src/fs-spare-directories";
import type { SpareDirectories } from "../src/fs-spare-directories";
import { createLinker } from "../src/fs-links";
import { tempDir } from "./helpers";

/** Spares under `root`/spares, once `count` of them are ready. */
async function readySpares(root: string, count: number, onError: (error: unknown) => void = () => undefined): Promise<SpareDirectories> {
  const spares = keepSpareDirectories({ dir: join(root, "spares"), mode: 0o700, keep: count, onError });
  const [own] = await readdir(join(root, "spares"));
  for (let waited = 0; (await readdir(join(root, "spares", own as string))).length < count; waited++) {
    if (waited > 500) throw new Error("spares were not made");
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
  return spares;
}

test("a spare becomes the new directory, private and empty, and is made again", async () => {
  const root = await tempDir("spares");
  try {
    // What an earlier process left is removed at the start.
    await mkdir(join(root.path, "spares", "old"), { recursive: true });
    await writeFile(join(root.path, "spares", "old", "left"), "x");
    const spares = await readySpares(root.path, 4);
    expect(await readdir(join(root.path, "spares"))).not.toContain("old");

    const target = join(root.path, "executions-a");
    expect(spares.takeAs(target)).toBe(true);
    expect(await readdir(target)).toEqual([]);
    expect((await stat(target)).mode & 0o777).toBe(0o700);
    // Taken one after another, more than are kept: the later ones fall back, then refills come.
    const taken = Array.from({ length: 6 }, (_, index) => spares.takeAs(join(root.path, `more-${index}`)));
    expect(taken.slice(0, 3)).toEqual([true, true, true]);
    expect(taken.slice(3)).toEqual([false, false, false]);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(spares.takeAs(join(root.path, "after-refill"))).toBe(true);
    await spares.stop();
  } finally {
    await root.remove();
  }
});

test("a directory that exists with entries, or has no parent, is left to the caller untouched, and the spare kept", async () => {
  const root = await tempDir("spares");
  try {
    const spares = await readySpares(root.path, 2);
    const existing = join(root.path, "existing");
    await mkdir(existing);
    await writeFile(join(existing, "object"), "kept");
    expect(spares.takeAs(existing)).toBe(false);
    expect(await readdir(existing)).toEqual(["object"]);
    expect(spares.takeAs(join(root.path, "no", "parent"))).toBe(false);
    // The spares that could not be moved serve the next directories.
    expect([spares.takeAs(join(root.path, "a")), spares.takeAs(join(root.path, "b"))]).toEqual([true, true]);
    await spares.stop();
  } finally {
    await root.remove();
  }
});

test("spares that cannot be set up at the start are told once, and there are none", async () => {
  const root = await tempDir("spares");
  try {
    await writeFile(join(root.path, "file"), "in the way");
    const errors: unknown[] = [];
    const spares = keepSpareDirectories({ dir: join(root.path, "file", "spares"), mode: 0o700, keep: 4, onError: (error) => errors.push(error) });
    expect(errors).toHaveLength(1);
    expect(spares.takeAs(join(root.path, "t"))).toBe(false);
  } finally {
    await root.remove();
  }
});

test("when spares cannot be made, one error is told and copies make their own directories", async () => {
  const root = await tempDir("spares");
  try {
    const errors: unknown[] = [];
    const spares = await readySpares(root.path, 2, (error) => errors.push(error));
    await root.remove(); // the spares' directory goes from under them
    await mkdir(root.path);
    for (let index = 0; index < 5; index++) {
      spares.takeAs(join(root.path, `t${index}`));
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    expect(errors).toHaveLength(1);

    const linker = createLinker({ root: root.path, directoryMode: 0o700, spares });
    await writeFile(join(root.path, "source"), "four");
    expect(await linker.link(join(root.path, "source"), join(root.path, "executions", "e", "inputs", "a"))).toBe(4);
    await spares.stop();
  } finally {
    await root.remove();
  }
});

test("links through spares make the same private directories as without them", async () => {
  const root = await tempDir("spares");
  try {
    const spares = await readySpares(root.path, 8);
    const linker = createLinker({ root: root.path, directoryMode: 0o700, spares });
    const source = join(root.path, "source");
    await writeFile(source, "twelve bytes");
    const targets = ["script/s.py", "inputs/a", "inputs/b", "inputs/deep/c"].map((name) => join(root.path, "executions", "e1", name));
    expect(await Promise.all(targets.map((target) => linker.link(source, target)))).toEqual([12, 12, 12, 12]);
    for (const dir of ["executions/e1", "executions/e1/script", "executions/e1/inputs", "executions/e1/inputs/deep"]) {
      expect((await stat(join(root.path, dir))).mode & 0o777).toBe(0o700);
    }
    expect((await readdir(join(root.path, "executions", "e1"))).sort()).toEqual(["inputs", "script"]);
    expect((await readdir(join(root.path, "executions", "e1", "inputs"))).sort()).toEqual(["a", "b", "deep"]);
    await spares.stop();
  } finally {
    await root.remove();
  }
});
