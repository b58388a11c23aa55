import { createClient } from "@connectrpc/connect";
import { Code, ConnectError } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { newExecutionId } from "@rgrid/common";
import { Health, HealthCheckResponse_ServingStatus, ObjectKind } from "@rgrid/proto";
import { expectAllOrNothingCopy, expectBatchCopyRefusesOnlyTheBrokenCopy, expectBatchGrantsAndCommits, expectCommittedUploadsImmutable, expectCompleteCopy, uploadThroughGrants } from "./copy-scenarios";
import type { RunningStorage } from "./server-harness";
import { INTERNAL_TOKEN, startStorage, storageClient } from "./server-harness";

let storage: RunningStorage;

beforeEach(async () => {
  storage = await startStorage();
});

afterEach(async () => {
  await storage.stop();
});

async function codeOf(call: Promise<unknown>): Promise<{ code: Code; message: string }> {
  try {
    await call;
  } catch (error) {
    const connectError = ConnectError.from(error);
    return { code: connectError.code, message: connectError.rawMessage };
  }
  throw new Error("call succeeded");
}

describe("storage server over the wire", () => {
  it("answers the health check without a token over gRPC and Connect", async () => {
    const viaConnect = createClient(Health, storage.connect(undefined));
    expect((await viaConnect.check({})).status).toBe(HealthCheckResponse_ServingStatus.SERVING);
    expect((await viaConnect.check({ service: "rgrid.v1.StorageService" })).status).toBe(
      HealthCheckResponse_ServingStatus.SERVING,
    );
    const viaGrpc = createClient(Health, createGrpcTransport({ baseUrl: storage.running.url }));
    expect((await viaGrpc.check({})).status).toBe(HealthCheckResponse_ServingStatus.SERVING);
  });

  it("refuses StorageService calls without the internal token or with a wrong one", async () => {
    const request = { executionId: newExecutionId() };
    const anonymous = storageClient(storage.connect(undefined));
    const wrong = storageClient(storage.connect("not-the-internal-token-at-all"));
    expect((await codeOf(anonymous.listObjects(request))).code).toBe(Code.Unauthenticated);
    expect((await codeOf(wrong.listObjects(request))).code).toBe(Code.Unauthenticated);
    expect((await codeOf(wrong.deleteExecutionObjects(request))).code).toBe(Code.Unauthenticated);
    const right = storageClient(storage.connect(INTERNAL_TOKEN));
    expect((await right.listObjects(request)).objects).toEqual([]);
  });

  it("uploads through grants, stats, copies, lists and deletes end to end over gRPC", async () => {
    const client = storage.grpc;
    const id = newExecutionId();
    await uploadThroughGrants(client, id, [
      { kind: ObjectKind.SCRIPT, name: "process.py", size: 120 },
      { kind: ObjectKind.INPUT, name: "data/in.json", size: 4096 },
    ]);

    const { objects } = await client.statObjects({
      executionId: id,
      refs: [
        { kind: ObjectKind.INPUT, name: "data/in.json" },
        { kind: ObjectKind.INPUT, name: "absent.txt" },
        { kind: ObjectKind.SCRIPT, name: "process.py" },
      ],
    });
    expect(objects.map((info) => [info.ref?.name, info.exists, info.sizeBytes])).toEqual([
      ["data/in.json", true, 4096n],
      ["absent.txt", false, 0n],
      ["process.py", true, 120n],
    ]);

    const inputs = await client.listObjects({ executionId: id, kind: ObjectKind.INPUT });
    expect(inputs.objects.map((info) => info.ref?.name)).toEqual(["data/in.json"]);

    await expectCompleteCopy(client);

    expect((await client.deleteExecutionObjects({ executionId: id })).deletedCount).toBe(2);
    expect((await client.listObjects({ executionId: id })).objects).toEqual([]);
    expect((await client.deleteExecutionObjects({ executionId: id })).deletedCount).toBe(0);
  });

  it("keeps committed uploads immutable: no grant changes them, and bytes must match the grant's SHA-256", async () => {
    await expectCommittedUploadsImmutable(storage.grpc, { digestChecked: true });
  });

  it("works over the Connect protocol on HTTP/1.1 too", async () => {
    await expectCompleteCopy(storageClient(storage.connect(INTERNAL_TOKEN)));
  });

  it("fails CopyInputs with FailedPrecondition naming the missing input and copies nothing", async () => {
    await expectAllOrNothingCopy(storage.grpc);
  });

  it("refuses, in CopyInputsBatch, only the copy whose input is missing, leaving nothing of it, and makes the others", async () => {
    await expectBatchCopyRefusesOnlyTheBrokenCopy(storage.grpc);
  });

  it("refuses only the copy with a missing input among many, round after round, in a batch and alone", async () => {
    // The missing input's failed link removes the empty directories made for its target while the
    // other inputs of the same copy link there; whichever comes first, only that copy is refused.
    const sources = [newExecutionId(), newExecutionId()];
    const names = Array.from({ length: 12 }, (_, index) => `in-${index}.txt`);
    for (const source of sources) {
      await uploadThroughGrants(storage.grpc, source, names.map((name) => ({ kind: ObjectKind.INPUT, name, size: 3 })));
    }
    for (let round = 0; round < 10; round++) {
      const copies = sources.map((source, index) => ({
        sourceExecutionId: source,
        targetExecutionId: newExecutionId(),
        names: index === 0 ? [...names.slice(0, 6), "missing.txt", ...names.slice(6)] : names,
      }));
      const { outcomes } = await storage.grpc.copyInputsBatch({ copies });
      expect(outcomes.map((outcome) => outcome.refused)).toEqual([`input 'missing.txt' of ${sources[0]} is missing from storage`, ""]);
      expect((await storage.grpc.listObjects({ executionId: copies[0]!.targetExecutionId })).objects).toEqual([]);
      expect((await storage.grpc.listObjects({ executionId: copies[1]!.targetExecutionId })).objects).toHaveLength(names.length);

      const single = await storage.grpc.copyInputs(copies[0]!).catch((error: unknown) => ConnectError.from(error));
      expect(single).toBeInstanceOf(ConnectError);
      expect((single as ConnectError).code).toBe(Code.FailedPrecondition);
    }
  });

  it("grants uploads, commits them and grants their downloads for several executions in one call each", async () => {
    await expectBatchGrantsAndCommits(storage.grpc);
  });

  it("names a missing script", async () => {
    const source = newExecutionId();
    await uploadThroughGrants(storage.grpc, source, [{ kind: ObjectKind.INPUT, name: "a.txt", size: 5 }]);
    const result = await codeOf(
      storage.grpc.copyInputs({ sourceExecutionId: source, targetExecutionId: newExecutionId(), scriptName: "main.py", names: ["a.txt"] }),
    );
    expect(result).toEqual({ code: Code.FailedPrecondition, message: `script 'main.py' of ${source} is missing from storage` });
  });

  it("hands out grants with expiry", async () => {
    const before = Date.now();
    const { grants } = await storage.grpc.createUploadGrants({
      executionId: newExecutionId(),
      refs: [{ kind: ObjectKind.OUTPUT, name: "out/result.txt" }],
      ttlSeconds: 60,
    });
    const expiresAt = Number(grants[0]?.expiresAt?.seconds ?? 0n) * 1000;
    expect(expiresAt).toBeGreaterThanOrEqual(before + 59_000);
    expect(expiresAt).toBeLessThanOrEqual(Date.now() + 60_000);
    expect(grants[0]?.url.startsWith(`${storage.running.url}/objects/`)).toBe(true);
  });

  it("stores logs in place in one call, each readable through a download grant, a second write replacing the first", async () => {
    const first = newExecutionId();
    const second = newExecutionId();
    await storage.grpc.storeLogs({ logs: [{ executionId: first, content: Buffer.from("old\n") }] });
    await storage.grpc.storeLogs({
      logs: [
        { executionId: first, content: Buffer.from('{"sequence":1,"line":"one"}\n') },
        { executionId: second, content: Buffer.from('{"sequence":1,"line":"two"}\n') },
      ],
    });
    const read = async (executionId: string) => {
      const { grants } = await storage.grpc.createDownloadGrants({ executionId, refs: [{ kind: ObjectKind.LOG, name: "log.jsonl" }] });
      const response = await fetch(grants[0]!.url, { method: grants[0]!.method, headers: grants[0]!.headers });
      return response.text();
    };
    expect(await read(first)).toBe('{"sequence":1,"line":"one"}\n');
    expect(await read(second)).toBe('{"sequence":1,"line":"two"}\n');
  });

  it("refuses a StoreLogs that names an execution twice or carries a log over 1 MiB, writing none of it", async () => {
    const executionId = newExecutionId();
    const other = newExecutionId();
    const twice = await codeOf(
      storage.grpc.storeLogs({ logs: [{ executionId, content: Buffer.from("a\n") }, { executionId, content: Buffer.from("b\n") }] }),
    );
    expect(twice).toEqual({ code: Code.InvalidArgument, message: expect.stringMatching(/^invalid logs: each execution id may appear once/) });
    const tooLarge = await codeOf(
      storage.grpc.storeLogs({ logs: [{ executionId: other, content: Buffer.from("small\n") }, { executionId, content: Buffer.alloc(1024 * 1024 + 1, 0x61) }] }),
    );
    expect(tooLarge).toEqual({ code: Code.InvalidArgument, message: expect.stringMatching(/^invalid logs\[1\]\.content: /) });
    for (const id of [executionId, other]) {
      expect((await storage.grpc.listObjects({ executionId: id })).objects).toEqual([]);
    }
  });

  describe("invalid input is InvalidArgument naming the field", () => {
    const source = newExecutionId();
    const cases: { what: string; call: () => Promise<unknown>; field: string }[] = [
      { what: "a malformed id", call: () => storage.grpc.listObjects({ executionId: "exec_123" }), field: "execution_id" },
      { what: "an uppercase id", call: () => storage.grpc.deleteExecutionObjects({ executionId: source.toUpperCase() }), field: "execution_id" },
      {
        what: "a bad source id",
        call: () => storage.grpc.copyInputs({ sourceExecutionId: "x", targetExecutionId: newExecutionId() }),
        field: "source_execution_id",
      },
      {
        what: "source equal to target",
        call: () => storage.grpc.copyInputs({ sourceExecutionId: source, targetExecutionId: source }),
        field: "target_execution_id",
      },
      {
        what: "a '..' input name",
        call: () => storage.grpc.copyInputs({ sourceExecutionId: source, targetExecutionId: newExecutionId(), names: ["../etc/passwd"] }),
        field: "names[0]",
      },
      {
        what: "an absolute input name",
        call: () => storage.grpc.copyInputs({ sourceExecutionId: source, targetExecutionId: newExecutionId(), names: ["/etc/passwd"] }),
        field: "names[0]",
      },
      {
        what: "a NUL in an input name",
        call: () => storage.grpc.copyInputs({ sourceExecutionId: source, targetExecutionId: newExecutionId(), names: ["a\u0000b"] }),
        field: "names[0]",
      },
      {
        what: "a repeated input name",
        call: () => storage.grpc.copyInputs({ sourceExecutionId: source, targetExecutionId: newExecutionId(), names: ["a", "a"] }),
        field: "names",
      },
      {
        what: "a '..' script name",
        call: () => storage.grpc.copyInputs({ sourceExecutionId: source, targetExecutionId: newExecutionId(), scriptName: "a/../../b" }),
        field: "script_name",
      },
      {
        what: "a '..' ref name",
        call: () => storage.grpc.createUploadGrants({ executionId: source, refs: [{ kind: ObjectKind.INPUT, name: ".." }] }),
        field: "refs[0].name",
      },
      {
        what: "an absolute ref name",
        call: () => storage.grpc.createDownloadGrants({ executionId: source, refs: [{ kind: ObjectKind.OUTPUT, name: "/abs" }] }),
        field: "refs[0].name",
      },
      {
        what: "a NUL in a ref name",
        call: () => storage.grpc.statObjects({ executionId: source, refs: [{ kind: ObjectKind.INPUT, name: "x\u0000" }] }),
        field: "refs[0].name",
      },
      {
        what: "an unspecified kind",
        call: () => storage.grpc.createUploadGrants({ executionId: source, refs: [{ name: "a.txt" }] }),
        field: "refs[0].kind",
      },
      {
        what: "no refs",
        call: () => storage.grpc.createUploadGrants({ executionId: source, refs: [] }),
        field: "refs",
      },
      {
        what: "a negative ttl",
        call: () => storage.grpc.createDownloadGrants({ executionId: source, refs: [{ kind: ObjectKind.INPUT, name: "a" }], ttlSeconds: -1 }),
        field: "ttl_seconds",
      },
    ];

    it.each(cases)("$what", async ({ call, field }) => {
      const result = await codeOf(call());
      expect(result.code).toBe(Code.InvalidArgument);
      expect(result.message.startsWith(`invalid ${field}:`)).toBe(true);
    });
  });
});
