// Malformed requests for every ExecutionService RPC, drawn from a seeded random source. Each
// case says which Connect codes are correct answers; none of them may create anything.
import { createHash } from "node:crypto";
import { Code } from "@connectrpc/connect";
import type { CallOptions, Client } from "@connectrpc/connect";
import { AuditAction, ExecutionStatus } from "@rgrid/proto";
import type { ExecutionService } from "@rgrid/proto";
import {
  OVER_REQUEST_LIMIT_BYTES,
  hex,
  malformedEnvKey,
  malformedBatchId,
  malformedExecutionId,
  malformedName,
  malformedPageToken,
  malformedReason,
  malformedRequestId,
  malformedRuntime,
  malformedSha256,
  malformedSize,
  malformedTimeout,
  unknownExecutionId,
} from "./hostile-values";
import { bearer } from "./fuzz-clients";
import type { SeededRandom } from "./seeded-random";

export type ExecutionClient = Client<typeof ExecutionService>;
export type RpcName = keyof ExecutionClient;
type RequestOf<R extends RpcName> = Parameters<ExecutionClient[R]>[0];

export interface FuzzTargets {
  /** An execution of the caller's own account, in a state no malformed request may change. */
  ownId: string;
  /** An execution of another account: must be NotFound, exactly like a missing one. */
  foreignId: string;
  maxTimeoutSeconds: number;
}

/**
 * A valid CreateExecution whose script is really uploaded, so its objects exist: what malformed
 * requests aim at, and must leave as it is.
 */
export async function createFuzzTarget(client: ExecutionClient, apiKey: string, requestId: string): Promise<string> {
  const script = Buffer.from("print('fuzz target')\n");
  const { execution, scriptUpload } = await client.createExecution(
    {
      script: { name: "target.py", sizeBytes: BigInt(script.length), sha256: createHash("sha256").update(script).digest("hex") },
      runtime: "python",
      requestId,
    },
    bearer(apiKey),
  );
  if (!execution || !scriptUpload) throw new Error("CreateExecution answered without an execution or an upload grant");
  const uploaded = await fetch(scriptUpload.url, { method: scriptUpload.method, headers: scriptUpload.headers, body: script });
  if (!uploaded.ok) throw new Error(`uploading the script failed: HTTP ${uploaded.status}`);
  return execution.id;
}

export interface HostileCase {
  rpc: RpcName;
  /** What is wrong with the request, for counting and for failure messages. */
  kind: string;
  expected: readonly Code[];
  /** Sends the request with the given call options (the caller adds the credentials). */
  send(client: ExecutionClient, options: CallOptions): Promise<unknown>;
}

interface Payload<R extends RpcName> {
  kind: string;
  expected: readonly Code[];
  request: RequestOf<R>;
}

const invalid = [Code.InvalidArgument] as const;
const notFound = [Code.NotFound] as const;

function hostileCase<R extends RpcName>(rpc: R, payload: Payload<R>): HostileCase {
  return {
    rpc,
    kind: payload.kind,
    expected: payload.expected,
    send: async (client, options) => {
      const answer = (client[rpc] as (request: RequestOf<R>, options: CallOptions) => unknown)(payload.request, options);
      if (isStream(answer)) {
        // A server stream fails when it is read, not when it is opened.
        for await (const message of answer) void message;
        return;
      }
      return answer;
    },
  };
}

const isStream = (value: unknown): value is AsyncIterable<unknown> =>
  typeof value === "object" && value !== null && Symbol.asyncIterator in value;

const oversize = (random: SeededRandom) => random.string(1, "xyz").repeat(OVER_REQUEST_LIMIT_BYTES);

/** An id that fails validation (InvalidArgument) or names nothing the caller owns (NotFound). */
function hostileId(random: SeededRandom, targets: FuzzTargets): { kind: string; id: string; expected: readonly Code[] } {
  const roll = random.next();
  if (roll < 0.7) return { kind: "malformed id", id: malformedExecutionId(random), expected: invalid };
  if (roll < 0.85) return { kind: "unknown id", id: unknownExecutionId(random), expected: notFound };
  return { kind: "foreign id", id: targets.foreignId, expected: notFound };
}

// ---- CreateExecution: a valid request with one to three fields broken ----

type CreateRequest = {
  script?: { name: string; sizeBytes: bigint; sha256: string };
  runtime: string;
  args: string[];
  env: Record<string, string>;
  inputs: { name: string; sizeBytes: bigint; sha256: string }[];
  metadata: Record<string, string>;
  timeoutSeconds: number;
  requestId: string;
};

const validFile = (random: SeededRandom, name: string) => ({ name, sizeBytes: BigInt(random.int(0, 10_000)), sha256: hex(random, 64) });

function validCreateRequest(random: SeededRandom): CreateRequest {
  return {
    script: validFile(random, "main.py"),
    runtime: random.pick(["python", "node", "python:3.11"]),
    args: ["data/in.json", "--verbose"],
    env: { MODE: "fuzz" },
    inputs: [validFile(random, "data/in.json")],
    metadata: { team: "fuzz" },
    timeoutSeconds: 60,
    // Valid and unique: were the request accepted, it would create a row the test would see.
    requestId: `fuzz-${hex(random, 16)}`,
  };
}

const manyEntries = (count: number, entry: (index: number) => [string, string]) =>
  Object.fromEntries(Array.from({ length: count }, (_, index) => entry(index)));

/** Each breaks the request on its own; a later one never repairs what an earlier one broke. */
const createBreakers: { kind: string; weight: number; apply(r: CreateRequest, random: SeededRandom, targets: FuzzTargets): void }[] = [
  { kind: "script missing", weight: 2, apply: (r) => void (r.script = undefined) },
  { kind: "script name", weight: 6, apply: (r, random) => void (r.script = { ...validFile(random, "x"), name: malformedName(random) }) },
  { kind: "script sha256", weight: 3, apply: (r, random) => void (r.script = { ...validFile(random, "main.py"), sha256: malformedSha256(random) }) },
  { kind: "script size", weight: 3, apply: (r, random) => void (r.script = { ...validFile(random, "main.py"), sizeBytes: malformedSize(random) }) },
  { kind: "runtime", weight: 3, apply: (r, random) => void (r.runtime = malformedRuntime(random)) },
  {
    kind: "too many args",
    weight: 1,
    apply: (r, random) => void (r.args = Array.from({ length: random.pick([1001, 5000, 100_000]) }, (_, index) => `a${index}`)),
  },
  {
    kind: "bad arg",
    weight: 2,
    apply: (r, random) => void r.args.push(random.chance(0.5) ? `x\u0000y` : "a".repeat(64 * 1024 + random.int(1, 1000))),
  },
  {
    kind: "too many env",
    weight: 1,
    apply: (r, random) => void (r.env = manyEntries(random.pick([201, 1000, 10_000]), (index) => [`K${index}`, "v"])),
  },
  { kind: "env key", weight: 3, apply: (r, random) => void (r.env[malformedEnvKey(random)] = "v") },
  {
    kind: "env value",
    weight: 2,
    apply: (r, random) => void (r.env.BAD = random.chance(0.5) ? "a\u0000b" : "v".repeat(64 * 1024 + random.int(1, 1000))),
  },
  { kind: "input name", weight: 5, apply: (r, random) => void r.inputs.push({ ...validFile(random, "x"), name: malformedName(random) }) },
  { kind: "input sha256", weight: 2, apply: (r, random) => void r.inputs.push({ ...validFile(random, "other.csv"), sha256: malformedSha256(random) }) },
  { kind: "input size", weight: 2, apply: (r, random) => void r.inputs.push({ ...validFile(random, "other.csv"), sizeBytes: malformedSize(random) }) },
  { kind: "duplicate input", weight: 1, apply: (r, random) => void r.inputs.push(validFile(random, "dup.csv"), validFile(random, "dup.csv")) },
  {
    kind: "input named like the script",
    weight: 1,
    apply: (r, random) => void (r.script ? r.inputs.push(validFile(random, r.script.name)) : (r.script = undefined)),
  },
  {
    kind: "input under the script",
    weight: 1,
    apply: (r, random) => void (r.script ? r.inputs.push(validFile(random, `${r.script.name}/inner.txt`)) : (r.script = undefined)),
  },
  {
    kind: "too many inputs",
    weight: 1,
    apply: (r, random) => void (r.inputs = Array.from({ length: random.pick([1001, 3000]) }, (_, index) => validFile(random, `in/${index}.txt`))),
  },
  {
    kind: "metadata",
    weight: 3,
    apply: (r, random) => {
      const broken = random.pick<() => void>([
        () => (r.metadata = manyEntries(random.pick([101, 5000]), (index) => [`k${index}`, "v"])),
        () => (r.metadata[""] = "v"),
        () => (r.metadata["k".repeat(129)] = "v"),
        () => (r.metadata["a\u0001b"] = "v"),
        () => (r.metadata.big = "v".repeat(4097)),
        () => (r.metadata.nul = "a\u0000"),
      ]);
      broken();
    },
  },
  { kind: "timeout", weight: 3, apply: (r, random, targets) => void (r.timeoutSeconds = malformedTimeout(random, targets.maxTimeoutSeconds)) },
  { kind: "request_id", weight: 2, apply: (r, random) => void (r.requestId = malformedRequestId(random)) },
];

function pickWeighted<T extends { weight: number }>(random: SeededRandom, items: readonly T[]): T {
  const total = items.reduce((sum, item) => sum + item.weight, 0);
  let roll = random.next() * total;
  for (const item of items) {
    roll -= item.weight;
    if (roll < 0) return item;
  }
  return items[items.length - 1] as T;
}

function createExecutionCase(random: SeededRandom, targets: FuzzTargets, over: boolean): HostileCase {
  const request = validCreateRequest(random);
  if (over) {
    request.args.push(oversize(random));
    return hostileCase("createExecution", { kind: "over request limit", expected: [Code.ResourceExhausted], request });
  }
  const kinds: string[] = [];
  for (let count = random.int(1, 3); count > 0; count--) {
    const breaker = pickWeighted(random, createBreakers);
    breaker.apply(request, random, targets);
    kinds.push(breaker.kind);
  }
  return hostileCase("createExecution", { kind: kinds.join(" + "), expected: invalid, request });
}

// ---- BatchCreateExecutions: valid creates but one broken, or a batch the batch's own rules refuse ----

function batchCreateExecutionsCase(random: SeededRandom, targets: FuzzTargets, over: boolean): HostileCase {
  const requests = Array.from({ length: random.int(1, 5) }, () => validCreateRequest(random));
  if (over) {
    (requests[0] as CreateRequest).args.push(oversize(random));
    return hostileCase("batchCreateExecutions", { kind: "over request limit", expected: [Code.ResourceExhausted], request: { requests } });
  }
  const broken = random.pick<() => Payload<"batchCreateExecutions">>([
    () => {
      const breaker = pickWeighted(random, createBreakers);
      breaker.apply(random.pick(requests), random, targets);
      return { kind: `one request: ${breaker.kind}`, expected: invalid, request: { requests } };
    },
    () => ({ kind: "no requests", expected: invalid, request: { requests: [] } }),
    () => ({ kind: "too many requests", expected: invalid, request: { requests: Array.from({ length: 101 }, () => validCreateRequest(random)) } }),
    () => {
      const [first, second] = [validCreateRequest(random), validCreateRequest(random)];
      return { kind: "request_id twice", expected: invalid, request: { requests: [...requests, first, { ...second, requestId: first.requestId }] } };
    },
    () => {
      const many = Array.from({ length: 3 }, () => ({
        ...validCreateRequest(random),
        inputs: Array.from({ length: 400 }, (_, index) => validFile(random, `in/${index}.txt`)),
      }));
      return { kind: "over 1000 inputs in all", expected: invalid, request: { requests: many } };
    },
  ]);
  return hostileCase("batchCreateExecutions", broken());
}

// ---- BatchConfirmUploads: ids malformed, repeated, too few or too many, or not the caller's ----

function batchConfirmUploadsCase(random: SeededRandom, targets: FuzzTargets, over: boolean): HostileCase {
  if (over) {
    return hostileCase("batchConfirmUploads", { kind: "over request limit", expected: [Code.ResourceExhausted], request: { executionIds: [oversize(random)] } });
  }
  const broken = random.pick<() => Payload<"batchConfirmUploads">>([
    () => {
      const { kind, id, expected } = hostileId(random, targets);
      return { kind, expected, request: { executionIds: random.chance(0.5) ? [id] : [unknownExecutionId(random), id] } };
    },
    () => ({ kind: "no ids", expected: invalid, request: { executionIds: [] } }),
    () => ({ kind: "too many ids", expected: invalid, request: { executionIds: Array.from({ length: 101 }, () => unknownExecutionId(random)) } }),
    () => {
      const id = unknownExecutionId(random);
      return { kind: "id twice", expected: invalid, request: { executionIds: [id, id] } };
    },
  ]);
  return hostileCase("batchConfirmUploads", broken());
}

// ---- The RPCs that take one execution id ----

function idOnlyCase(rpc: "confirmUploads" | "getExecution" | "getOutputDownloads", random: SeededRandom, targets: FuzzTargets, over: boolean): HostileCase {
  if (over) {
    return hostileCase(rpc, { kind: "over request limit", expected: [Code.ResourceExhausted], request: { executionId: oversize(random) } });
  }
  const { kind, id, expected } = hostileId(random, targets);
  return hostileCase(rpc, { kind, expected, request: { executionId: id } });
}

function listExecutionsCase(random: SeededRandom, over: boolean): HostileCase {
  if (over) {
    return hostileCase("listExecutions", { kind: "over request limit", expected: [Code.ResourceExhausted], request: { pageToken: oversize(random) } });
  }
  const valid = { statuses: [ExecutionStatus.FAILED], pageSize: 10, pageToken: "" };
  const broken = random.pick<() => Payload<"listExecutions">>([
    () => ({ kind: "page_size", expected: invalid, request: { ...valid, pageSize: random.pick([-1, 501, 2_147_483_647, -2_147_483_648]) } }),
    // Open enums carry numbers no status has; the server must refuse them, not store them.
    () => ({ kind: "unknown status", expected: invalid, request: { ...valid, statuses: [random.pick([8, 99, -1, 1_000_000]) as ExecutionStatus] } }),
    () => ({ kind: "unspecified status", expected: invalid, request: { ...valid, statuses: [ExecutionStatus.UNSPECIFIED] } }),
    () => ({ kind: "too many statuses", expected: invalid, request: { ...valid, statuses: Array.from({ length: random.int(17, 10_000) }, () => ExecutionStatus.QUEUED) } }),
    () => ({ kind: "page_token", expected: invalid, request: { ...valid, pageToken: malformedPageToken(random) } }),
    // An empty filter means "no filter": only non-empty malformed ids are invalid here.
    () => ({ kind: "root_id", expected: invalid, request: { ...valid, rootId: nonEmpty(() => malformedExecutionId(random)) } }),
    () => ({ kind: "batch_id", expected: invalid, request: { ...valid, batchId: nonEmpty(() => malformedBatchId(random)) } }),
    () => ({
      kind: "script_name",
      expected: invalid,
      request: { ...valid, scriptName: random.chance(0.5) ? `a\u0000${hex(random, 4)}` : "s".repeat(random.int(1025, 100_000)) },
    }),
  ]);
  return hostileCase("listExecutions", broken());
}

function nonEmpty(draw: () => string): string {
  for (;;) {
    const value = draw();
    if (value !== "") return value;
  }
}

// ---- GetBatch: a malformed batch id, or one nobody of this account has ----

function getBatchCase(random: SeededRandom, over: boolean): HostileCase {
  if (over) {
    return hostileCase("getBatch", { kind: "over request limit", expected: [Code.ResourceExhausted], request: { batchId: oversize(random) } });
  }
  const broken = random.pick<() => Payload<"getBatch">>([
    () => ({ kind: "batch_id", expected: invalid, request: { batchId: malformedBatchId(random) } }),
    () => ({ kind: "batch_id missing", expected: invalid, request: { batchId: "" } }),
    () => ({ kind: "unknown batch", expected: notFound, request: { batchId: `batch_${hex(random, 32)}` } }),
  ]);
  return hostileCase("getBatch", broken());
}

// ---- CreateSession: credentials that are malformed, unknown or absent; none may sign in ----

function createSessionCase(random: SeededRandom, over: boolean): HostileCase {
  if (over) {
    return hostileCase("createSession", {
      kind: "over request limit",
      expected: [Code.ResourceExhausted],
      request: { credential: { case: "apiKey", value: oversize(random) } },
    });
  }
  const unauthenticated = [Code.Unauthenticated] as const;
  const broken = random.pick<() => Payload<"createSession">>([
    () => ({ kind: "credential missing", expected: invalid, request: {} }),
    () => ({ kind: "api_key empty", expected: invalid, request: { credential: { case: "apiKey", value: "" } } }),
    () => ({ kind: "api_key too long", expected: invalid, request: { credential: { case: "apiKey", value: `rgrid_${"k".repeat(random.int(251, 60_000))}` } } }),
    () => ({ kind: "api_key control character", expected: invalid, request: { credential: { case: "apiKey", value: `rgrid_${hex(random, 8)}\n${hex(random, 8)}` } } }),
    () => ({ kind: "unknown api_key", expected: unauthenticated, request: { credential: { case: "apiKey", value: `rgrid_${hex(random, 43)}` } } }),
    () => ({ kind: "unknown sign_in_token", expected: unauthenticated, request: { credential: { case: "signInToken", value: hex(random, 43) } } }),
    () => ({ kind: "sign_in_token too long", expected: invalid, request: { credential: { case: "signInToken", value: "t".repeat(random.int(257, 60_000)) } } }),
  ]);
  return hostileCase("createSession", broken());
}

function retryExecutionCase(random: SeededRandom, targets: FuzzTargets, over: boolean): HostileCase {
  const requestId = `fuzz-${hex(random, 16)}`;
  if (over) {
    return hostileCase("retryExecution", { kind: "over request limit", expected: [Code.ResourceExhausted], request: { executionId: targets.ownId, requestId: oversize(random) } });
  }
  const force = random.chance(0.5);
  const broken = random.pick<() => Payload<"retryExecution">>([
    () => {
      const { kind, id, expected } = hostileId(random, targets);
      return { kind, expected, request: { executionId: id, requestId, force } };
    },
    // No request_id is allowed (the service makes one); the caller's own execution has not
    // finished, so without force nothing is retried.
    () => ({ kind: "request_id absent", expected: [Code.FailedPrecondition], request: { executionId: targets.ownId, requestId: "", force: false } }),
    // The caller's own execution, so only the request_id is wrong.
    () => ({ kind: "request_id", expected: invalid, request: { executionId: targets.ownId, requestId: malformedRequestId(random), force } }),
    // Only the reason is wrong: checked before the retry is made, so nothing is retried or recorded.
    () => ({ kind: "reason", expected: invalid, request: { executionId: targets.ownId, requestId, force: true, reason: malformedReason(random) } }),
    // A delay that is not one: none, negative, over 7 days, at the ends of its range. Only values
    // JSON can carry (the service's delayed-retry tests send the rest in binary).
    () => {
      const value = random.pick([{ seconds: 0n }, { seconds: -60n }, { seconds: 604_801n }, { seconds: 315_576_000_000n }, { seconds: -315_576_000_000n }, { nanos: -5 }]);
      return { kind: "delay", expected: invalid, request: { executionId: targets.ownId, requestId, force, queuedUntil: { case: "delay", value } } };
    },
    // A time more than 7 days away either way, up to the ends of the range JSON can carry.
    () => {
      const seconds = BigInt(Math.floor(Date.now() / 1000));
      const value = random.pick([{ seconds: seconds + 700_000n }, { seconds: 0n }, { seconds: -62_135_596_800n }, { seconds: 253_402_300_799n }]);
      return { kind: "not_before", expected: invalid, request: { executionId: targets.ownId, requestId, force, queuedUntil: { case: "notBefore", value } } };
    },
    // Overrides the rules refuse, on the caller's own execution: refused before anything is copied.
    () => ({ kind: "overrides", expected: invalid, request: { executionId: targets.ownId, requestId, force: true, overrides: malformedOverrides(random) } }),
  ]);
  return hostileCase("retryExecution", broken());
}

/** Overrides that break one rule each: names, values, limits, the script's name and digest. */
function malformedOverrides(random: SeededRandom): Payload<"retryExecution">["request"]["overrides"] {
  const sha256 = hex(random, 64);
  return random.pick<() => Payload<"retryExecution">["request"]["overrides"]>([
    () => ({ setEnv: { [random.pick(["1BAD", "A-B", "", "A B", "Ä"])]: "x" } }),
    () => ({ setEnv: { GOOD: `a\u0000b` } }),
    () => ({ unsetEnv: [random.pick(["1BAD", "", "A=B"])] }),
    () => ({ unsetEnv: ["SAME", "SAME"] }),
    () => ({ setEnv: { BOTH: "x" }, unsetEnv: ["BOTH"] }),
    () => ({ args: { values: [`a\u0000b`] } }),
    () => ({ args: { values: Array.from({ length: 1001 }, () => "a") } }),
    () => ({ timeoutSeconds: random.pick([-1, -2_147_483_648, 2_147_483_647]) }),
    () => ({ runtime: random.pick(["", "python 3", "../python", "py:", ":3"]) }),
    () => ({ script: { name: random.pick(["../evil.py", "/abs.py", "", "a/../b.py", "a\\b.py"]), sizeBytes: 10n, sha256 } }),
    () => ({ script: { name: "fixed.py", sizeBytes: 10n, sha256: random.pick(["", "zz", sha256.toUpperCase()]) } }),
    () => ({ script: { name: "fixed.py", sizeBytes: random.pick([-1n, 2n ** 53n]), sha256 } }),
  ])();
}

// ---- RetryWhere: every case breaks the filter, the request id, the reason or the bound, so none
// is ever carried out ----

function retryWhereCase(random: SeededRandom, over: boolean): HostileCase {
  const requestId = `fuzz-${hex(random, 16)}`;
  if (over) {
    return hostileCase("retryWhere", { kind: "over request limit", expected: [Code.ResourceExhausted], request: { where: { errorContains: oversize(random) }, requestId } });
  }
  const broken = random.pick<() => Payload<"retryWhere">>([
    () => ({ kind: "where missing", expected: invalid, request: { requestId } }),
    () => ({ kind: "status", expected: invalid, request: { where: { statuses: [random.pick([0, 1, 2, 3, 8, 99, -1])] }, requestId } }),
    () => ({ kind: "status twice", expected: invalid, request: { where: { statuses: [5, 5] }, requestId } }),
    () => ({ kind: "cause", expected: invalid, request: { where: { causes: [random.pick([0, 5, 99, -1])] }, requestId } }),
    () => ({ kind: "exit code", expected: invalid, request: { where: { exitCodes: [random.pick([-1, 256, 2_147_483_647])] }, requestId } }),
    () => ({ kind: "error_contains", expected: invalid, request: { where: { errorContains: random.pick(["a\nb", "x".repeat(501)]) }, requestId } }),
    () => ({ kind: "script_name", expected: invalid, request: { where: { scriptName: `a\u0001.py` }, requestId } }),
    () => ({ kind: "batch_id", expected: invalid, request: { where: { batchId: nonEmpty(() => malformedBatchId(random)) }, requestId } }),
    () => ({ kind: "request_id", expected: invalid, request: { where: {}, requestId: malformedRequestId(random) } }),
    () => ({ kind: "reason", expected: invalid, request: { where: {}, requestId, reason: malformedReason(random) } }),
    () => ({ kind: "at_most", expected: invalid, request: { where: {}, requestId, atMost: random.pick([-1, 10_001, 2_147_483_647]) } }),
  ]);
  return hostileCase("retryWhere", broken());
}

// ---- GetRetryOperation: a malformed or unknown operation id, or a malformed page ----

function getRetryOperationCase(random: SeededRandom, over: boolean): HostileCase {
  if (over) {
    return hostileCase("getRetryOperation", { kind: "over request limit", expected: [Code.ResourceExhausted], request: { operationId: oversize(random) } });
  }
  const operationId = `op_${hex(random, 32)}`;
  const broken = random.pick<() => Payload<"getRetryOperation">>([
    () => ({ kind: "operation_id", expected: invalid, request: { operationId: random.pick(["", "op_", `op_${hex(random, 31)}`, `OP_${hex(random, 32)}`, `exec_${hex(random, 32)}`]) } }),
    () => ({ kind: "unknown operation", expected: notFound, request: { operationId } }),
    () => ({ kind: "page_size", expected: invalid, request: { operationId, pageSize: random.pick([-1, 1001, 2_147_483_647]) } }),
    () => ({ kind: "page_token", expected: invalid, request: { operationId, pageToken: random.pick(["x".repeat(65), `\u0000`]) } }),
  ]);
  return hostileCase("getRetryOperation", broken());
}

function getLogsCase(random: SeededRandom, targets: FuzzTargets, over: boolean): HostileCase {
  if (over) {
    return hostileCase("getLogs", { kind: "over request limit", expected: [Code.ResourceExhausted], request: { executionId: oversize(random) } });
  }
  const broken = random.pick<() => Payload<"getLogs">>([
    () => {
      const { kind, id, expected } = hostileId(random, targets);
      return { kind, expected, request: { executionId: id, limit: random.int(0, 10_000) } };
    },
    () => ({ kind: "after_sequence", expected: invalid, request: { executionId: targets.ownId, afterSequence: random.pick([-1n, -(2n ** 63n), 2n ** 53n, 2n ** 63n - 512n, 2n ** 63n - 1n]) } }),
    () => ({ kind: "limit", expected: invalid, request: { executionId: targets.ownId, limit: random.pick([-1, 10_001, 2_147_483_647, -2_147_483_648]) } }),
  ]);
  return hostileCase("getLogs", broken());
}

// ---- FollowLogs and CancelExecution: only ids that name nothing the caller may touch, since
// following the caller's own unfinished execution never ends and cancelling it changes it ----

function followLogsCase(random: SeededRandom, targets: FuzzTargets, over: boolean): HostileCase {
  if (over) {
    return hostileCase("followLogs", { kind: "over request limit", expected: [Code.ResourceExhausted], request: { executionId: oversize(random) } });
  }
  const broken = random.pick<() => Payload<"followLogs">>([
    () => {
      const { kind, id, expected } = hostileId(random, targets);
      return { kind, expected, request: { executionId: id, afterSequence: BigInt(random.int(0, 1000)) } };
    },
    () => ({ kind: "after_sequence", expected: invalid, request: { executionId: targets.ownId, afterSequence: random.pick([-1n, -(2n ** 63n), 2n ** 53n, 2n ** 63n - 512n, 2n ** 63n - 1n]) } }),
  ]);
  return hostileCase("followLogs", broken());
}

function cancelExecutionCase(random: SeededRandom, targets: FuzzTargets, over: boolean): HostileCase {
  if (over) {
    return hostileCase("cancelExecution", { kind: "over request limit", expected: [Code.ResourceExhausted], request: { executionId: oversize(random) } });
  }
  if (random.chance(0.25)) {
    // The caller's own execution with a reason the rule refuses: refused before it is cancelled.
    return hostileCase("cancelExecution", { kind: "reason", expected: invalid, request: { executionId: targets.ownId, reason: malformedReason(random) } });
  }
  const { kind, id, expected } = hostileId(random, targets);
  return hostileCase("cancelExecution", { kind, expected, request: { executionId: id } });
}

// ---- RetryBatch: a well-formed batch of no one could legitimately answer "nothing to retry",
// so every case breaks the batch id or the request id, or leaves the request id out (allowed:
// the service makes one) for a batch nobody has ----

function retryBatchCase(random: SeededRandom, over: boolean): HostileCase {
  const batchId = `batch_${hex(random, 32)}`;
  const requestId = `fuzz-${hex(random, 16)}`;
  const failedOnly = random.chance(0.5);
  if (over) {
    return hostileCase("retryBatch", { kind: "over request limit", expected: [Code.ResourceExhausted], request: { batchId, requestId: oversize(random) } });
  }
  const broken = random.pick<() => Payload<"retryBatch">>([
    () => ({ kind: "batch_id", expected: invalid, request: { batchId: malformedBatchId(random), requestId, failedOnly } }),
    () => ({ kind: "request_id absent", expected: notFound, request: { batchId, requestId: "", failedOnly } }),
    () => ({ kind: "request_id", expected: invalid, request: { batchId, requestId: malformedRequestId(random), failedOnly } }),
    () => ({ kind: "reason", expected: invalid, request: { batchId, requestId, failedOnly, reason: malformedReason(random) } }),
  ]);
  return hostileCase("retryBatch", broken());
}

// ---- ListAuditEntries: a malformed filter or page, or a lineage the caller does not own ----

function listAuditEntriesCase(random: SeededRandom, targets: FuzzTargets, over: boolean): HostileCase {
  if (over) {
    return hostileCase("listAuditEntries", { kind: "over request limit", expected: [Code.ResourceExhausted], request: { pageToken: oversize(random) } });
  }
  const broken = random.pick<() => Payload<"listAuditEntries">>([
    () => {
      // An empty id means "no filter": only non-empty hostile ids are refused.
      const { kind, id, expected } = hostileId(random, targets);
      return id === "" ? { kind: "page_size", expected: invalid, request: { pageSize: -1 } } : { kind, expected, request: { executionId: id } };
    },
    () => ({ kind: "page_size", expected: invalid, request: { pageSize: random.pick([-1, 501, 2_147_483_647, -2_147_483_648]) } }),
    () => ({ kind: "page_token", expected: invalid, request: { pageToken: malformedPageToken(random) } }),
    // Open enums carry numbers no action has; the server must refuse them, not ignore them.
    () => ({ kind: "unknown action", expected: invalid, request: { action: random.pick([7, 99, -1, 1_000_000]) as AuditAction } }),
    // Before 1970, yet a time every protocol can carry (JSON cannot encode one past year 9999).
    () => ({ kind: "since", expected: invalid, request: { since: { seconds: random.pick([-1n, -86_400n, -62_135_596_800n]), nanos: 0 } } }),
  ]);
  return hostileCase("listAuditEntries", broken());
}

// ---- DiffExecutions: at least one side malformed, unknown or another account's; the other
// side is sometimes the caller's own execution, which alone must not make the diff succeed ----

function diffExecutionsCase(random: SeededRandom, targets: FuzzTargets, over: boolean): HostileCase {
  if (over) {
    return hostileCase("diffExecutions", { kind: "over request limit", expected: [Code.ResourceExhausted], request: { executionA: oversize(random), executionB: targets.ownId } });
  }
  const bad = hostileId(random, targets);
  const other = random.chance(0.5) ? { kind: "own id", id: targets.ownId, expected: [] as readonly Code[] } : hostileId(random, targets);
  // The request's rules are checked before either execution is looked up.
  const expected = [bad, other].some((side) => side.expected.includes(Code.InvalidArgument)) ? invalid : notFound;
  const [a, b] = random.chance(0.5) ? [bad, other] : [other, bad];
  return hostileCase("diffExecutions", {
    kind: `${a.kind} vs ${b.kind}`,
    expected,
    request: { executionA: a.id, executionB: b.id, showValues: random.chance(0.5) },
  });
}

/** The `index`th malformed request for `rpc`; indexes below 3 are over the request size limit. */
export function hostileRequest(rpc: RpcName, index: number, random: SeededRandom, targets: FuzzTargets): HostileCase {
  const over = index < 3;
  switch (rpc) {
    case "createExecution":
      return createExecutionCase(random, targets, over);
    case "batchCreateExecutions":
      return batchCreateExecutionsCase(random, targets, over);
    case "batchConfirmUploads":
      return batchConfirmUploadsCase(random, targets, over);
    case "confirmUploads":
    case "getExecution":
    case "getOutputDownloads":
      return idOnlyCase(rpc, random, targets, over);
    case "listExecutions":
      return listExecutionsCase(random, over);
    case "retryExecution":
      return retryExecutionCase(random, targets, over);
    case "getLogs":
      return getLogsCase(random, targets, over);
    case "followLogs":
      return followLogsCase(random, targets, over);
    case "cancelExecution":
      return cancelExecutionCase(random, targets, over);
    case "retryBatch":
      return retryBatchCase(random, over);
    case "retryWhere":
      return retryWhereCase(random, over);
    case "getRetryOperation":
      return getRetryOperationCase(random, over);
    case "getBatch":
      return getBatchCase(random, over);
    case "createSession":
      return createSessionCase(random, over);
    case "diffExecutions":
      return diffExecutionsCase(random, targets, over);
    case "listAuditEntries":
      return listAuditEntriesCase(random, targets, over);
    case "getSession":
    case "deleteSession":
      throw new Error(`${rpc} takes an empty request: only its raw bodies can be malformed`);
  }
}
