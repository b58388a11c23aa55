import { codeRule, relativePathProblem } from "@rgrid/common";
import type { CodeRule, FieldProblem } from "@rgrid/common";
import {
  BatchCreateExecutionsRequestSchema,
  CompleteExecutionRequestSchema,
  CreateExecutionRequestSchema,
  CreateOutputUploadsRequestSchema,
  RetryExecutionRequestSchema,
} from "@rgrid/proto";
import type { CreateExecutionRequest, FileInfo, RetryExecutionRequest } from "@rgrid/proto";

// The rules of this service's requests that protovalidate cannot say, or only at a high price;
// every other rule is declared in the protos (proto/rgrid/v1/execution.proto, runner.proto) and
// checked first, so these may rely on it: at most 1000 files, names of at most 1024 bytes.

/** The most input files one BatchCreateExecutions may declare in all (execution.proto). */
const MAX_BATCH_INPUTS = 1000;

export interface ExecutionLimits {
  /** The longest timeout a request may ask for (configured: RGRID_MAX_TIMEOUT_SECONDS). */
  maxTimeoutSeconds: number;
}

export function executionCodeRules(limits: ExecutionLimits): CodeRule[] {
  const timeoutProblem = (timeoutSeconds: number, field: string): FieldProblem | undefined =>
    timeoutSeconds > limits.maxTimeoutSeconds
      ? { field, rule: "rgrid.max_timeout", problem: `must be from 0 (the default) to ${limits.maxTimeoutSeconds}` }
      : undefined;
  /** The rules of CreateExecution that its own fields cannot say, for a request at `prefix` ("" or "requests[3]."). */
  const createProblem = (request: CreateExecutionRequest, prefix: string): FieldProblem | undefined =>
    fileNamesProblem(namedFiles(request, prefix)) ??
    nestedNameProblem(namedFiles(request, prefix)) ??
    timeoutProblem(request.timeoutSeconds, `${prefix}timeout_seconds`);
  return [
    codeRule(CreateExecutionRequestSchema, (request) => createProblem(request, "")),
    codeRule(BatchCreateExecutionsRequestSchema, (batch) => {
      const inputs = batch.requests.reduce((sum, request) => sum + request.inputs.length, 0);
      if (inputs > MAX_BATCH_INPUTS) {
        return { field: "requests", rule: "rgrid.max_batch_inputs", problem: `must declare at most ${MAX_BATCH_INPUTS} input files in all (${inputs} declared)` };
      }
      for (const [index, request] of batch.requests.entries()) {
        const problem = createProblem(request, `requests[${index}].`);
        if (problem !== undefined) {
          return problem;
        }
      }
      return undefined;
    }),
    codeRule(RetryExecutionRequestSchema, queuedUntilProblem),
    codeRule(RetryExecutionRequestSchema, (request) => {
      const script = request.overrides?.script;
      return script === undefined ? undefined : fileNamesProblem([{ name: script.name, field: "overrides.script.name" }]);
    }),
    codeRule(RetryExecutionRequestSchema, (request) => timeoutProblem(request.overrides?.timeoutSeconds ?? 0, "overrides.timeout_seconds")),
    codeRule(CreateOutputUploadsRequestSchema, (request) => fileNamesProblem(outputFiles(request.outputs))),
    codeRule(CompleteExecutionRequestSchema, (request) => fileNamesProblem(outputFiles(request.outputs))),
  ];
}

/** A file of a request with the path of its name field, to name it in a refusal. */
interface NamedFile {
  name: string;
  field: string;
}

/** The script and inputs share the runner's working directory, so their names are checked as one set. */
function namedFiles(request: CreateExecutionRequest, prefix: string): NamedFile[] {
  return [
    ...(request.script ? [{ name: request.script.name, field: `${prefix}script.name` }] : []),
    ...request.inputs.map((input, index) => ({ name: input.name, field: `${prefix}inputs[${index}].name` })),
  ];
}

function outputFiles(outputs: readonly FileInfo[]): NamedFile[] {
  return outputs.map((output, index) => ({ name: output.name, field: `outputs[${index}].name` }));
}

/**
 * Each name becomes a path in a runner's working directory and part of an object key: it must
 * be a safe relative path (path rules need more than a pattern can say clearly), and name one
 * file (a set of names; as a CEL rule it cost more than all the other rules together).
 */
function fileNamesProblem(files: readonly NamedFile[]): FieldProblem | undefined {
  const seen = new Map<string, string>();
  for (const file of files) {
    const problem = relativePathProblem(file.name);
    if (problem !== undefined) {
      return { field: file.field, rule: "rgrid.relative_path", problem };
    }
    const earlier = seen.get(file.name);
    if (earlier !== undefined) {
      return { field: file.field, rule: "rgrid.unique_name", problem: `names the same file as ${earlier}` };
    }
    seen.set(file.name, file.field);
  }
  return undefined;
}

/**
 * The script and inputs share the runner's working directory (and each kind one storage
 * directory), where "data" cannot be a file and the directory of "data/in.json" at once:
 * such a pair could never be uploaded or run, so it is refused up front.
 */
function nestedNameProblem(files: readonly NamedFile[]): FieldProblem | undefined {
  const asFiles = new Set(files.map((file) => file.name));
  for (const file of files) {
    for (let slash = file.name.indexOf("/"); slash >= 0; slash = file.name.indexOf("/", slash + 1)) {
      const directory = file.name.slice(0, slash);
      if (asFiles.has(directory)) {
        return {
          field: file.field,
          rule: "rgrid.nested_name",
          problem: `${JSON.stringify(directory)} is a file and also the directory of ${JSON.stringify(file.name)}`,
        };
      }
    }
  }
  return undefined;
}

const MAX_NANOS = 999_999_999;

/**
 * protovalidate reads a Duration or Timestamp as CEL does, carrying nanos beyond a second over
 * into seconds; protobuf calls such values invalid (nanos within a second, of the seconds' sign),
 * and a client that sends one has a bug: refused rather than guessed at.
 */
function queuedUntilProblem(request: RetryExecutionRequest): FieldProblem | undefined {
  const { queuedUntil } = request;
  if (queuedUntil.case === "delay") {
    const { seconds, nanos } = queuedUntil.value;
    const sameSign = (seconds >= 0n && nanos >= 0) || (seconds <= 0n && nanos <= 0);
    return Math.abs(nanos) > MAX_NANOS || !sameSign
      ? { field: "delay", rule: "rgrid.duration_nanos", problem: "nanos must be within a second and of the sign of seconds" }
      : undefined;
  }
  if (queuedUntil.case === "notBefore") {
    const { nanos } = queuedUntil.value;
    return nanos < 0 || nanos > MAX_NANOS
      ? { field: "not_before", rule: "rgrid.timestamp_nanos", problem: "nanos must be from 0 to 999999999" }
      : undefined;
  }
  return undefined;
}
