import { mkdir, symlink, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { expandGlob } from "../src/glob";
import { temporaryDirectory } from "./harness";

describe("batch file patterns", () => {
  let tree: { path: string; remove: () => Promise<void> };

  beforeAll(async () => {
    tree = await temporaryDirectory();
    for (const file of [
      "a.csv",
      "b.csv",
      "ab.csv",
      "notes.txt",
      ".hidden.csv",
      "data/x.csv",
      "data/y.json",
      "data/deep/z.csv",
      "data/deep/deeper/w.csv",
      "data/.cache/skip.csv",
      "other/x.csv",
      "weird/a+b (1).csv",
    ]) {
      await mkdir(dirname(join(tree.path, file)), { recursive: true });
      await writeFile(join(tree.path, file), file);
    }
    await mkdir(join(tree.path, "dir.csv"));
    // A link back up: following it would never end.
    await symlink(tree.path, join(tree.path, "data", "loop"));
  });
  afterAll(() => tree.remove());

  it.each([
    ["*.csv", ["a.csv", "ab.csv", "b.csv"]],
    ["?.csv", ["a.csv", "b.csv"]],
    ["a*", ["a.csv", "ab.csv"]],
    ["data/*.csv", ["data/x.csv"]],
    ["*/x.csv", ["data/x.csv", "other/x.csv"]],
    ["data/**/*.csv", ["data/deep/deeper/w.csv", "data/deep/z.csv", "data/x.csv"]],
    ["**/z.csv", ["data/deep/z.csv"]],
    ["data/deep", ["data/deep/deeper/w.csv", "data/deep/z.csv"]],
    ["data/deep/", ["data/deep/deeper/w.csv", "data/deep/z.csv"]],
    ["data/deep/**", ["data/deep/deeper/w.csv", "data/deep/z.csv"]],
    ["./other/*", ["other/x.csv"]],
    ["notes.txt", ["notes.txt"]],
    [".*.csv", [".hidden.csv"]],
    ["weird/a+b \\(?\\).csv", ["weird/a+b (1).csv"]],
    ["{a,b}.csv", ["a.csv", "b.csv"]],
    ["[ab].csv", ["a.csv", "b.csv"]],
    ["dir.csv", []],
    // A link named in the pattern is followed, as in a shell; `**` above never enters it.
    ["data/loop/*.csv", ["data/loop/a.csv", "data/loop/ab.csv", "data/loop/b.csv"]],
    ["missing/*.csv", []],
    ["*.parquet", []],
  ])("%s matches %j", async (pattern, expected) => {
    expect(await expandGlob(pattern, tree.path)).toEqual(expected);
  });

  it("returns absolute paths for an absolute pattern", async () => {
    expect(await expandGlob(join(tree.path, "data", "*.json"), "/")).toEqual([join(tree.path, "data", "y.json")]);
  });

  it("works relative to the directory it is given", async () => {
    expect(await expandGlob("*.csv", join(tree.path, "data"))).toEqual(["x.csv"]);
  });
});
