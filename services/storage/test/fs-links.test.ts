import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { createLinker } from "../src/fs-links";
import { inTempDir } from "./helpers";

test("many links at once leave the event loop turns in between, and each answers its file's size", () =>
  inTempDir("links", async (root) => {
    const source = join(root, "source");
    await writeFile(source, "twelve bytes");
    const linker = createLinker({ root, directoryMode: 0o700 });
    let turns = 0;
    let counting = true;
    const countTurns = () => {
      turns += 1;
      if (counting) setImmediate(countTurns);
    };
    setImmediate(countTurns);

    // 600 links are several slices' work even on a fast disk (each link is a few system calls),
    // and little enough to finish in seconds on a loaded one.
    const sizes = await Promise.all(Array.from({ length: 600 }, (_, index) => linker.link(source, join(root, "executions", `t${index % 30}`, "inputs", `${index}`))));
    counting = false;

    expect(new Set(sizes)).toEqual(new Set([12]));
    // Linked in slices, with other work let in between: not in one turn of the loop.
    expect(turns).toBeGreaterThan(1);
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
