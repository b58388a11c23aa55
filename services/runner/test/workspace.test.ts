import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { createWorkspace } from "../src/workspace";

describe("findOutputs", () => {
  let root: string;
  beforeEach(async () => {
    root = await mkdtemp(path.join(tmpdir(), "rgrid-workspace-"));
  });
  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it("collects the first files up to the limit, in name order, and says there were more", async () => {
    const workspace = await createWorkspace(root, "exec_test");
    await mkdir(path.join(workspace.dir, "b"));
    for (const name of ["a.txt", "b/1.txt", "b/2.txt", "c.txt", "d.txt"]) {
      await writeFile(path.join(workspace.dir, name), name);
    }
    const scan = await workspace.findOutputs(3);
    expect(scan.files.map((file) => file.name)).toEqual(["a.txt", "b/1.txt", "b/2.txt"]);
    expect(scan.overLimit).toBe(true);

    const all = await workspace.findOutputs(5);
    expect(all.files).toHaveLength(5);
    expect(all.overLimit).toBe(false);
  });
});
