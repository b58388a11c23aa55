// How the fake ExecutionServices of the CLI's and the console's tests fill in an execution the
// way the service does: it records what its CreateExecution request asked for, and a retry carries
// all of that over from its original. Those are the fields both messages have, found by name in
// the protos, so an option added to both needs no change here or in the fakes.
//
// Imported from the generated TypeScript, as the console does, so both fakes can use it.
import type { CreateExecutionRequest, Execution } from "../../packages/proto/src/gen/rgrid/v1/execution_pb";
import { CreateExecutionRequestSchema, ExecutionSchema } from "../../packages/proto/src/gen/rgrid/v1/execution_pb";

type RequestedField = Exclude<keyof CreateExecutionRequest & keyof Execution, "$typeName" | "$unknown">;

/** What an execution records of its CreateExecution request. */
export type Requested = Pick<Execution, RequestedField>;

const REQUESTED_FIELDS = CreateExecutionRequestSchema.fields
  .map((field) => field.localName)
  .filter((name) => name in ExecutionSchema.field) as RequestedField[];

/** The service's default when a request leaves max_retries unset. */
const DEFAULT_MAX_RETRIES = 2;

/** What an execution created by `request` records of it. */
export function requestedBy(request: CreateExecutionRequest): Requested {
  return { ...copyRequested(request), maxRetries: request.maxRetries ?? DEFAULT_MAX_RETRIES };
}

/** What a retry of `original` records: what its owner asked for, and the next place in its lineage. */
export function retryFieldsOf(original: Execution): Requested & Pick<Execution, "retryOf" | "rootId" | "attempt"> {
  return { ...copyRequested(original), retryOf: original.id, rootId: original.rootId, attempt: original.attempt + 1 };
}

/** The requested fields of `source`, with lists and maps copied so the two never share them. */
function copyRequested(source: Partial<Record<RequestedField, unknown>>): Requested {
  return Object.fromEntries(REQUESTED_FIELDS.map((name) => [name, shallowCopyOf(source[name])])) as Requested;
}

function shallowCopyOf(value: unknown): unknown {
  if (Array.isArray(value)) {
    return [...value];
  }
  return typeof value === "object" && value !== null ? { ...value } : value;
}
