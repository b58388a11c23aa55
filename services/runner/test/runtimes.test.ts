import { chmod, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { detectRuntimes, findExecutable } from "../src/runtimes";

let binDir: string;

beforeEach(async () => {
  binDir = await mkdtemp(path.join(tmpdir(), "rgrid-runtimes-"));
});

afterEach(async () => {
  await rm(binDir, { recursive: true, force: true });
});

const realPython = findExecutable("python3", process.env.PATH ?? "");

/** A fake interpreter on the search path that reports `executable` as its real location. */
async function fakePython(name: string, executable: string): Promise<void> {
  const file = path.join(binDir, name);
  await writeFile(file, `#!/bin/sh\necho ${executable}\n`);
  await chmod(file, 0o755);
}

describe("detectRuntimes", () => {
  it("offers only the wanted runtimes it finds, and names the missing ones", () => {
    const { catalog, missing } = detectRuntimes({ searchPath: binDir, wanted: ["python", "node"], nodeBinary: "/opt/node/bin/node" });
    expect(catalog.names).toEqual(["node"]);
    expect(missing).toEqual(["python"]);
    expect(catalog.resolve("node:20", "node")).toEqual({ family: "node", interpreter: "/opt/node/bin/node", env: {} });
    expect(catalog.resolve("python", "python")).toBeUndefined();
  });

  it("uses the real interpreter behind a shim, and the exact version when it exists", async () => {
    await fakePython("python3", "/opt/python/bin/python3.12");
    await fakePython("python3.11", "/opt/python/bin/python3.11");
    const { catalog } = detectRuntimes({ searchPath: binDir, nodeBinary: process.execPath });
    expect(catalog.names).toEqual(["python", "node"]);
    expect(catalog.resolve("python", "python")?.interpreter).toBe("/opt/python/bin/python3.12");
    expect(catalog.resolve("python:3.11", "python")?.interpreter).toBe("/opt/python/bin/python3.11");
    // A version the runner lacks falls back to its python3, as execution-service was told.
    expect(catalog.resolve("python:3.9", "python")?.interpreter).toBe("/opt/python/bin/python3.12");
    expect(catalog.resolve("python:3.11", "node")).toBeUndefined();
  });

  it("finds python3 on this machine", () => {
    expect(realPython).toBeDefined();
    const { catalog } = detectRuntimes({ searchPath: process.env.PATH ?? "", nodeBinary: process.execPath });
    expect(catalog.resolve("python", "python")?.interpreter).toMatch(/^\/.*python3/);
  });
});
