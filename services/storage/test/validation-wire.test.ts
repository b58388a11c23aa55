import { Code, ConnectError } from "@connectrpc/connect";
import { newExecutionId } from "@rgrid/common";
import { ObjectKind, bufValidate } from "@rgrid/proto";
import type { RunningStorage } from "./server-harness";
import { INTERNAL_TOKEN, startStorage, storageClient } from "./server-harness";

// The rules declared in storage.proto, and the object-name rule kept in code, enforced by the
// served service on both protocols: InvalidArgument naming the field, with a
// buf.validate.Violations detail.

let storage: RunningStorage;

beforeAll(async () => {
  storage = await startStorage();
});

afterAll(async () => {
  await storage.stop();
});

async function refusalOf(call: Promise<unknown>): Promise<ConnectError> {
  return call.then(
    () => {
      throw new Error("the call succeeded");
    },
    (error: unknown) => ConnectError.from(error),
  );
}

const ruleIdsOf = (error: ConnectError) =>
  error.findDetails(bufValidate.ViolationsSchema).flatMap((detail) => detail.violations.map((violation) => violation.ruleId));

const clients = {
  "gRPC over HTTP/2": () => storage.grpc,
  "Connect over HTTP/1.1": () => storageClient(storage.connect(INTERNAL_TOKEN)),
};

describe.each(Object.entries(clients))("%s", (_protocol, client) => {
  test("a grant's ttl_seconds is held to its bound in the proto", async () => {
    const refusal = await refusalOf(
      client().createDownloadGrants({ executionId: newExecutionId(), refs: [{ kind: ObjectKind.INPUT, name: "a" }], ttlSeconds: 7 * 24 * 3600 + 1 }),
    );
    expect(refusal.code).toBe(Code.InvalidArgument);
    expect(refusal.rawMessage).toBe("invalid ttl_seconds: must be greater than or equal to 0 and less than or equal to 604800");
    expect(ruleIdsOf(refusal)).toEqual(["int32.gte_lte"]);
  });

  test("CopyInputs' rule comparing source and target names the target", async () => {
    const id = newExecutionId();
    const refusal = await refusalOf(client().copyInputs({ sourceExecutionId: id, targetExecutionId: id, names: ["a"] }));
    expect(refusal.code).toBe(Code.InvalidArgument);
    expect(refusal.rawMessage).toBe("invalid target_execution_id: must differ from source_execution_id");
    expect(ruleIdsOf(refusal)).toEqual(["target_execution_id.not_the_source"]);
  });

  test("CopyInputsBatch refuses a target written twice or read by another copy, and too many copies", async () => {
    const [a, b, c] = [newExecutionId(), newExecutionId(), newExecutionId()];
    const twice = await refusalOf(
      client().copyInputsBatch({ copies: [{ sourceExecutionId: a, targetExecutionId: c }, { sourceExecutionId: b, targetExecutionId: c }] }),
    );
    expect(twice.code).toBe(Code.InvalidArgument);
    expect(twice.rawMessage).toBe("invalid copies: each target execution id may appear once, and not as a source");
    expect(ruleIdsOf(twice)).toEqual(["copies.targets_written_once"]);
    // The same rule, as CEL cannot say it cheaply: a target that another copy reads.
    const chainedMessage = await refusalOf(
      client().copyInputsBatch({ copies: [{ sourceExecutionId: a, targetExecutionId: b }, { sourceExecutionId: b, targetExecutionId: c }] }),
    );
    expect(chainedMessage.rawMessage).toBe("invalid copies: each target execution id may appear once, and not as a source");

    const chained = await refusalOf(
      client().copyInputsBatch({ copies: [{ sourceExecutionId: a, targetExecutionId: b }, { sourceExecutionId: b, targetExecutionId: c }] }),
    );
    expect(chained.code).toBe(Code.InvalidArgument);
    expect(ruleIdsOf(chained)).toEqual(["copies.targets_written_once"]);
    const chainedBackwards = await refusalOf(
      client().copyInputsBatch({ copies: [{ sourceExecutionId: b, targetExecutionId: c }, { sourceExecutionId: a, targetExecutionId: b }] }),
    );
    expect(ruleIdsOf(chainedBackwards)).toEqual(["copies.targets_written_once"]);

    const many = Array.from({ length: 101 }, () => ({ sourceExecutionId: newExecutionId(), targetExecutionId: newExecutionId() }));
    const tooMany = await refusalOf(client().copyInputsBatch({ copies: many }));
    expect(tooMany.code).toBe(Code.InvalidArgument);
    expect(ruleIdsOf(tooMany)).toEqual(["repeated.max_items"]);

    // A copy onto its own source breaks that copy's own rule first.
    const ontoItself = await refusalOf(client().copyInputsBatch({ copies: [{ sourceExecutionId: a, targetExecutionId: a }] }));
    expect(ontoItself.rawMessage).toBe("invalid copies[0].target_execution_id: must differ from source_execution_id");
    expect(ruleIdsOf(ontoItself)).toEqual(["target_execution_id.not_the_source"]);
  });

  test("a CopyInputsBatch object name that could escape its directory is refused, naming its copy", async () => {
    const refusal = await refusalOf(
      client().copyInputsBatch({
        copies: [
          { sourceExecutionId: newExecutionId(), targetExecutionId: newExecutionId(), names: ["a"] },
          { sourceExecutionId: newExecutionId(), targetExecutionId: newExecutionId(), names: ["ok", "../x"] },
        ],
      }),
    );
    expect(refusal.code).toBe(Code.InvalidArgument);
    expect(refusal.rawMessage).toBe("invalid copies[1].names[1]: must not contain empty, '.' or '..' segments");
    expect(ruleIdsOf(refusal)).toEqual(["rgrid.object_name"]);
  });

  test("the batch grant and commit calls refuse an execution twice, too many objects and unsafe names", async () => {
    const id = newExecutionId();
    const ref = { kind: ObjectKind.INPUT, name: "a" };
    for (const send of [
      (requests: Array<{ executionId: string; refs: Array<typeof ref> }>) => client().createUploadGrantsBatch({ requests }),
      (requests: Array<{ executionId: string; refs: Array<typeof ref> }>) => client().commitUploadsBatch({ requests }),
      (requests: Array<{ executionId: string; refs: Array<typeof ref> }>) => client().createDownloadGrantsBatch({ requests }),
    ]) {
      const twice = await refusalOf(send([{ executionId: id, refs: [ref] }, { executionId: id, refs: [ref] }]));
      expect(twice.code).toBe(Code.InvalidArgument);
      expect(twice.rawMessage).toBe("invalid requests: each execution id may appear once");
      expect(ruleIdsOf(twice)).toEqual(["requests.unique_execution_id"]);

      const refs = Array.from({ length: 1000 }, (_, index) => ({ kind: ObjectKind.INPUT, name: `in-${index}` }));
      const tooMany = await refusalOf(send([1, 2, 3].map(() => ({ executionId: newExecutionId(), refs }))));
      expect(tooMany.rawMessage).toBe("invalid requests: must name at most 2000 objects in all (3000 named)");
      expect(ruleIdsOf(tooMany)).toEqual(["rgrid.max_batch_refs"]);

      const unsafe = await refusalOf(send([{ executionId: id, refs: [ref] }, { executionId: newExecutionId(), refs: [ref, { ...ref, name: "../x" }] }]));
      expect(unsafe.rawMessage).toBe("invalid requests[1].refs[1].name: must not contain empty, '.' or '..' segments");
      expect(ruleIdsOf(unsafe)).toEqual(["rgrid.object_name"]);

      expect(ruleIdsOf(await refusalOf(send([])))).toEqual(["repeated.min_items"]);
    }
  });

  test("an object name that could escape its directory is refused by the rule kept in code", async () => {
    const refusal = await refusalOf(client().statObjects({ executionId: newExecutionId(), refs: [{ kind: ObjectKind.INPUT, name: "a/../../b" }] }));
    expect(refusal.code).toBe(Code.InvalidArgument);
    expect(refusal.rawMessage).toBe("invalid refs[0].name: must not contain empty, '.' or '..' segments");
    expect(ruleIdsOf(refusal)).toEqual(["rgrid.object_name"]);
  });
});
