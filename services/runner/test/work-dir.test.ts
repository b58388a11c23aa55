import { chmod, mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { firstUnsearchableAncestor } from "../src/assemble";

describe("a work root scripts run as other users can reach", () => {
  let base: string;
  beforeEach(async () => {
    base = await mkdtemp(join(tmpdir(), "rgrid-workdir-"));
    await chmod(base, 0o755);
  });
  afterEach(async () => {
    await chmod(base, 0o755);
    await rm(base, { recursive: true, force: true });
  });

  test("is accepted when every directory above it lets others pass", async () => {
    expect(firstUnsearchableAncestor(join(base, "work"))).toBeUndefined();
  });

  test("is accepted when it and some parents do not exist yet", async () => {
    expect(firstUnsearchableAncestor(join(base, "not", "yet", "work"))).toBeUndefined();
  });

  test("names the first directory above it that others cannot pass through", async () => {
    const privateHome = join(base, "home");
    await mkdir(join(privateHome, "project"), { recursive: true });
    await chmod(privateHome, 0o700);
    expect(firstUnsearchableAncestor(join(privateHome, "project", ".rgrid", "work"))).toBe(privateHome);
  });
});
