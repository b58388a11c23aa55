// The hand-written validation of CreateExecution that the protos' rules (protovalidate) replaced,
// as services/execution/src/validation.ts and packages/common/src/validation.ts had it (commit
// 1cbbfa7; refusal messages shortened, as only valid requests are timed). Kept only as
// bench/validation.ts's baseline: nothing else uses it.
import { isBatchId, relativePathProblem } from "@rgrid/common";
import type { CreateExecutionRequest, FileInfo } from "@rgrid/proto";

interface FieldRule<T> {
  field: string;
  check: (message: T) => string | undefined;
}

export function validateRequest<T>(message: T, rules: readonly FieldRule<T>[]): string | undefined {
  for (const rule of rules) {
    const problem = rule.check(message);
    if (problem !== undefined) {
      return `invalid ${rule.field}: ${problem}`;
    }
  }
  return undefined;
}

const LIMITS = {
  args: 1000,
  argBytes: 64 * 1024,
  envEntries: 200,
  envValueBytes: 64 * 1024,
  envKeyChars: 256,
  files: 1000,
  metadataEntries: 100,
  metadataKeyChars: 128,
  metadataValueBytes: 4096,
  requestIdChars: 128,
  maxRetries: 10,
  retryExitCodes: 32,
  batchParallelism: 10_000,
} as const;

const RUNTIME_PATTERN = /^[a-z][a-z0-9_-]{0,31}(:[A-Za-z0-9._-]{1,32})?$/;
const ENV_KEY_PATTERN = /^[A-Za-z_][A-Za-z0-9_]*$/;
const SHA256_PATTERN = /^[0-9a-f]{64}$/;
const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f]/;
const MAX_EXACT_INTEGER = BigInt(Number.MAX_SAFE_INTEGER);
const RESERVED_REQUEST_ID_PREFIXES = ["auto:", "batch:"];

const bytes = (value: string) => Buffer.byteLength(value, "utf8");

function requestIdProblem(id: string): string | undefined {
  if (id === "") return undefined;
  if (id.length > LIMITS.requestIdChars) return `must be at most ${LIMITS.requestIdChars} characters`;
  if (RESERVED_REQUEST_ID_PREFIXES.some((prefix) => id.startsWith(prefix))) return "must not start with a reserved prefix";
  return CONTROL_CHARACTERS.test(id) ? "must not contain control characters" : undefined;
}

function fileProblem(file: FileInfo): string | undefined {
  const nameProblem = relativePathProblem(file.name);
  if (nameProblem !== undefined) return `name ${JSON.stringify(file.name)} ${nameProblem}`;
  if (file.sizeBytes < 0n) return `${file.name}: size_bytes must not be negative`;
  if (file.sizeBytes > MAX_EXACT_INTEGER) return `${file.name}: size_bytes is too large`;
  return SHA256_PATTERN.test(file.sha256) ? undefined : `${file.name}: sha256 must be 64 lowercase hex characters`;
}

function filesProblem(files: readonly FileInfo[]): string | undefined {
  if (files.length > LIMITS.files) return `must have at most ${LIMITS.files} entries`;
  const seen = new Set<string>();
  for (const file of files) {
    const problem = fileProblem(file);
    if (problem !== undefined) return problem;
    if (seen.has(file.name)) return `name ${JSON.stringify(file.name)} appears more than once`;
    seen.add(file.name);
  }
  return undefined;
}

function envProblem(env: { [key: string]: string }): string | undefined {
  const entries = Object.entries(env);
  if (entries.length > LIMITS.envEntries) return `must have at most ${LIMITS.envEntries} entries`;
  for (const [key, value] of entries) {
    if (key.length > LIMITS.envKeyChars) return `keys must be at most ${LIMITS.envKeyChars} characters`;
    if (!ENV_KEY_PATTERN.test(key)) return `key ${JSON.stringify(key)} must match ${ENV_KEY_PATTERN.source}`;
    if (bytes(value) > LIMITS.envValueBytes) return `value of ${key} must be at most ${LIMITS.envValueBytes} bytes`;
    if (value.includes("\u0000")) return `value of ${key} must not contain NUL`;
  }
  return undefined;
}

function metadataProblem(metadata: { [key: string]: string }): string | undefined {
  const entries = Object.entries(metadata);
  if (entries.length > LIMITS.metadataEntries) return `must have at most ${LIMITS.metadataEntries} entries`;
  for (const [key, value] of entries) {
    if (key === "" || key.length > LIMITS.metadataKeyChars || CONTROL_CHARACTERS.test(key)) return `key ${JSON.stringify(key)} is malformed`;
    if (bytes(value) > LIMITS.metadataValueBytes) return `value of ${key} must be at most ${LIMITS.metadataValueBytes} bytes`;
    if (value.includes("\u0000")) return `value of ${key} must not contain NUL`;
  }
  return undefined;
}

function nestedNameProblem(request: CreateExecutionRequest): string | undefined {
  const names = [...(request.script ? [request.script.name] : []), ...request.inputs.map((input) => input.name)];
  const asFiles = new Set(names);
  for (const name of names) {
    for (let slash = name.indexOf("/"); slash >= 0; slash = name.indexOf("/", slash + 1)) {
      if (asFiles.has(name.slice(0, slash))) return `${JSON.stringify(name.slice(0, slash))} is a file and a directory`;
    }
  }
  return undefined;
}

export function baselineCreateExecutionRules(maxTimeoutSeconds: number): FieldRule<CreateExecutionRequest>[] {
  return [
    { field: "script", check: (r) => (r.script === undefined ? "is required" : undefined) },
    { field: "script", check: (r) => (r.script ? fileProblem(r.script) : undefined) },
    { field: "runtime", check: (r) => (RUNTIME_PATTERN.test(r.runtime) ? undefined : `must match ${RUNTIME_PATTERN.source}`) },
    {
      field: "args",
      check: (r) => {
        if (r.args.length > LIMITS.args) return `must have at most ${LIMITS.args} entries`;
        const index = r.args.findIndex((arg) => bytes(arg) > LIMITS.argBytes || arg.includes("\u0000"));
        return index < 0 ? undefined : `entry ${index} must be at most ${LIMITS.argBytes} bytes without NUL`;
      },
    },
    { field: "env", check: (r) => envProblem(r.env) },
    { field: "inputs", check: (r) => filesProblem(r.inputs) },
    {
      field: "inputs",
      check: (r) => (r.script && r.inputs.some((input) => input.name === r.script?.name) ? "must not include the script's name" : undefined),
    },
    { field: "inputs", check: nestedNameProblem },
    { field: "metadata", check: (r) => metadataProblem(r.metadata) },
    {
      field: "timeout_seconds",
      check: (r) => (r.timeoutSeconds < 0 || r.timeoutSeconds > maxTimeoutSeconds ? `must be from 0 to ${maxTimeoutSeconds}` : undefined),
    },
    { field: "request_id", check: (r) => requestIdProblem(r.requestId) },
    {
      field: "max_retries",
      check: (r) => (r.maxRetries !== undefined && (r.maxRetries < 0 || r.maxRetries > LIMITS.maxRetries) ? `must be from 0 to ${LIMITS.maxRetries}` : undefined),
    },
    {
      field: "retry_on_exit_codes",
      check: (r) => {
        if (r.retryOnExitCodes.length > LIMITS.retryExitCodes) return `must have at most ${LIMITS.retryExitCodes} entries`;
        return r.retryOnExitCodes.some((code) => code < 1 || code > 255) ? "must be exit codes from 1 to 255" : undefined;
      },
    },
    { field: "batch_id", check: (r) => (r.batchId === "" || isBatchId(r.batchId) ? undefined : "must be batch_ followed by 32 lowercase hex characters") },
    {
      field: "batch_parallelism",
      check: (r) => {
        if (r.batchParallelism < 0 || r.batchParallelism > LIMITS.batchParallelism) return `must be from 0 to ${LIMITS.batchParallelism}`;
        return r.batchParallelism > 0 && r.batchId === "" ? "needs a batch_id" : undefined;
      },
    },
  ];
}
