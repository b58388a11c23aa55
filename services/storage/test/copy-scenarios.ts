import { createHash } from "node:crypto";
import { join } from "node:path";
import type { Client } from "@connectrpc/connect";
import { Code, ConnectError } from "@connectrpc/connect";
import { downloadFile, newExecutionId, uploadFile } from "@rgrid/common";
import type { ObjectInfo, StorageService } from "@rgrid/proto";
import { ObjectKind } from "@rgrid/proto";
import { randomFile, readBytes, tempDir } from "./helpers";

type StorageClient = Client<typeof StorageService>;

/** Uploads random files through upload grants from the service; returns their bytes by name. */
export async function uploadThroughGrants(
  client: StorageClient,
  executionId: string,
  objects: { kind: ObjectKind; name: string; size: number }[],
): Promise<Map<string, Buffer>> {
  const work = await tempDir("grants");
  try {
    const { grants } = await client.createUploadGrants({
      executionId,
      refs: objects.map(({ kind, name }) => ({ kind, name })),
    });
    const uploaded = new Map<string, Buffer>();
    for (const [index, object] of objects.entries()) {
      const grant = grants[index];
      if (grant === undefined) {
        throw new Error(`no grant for ${object.name}`);
      }
      expect(grant.name).toBe(object.name);
      const local = join(work.path, String(index));
      uploaded.set(object.name, await randomFile(local, object.size));
      await uploadFile(grant, local, object.size);
    }
    // As ConfirmUploads does: scripts and inputs are staged until committed into place.
    const staged = objects.filter(({ kind }) => kind !== ObjectKind.OUTPUT).map(({ kind, name }) => ({ kind, name }));
    if (staged.length > 0) {
      await client.commitUploads({ executionId, refs: staged });
    }
    return uploaded;
  } finally {
    await work.remove();
  }
}

/** The bytes of an object, fetched through a download grant. */
export async function downloadThroughGrant(client: StorageClient, executionId: string, kind: ObjectKind, name: string): Promise<Buffer> {
  const work = await tempDir("download");
  try {
    const { grants } = await client.createDownloadGrants({ executionId, refs: [{ kind, name }] });
    const local = join(work.path, "object");
    await downloadFile(grants[0] ?? unexpected("no download grant"), local);
    return await readBytes(local);
  } finally {
    await work.remove();
  }
}

/**
 * CopyInputs with one of its inputs missing from storage: the call must fail with
 * FailedPrecondition naming the input and leave nothing under the target. Shared by the
 * filesystem and S3 server tests.
 */
export async function expectAllOrNothingCopy(client: StorageClient): Promise<void> {
  const source = newExecutionId();
  const target = newExecutionId();
  await uploadThroughGrants(client, source, [
    { kind: ObjectKind.SCRIPT, name: "process.py", size: 100 },
    { kind: ObjectKind.INPUT, name: "a.json", size: 2000 },
    { kind: ObjectKind.INPUT, name: "b/c.csv", size: 3000 },
    { kind: ObjectKind.INPUT, name: "d.bin", size: 4000 },
  ]);

  const error = await client
    .copyInputs({
      sourceExecutionId: source,
      targetExecutionId: target,
      scriptName: "process.py",
      names: ["a.json", "b/c.csv", "data/in.json", "d.bin"],
    })
    .then(
      () => unexpected("CopyInputs succeeded with a missing input"),
      (caught: unknown) => ConnectError.from(caught),
    );
  expect(error.code).toBe(Code.FailedPrecondition);
  expect(error.rawMessage).toBe(`input 'data/in.json' of ${source} is missing from storage`);

  const { objects } = await client.listObjects({ executionId: target });
  expect(objects).toEqual([]);
  // The source is untouched.
  expect((await client.listObjects({ executionId: source })).objects).toHaveLength(4);
}

/** A successful CopyInputs: every object arrives byte-identical and the source stays. */
export async function expectCompleteCopy(client: StorageClient): Promise<void> {
  const source = newExecutionId();
  const target = newExecutionId();
  const bytes = await uploadThroughGrants(client, source, [
    { kind: ObjectKind.SCRIPT, name: "process.py", size: 321 },
    { kind: ObjectKind.INPUT, name: "input.json", size: 54_321 },
    { kind: ObjectKind.INPUT, name: "nested/dir/data.csv", size: 7 },
  ]);

  const { copied } = await client.copyInputs({
    sourceExecutionId: source,
    targetExecutionId: target,
    scriptName: "process.py",
    names: ["input.json", "nested/dir/data.csv"],
  });
  expect(copied.map((info) => [info.ref?.kind, info.ref?.name, info.exists, info.sizeBytes])).toEqual([
    [ObjectKind.SCRIPT, "process.py", true, 321n],
    [ObjectKind.INPUT, "input.json", true, 54_321n],
    [ObjectKind.INPUT, "nested/dir/data.csv", true, 7n],
  ]);
  for (const executionId of [target, source]) {
    await expectBytes(client, executionId, copied, bytes);
  }
}

/** Every object of `objects` under `executionId` has the bytes `bytes` holds under its name. */
async function expectBytes(client: StorageClient, executionId: string, objects: readonly ObjectInfo[], bytes: ReadonlyMap<string, Buffer>): Promise<void> {
  for (const { ref } of objects) {
    const downloaded = await downloadThroughGrant(client, executionId, ref?.kind ?? ObjectKind.UNSPECIFIED, ref?.name ?? "");
    expect(downloaded.equals(bytes.get(ref?.name ?? "") ?? Buffer.alloc(0))).toBe(true);
  }
}

/**
 * CopyInputsBatch with one copy whose input is missing: that copy alone is refused, with the
 * reason CopyInputs gives and nothing left under its target; the others arrive byte-identical,
 * two of them copies of one source (as concurrent retries of one original travel together).
 */
export async function expectBatchCopyRefusesOnlyTheBrokenCopy(client: StorageClient): Promise<void> {
  const sources = [newExecutionId(), newExecutionId(), newExecutionId()];
  const uploaded: Array<Map<string, Buffer>> = [];
  for (const source of sources) {
    uploaded.push(
      await uploadThroughGrants(client, source, [
        { kind: ObjectKind.SCRIPT, name: "process.py", size: 100 },
        { kind: ObjectKind.INPUT, name: "a.json", size: 2000 },
        { kind: ObjectKind.INPUT, name: "b/c.csv", size: 3000 },
      ]),
    );
  }
  const copies = sources.map((source, index) => ({
    sourceExecutionId: source,
    targetExecutionId: newExecutionId(),
    scriptName: "process.py",
    // The second copy asks for an input its source never had.
    names: index === 1 ? ["a.json", "missing.json", "b/c.csv"] : ["a.json", "b/c.csv"],
  }));
  copies.push({ ...copies[0]!, targetExecutionId: newExecutionId() });
  const sourceIndexOf = [0, 1, 2, 0];

  const { outcomes } = await client.copyInputsBatch({ copies });
  expect(outcomes.map((outcome) => outcome.refused)).toEqual(["", `input 'missing.json' of ${sources[1]} is missing from storage`, "", ""]);
  expect(outcomes[1]?.copied).toEqual([]);
  expect((await client.listObjects({ executionId: copies[1]!.targetExecutionId })).objects).toEqual([]);
  for (const index of [0, 2, 3]) {
    const { targetExecutionId } = copies[index]!;
    expect(outcomes[index]?.copied.map((info) => [info.ref?.kind, info.ref?.name, info.exists, info.sizeBytes])).toEqual([
      [ObjectKind.SCRIPT, "process.py", true, 100n],
      [ObjectKind.INPUT, "a.json", true, 2000n],
      [ObjectKind.INPUT, "b/c.csv", true, 3000n],
    ]);
    await expectBytes(client, targetExecutionId, outcomes[index]?.copied ?? [], uploaded[sourceIndexOf[index]!] ?? new Map());
  }
  // The sources are untouched, the broken one's included.
  for (const source of sources) {
    expect((await client.listObjects({ executionId: source })).objects).toHaveLength(3);
  }
}

function unexpected(message: string): never {
  throw new Error(message);
}

/**
 * An upload is invisible until committed, and once committed no grant can change it: a later
 * PUT through the same grant (different bytes of the same size) is refused or lands where it is
 * never read, a second commit keeps what is in place, and a copy for a retry carries the
 * committed bytes. `digestChecked`: the backend refuses bytes that do not match the grant's
 * SHA-256 as they arrive (the filesystem backend does; presigned S3 PUTs cannot).
 */
export async function expectCommittedUploadsImmutable(client: StorageClient, options: { digestChecked: boolean }): Promise<void> {
  const work = await tempDir("immutable");
  try {
    const id = newExecutionId();
    const ref = { kind: ObjectKind.SCRIPT, name: "process.py" };
    const original = await randomFile(join(work.path, "original"), 256);
    const tampered = await randomFile(join(work.path, "tampered"), 256);
    const sha256 = createHash("sha256").update(original).digest("hex");
    const [grant] = (await client.createUploadGrants({ executionId: id, refs: [{ ...ref, sha256 }] })).grants;
    if (grant === undefined) throw new Error("no grant");

    if (options.digestChecked) {
      await expect(uploadFile(grant, join(work.path, "tampered"), 256)).rejects.toThrow(/SHA-256/);
    }
    await uploadFile(grant, join(work.path, "original"), 256);
    expect((await client.statObjects({ executionId: id, refs: [ref] })).objects[0]?.exists).toBe(false);
    const committed = await client.commitUploads({ executionId: id, refs: [ref] });
    expect(committed.objects.map((info) => [info.exists, info.sizeBytes])).toEqual([[true, 256n]]);

    // The grant is still within its time, but the object is in place for good.
    const late = await uploadFile(grant, join(work.path, "tampered"), 256).then(
      () => "accepted",
      (error: unknown) => String(error),
    );
    if (options.digestChecked) {
      expect(late).toMatch(/no longer valid/);
    }
    expect(tampered.equals(original)).toBe(false);
    await client.commitUploads({ executionId: id, refs: [ref] });
    expect((await downloadThroughGrant(client, id, ref.kind, ref.name)).equals(original)).toBe(true);

    const retry = newExecutionId();
    await client.copyInputs({ sourceExecutionId: id, targetExecutionId: retry, scriptName: ref.name });
    expect((await downloadThroughGrant(client, retry, ref.kind, ref.name)).equals(original)).toBe(true);
  } finally {
    await work.remove();
  }
}

/**
 * Upload grants, commits and download grants of several executions, one call each: every
 * execution's grants come back in its request's order, and each commit answers what is in
 * place for its own execution (an upload never made: exists false). Committing again changes
 * nothing.
 */
export async function expectBatchGrantsAndCommits(client: StorageClient): Promise<void> {
  const [both, inputOnly, neverUploaded] = [newExecutionId(), newExecutionId(), newExecutionId()];
  const requests = [
    { executionId: both, refs: [{ kind: ObjectKind.SCRIPT, name: "s.py" }, { kind: ObjectKind.INPUT, name: "d/in.txt" }] },
    { executionId: inputOnly, refs: [{ kind: ObjectKind.INPUT, name: "x.txt" }] },
    { executionId: neverUploaded, refs: [{ kind: ObjectKind.SCRIPT, name: "s.py" }] },
  ];
  const { responses } = await client.createUploadGrantsBatch({ requests });
  expect(responses.map((response) => response.grants.map((grant) => grant.name))).toEqual([["s.py", "d/in.txt"], ["x.txt"], ["s.py"]]);
  const sizes = [[10, 2000], [7]];
  const work = await tempDir("batch-grants");
  try {
    for (const [requestIndex, fileSizes] of sizes.entries()) {
      for (const [index, size] of fileSizes.entries()) {
        const local = join(work.path, `${requestIndex}-${index}`);
        await randomFile(local, size);
        await uploadFile(responses[requestIndex]!.grants[index] ?? unexpected("no grant"), local, size);
      }
    }
  } finally {
    await work.remove();
  }
  // Staged, not yet in place.
  const before = await client.statObjects({ executionId: both, refs: requests[0]!.refs });
  expect(before.objects.map((object) => object.exists)).toEqual([false, false]);

  const committed = (await client.commitUploadsBatch({ requests })).responses.map((response) =>
    response.objects.map((object) => [object.ref?.name, object.exists, object.sizeBytes]),
  );
  const expected = [
    [
      ["s.py", true, 10n],
      ["d/in.txt", true, 2000n],
    ],
    [["x.txt", true, 7n]],
    [["s.py", false, 0n]],
  ];
  expect(committed).toEqual(expected);
  const again = (await client.commitUploadsBatch({ requests })).responses.map((response) =>
    response.objects.map((object) => [object.ref?.name, object.exists, object.sizeBytes]),
  );
  expect(again).toEqual(expected);
  expect((await client.listObjects({ executionId: neverUploaded })).objects).toEqual([]);

  // Downloads of what was committed, granted for both executions in one call, serve its bytes.
  const downloads = await client.createDownloadGrantsBatch({ requests: requests.slice(0, 2) });
  expect(downloads.responses.map((response) => response.grants.map((grant) => [grant.name, grant.method]))).toEqual([
    [
      ["s.py", "GET"],
      ["d/in.txt", "GET"],
    ],
    [["x.txt", "GET"]],
  ]);
  const fetched = await tempDir("batch-downloads");
  try {
    const local = join(fetched.path, "x.txt");
    await downloadFile(downloads.responses[1]!.grants[0] ?? unexpected("no grant"), local);
    expect((await readBytes(local)).length).toBe(7);
  } finally {
    await fetched.remove();
  }
}
