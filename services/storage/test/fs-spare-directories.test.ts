import { mkdir, readdir, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { keepSpareDirectories } from "../src/fs-spare-directories";
import type { SpareDirectories } from "../src/fs-spare-directories";
import { createLinker } from "../src/fs-links";
import { inTempDir } from "./helpers";

/** `count` spares under `root`/spares, all of them ready. */
async function readySpares(root: string, count: number, onError: (error: unknown) => void = () => undefined): Promise<SpareDirectories> {
  const spares = keepSpareDirectories({ dir: join(root, "spares"), mode: 0o700, keep: count, onError });
  await spares.settled();
  return spares;
}

test("a spare becomes the new directory, private and empty, and is made again", () =>
  inTempDir("spares", async (root) => {
    // What an earlier process left is removed at the start.
    await mkdir(join(root, "spares", "old"), { recursive: true });
    await writeFile(join(root, "spares", "old", "left"), "x");
    const spares = await readySpares(root, 4);
    expect(await readdir(join(root, "spares"))).not.toContain("old");

    const target = join(root, "executions-a");
    expect(spares.takeAs(target)).toBe(true);
    expect(await readdir(target)).toEqual([]);
    expect((await stat(target)).mode & 0o777).toBe(0o700);
    // Taken one after another, more than are kept: the later ones fall back, then refills come.
    const taken = Array.from({ length: 6 }, (_, index) => spares.takeAs(join(root, `more-${index}`)));
    expect(taken.slice(0, 3)).toEqual([true, true, true]);
    expect(taken.slice(3)).toEqual([false, false, false]);
    await spares.settled();
    expect(spares.takeAs(join(root, "after-refill"))).toBe(true);
    await spares.stop();
  }));

test("a directory that exists with entries, or has no parent, is left to the caller untouched, and the spare kept", () =>
  inTempDir("spares", async (root) => {
    const spares = await readySpares(root, 2);
    const existing = join(root, "existing");
    await mkdir(existing);
    await writeFile(join(existing, "object"), "kept");
    expect(spares.takeAs(existing)).toBe(false);
    expect(await readdir(existing)).toEqual(["object"]);
    expect(spares.takeAs(join(root, "no", "parent"))).toBe(false);
    // The spares that could not be moved serve the next directories.
    expect([spares.takeAs(join(root, "a")), spares.takeAs(join(root, "b"))]).toEqual([true, true]);
    await spares.stop();
  }));

test("spares that cannot be set up at the start are told once, and there are none", () =>
  inTempDir("spares", async (root) => {
    await writeFile(join(root, "file"), "in the way");
    const errors: unknown[] = [];
    const spares = keepSpareDirectories({ dir: join(root, "file", "spares"), mode: 0o700, keep: 4, onError: (error) => errors.push(error) });
    expect(errors).toHaveLength(1);
    expect(spares.takeAs(join(root, "t"))).toBe(false);
  }));

test("when spares cannot be made, one error is told and copies make their own directories", () =>
  inTempDir("spares", async (root) => {
    const errors: unknown[] = [];
    const spares = await readySpares(root, 2, (error) => errors.push(error));
    await rm(join(root, "spares"), { recursive: true }); // the spares' directory goes from under them
    for (let index = 0; index < 5; index++) {
      spares.takeAs(join(root, `t${index}`));
      await spares.settled(); // the refill that take started, if any, has ended
    }
    expect(errors).toHaveLength(1);

    const linker = createLinker({ root, directoryMode: 0o700, spares });
    await writeFile(join(root, "source"), "four");
    expect(await linker.link(join(root, "source"), join(root, "executions", "e", "inputs", "a"))).toBe(4);
  }));

test("links through spares make the same private directories as without them", () =>
  inTempDir("spares", async (root) => {
    const spares = await readySpares(root, 8);
    const linker = createLinker({ root, directoryMode: 0o700, spares });
    const source = join(root, "source");
    await writeFile(source, "twelve bytes");
    const targets = ["script/s.py", "inputs/a", "inputs/b", "inputs/deep/c"].map((name) => join(root, "executions", "e1", name));
    expect(await Promise.all(targets.map((target) => linker.link(source, target)))).toEqual([12, 12, 12, 12]);
    for (const dir of ["executions/e1", "executions/e1/script", "executions/e1/inputs", "executions/e1/inputs/deep"]) {
      expect((await stat(join(root, dir))).mode & 0o777).toBe(0o700);
    }
    expect((await readdir(join(root, "executions", "e1"))).sort()).toEqual(["inputs", "script"]);
    expect((await readdir(join(root, "executions", "e1", "inputs"))).sort()).toEqual(["a", "b", "deep"]);
    await spares.stop();
  }));
