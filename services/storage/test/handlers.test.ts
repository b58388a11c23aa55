import { timestampMs } from "@bufbuild/protobuf/wkt";
import { createClient, createRouterTransport } from "@connectrpc/connect";
import { Code, ConnectError } from "@connectrpc/connect";
import { hideUnknownErrors, newExecutionId, silentLogger, validateRequests } from "@rgrid/common";
import { ObjectKind, StorageService } from "@rgrid/proto";
import { Readable } from "node:stream";
import { systemClock } from "../src/clock";
import { mapStorageErrors } from "../src/error-map";
import type { FileSystemStore } from "../src/fs-store";
import { createFileSystemStore } from "../src/fs-store";
import { BATCH_PARALLEL_COPIES, createStorageHandlers } from "../src/handlers";
import { objectKey } from "../src/keys";
import type { ObjectStore } from "../src/object-store";
import { StorageUnavailableError } from "../src/object-store";
import { storageRoutes } from "../src/routes";
import { createUrlSigner } from "../src/url-signing";
import { storageCodeRules } from "../src/validation";
import { tempDir } from "./helpers";

// Handlers over a real filesystem store, called through an in-memory transport with the
// service's error and validation interceptors. Failures are injected by wrapping the real store.

let root: { path: string; remove: () => Promise<void> };
let fsStore: FileSystemStore;

beforeEach(async () => {
  root = await tempDir("handlers");
  fsStore = createFileSystemStore({
    root: root.path,
    signer: createUrlSigner("handler-test-signing-key-0123456789"),
    publicBaseUrl: () => "http://storage.invalid",
    clock: systemClock,
  });
});

afterEach(async () => {
  await root.remove();
});

function clientFor(store: ObjectStore) {
  const handlers = createStorageHandlers({ store, grantTtlSeconds: 900, backendConcurrency: 3, logger: silentLogger });
  const transport = createRouterTransport(storageRoutes(handlers), {
    router: { interceptors: [hideUnknownErrors(silentLogger), mapStorageErrors(), validateRequests(storageCodeRules)] },
  });
  return createClient(StorageService, transport);
}

async function putInput(executionId: string, name: string, content: string): Promise<void> {
  await fsStore.write(objectKey(executionId, ObjectKind.INPUT, name), Readable.from([Buffer.from(content)]), { maxBytes: 1000 });
}

async function errorOf(call: Promise<unknown>): Promise<ConnectError> {
  return call.then(
    () => {
      throw new Error("call succeeded");
    },
    (error: unknown) => ConnectError.from(error),
  );
}

describe("CopyInputs", () => {
  it("removes every copy already made when a later one fails, and reports Unavailable", async () => {
    const source = newExecutionId();
    const target = newExecutionId();
    const names = ["a", "b", "c", "d", "e", "f"];
    for (const name of names) {
      await putInput(source, name, `content of ${name}`);
    }
    const failingKey = objectKey(source, ObjectKind.INPUT, "e");
    let completedCopies = 0;
    const flaky: ObjectStore = {
      ...fsStore,
      async copy(sourceKey, targetKey) {
        if (sourceKey === failingKey) {
          throw new StorageUnavailableError("object storage is unavailable (copy: ECONNRESET)");
        }
        const copied = await fsStore.copy(sourceKey, targetKey);
        completedCopies++;
        return copied;
      },
    };

    const error = await errorOf(clientFor(flaky).copyInputs({ sourceExecutionId: source, targetExecutionId: target, names }));

    expect(error.code).toBe(Code.Unavailable);
    expect(completedCopies).toBeGreaterThan(0);
    expect(await fsStore.list(`executions/${target}/`)).toEqual([]);
    expect(await fsStore.list(`executions/${source}/`)).toHaveLength(names.length);
  });

  it("refuses a copy whose target does not match the source, and rolls it back", async () => {
    const source = newExecutionId();
    const target = newExecutionId();
    await putInput(source, "in.txt", "0123456789");
    const truncating: ObjectStore = {
      ...fsStore,
      async copy(sourceKey, targetKey) {
        await fsStore.write(targetKey, Readable.from([Buffer.from("01234")]), { maxBytes: 100 });
        return { source: { key: sourceKey, sizeBytes: 10 }, target: await fsStore.stat(targetKey) };
      },
    };

    const error = await errorOf(
      clientFor(truncating).copyInputs({ sourceExecutionId: source, targetExecutionId: target, names: ["in.txt"] }),
    );

    // Not Aborted: callers take that for a connection reset and would call it transient.
    expect(error.code).toBe(Code.FailedPrecondition);
    expect(error.rawMessage).toBe(`copy of input 'in.txt' to ${target} has 5 bytes, expected 10`);
    expect(await fsStore.list(`executions/${target}/`)).toEqual([]);
  });

  it("copies nothing for an empty request", async () => {
    const result = await clientFor(fsStore).copyInputs({ sourceExecutionId: newExecutionId(), targetExecutionId: newExecutionId() });
    expect(result.copied).toEqual([]);
  });

  it("hides unknown failures as Internal", async () => {
    const broken: ObjectStore = {
      ...fsStore,
      async stat() {
        throw new Error("disk controller on fire at /dev/sda");
      },
    };
    const error = await errorOf(
      clientFor(broken).statObjects({ executionId: newExecutionId(), refs: [{ kind: ObjectKind.INPUT, name: "a" }] }),
    );
    expect(error.code).toBe(Code.Internal);
    expect(error.rawMessage).not.toContain("sda");
  });
});

describe("CopyInputsBatch", () => {
  /** A store whose copies take a while, as on a distant object store; counts the most at once. */
  const slowStore = () => {
    const seen = { inFlight: 0, most: 0 };
    const store: ObjectStore = {
      ...fsStore,
      async copy(sourceKey, targetKey) {
        seen.most = Math.max(seen.most, ++seen.inFlight);
        try {
          await new Promise((resolve) => setTimeout(resolve, 20));
          return await fsStore.copy(sourceKey, targetKey);
        } finally {
          seen.inFlight--;
        }
      },
    };
    return { store, seen };
  };

  it("runs several copies' worth of backend calls at once, as the separate CopyInputs it stands for would", async () => {
    const source = newExecutionId();
    const names = ["a", "b", "c", "d"];
    for (const name of names) {
      await putInput(source, name, `content of ${name}`);
    }
    const alone = slowStore();
    await clientFor(alone.store).copyInputs({ sourceExecutionId: source, targetExecutionId: newExecutionId(), names });
    // backendConcurrency (3) for one copy...
    expect(alone.seen.most).toBe(3);

    const together = slowStore();
    const copies = Array.from({ length: 8 }, () => ({ sourceExecutionId: source, targetExecutionId: newExecutionId(), names }));
    const { outcomes } = await clientFor(together.store).copyInputsBatch({ copies });
    expect(outcomes.map((outcome) => outcome.refused)).toEqual(copies.map(() => ""));
    // ...and BATCH_PARALLEL_COPIES times that for a batch of many, no more.
    expect(together.seen.most).toBe(3 * BATCH_PARALLEL_COPIES);
  });
});

describe("ListObjects", () => {
  it("reports names and kinds, all kinds when unspecified", async () => {
    const id = newExecutionId();
    await putInput(id, "x/y.txt", "12");
    await fsStore.write(objectKey(id, ObjectKind.OUTPUT, "out.txt"), Readable.from([Buffer.from("123")]), { maxBytes: 10 });
    const client = clientFor(fsStore);

    const all = await client.listObjects({ executionId: id });
    expect(all.objects.map((info) => [info.ref?.kind, info.ref?.name, info.sizeBytes])).toEqual([
      [ObjectKind.INPUT, "x/y.txt", 2n],
      [ObjectKind.OUTPUT, "out.txt", 3n],
    ]);
    const outputs = await client.listObjects({ executionId: id, kind: ObjectKind.OUTPUT });
    expect(outputs.objects.map((info) => info.ref?.name)).toEqual(["out.txt"]);
  });
});

describe("ListStoredExecutions", () => {
  it("pages with has_more, 1000 to a page when the size is left at zero, each with its newest object's time", async () => {
    const ids = Array.from({ length: 1002 }, () => newExecutionId()).sort();
    const before = Date.now() - 1000;
    for (const id of ids) {
      await putInput(id, "in.txt", "x");
    }
    const client = clientFor(fsStore);

    const first = await client.listStoredExecutions({});
    expect(first.executions.map((stored) => stored.executionId)).toEqual(ids.slice(0, 1000));
    expect(first.hasMore).toBe(true);
    const newestAt = first.executions[0]?.newestObjectAt;
    expect(newestAt === undefined ? 0 : timestampMs(newestAt)).toBeGreaterThanOrEqual(before);

    const rest = await client.listStoredExecutions({ afterExecutionId: ids[999], pageSize: 2 });
    expect(rest.executions.map((stored) => stored.executionId)).toEqual(ids.slice(1000));
    expect(rest.hasMore).toBe(false);

    const middle = await client.listStoredExecutions({ afterExecutionId: ids[0], pageSize: 1 });
    expect(middle.executions.map((stored) => stored.executionId)).toEqual([ids[1]]);
    expect(middle.hasMore).toBe(true);
  });

  it("answers an empty last page for an empty store", async () => {
    const page = await clientFor(fsStore).listStoredExecutions({ pageSize: 5 });
    expect(page.executions).toEqual([]);
    expect(page.hasMore).toBe(false);
  });

  it.each([
    [{ afterExecutionId: "exec_123" }, "after_execution_id"],
    [{ afterExecutionId: "../../etc" }, "after_execution_id"],
    [{ pageSize: -1 }, "page_size"],
    [{ pageSize: 1001 }, "page_size"],
  ])("refuses %j as InvalidArgument naming %s", async (request, field) => {
    const error = await errorOf(clientFor(fsStore).listStoredExecutions(request));
    expect(error.code).toBe(Code.InvalidArgument);
    expect(error.rawMessage).toContain(`invalid ${field}:`);
  });
});
