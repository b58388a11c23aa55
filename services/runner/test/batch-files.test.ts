import { createHash } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { createBatchFiles } from "../src/batch-files";

const BATCH = `batch_${"1".repeat(32)}`;
const OTHER_BATCH = `batch_${"2".repeat(32)}`;
const digestOf = (bytes: Buffer) => ({ sizeBytes: bytes.length, sha256: createHash("sha256").update(bytes).digest("hex") });

describe("batch files", () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "rgrid-batch-files-"));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const fileWith = async (name: string, bytes: Buffer): Promise<string> => {
    const file = path.join(dir, name);
    await writeFile(file, bytes);
    return file;
  };

  it("writes a kept file for the same batch and digest only", async () => {
    const files = createBatchFiles();
    const bytes = Buffer.from("print(1)\n");
    await files.keep(BATCH, digestOf(bytes), await fileWith("downloaded", bytes));

    expect(await files.writeTo(BATCH, digestOf(bytes), path.join(dir, "copy"))).toBe(true);
    expect(await readFile(path.join(dir, "copy"))).toEqual(bytes);
    expect(await files.writeTo(OTHER_BATCH, digestOf(bytes), path.join(dir, "other"))).toBe(false);
    expect(await files.writeTo(BATCH, digestOf(Buffer.from("print(2)\n")), path.join(dir, "changed"))).toBe(false);
  });

  it("keeps nothing whose bytes do not match their digest, and nothing over 256 KiB", async () => {
    const files = createBatchFiles();
    const claimed = digestOf(Buffer.from("print(1)\n"));
    await files.keep(BATCH, claimed, await fileWith("tampered", Buffer.from("print(666)\n")));
    expect(await files.writeTo(BATCH, claimed, path.join(dir, "a"))).toBe(false);

    const large = Buffer.alloc(256 * 1024 + 1, 0x61);
    await files.keep(BATCH, digestOf(large), await fileWith("large", large));
    expect(await files.writeTo(BATCH, digestOf(large), path.join(dir, "b"))).toBe(false);
  });

  it("never writes over a file that is already there", async () => {
    const files = createBatchFiles();
    const bytes = Buffer.from("x");
    await files.keep(BATCH, digestOf(bytes), await fileWith("downloaded", bytes));
    await expect(files.writeTo(BATCH, digestOf(bytes), await fileWith("taken", Buffer.from("mine")))).rejects.toThrow(/EEXIST/);
    expect(await readFile(path.join(dir, "taken"), "utf8")).toBe("mine");
  });

  it("lets the least recently used go first once 4 MiB are kept", async () => {
    const files = createBatchFiles();
    const contents = Array.from({ length: 17 }, (_, index) => Buffer.alloc(256 * 1024, index));
    for (const [index, bytes] of contents.entries()) {
      if (index === 16) {
        // Used again just before the 17th arrives: the second file is now the least recent.
        expect(await files.writeTo(BATCH, digestOf(contents[0]!), path.join(dir, "first-again"))).toBe(true);
      }
      await files.keep(BATCH, digestOf(bytes), await fileWith(`f${index}`, bytes));
    }
    expect(await files.writeTo(BATCH, digestOf(contents[0]!), path.join(dir, "first"))).toBe(true);
    expect(await files.writeTo(BATCH, digestOf(contents[1]!), path.join(dir, "second"))).toBe(false);
    expect(await files.writeTo(BATCH, digestOf(contents[16]!), path.join(dir, "last"))).toBe(true);
  });
});
