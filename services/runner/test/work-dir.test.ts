import { statSync } from "node:fs";
import { chmod, chown, mkdir, mkdtemp, rm, symlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { firstUnsearchableAncestor } from "../src/assemble";
import { UnsafeWorkRootError, checkWorkRoot } from "../src/work-root";

const isRoot = process.getuid?.() === 0;

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

describe("a work root the runner trusts", () => {
  let base: string;
  beforeEach(async () => {
    base = await mkdtemp(join(tmpdir(), "rgrid-workroot-"));
  });
  afterEach(async () => {
    await rm(base, { recursive: true, force: true });
  });

  test("is created when missing, with its parents: others may pass through but not list or write", () => {
    const workDir = join(base, "new", "work");
    checkWorkRoot(workDir, isRoot);
    expect(statSync(workDir).mode & 0o777).toBe(0o711);
    expect(statSync(join(base, "new")).mode & 0o777).toBe(0o711);
  });

  test("is refused when it is a symbolic link", async () => {
    await mkdir(join(base, "elsewhere"));
    await symlink(join(base, "elsewhere"), join(base, "work"));
    expect(() => checkWorkRoot(join(base, "work"), isRoot)).toThrow(new UnsafeWorkRootError(join(base, "work"), "is a symbolic link"));
  });

  test("is refused when others can write to it", async () => {
    const workDir = join(base, "work");
    await mkdir(workDir);
    await chmod(workDir, 0o777);
    expect(() => checkWorkRoot(workDir, isRoot)).toThrow(/can be written by others \(mode 777; chmod go-w /);
  });

  (isRoot ? test : test.skip)("is refused, when the runner is root, if another user owns it", async () => {
    const workDir = join(base, "work");
    await mkdir(workDir, { mode: 0o700 });
    await chown(workDir, 65534, 65534);
    expect(() => checkWorkRoot(workDir, true)).toThrow(/is owned by uid 65534, not root/);
  });
});
