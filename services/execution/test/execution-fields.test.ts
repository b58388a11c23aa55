import { isDeepStrictEqual } from "node:util";
import { create, isFieldSet } from "@bufbuild/protobuf";
import { BigIntType } from "@mikro-orm/core";
import { CreateExecutionRequestSchema, ExecutionSchema as ExecutionMessageSchema } from "@rgrid/proto";
import type { CreateExecutionRequest } from "@rgrid/proto";
import { ExecutionSchema, notYetRun } from "../src/db/entities";
import type { Execution } from "../src/db/entities";
import { executionMessage } from "../src/executions/convert";
import { originalRecord, retryRecordOf } from "../src/executions/new-executions";

// Every field of the execution entity, as its metadata lists them, reaches each place a record is
// made or shown: a field added later fails here until it is, instead of going missing silently.

const ENTITY_FIELDS = Object.keys(ExecutionSchema.meta.properties) as Array<keyof Execution>;

/**
 * What a retry does not take from its original (docs/architecture.md, "Executions and their
 * lineage"): who it is, its place in the lineage, why it was made, and its run. A field missing
 * from this list is one every retry must carry over unchanged.
 */
const SET_AFRESH_BY_A_RETRY: ReadonlyArray<keyof Execution> = [
  "id",
  "status",
  "createdAt",
  "retryOf",
  "attempt",
  "retryKind",
  "retriedBy",
  "requestId",
  "autoRetryNumber",
  "retryReason",
  // What this retry itself changed; what earlier retries changed is carried in the fields.
  "overrides",
  ...(Object.keys(notYetRun()) as Array<keyof Execution>),
];

/** A stand-in original whose every field holds a value no new execution starts with. */
function originalWithDistinctValues(): Execution {
  const fields = Object.entries(ExecutionSchema.meta.properties).map(([field, property]) => [field, distinctValue(field, property.type)]);
  return Object.fromEntries(fields) as Execution;
}

function distinctValue(field: string, type: unknown): unknown {
  if (type instanceof BigIntType) {
    return 123_456;
  }
  switch (type) {
    case "string":
    case "text":
      return `${field} of the original`;
    case "integer":
      return 41;
    case "boolean":
      return true;
    case "datetime":
      return new Date("2025-01-02T03:04:05Z");
    case "json":
      return { field, values: [1, 2] };
    default:
      throw new Error(`no distinct value for ${field} of type ${String(type)}: add one to this test`);
  }
}

describe("a retry's record", () => {
  const original = originalWithDistinctValues();
  const made = { id: "exec_retry", createdAt: new Date("2025-02-03T04:05:06Z"), requestId: "retry-request" };

  test("carries over every field of its original except those it sets afresh", () => {
    const retry = retryRecordOf(original, { ...made, kind: "manual", retriedBy: "key_1" });
    expect(Object.keys(retry).sort()).toEqual([...ENTITY_FIELDS].sort());
    const notCarried = ENTITY_FIELDS.filter((field) => !isDeepStrictEqual(retry[field], original[field]));
    expect(notCarried.sort()).toEqual([...SET_AFRESH_BY_A_RETRY].sort());
  });

  test("copies what it carries over instead of sharing it with the original", () => {
    const retry = retryRecordOf(original, { ...made, kind: "manual", retriedBy: "key_1" });
    for (const field of ENTITY_FIELDS) {
      if (typeof original[field] === "object" && !SET_AFRESH_BY_A_RETRY.includes(field)) {
        expect({ field, shared: retry[field] === original[field] }).toEqual({ field, shared: false });
      }
    }
  });

  test("is queued as the next attempt of the original's lineage, not yet run", () => {
    const retry = retryRecordOf(original, { ...made, kind: "forced", retriedBy: "key_1" });
    expect(retry).toMatchObject({
      ...notYetRun(),
      id: made.id,
      status: "queued",
      createdAt: made.createdAt,
      retryOf: original.id,
      rootId: original.rootId,
      attempt: original.attempt + 1,
      retryKind: "forced",
      retriedBy: "key_1",
      requestId: made.requestId,
      autoRetryNumber: 0,
      retryReason: "",
      overrides: null,
    });
  });

  test("of an automatic retry records which one it is, why, and its backoff", () => {
    const notBefore = new Date("2025-02-03T04:05:36Z");
    const retry = retryRecordOf(original, {
      ...made,
      kind: "automatic",
      retriedBy: null,
      automatic: { number: 2, reason: "runner lost", notBefore },
    });
    expect(retry).toMatchObject({ retryKind: "automatic", retriedBy: null, autoRetryNumber: 2, retryReason: "runner lost", notBefore });
  });
});

/** A request with every option set, as a client may send it. */
function fullRequest(): CreateExecutionRequest {
  return create(CreateExecutionRequestSchema, {
    script: { name: "process.py", sizeBytes: 12n, sha256: "a".repeat(64) },
    runtime: "python:3.11",
    args: ["input.json"],
    env: { MODE: "test" },
    inputs: [{ name: "input.json", sizeBytes: 7n, sha256: "b".repeat(64) }],
    metadata: { team: "data" },
    timeoutSeconds: 60,
    requestId: "create-request",
    network: true,
    maxRetries: 5,
    retryOnExitCodes: [75, 75, 3],
    batchId: `batch_${"c".repeat(32)}`,
    batchParallelism: 4,
  });
}

describe("an original's record", () => {
  const made = { id: "exec_original", accountId: "acct_1", createdAt: new Date("2025-02-03T04:05:06Z") };

  test("has a value for every field of the entity, also from a request that sets only what it must", () => {
    const minimal = create(CreateExecutionRequestSchema, { script: fullRequest().script, runtime: "python" });
    for (const request of [minimal, fullRequest()]) {
      const record = originalRecord(request, made);
      expect(Object.keys(record).sort()).toEqual([...ENTITY_FIELDS].sort());
      expect(ENTITY_FIELDS.filter((field) => record[field] === undefined)).toEqual([]);
    }
  });

  test("records what the request asked for, and defaults for what it left unset", () => {
    expect(originalRecord(fullRequest(), made)).toMatchObject({
      accountId: "acct_1",
      status: "uploading",
      scriptName: "process.py",
      scriptSizeBytes: 12,
      runtime: "python:3.11",
      runtimeName: "python",
      inputs: [{ name: "input.json", sizeBytes: 7, sha256: "b".repeat(64) }],
      requestId: "create-request",
      maxRetries: 5,
      retryOnExitCodes: [75, 3],
      rootId: made.id,
      attempt: 1,
      retryKind: "original",
    });
    const minimal = create(CreateExecutionRequestSchema, { script: fullRequest().script, runtime: "python" });
    expect(originalRecord(minimal, made)).toMatchObject({ requestId: null, batchId: null, maxRetries: 2, network: false });
  });
});

test("the wire message shows every field of an execution that has them all", () => {
  const record: Execution = {
    ...originalRecord(fullRequest(), { id: "exec_2", accountId: "acct_1", createdAt: new Date("2025-02-03T04:05:06Z") }),
    status: "failed",
    outputs: [{ name: "out.csv", sizeBytes: 3, sha256: "d".repeat(64) }],
    startedAt: new Date("2025-02-03T04:05:07Z"),
    finishedAt: new Date("2025-02-03T04:05:08Z"),
    exitCode: 75,
    errorMessage: "exit code 75",
    runnerId: "runner_1",
    failureKind: "script",
    sandboxWarnings: ["no network namespace"],
    cancelRequestedAt: new Date("2025-02-03T04:05:07Z"),
    notBefore: new Date("2025-02-03T04:05:06Z"),
    retryOf: "exec_1",
    rootId: "exec_1",
    attempt: 2,
    retryKind: "automatic",
    retriedBy: "key_1",
    autoRetryNumber: 1,
    retryReason: "exit code 75",
    overrides: { env: [{ key: "MODE", before: "test", after: "debug" }] },
  };
  const message = executionMessage(record, ["exec_3"]);
  const unset = ExecutionMessageSchema.fields.filter((field) => !isFieldSet(message, field)).map((field) => field.name);
  expect(unset).toEqual([]);
});
