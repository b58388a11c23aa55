import { join } from "node:path";
import { downloadFile, newExecutionId, uploadFile } from "@rgrid/common";
import { ObjectKind } from "@rgrid/proto";
import { objectKey } from "../src/keys";
import type { ObjectStore } from "../src/object-store";
import { ObjectNotFoundError } from "../src/object-store";
import { randomFile, readBytes, tempDir, waitUntil } from "./helpers";

export interface StoreFixture {
  store: ObjectStore;
  close(): Promise<void>;
}

/**
 * What every ObjectStore backend must do, checked against the real backend with real grant URLs.
 * Each backend's test file calls this with a factory that opens a fresh, empty store.
 */
export function describeObjectStoreContract(backend: string, openStore: () => Promise<StoreFixture>): void {
  describe(`ObjectStore contract: ${backend}`, () => {
    let fixture: StoreFixture;
    let work: { path: string; remove: () => Promise<void> };

    beforeEach(async () => {
      fixture = await openStore();
      work = await tempDir("contract");
    });

    afterEach(async () => {
      await fixture.close();
      await work.remove();
    });

    /** Uploads `size` random bytes through an upload grant and returns them. */
    const put = async (key: string, size: number): Promise<Buffer> => {
      const local = join(work.path, `upload-${Math.random().toString(16).slice(2)}`);
      const bytes = await randomFile(local, size);
      await uploadFile(await fixture.store.uploadGrant(key, 60), local, size);
      return bytes;
    };

    const get = async (key: string): Promise<Buffer> => {
      const local = join(work.path, `download-${Math.random().toString(16).slice(2)}`);
      await downloadFile(await fixture.store.downloadGrant(key, 60), local);
      return readBytes(local);
    };

    it("stores an upload through a grant and serves identical bytes through a download grant", async () => {
      const id = newExecutionId();
      const key = objectKey(id, ObjectKind.INPUT, "data/nested/in.json");
      const bytes = await put(key, 300_000);

      expect(await fixture.store.stat(key)).toEqual({ key, sizeBytes: bytes.length });
      expect(await fixture.store.list(`executions/${id}/`)).toEqual([{ key, sizeBytes: bytes.length }]);
      expect((await get(key)).equals(bytes)).toBe(true);
    });

    it("grants carry their expiry and the method to use", async () => {
      const key = objectKey(newExecutionId(), ObjectKind.SCRIPT, "main.py");
      const before = Date.now();
      const upload = await fixture.store.uploadGrant(key, 120);
      const download = await fixture.store.downloadGrant(key, 120);
      expect(upload.method).toBe("PUT");
      expect(download.method).toBe("GET");
      for (const grant of [upload, download]) {
        expect(grant.expiresAt.getTime()).toBeGreaterThanOrEqual(before + 119_000);
        expect(grant.expiresAt.getTime()).toBeLessThanOrEqual(Date.now() + 120_000);
      }
    });

    it("replaces an object uploaded twice", async () => {
      const key = objectKey(newExecutionId(), ObjectKind.OUTPUT, "result.txt");
      await put(key, 1000);
      const second = await put(key, 10);
      expect((await get(key)).equals(second)).toBe(true);
      expect(await fixture.store.stat(key)).toEqual({ key, sizeBytes: 10 });
    });

    it("writes an object put whole, replacing an earlier one, and serves it like any other", async () => {
      const key = objectKey(newExecutionId(), ObjectKind.LOG, "log.jsonl");
      await fixture.store.put(key, Buffer.from('{"sequence":1}\n'));
      const replacement = Buffer.from('{"sequence":1}\n{"sequence":2}\n');
      await fixture.store.put(key, replacement);

      expect(await fixture.store.stat(key)).toEqual({ key, sizeBytes: replacement.length });
      expect((await get(key)).equals(replacement)).toBe(true);
      const empty = objectKey(newExecutionId(), ObjectKind.LOG, "log.jsonl");
      await fixture.store.put(empty, new Uint8Array(0));
      expect(await fixture.store.stat(empty)).toEqual({ key: empty, sizeBytes: 0 });
    });

    it("copies byte-identically and leaves the source intact", async () => {
      const source = objectKey(newExecutionId(), ObjectKind.INPUT, "dir/a.bin");
      const target = objectKey(newExecutionId(), ObjectKind.INPUT, "dir/a.bin");
      const bytes = await put(source, 123_457);

      const copied = await fixture.store.copy(source, target);

      expect(copied).toEqual({ source: { key: source, sizeBytes: bytes.length }, target: { key: target, sizeBytes: bytes.length } });
      expect((await get(target)).equals(bytes)).toBe(true);
      expect((await get(source)).equals(bytes)).toBe(true);
      expect(await fixture.store.stat(target)).toEqual({ key: target, sizeBytes: bytes.length });
    });

    it("copies an empty object", async () => {
      const source = objectKey(newExecutionId(), ObjectKind.INPUT, "empty.txt");
      const target = objectKey(newExecutionId(), ObjectKind.INPUT, "empty.txt");
      await put(source, 0);
      await fixture.store.copy(source, target);
      expect(await fixture.store.stat(target)).toEqual({ key: target, sizeBytes: 0 });
    });

    it("reports a missing object as absent and refuses to copy it", async () => {
      const missing = objectKey(newExecutionId(), ObjectKind.INPUT, "nope.txt");
      const target = objectKey(newExecutionId(), ObjectKind.INPUT, "nope.txt");
      expect(await fixture.store.stat(missing)).toBeUndefined();
      await expect(fixture.store.copy(missing, target)).rejects.toBeInstanceOf(ObjectNotFoundError);
      expect(await fixture.store.stat(target)).toBeUndefined();
      expect(await fixture.store.list(`executions/`)).toEqual([]);
    });

    it("lists by prefix, separating kinds and executions", async () => {
      const id = newExecutionId();
      const other = newExecutionId();
      await put(objectKey(id, ObjectKind.SCRIPT, "main.py"), 5);
      await put(objectKey(id, ObjectKind.INPUT, "a/b/c.txt"), 6);
      await put(objectKey(id, ObjectKind.INPUT, "z.txt"), 7);
      await put(objectKey(other, ObjectKind.INPUT, "z.txt"), 8);

      const inputs = await fixture.store.list(`executions/${id}/inputs/`);
      expect(inputs.map((object) => [object.key, object.sizeBytes]).sort()).toEqual([
        [objectKey(id, ObjectKind.INPUT, "a/b/c.txt"), 6],
        [objectKey(id, ObjectKind.INPUT, "z.txt"), 7],
      ]);
      expect(await fixture.store.list(`executions/${id}/`)).toHaveLength(3);
      expect(await fixture.store.list(`executions/${newExecutionId()}/`)).toEqual([]);
    });

    it("deletes an execution's objects and only those; deleting nothing is fine", async () => {
      const id = newExecutionId();
      const other = newExecutionId();
      const keys = [objectKey(id, ObjectKind.SCRIPT, "s.py"), objectKey(id, ObjectKind.INPUT, "deep/er/x.json")];
      for (const key of keys) {
        await put(key, 50);
      }
      const kept = objectKey(other, ObjectKind.INPUT, "x.json");
      const keptBytes = await put(kept, 20);

      await fixture.store.delete(keys);

      expect(await fixture.store.list(`executions/${id}/`)).toEqual([]);
      for (const key of keys) {
        expect(await fixture.store.stat(key)).toBeUndefined();
      }
      expect((await get(kept)).equals(keptBytes)).toBe(true);

      await fixture.store.delete([]);
      await fixture.store.delete(keys); // already gone
      expect(await fixture.store.stat(kept)).toEqual({ key: kept, sizeBytes: 20 });
    });

    it("pages through the executions that have objects, in id order, after a given id", async () => {
      const ids = [newExecutionId(), newExecutionId(), newExecutionId()].sort();
      const [first, second, third] = ids as [string, string, string];
      const before = Date.now();
      await put(objectKey(first, ObjectKind.SCRIPT, "main.py"), 5);
      await put(objectKey(first, ObjectKind.INPUT, "deep/er/in.json"), 6);
      await put(objectKey(second, ObjectKind.OUTPUT, "out.txt"), 7);
      await put(objectKey(third, ObjectKind.INPUT, "x"), 8);
      const after = Date.now();

      const all = await fixture.store.listExecutions("", 10);
      expect(all.map((stored) => stored.executionId)).toEqual(ids);
      for (const stored of all) {
        // Backends keep times in whole seconds at worst.
        expect(stored.newestObjectAt.getTime()).toBeGreaterThanOrEqual(before - 1000);
        expect(stored.newestObjectAt.getTime()).toBeLessThanOrEqual(after + 1000);
      }
      expect((await fixture.store.listExecutions("", 2)).map((stored) => stored.executionId)).toEqual([first, second]);
      expect((await fixture.store.listExecutions(first, 1)).map((stored) => stored.executionId)).toEqual([second]);
      expect((await fixture.store.listExecutions(second, 5)).map((stored) => stored.executionId)).toEqual([third]);
      expect(await fixture.store.listExecutions(third, 5)).toEqual([]);

      await fixture.store.delete([objectKey(second, ObjectKind.OUTPUT, "out.txt")]);
      expect((await fixture.store.listExecutions(first, 1)).map((stored) => stored.executionId)).toEqual([third]);
    });

    it("lists no executions in an empty store", async () => {
      expect(await fixture.store.listExecutions("", 1000)).toEqual([]);
    });

    it("dates an execution by its newest object, and a copy by when it was copied", async () => {
      const [source, target] = [newExecutionId(), newExecutionId()].sort() as [string, string];
      await put(objectKey(source, ObjectKind.SCRIPT, "main.py"), 5);
      const [written] = await fixture.store.listExecutions("", 10);
      const writtenAt = written?.newestObjectAt.getTime() ?? Number.NaN;
      // Past the coarsest time resolution a backend has (whole seconds), so "later" is visible.
      await waitUntil(() => Date.now() > writtenAt + 1100);

      await fixture.store.copy(objectKey(source, ObjectKind.SCRIPT, "main.py"), objectKey(target, ObjectKind.SCRIPT, "main.py"));
      const copied = await fixture.store.listExecutions(source, 10);
      expect(copied.map((stored) => stored.executionId)).toEqual([target]);
      expect(copied[0]?.newestObjectAt.getTime()).toBeGreaterThan(writtenAt);

      await put(objectKey(source, ObjectKind.OUTPUT, "later.txt"), 3);
      const [rewritten] = await fixture.store.listExecutions("", 1);
      expect(rewritten?.executionId).toBe(source);
      expect(rewritten?.newestObjectAt.getTime()).toBeGreaterThan(writtenAt);
    });

    it("handles names with spaces and non-ASCII characters", async () => {
      const key = objectKey(newExecutionId(), ObjectKind.INPUT, "my data/résumé #1 (final)?.txt");
      const bytes = await put(key, 64);
      expect((await get(key)).equals(bytes)).toBe(true);
      expect(await fixture.store.stat(key)).toEqual({ key, sizeBytes: 64 });
    });
  });
}
