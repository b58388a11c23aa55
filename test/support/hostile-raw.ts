// Bodies no typed client produces: JSON with the wrong types, protobuf with invalid UTF-8 in a
// string field or a field encoded with the wrong wire type. Every one must be InvalidArgument.
import { INVALID_UTF8, lengthDelimited, utf8, varintField } from "./raw-connect";
import type { RawBody } from "./raw-connect";
import type { RpcName } from "./hostile-requests";
import type { SeededRandom } from "./seeded-random";

/** The unary RPCs: a raw Connect unary POST cannot reach a streaming one. */
export type UnaryRpcName = Exclude<RpcName, "followLogs">;

/** Every ExecutionService RPC a typed client can send malformed requests to. */
export const TYPED_RPCS: readonly RpcName[] = [
  "createExecution",
  "confirmUploads",
  "batchCreateExecutions",
  "batchConfirmUploads",
  "getExecution",
  "listExecutions",
  "retryExecution",
  "getLogs",
  "getOutputDownloads",
  "followLogs",
  "cancelExecution",
  "retryBatch",
  "getBatch",
  "createSession",
  "diffExecutions",
  "listAuditEntries",
  "retryWhere",
  "getRetryOperation",
];

/**
 * Every unary RPC, for raw bodies; GetSession and DeleteSession take empty requests that a typed
 * client cannot malform, so they get raw bodies only.
 */
export const RAW_RPCS: readonly UnaryRpcName[] = [
  ...TYPED_RPCS.filter((rpc): rpc is UnaryRpcName => rpc !== "followLogs"),
  "getSession",
  "deleteSession",
];

export const PROCEDURES: Record<UnaryRpcName, string> = {
  createExecution: "rgrid.v1.ExecutionService/CreateExecution",
  confirmUploads: "rgrid.v1.ExecutionService/ConfirmUploads",
  batchCreateExecutions: "rgrid.v1.ExecutionService/BatchCreateExecutions",
  batchConfirmUploads: "rgrid.v1.ExecutionService/BatchConfirmUploads",
  getExecution: "rgrid.v1.ExecutionService/GetExecution",
  listExecutions: "rgrid.v1.ExecutionService/ListExecutions",
  retryExecution: "rgrid.v1.ExecutionService/RetryExecution",
  getLogs: "rgrid.v1.ExecutionService/GetLogs",
  getOutputDownloads: "rgrid.v1.ExecutionService/GetOutputDownloads",
  cancelExecution: "rgrid.v1.ExecutionService/CancelExecution",
  retryBatch: "rgrid.v1.ExecutionService/RetryBatch",
  getBatch: "rgrid.v1.ExecutionService/GetBatch",
  createSession: "rgrid.v1.ExecutionService/CreateSession",
  getSession: "rgrid.v1.ExecutionService/GetSession",
  deleteSession: "rgrid.v1.ExecutionService/DeleteSession",
  diffExecutions: "rgrid.v1.ExecutionService/DiffExecutions",
  listAuditEntries: "rgrid.v1.ExecutionService/ListAuditEntries",
  retryWhere: "rgrid.v1.ExecutionService/RetryWhere",
  getRetryOperation: "rgrid.v1.ExecutionService/GetRetryOperation",
};

export interface RawCase {
  kind: string;
  body: RawBody;
}

const json = (kind: string, value: unknown): RawCase => ({ kind, body: { contentType: "application/json", body: JSON.stringify(value) } });
const jsonText = (kind: string, text: string): RawCase => ({ kind, body: { contentType: "application/json", body: text } });
const proto = (kind: string, bytes: number[]): RawCase => ({ kind, body: { contentType: "application/proto", body: Uint8Array.from(bytes) } });

const SHARED_JSON: RawCase[] = [
  jsonText("not JSON", "{"),
  jsonText("JSON array", "[]"),
  jsonText("JSON string", '"exec"'),
  jsonText("JSON number", "42"),
  json("unknown field", { noSuchField: 1 }),
];

/** Wrong JSON types, per RPC, in the proto3 JSON names. */
function wrongTypes(rpc: UnaryRpcName, ownId: string): RawCase[] {
  const id = (value: unknown) => json("execution_id type", { executionId: value });
  const idCases = [id(5), id(true), id([ownId]), id({ id: ownId }), id(1.5)];
  switch (rpc) {
    case "createExecution":
      return [
        json("script type", { script: "main.py" }),
        json("script.name type", { script: { name: 5 } }),
        json("script.sizeBytes type", { script: { name: "a.py", sizeBytes: "ten" } }),
        json("script.sizeBytes fraction", { script: { name: "a.py", sizeBytes: 1.5 } }),
        json("args type", { args: "a" }),
        json("args element type", { args: [1, 2] }),
        json("env type", { env: ["A"] }),
        json("env value type", { env: { A: 1 } }),
        json("inputs type", { inputs: { name: "x" } }),
        json("timeoutSeconds type", { timeoutSeconds: "soon" }),
        json("timeoutSeconds over int32", { timeoutSeconds: 1e20 }),
        json("timeoutSeconds fraction", { timeoutSeconds: 1.5 }),
        json("metadata type", { metadata: [["k", "v"]] }),
        json("requestId type", { requestId: {} }),
      ];
    case "batchCreateExecutions":
      return [
        json("requests type", { requests: { script: { name: "a.py" } } }),
        json("requests element type", { requests: [5] }),
        json("script type", { requests: [{ script: "main.py" }] }),
        json("args element type", { requests: [{ args: [1] }] }),
      ];
    case "batchConfirmUploads":
      return [
        json("executionIds type", { executionIds: ownId }),
        json("executionIds element type", { executionIds: [5] }),
        json("executionIds element object", { executionIds: [{ id: ownId }] }),
      ];
    case "listExecutions":
      return [
        json("pageSize type", { pageSize: "ten" }),
        json("pageSize over int32", { pageSize: 1e10 }),
        json("pageSize fraction", { pageSize: -1.5 }),
        json("statuses type", { statuses: "EXECUTION_STATUS_FAILED" }),
        json("statuses unknown name", { statuses: ["EXECUTION_STATUS_EXPLODED"] }),
        json("statuses fraction", { statuses: [1.5] }),
        json("pageToken type", { pageToken: 5 }),
        json("scriptName type", { scriptName: ["a.py"] }),
        json("unresolved type", { unresolved: "yes" }),
        json("rootId type", { rootId: 7 }),
      ];
    case "getBatch":
      return [json("batchId type", { batchId: 5 }), json("batchId list", { batchId: ["batch_" + "0".repeat(32)] })];
    case "createSession":
      return [
        json("apiKey type", { apiKey: 5 }),
        json("signInToken type", { signInToken: { token: "t" } }),
        json("both credentials", { apiKey: "rgrid_x", signInToken: "t" }),
      ];
    case "getSession":
    case "deleteSession":
      return [];
    case "retryExecution":
      return [
        ...idCases,
        json("force type", { executionId: ownId, requestId: "r1", force: "yes" }),
        json("force number", { executionId: ownId, requestId: "r1", force: 1 }),
        json("requestId type", { executionId: ownId, requestId: 5 }),
        json("reason type", { executionId: ownId, requestId: "r1", reason: ["why"] }),
      ];
    case "getLogs":
      return [
        ...idCases,
        json("afterSequence type", { executionId: ownId, afterSequence: "abc" }),
        json("afterSequence fraction", { executionId: ownId, afterSequence: 1.5 }),
        json("afterSequence over int64", { executionId: ownId, afterSequence: "99999999999999999999999" }),
        json("limit type", { executionId: ownId, limit: "x" }),
      ];
    case "retryBatch":
      return [
        json("batchId type", { batchId: 5, requestId: "r1" }),
        json("batchId list", { batchId: ["batch_" + "0".repeat(32)], requestId: "r1" }),
        json("failedOnly type", { batchId: "batch_" + "0".repeat(32), requestId: "r1", failedOnly: "yes" }),
        json("requestId type", { batchId: "batch_" + "0".repeat(32), requestId: {} }),
      ];
    case "confirmUploads":
    case "getExecution":
    case "getOutputDownloads":
    case "cancelExecution":
      return idCases;
    case "listAuditEntries":
      return [
        json("executionId type", { executionId: 5 }),
        json("since type", { since: 1700000000 }),
        json("since not a time", { since: "yesterday" }),
        json("action unknown name", { action: "AUDIT_ACTION_DELETE" }),
        json("action fraction", { action: 1.5 }),
        json("pageSize type", { pageSize: "ten" }),
      ];
    case "retryWhere":
      return [
        json("where type", { where: "cause=script", requestId: "r1" }),
        json("statuses unknown name", { where: { statuses: ["EXECUTION_STATUS_EXPLODED"] }, requestId: "r1" }),
        json("causes fraction", { where: { causes: [1.5] }, requestId: "r1" }),
        json("exitCodes type", { where: { exitCodes: "3" }, requestId: "r1" }),
        json("finishedAfter not a time", { where: { finishedAfter: "yesterday" }, requestId: "r1" }),
        json("dryRun type", { where: {}, dryRun: "yes" }),
        json("atMost fraction", { where: {}, requestId: "r1", atMost: 1.5 }),
      ];
    case "getRetryOperation":
      return [
        json("operationId type", { operationId: 5 }),
        json("operationId list", { operationId: ["op_" + "0".repeat(32)] }),
        json("pageSize type", { operationId: "op_" + "0".repeat(32), pageSize: "ten" }),
      ];
    case "diffExecutions":
      return [
        json("executionA type", { executionA: 5, executionB: ownId }),
        json("executionB list", { executionA: ownId, executionB: [ownId] }),
        json("showValues type", { executionA: ownId, executionB: ownId, showValues: "yes" }),
      ];
  }
}

/** A string field holding bytes that are not UTF-8, wrapped around a plausible value. */
function invalidUtf8(random: SeededRandom, plausible: string): number[] {
  const cut = random.int(0, plausible.length);
  return [...utf8(plausible.slice(0, cut)), ...random.pick(INVALID_UTF8), ...utf8(plausible.slice(cut))];
}

/** CreateExecutionRequest.script (field 1): a FileInfo with this name and a size of 10. */
function scriptField(name: number[]): number[] {
  return lengthDelimited(1, [...lengthDelimited(1, name), ...varintField(2, 10)]);
}

/** Hand-encoded protobuf bodies, per RPC. */
function badProtobuf(rpc: UnaryRpcName, random: SeededRandom, ownId: string): RawCase[] {
  const utf8Id = () => proto("execution_id not UTF-8", lengthDelimited(1, invalidUtf8(random, ownId)));
  const wireTypeId = proto("execution_id as varint", varintField(1, 7));
  const truncated = proto("truncated length", [...lengthDelimited(1, utf8(ownId)).slice(0, 10)]);
  switch (rpc) {
    case "createExecution": {
      return [
        proto("script.name not UTF-8", scriptField(invalidUtf8(random, "main.py"))),
        proto("runtime not UTF-8", [...scriptField(utf8("main.py")), ...lengthDelimited(2, invalidUtf8(random, "python"))]),
        proto("arg not UTF-8", [...scriptField(utf8("main.py")), ...lengthDelimited(2, utf8("python")), ...lengthDelimited(3, invalidUtf8(random, "input.json"))]),
        proto("env key not UTF-8", lengthDelimited(4, [...lengthDelimited(1, invalidUtf8(random, "MODE")), ...lengthDelimited(2, utf8("v"))])),
        proto("env value not UTF-8", lengthDelimited(4, [...lengthDelimited(1, utf8("MODE")), ...lengthDelimited(2, invalidUtf8(random, "fuzz"))])),
        proto("request_id not UTF-8", [...scriptField(utf8("main.py")), ...lengthDelimited(8, invalidUtf8(random, "req-1"))]),
        proto("script as varint", varintField(1, 3)),
        truncated,
      ];
    }
    case "batchCreateExecutions": {
      return [
        proto("script.name not UTF-8", lengthDelimited(1, scriptField(invalidUtf8(random, "main.py")))),
        proto("request_id not UTF-8", lengthDelimited(1, [...scriptField(utf8("main.py")), ...lengthDelimited(8, invalidUtf8(random, "req-1"))])),
        proto("requests as varint", varintField(1, 7)),
        truncated,
      ];
    }
    case "batchConfirmUploads":
      return [proto("execution_ids not UTF-8", lengthDelimited(1, invalidUtf8(random, ownId))), proto("execution_ids as varint", varintField(1, 7)), truncated];
    case "listExecutions":
      return [
        proto("page_token not UTF-8", lengthDelimited(3, invalidUtf8(random, "eyJjIjoxfQ"))),
        // protobuf-es reads a scalar whatever its wire type, so what fails is the field after
        // it: an unknown 32-bit field (15) with no bytes left.
        proto("page_size as length-delimited", lengthDelimited(2, [0x7d])),
        truncated,
      ];
    case "retryExecution":
      return [
        utf8Id(),
        proto("request_id not UTF-8", [...lengthDelimited(1, utf8(ownId)), ...lengthDelimited(3, invalidUtf8(random, "req-1"))]),
        wireTypeId,
        truncated,
      ];
    case "retryBatch":
      return [
        proto("batch_id not UTF-8", lengthDelimited(1, invalidUtf8(random, "batch_" + "0".repeat(32)))),
        proto("request_id not UTF-8", [...lengthDelimited(1, utf8("batch_" + "0".repeat(32))), ...lengthDelimited(3, invalidUtf8(random, "req-1"))]),
        proto("batch_id as varint", varintField(1, 7)),
        truncated,
      ];
    case "getBatch":
      return [proto("batch_id not UTF-8", lengthDelimited(1, invalidUtf8(random, "batch_" + "0".repeat(32)))), proto("batch_id as varint", varintField(1, 7)), truncated];
    case "createSession":
      return [
        proto("api_key not UTF-8", lengthDelimited(1, invalidUtf8(random, "rgrid_key"))),
        proto("sign_in_token as varint", varintField(2, 7)),
        truncated,
      ];
    case "listAuditEntries":
      return [
        proto("execution_id not UTF-8", lengthDelimited(1, invalidUtf8(random, ownId))),
        proto("page_token not UTF-8", lengthDelimited(5, invalidUtf8(random, "eyJjIjoxfQ"))),
        proto("since as varint", varintField(2, 7)),
        truncated,
      ];
    case "retryWhere":
      return [
        proto("error_contains not UTF-8", lengthDelimited(1, lengthDelimited(4, invalidUtf8(random, "reset")))),
        proto("request_id not UTF-8", [...lengthDelimited(1, []), ...lengthDelimited(3, invalidUtf8(random, "req-1"))]),
        proto("where as varint", varintField(1, 7)),
        truncated,
      ];
    case "getRetryOperation":
      return [
        proto("operation_id not UTF-8", lengthDelimited(1, invalidUtf8(random, "op_" + "0".repeat(32)))),
        proto("operation_id as varint", varintField(1, 7)),
        truncated,
      ];
    case "diffExecutions":
      return [
        proto("execution_b not UTF-8", [...lengthDelimited(1, utf8(ownId)), ...lengthDelimited(2, invalidUtf8(random, ownId))]),
        proto("execution_b as varint", [...lengthDelimited(1, utf8(ownId)), ...varintField(2, 7)]),
        truncated,
      ];
    case "getSession":
    case "deleteSession":
      // An empty message: only a body that is not protobuf at all is malformed.
      return [proto("truncated field", [0x0a, 0x05, 0x61])];
    case "getLogs":
    case "confirmUploads":
    case "getExecution":
    case "getOutputDownloads":
    case "cancelExecution":
      return [utf8Id(), wireTypeId, truncated];
  }
}

/** `count` raw cases for `rpc`, cycling through every kind with fresh random bytes each round. */
export function rawHostileRequests(rpc: UnaryRpcName, count: number, random: SeededRandom, ownId: string): RawCase[] {
  const cases: RawCase[] = [];
  while (cases.length < count) {
    cases.push(...SHARED_JSON, ...wrongTypes(rpc, ownId), ...badProtobuf(rpc, random, ownId));
  }
  return cases.slice(0, count);
}
