import { isBatchId, isExecutionId, relativePathProblem } from "@rgrid/common";
import type { FieldRule } from "@rgrid/common";
import { LogEntry_Stream, Outcome } from "@rgrid/proto";
import type {
  AppendLogsRequest,
  ClaimExecutionRequest,
  CompleteExecutionRequest,
  CreateExecutionRequest,
  CreateOutputUploadsRequest,
  FileInfo,
  CreateSessionRequest,
  FollowLogsRequest,
  GetBatchRequest,
  GetLogsRequest,
  HeartbeatRequest,
  ListExecutionsRequest,
  RegisterRunnerRequest,
  RetryBatchRequest,
  RetryExecutionRequest,
} from "@rgrid/proto";

// Every request message's rules, declared in one place. Limits keep one request from holding
// unbounded memory or rows; the request size limit of the server is the outer bound.

export const LIMITS = {
  args: 1000,
  argBytes: 64 * 1024,
  envEntries: 200,
  envValueBytes: 64 * 1024,
  files: 1000,
  metadataEntries: 100,
  metadataKeyChars: 128,
  metadataValueBytes: 4096,
  requestIdChars: 128,
  runnerNameChars: 255,
  runtimes: 50,
  logEntries: 10_000,
  logLineBytes: 64 * 1024,
  errorMessageBytes: 64 * 1024,
  pageSize: 500,
  logLimit: 10_000,
  maxRetries: 10,
  retryExitCodes: 32,
  batchParallelism: 10_000,
  sandboxWarnings: 32,
  sandboxWarningChars: 500,
  heartbeatExecutions: 1000,
  credentialChars: 256,
  envKeyChars: 256,
  scriptFilterChars: 1024,
} as const;

export const RUNTIME_PATTERN = /^[a-z][a-z0-9_-]{0,31}(:[A-Za-z0-9._-]{1,32})?$/;
const ENV_KEY_PATTERN = /^[A-Za-z_][A-Za-z0-9_]*$/;
const SHA256_PATTERN = /^[0-9a-f]{64}$/;
const RUNNER_ID_PATTERN = /^runner_[0-9a-f]{32}$/;
const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f]/;

const bytes = (value: string) => Buffer.byteLength(value, "utf8");

function executionIdProblem(id: string): string | undefined {
  return isExecutionId(id) ? undefined : "must be exec_ followed by 32 lowercase hex characters";
}

function runnerIdProblem(id: string): string | undefined {
  return RUNNER_ID_PATTERN.test(id) ? undefined : "must be a runner id returned by RegisterRunner";
}

function batchIdProblem(id: string, required: boolean): string | undefined {
  if (id === "") {
    return required ? "is required" : undefined;
  }
  return isBatchId(id) ? undefined : "must be batch_ followed by 32 lowercase hex characters";
}

// Automatic retries and the items of a batch retry carry request ids the service derives; a
// client's id must never be able to collide with them.
const RESERVED_REQUEST_ID_PREFIXES = ["auto:", "batch:"];

function requestIdProblem(id: string, required: boolean): string | undefined {
  if (id === "") {
    return required ? "is required" : undefined;
  }
  if (id.length > LIMITS.requestIdChars) {
    return `must be at most ${LIMITS.requestIdChars} characters`;
  }
  if (RESERVED_REQUEST_ID_PREFIXES.some((prefix) => id.startsWith(prefix))) {
    return `must not start with ${RESERVED_REQUEST_ID_PREFIXES.join(" or ")} (reserved for retries the service makes itself)`;
  }
  return CONTROL_CHARACTERS.test(id) ? "must not contain control characters" : undefined;
}

/**
 * Log sequences are stored below 2^53 (AppendLogs refuses larger ones), so a position past that
 * names nothing; refusing it keeps every accepted value exact when it meets the database.
 */
function sequenceProblem(sequence: bigint): string | undefined {
  return sequence < 0n || sequence > MAX_EXACT_INTEGER ? `must be from 0 to ${MAX_EXACT_INTEGER}` : undefined;
}

const MAX_EXACT_INTEGER = BigInt(Number.MAX_SAFE_INTEGER);

function fileProblem(file: FileInfo): string | undefined {
  const nameProblem = relativePathProblem(file.name);
  if (nameProblem !== undefined) {
    return `name ${JSON.stringify(file.name)} ${nameProblem}`;
  }
  if (file.sizeBytes < 0n) {
    return `${file.name}: size_bytes must not be negative`;
  }
  if (file.sizeBytes > MAX_EXACT_INTEGER) {
    return `${file.name}: size_bytes is too large`;
  }
  if (!SHA256_PATTERN.test(file.sha256)) {
    return `${file.name}: sha256 must be 64 lowercase hex characters`;
  }
  return undefined;
}

/** Problems of a list of files: each valid, names unique, not too many. */
function filesProblem(files: readonly FileInfo[]): string | undefined {
  if (files.length > LIMITS.files) {
    return `must have at most ${LIMITS.files} entries`;
  }
  const seen = new Set<string>();
  for (const file of files) {
    const problem = fileProblem(file);
    if (problem !== undefined) {
      return problem;
    }
    if (seen.has(file.name)) {
      return `name ${JSON.stringify(file.name)} appears more than once`;
    }
    seen.add(file.name);
  }
  return undefined;
}

function envProblem(env: { [key: string]: string }): string | undefined {
  const entries = Object.entries(env);
  if (entries.length > LIMITS.envEntries) {
    return `must have at most ${LIMITS.envEntries} entries`;
  }
  for (const [key, value] of entries) {
    if (key.length > LIMITS.envKeyChars) {
      return `keys must be at most ${LIMITS.envKeyChars} characters`;
    }
    if (!ENV_KEY_PATTERN.test(key)) {
      return `key ${JSON.stringify(key)} must match ${ENV_KEY_PATTERN.source}`;
    }
    if (bytes(value) > LIMITS.envValueBytes) {
      return `value of ${key} must be at most ${LIMITS.envValueBytes} bytes`;
    }
    if (value.includes("\u0000")) {
      return `value of ${key} must not contain NUL`;
    }
  }
  return undefined;
}

function metadataProblem(metadata: { [key: string]: string }): string | undefined {
  const entries = Object.entries(metadata);
  if (entries.length > LIMITS.metadataEntries) {
    return `must have at most ${LIMITS.metadataEntries} entries`;
  }
  for (const [key, value] of entries) {
    if (key === "" || key.length > LIMITS.metadataKeyChars || CONTROL_CHARACTERS.test(key)) {
      return `key ${JSON.stringify(key)} must be 1 to ${LIMITS.metadataKeyChars} characters without control characters`;
    }
    if (bytes(value) > LIMITS.metadataValueBytes) {
      return `value of ${key} must be at most ${LIMITS.metadataValueBytes} bytes`;
    }
    if (value.includes("\u0000")) {
      return `value of ${key} must not contain NUL`;
    }
  }
  return undefined;
}

/**
 * The script and inputs share the runner's working directory (and each kind one storage
 * directory), where "data" cannot be a file and the directory of "data/in.json" at once:
 * such a pair could never be uploaded or run, so it is refused up front.
 */
function nestedNameProblem(request: CreateExecutionRequest): string | undefined {
  const names = [...(request.script ? [request.script.name] : []), ...request.inputs.map((input) => input.name)];
  const asFiles = new Set(names);
  for (const name of names) {
    for (let slash = name.indexOf("/"); slash >= 0; slash = name.indexOf("/", slash + 1)) {
      const directory = name.slice(0, slash);
      if (asFiles.has(directory)) {
        return `${JSON.stringify(directory)} is a file and also the directory of ${JSON.stringify(name)}`;
      }
    }
  }
  return undefined;
}

export function createExecutionRules(maxTimeoutSeconds: number): FieldRule<CreateExecutionRequest>[] {
  return [
    { field: "script", check: (r) => (r.script === undefined ? "is required" : undefined) },
    { field: "script", check: (r) => (r.script ? fileProblem(r.script) : undefined) },
    {
      field: "runtime",
      check: (r) => (RUNTIME_PATTERN.test(r.runtime) ? undefined : `must match ${RUNTIME_PATTERN.source}, e.g. python or python:3.11`),
    },
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
      check: (r) =>
        r.script && r.inputs.some((input) => input.name === r.script?.name)
          ? `must not include the script's name ${JSON.stringify(r.script.name)}`
          : undefined,
    },
    { field: "inputs", check: nestedNameProblem },
    { field: "metadata", check: (r) => metadataProblem(r.metadata) },
    {
      field: "timeout_seconds",
      check: (r) =>
        r.timeoutSeconds < 0 || r.timeoutSeconds > maxTimeoutSeconds
          ? `must be from 0 (the default) to ${maxTimeoutSeconds}`
          : undefined,
    },
    { field: "request_id", check: (r) => requestIdProblem(r.requestId, false) },
    {
      field: "max_retries",
      check: (r) =>
        r.maxRetries !== undefined && (r.maxRetries < 0 || r.maxRetries > LIMITS.maxRetries)
          ? `must be from 0 to ${LIMITS.maxRetries}`
          : undefined,
    },
    {
      field: "retry_on_exit_codes",
      check: (r) => {
        if (r.retryOnExitCodes.length > LIMITS.retryExitCodes) return `must have at most ${LIMITS.retryExitCodes} entries`;
        const bad = r.retryOnExitCodes.find((code) => code < 1 || code > 255);
        return bad === undefined ? undefined : `${bad} is not an exit code that means failure (1 to 255)`;
      },
    },
    { field: "batch_id", check: (r) => batchIdProblem(r.batchId, false) },
    {
      field: "batch_parallelism",
      check: (r) => {
        if (r.batchParallelism < 0 || r.batchParallelism > LIMITS.batchParallelism) {
          return `must be from 0 (no limit) to ${LIMITS.batchParallelism}`;
        }
        return r.batchParallelism > 0 && r.batchId === "" ? "needs a batch_id" : undefined;
      },
    },
  ];
}

/** For every request that names one execution and nothing else to check. */
export const executionIdRules: FieldRule<{ executionId: string }>[] = [
  { field: "execution_id", check: (r) => executionIdProblem(r.executionId) },
];

export const retryExecutionRules: FieldRule<RetryExecutionRequest>[] = [
  { field: "execution_id", check: (r) => executionIdProblem(r.executionId) },
  { field: "request_id", check: (r) => requestIdProblem(r.requestId, true) },
];

export const retryBatchRules: FieldRule<RetryBatchRequest>[] = [
  { field: "batch_id", check: (r) => batchIdProblem(r.batchId, true) },
  { field: "request_id", check: (r) => requestIdProblem(r.requestId, true) },
];

export const followLogsRules: FieldRule<FollowLogsRequest>[] = [
  { field: "execution_id", check: (r) => executionIdProblem(r.executionId) },
  { field: "after_sequence", check: (r) => sequenceProblem(r.afterSequence) },
];

export const getBatchRules: FieldRule<GetBatchRequest>[] = [
  { field: "batch_id", check: (r) => batchIdProblem(r.batchId, true) },
];

export const createSessionRules: FieldRule<CreateSessionRequest>[] = [
  {
    field: "credential",
    check: (r) => {
      if (r.credential.case === undefined) return "an api_key or a sign_in_token is required";
      const value = r.credential.value;
      return value === "" || value.length > LIMITS.credentialChars || CONTROL_CHARACTERS.test(value)
        ? `${r.credential.case === "apiKey" ? "api_key" : "sign_in_token"} must be 1 to ${LIMITS.credentialChars} characters without control characters`
        : undefined;
    },
  },
];

export const listExecutionsRules: FieldRule<ListExecutionsRequest>[] = [
  { field: "batch_id", check: (r) => batchIdProblem(r.batchId, false) },
  { field: "root_id", check: (r) => (r.rootId === "" ? undefined : executionIdProblem(r.rootId)) },
  {
    field: "script_name",
    check: (r) =>
      r.scriptName.length > LIMITS.scriptFilterChars || CONTROL_CHARACTERS.test(r.scriptName)
        ? `must be at most ${LIMITS.scriptFilterChars} characters without control characters`
        : undefined,
  },
  {
    field: "page_size",
    check: (r) => (r.pageSize < 0 || r.pageSize > LIMITS.pageSize ? `must be from 0 to ${LIMITS.pageSize}` : undefined),
  },
  {
    field: "statuses",
    check: (r) => (r.statuses.length > 16 ? "must have at most 16 entries" : undefined),
  },
];

export const getLogsRules: FieldRule<GetLogsRequest>[] = [
  { field: "execution_id", check: (r) => executionIdProblem(r.executionId) },
  { field: "after_sequence", check: (r) => sequenceProblem(r.afterSequence) },
  {
    field: "limit",
    check: (r) => (r.limit < 0 || r.limit > LIMITS.logLimit ? `must be from 0 to ${LIMITS.logLimit}` : undefined),
  },
];

export const registerRunnerRules: FieldRule<RegisterRunnerRequest>[] = [
  {
    field: "name",
    check: (r) =>
      r.name === "" || r.name.length > LIMITS.runnerNameChars || CONTROL_CHARACTERS.test(r.name)
        ? `must be 1 to ${LIMITS.runnerNameChars} characters without control characters`
        : undefined,
  },
  {
    field: "runtimes",
    check: (r) => {
      if (r.runtimes.length === 0 || r.runtimes.length > LIMITS.runtimes) {
        return `must have 1 to ${LIMITS.runtimes} entries`;
      }
      const bad = r.runtimes.find((runtime) => !RUNTIME_PATTERN.test(runtime));
      return bad === undefined ? undefined : `${JSON.stringify(bad)} must match ${RUNTIME_PATTERN.source}`;
    },
  },
  { field: "version", check: (r) => (r.version.length > 128 ? "must be at most 128 characters" : undefined) },
  {
    field: "sandbox_warnings",
    check: (r) => {
      if (r.sandboxWarnings.length > LIMITS.sandboxWarnings) return `must have at most ${LIMITS.sandboxWarnings} entries`;
      const bad = r.sandboxWarnings.find(
        (warning) => warning === "" || warning.length > LIMITS.sandboxWarningChars || CONTROL_CHARACTERS.test(warning),
      );
      return bad === undefined
        ? undefined
        : `entries must be 1 to ${LIMITS.sandboxWarningChars} characters without control characters`;
    },
  },
];

export const heartbeatRules: FieldRule<HeartbeatRequest>[] = [
  { field: "runner_id", check: (r) => runnerIdProblem(r.runnerId) },
  {
    field: "execution_ids",
    check: (r) => {
      if (r.executionIds.length > LIMITS.heartbeatExecutions) return `must have at most ${LIMITS.heartbeatExecutions} entries`;
      const bad = r.executionIds.find((id) => !isExecutionId(id));
      return bad === undefined ? undefined : `${JSON.stringify(bad)} ${executionIdProblem(bad) ?? ""}`;
    },
  },
];

export const claimExecutionRules: FieldRule<ClaimExecutionRequest>[] = [
  { field: "runner_id", check: (r) => runnerIdProblem(r.runnerId) },
  { field: "wait_millis", check: (r) => (r.waitMillis < 0 ? "must not be negative" : undefined) },
];

export const appendLogsRules: FieldRule<AppendLogsRequest>[] = [
  { field: "runner_id", check: (r) => runnerIdProblem(r.runnerId) },
  { field: "execution_id", check: (r) => executionIdProblem(r.executionId) },
  {
    field: "entries",
    check: (r) => {
      if (r.entries.length > LIMITS.logEntries) return `must have at most ${LIMITS.logEntries} entries`;
      for (const entry of r.entries) {
        if (entry.sequence < 1n || entry.sequence > BigInt(Number.MAX_SAFE_INTEGER)) {
          return `sequence ${entry.sequence} must be from 1 to ${Number.MAX_SAFE_INTEGER}`;
        }
        if (!Object.values(LogEntry_Stream).includes(entry.stream) || entry.stream === LogEntry_Stream.UNSPECIFIED) {
          return `sequence ${entry.sequence} must name a stream`;
        }
        if (bytes(entry.line) > LIMITS.logLineBytes) {
          return `sequence ${entry.sequence} has a line over ${LIMITS.logLineBytes} bytes`;
        }
      }
      return undefined;
    },
  },
];

export const createOutputUploadsRules: FieldRule<CreateOutputUploadsRequest>[] = [
  { field: "runner_id", check: (r) => runnerIdProblem(r.runnerId) },
  { field: "execution_id", check: (r) => executionIdProblem(r.executionId) },
  { field: "outputs", check: (r) => filesProblem(r.outputs) },
];

const REPORTABLE_OUTCOMES: readonly Outcome[] = [
  Outcome.COMPLETED,
  Outcome.FAILED,
  Outcome.TIMED_OUT,
  Outcome.CANCELLED,
  Outcome.INFRASTRUCTURE_ERROR,
];

export const completeExecutionRules: FieldRule<CompleteExecutionRequest>[] = [
  { field: "runner_id", check: (r) => runnerIdProblem(r.runnerId) },
  { field: "execution_id", check: (r) => executionIdProblem(r.executionId) },
  {
    field: "outcome",
    check: (r) =>
      REPORTABLE_OUTCOMES.includes(r.outcome)
        ? undefined
        : "must be OUTCOME_COMPLETED, OUTCOME_FAILED, OUTCOME_TIMED_OUT, OUTCOME_CANCELLED or OUTCOME_INFRASTRUCTURE_ERROR",
  },
  {
    field: "error_message",
    check: (r) => (bytes(r.errorMessage) > LIMITS.errorMessageBytes ? `must be at most ${LIMITS.errorMessageBytes} bytes` : undefined),
  },
  { field: "outputs", check: (r) => filesProblem(r.outputs) },
];
