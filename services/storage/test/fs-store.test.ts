import { mkdir, readdir, stat, writeFile } from "node:fs/promises";
import * as http from "node:http";
import { join } from "node:path";
import { Readable } from "node:stream";
import { downloadFile, newExecutionId, silentLogger, TransferError, uploadFile } from "@rgrid/common";
import { ObjectKind } from "@rgrid/proto";
import type { Clock } from "../src/clock";
import { systemClock } from "../src/clock";
import type { FileSystemStore } from "../src/fs-store";
import { createFileSystemStore, IncompleteUploadError } from "../src/fs-store";
import { objectKey } from "../src/keys";
import { ObjectConflictError } from "../src/object-store";
import { createSignedUrlHandler } from "../src/signed-url-handler";
import { createUrlSigner } from "../src/url-signing";
import { listenOnFreePort, randomFile, readBytes, tempDir } from "./helpers";
import { describeObjectStoreContract } from "./object-store-contract";

interface FileSystemFixture {
  store: FileSystemStore;
  root: string;
  baseUrl: string;
  close(): Promise<void>;
}

/** A filesystem store in a temp dir, its signed URLs served by a server on a free port. */
async function openFileSystemStore(clock: Clock = systemClock, maxObjectBytes = 1024 ** 3): Promise<FileSystemFixture> {
  const root = await tempDir("fs-store");
  const signer = createUrlSigner("test-signing-key-0123456789abcdef");
  let baseUrl = "";
  const store = createFileSystemStore({ root: root.path, signer, clock, publicBaseUrl: () => baseUrl });
  const server = await listenOnFreePort(
    createSignedUrlHandler({ store, signer, clock, maxObjectBytes, logger: silentLogger }),
  );
  baseUrl = server.url;
  return {
    store,
    root: root.path,
    baseUrl,
    close: async () => {
      await server.close();
      await root.remove();
    },
  };
}

describeObjectStoreContract("filesystem", openFileSystemStore);

describe("filesystem store: signed URLs", () => {
  let fixture: FileSystemFixture;
  let work: { path: string; remove: () => Promise<void> };
  let now = new Date();
  const clock: Clock = { now: () => now };

  beforeEach(async () => {
    now = new Date();
    fixture = await openFileSystemStore(clock, 1000);
    work = await tempDir("fs-work");
  });

  afterEach(async () => {
    await fixture.close();
    await work.remove();
  });

  const key = () => objectKey(newExecutionId(), ObjectKind.INPUT, "sub/dir/file.bin");

  /** The status the server answers to a bare request, with an optional body. */
  const statusOf = (method: string, url: string, body?: Buffer): Promise<number> =>
    new Promise((resolve, reject) => {
      const request = http.request(url, { method, agent: false }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      request.on("error", reject);
      request.end(body);
    });

  const uploaded = async (objectKeyValue: string, size: number): Promise<void> => {
    const local = join(work.path, "up");
    await randomFile(local, size);
    await uploadFile(await fixture.store.uploadGrant(objectKeyValue, 60), local, size);
  };

  it("refuses an expired grant", async () => {
    const target = key();
    const grant = await fixture.store.uploadGrant(target, 30);
    now = new Date(now.getTime() + 31_000);
    const local = join(work.path, "in");
    await randomFile(local, 10);
    await expect(uploadFile(grant, local, 10)).rejects.toMatchObject({ status: 403 });
    expect(await fixture.store.stat(target)).toBeUndefined();
  });

  it("refuses a tampered signature, key, expiry or method", async () => {
    const target = key();
    await uploaded(target, 10);
    const grant = await fixture.store.downloadGrant(target, 60);
    const url = new URL(grant.url);
    const signature = url.searchParams.get("signature") ?? "";
    const flipped = (signature[0] === "0" ? "1" : "0") + signature.slice(1);

    const variants = [
      grant.url.replace(signature, flipped),
      grant.url.replace("file.bin", "other.bin"),
      grant.url.replace(/expires=(\d+)/, (_match, value: string) => `expires=${Number(value) + 1000}`),
      grant.url.replace("method=GET", "method=PUT"),
      grant.url.replace(/&signature=[0-9a-f]+/, ""),
    ];
    for (const variant of variants) {
      expect(await statusOf("GET", variant)).toBe(403);
    }
    // A GET grant does not allow a PUT to the same URL.
    expect(await statusOf("PUT", grant.url, Buffer.from("x"))).toBe(403);
    expect(await statusOf("GET", grant.url)).toBe(200);
  });

  it("answers 404 for a missing object and for paths that are not object URLs", async () => {
    const grant = await fixture.store.downloadGrant(key(), 60);
    expect(await statusOf("GET", grant.url)).toBe(404);
    expect(await statusOf("GET", `${fixture.baseUrl}/elsewhere`)).toBe(404);
    await expect(downloadFile(grant, join(work.path, "out"))).rejects.toBeInstanceOf(TransferError);
  });

  it("refuses objects over the size limit, announced or streamed, and keeps nothing", async () => {
    const target = key();
    const grant = await fixture.store.uploadGrant(target, 60);
    expect(await statusOf("PUT", grant.url, Buffer.alloc(1001))).toBe(413);

    // Chunked: no Content-Length, so the limit is enforced while streaming.
    const chunked = await new Promise<number>((resolve, reject) => {
      const request = http.request(grant.url, { method: "PUT", agent: false }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      request.on("error", reject);
      request.write(Buffer.alloc(600));
      request.end(Buffer.alloc(600));
    });
    expect(chunked).toBe(413);
    expect(await fixture.store.stat(target)).toBeUndefined();
    expect(await fixture.store.list("executions/")).toEqual([]);

    expect(await statusOf("PUT", grant.url, Buffer.alloc(1000))).toBe(200);
    expect(await fixture.store.stat(target)).toEqual({ key: target, sizeBytes: 1000 });
  });

  it("serves downloads with Content-Length", async () => {
    const target = key();
    await uploaded(target, 777);
    const grant = await fixture.store.downloadGrant(target, 60);
    const length = await new Promise<string | undefined>((resolve, reject) => {
      http
        .get(grant.url, { agent: false }, (res) => {
          res.resume();
          resolve(res.headers["content-length"]);
        })
        .on("error", reject);
    });
    expect(length).toBe("777");
  });
});

describe("filesystem store: atomic writes", () => {
  let fixture: FileSystemFixture;

  beforeEach(async () => {
    fixture = await openFileSystemStore();
  });

  afterEach(async () => {
    await fixture.close();
  });

  it("makes objects readable by the service's user only, as are the directories it makes for them", async () => {
    const executionId = newExecutionId();
    const target = objectKey(executionId, ObjectKind.INPUT, "data/private.csv");
    await fixture.store.write(target, Readable.from([Buffer.from("secret,row\n")]), { maxBytes: 100 });
    const copyId = newExecutionId();
    await fixture.store.copy(target, objectKey(copyId, ObjectKind.INPUT, "data/private.csv"));
    const modeOf = async (path: string) => (await stat(path)).mode & 0o777;
    const paths = await readdir(fixture.root, { recursive: true });
    const files = [];
    for (const path of paths) {
      if ((await stat(join(fixture.root, path))).isFile()) files.push(path);
    }
    expect(files).toHaveLength(2);
    for (const file of files) {
      expect([file, await modeOf(join(fixture.root, file))]).toEqual([file, 0o600]);
    }
    const dirsOf = (id: string) => [`executions/${id}`, `executions/${id}/inputs`, `executions/${id}/inputs/data`];
    for (const dir of [...dirsOf(executionId), ...dirsOf(copyId)]) {
      expect([dir, await modeOf(join(fixture.root, dir))]).toEqual([dir, 0o700]);
    }
  });

  it("keeps a body shorter than announced invisible and leaves no partial file", async () => {
    const target = objectKey(newExecutionId(), ObjectKind.INPUT, "short.bin");
    await expect(
      fixture.store.write(target, Readable.from([Buffer.alloc(10)]), { maxBytes: 100, expectedBytes: 20 }),
    ).rejects.toBeInstanceOf(IncompleteUploadError);
    expect(await fixture.store.stat(target)).toBeUndefined();
    expect(await allFiles(fixture.root)).toEqual([]);
  });

  it("keeps the previous object while a replacement fails", async () => {
    const target = objectKey(newExecutionId(), ObjectKind.OUTPUT, "kept.txt");
    await fixture.store.write(target, Readable.from([Buffer.from("first")]), { maxBytes: 100 });
    const failing = new Readable({
      read() {
        this.push(Buffer.from("partial"));
        this.destroy(new Error("client went away"));
      },
    });
    await expect(fixture.store.write(target, failing, { maxBytes: 100 })).rejects.toThrow("client went away");
    const opened = await fixture.store.open(target);
    const chunks: Buffer[] = [];
    for await (const chunk of opened?.stream ?? []) {
      chunks.push(chunk as Buffer);
    }
    expect(Buffer.concat(chunks).toString()).toBe("first");
    expect(await allFiles(fixture.root)).toHaveLength(1);
  });

  it("reports a name that collides with another object's path as a conflict", async () => {
    const id = newExecutionId();
    await fixture.store.write(objectKey(id, ObjectKind.INPUT, "a"), Readable.from([Buffer.from("x")]), { maxBytes: 10 });
    await expect(
      fixture.store.write(objectKey(id, ObjectKind.INPUT, "a/b"), Readable.from([Buffer.from("y")]), { maxBytes: 10 }),
    ).rejects.toBeInstanceOf(ObjectConflictError);
  });

  it("copies again into a target whose directories were removed since its last copy", async () => {
    const source = objectKey(newExecutionId(), ObjectKind.INPUT, "deep/path/x");
    const target = objectKey(newExecutionId(), ObjectKind.INPUT, "deep/path/x");
    await fixture.store.write(source, Readable.from([Buffer.from("bytes")]), { maxBytes: 10 });
    await fixture.store.copy(source, target);
    await fixture.store.delete([target]);
    expect(await fixture.store.stat(target)).toBeUndefined();

    expect(await fixture.store.copy(source, target)).toEqual({ source: { key: source, sizeBytes: 5 }, target: { key: target, sizeBytes: 5 } });
    expect(await fixture.store.stat(target)).toEqual({ key: target, sizeBytes: 5 });
  });

  it("removes emptied directories when deleting", async () => {
    const id = newExecutionId();
    const target = objectKey(id, ObjectKind.INPUT, "deep/path/x");
    await fixture.store.write(target, Readable.from([Buffer.from("x")]), { maxBytes: 10 });
    await fixture.store.delete([target]);
    expect(await readdir(fixture.root)).toEqual(["executions"]);
    expect(await readdir(join(fixture.root, "executions"))).toEqual([]);
  });

  it("downloads what was written, byte for byte", async () => {
    const target = objectKey(newExecutionId(), ObjectKind.INPUT, "bytes.bin");
    const bytes = Buffer.from(Array.from({ length: 256 }, (_value, index) => index));
    await fixture.store.write(target, Readable.from([bytes]), { maxBytes: 1000, expectedBytes: 256 });
    const local = join(fixture.root, "..", `${Date.now()}-download.bin`);
    await downloadFile(await fixture.store.downloadGrant(target, 60), local);
    expect((await readBytes(local)).equals(bytes)).toBe(true);
  });
});

describe("filesystem store: listing executions", () => {
  let fixture: FileSystemFixture;

  beforeEach(async () => {
    fixture = await openFileSystemStore();
  });

  afterEach(async () => {
    await fixture.close();
  });

  const writeObject = (key: string) => fixture.store.write(key, Readable.from([Buffer.from("x")]), { maxBytes: 10 });

  it("skips directories that hold no object or are not executions, and fills the page past them", async () => {
    const ids = Array.from({ length: 6 }, () => newExecutionId()).sort();
    const [withObject, empty, partialOnly, foreignNamed, second, third] = ids as [string, string, string, string, string, string];
    await writeObject(objectKey(withObject, ObjectKind.INPUT, "a"));
    await mkdir(join(fixture.root, "executions", empty, "inputs"), { recursive: true });
    await mkdir(join(fixture.root, "executions", partialOnly, "inputs"), { recursive: true });
    await writeFile(join(fixture.root, "executions", partialOnly, "inputs", "a.rgrid-partial-0123456789abcdef"), "x");
    await mkdir(join(fixture.root, "executions", `${foreignNamed}-copy`, "inputs"), { recursive: true });
    await writeFile(join(fixture.root, "executions", `${foreignNamed}-copy`, "inputs", "a"), "x");
    await writeFile(join(fixture.root, "executions", "exec_not_a_directory"), "x");
    await writeObject(objectKey(second, ObjectKind.SCRIPT, "s.py"));
    await writeObject(objectKey(third, ObjectKind.OUTPUT, "o/p.txt"));

    const listed = (after: string, limit: number) =>
      fixture.store.listExecutions(after, limit).then((found) => found.map((stored) => stored.executionId));
    expect(await listed("", 10)).toEqual([withObject, second, third]);
    expect(await listed("", 2)).toEqual([withObject, second]);
    expect(await listed(withObject, 1)).toEqual([second]);
  });
});

async function allFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries.filter((entry) => entry.isFile()).map((entry) => entry.name);
}
