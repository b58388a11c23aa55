import { codeRule } from "@rgrid/common";
import type { CodeRule, FieldProblem } from "@rgrid/common";
import {
  CommitUploadsBatchRequestSchema,
  CommitUploadsRequestSchema,
  CopyInputsBatchRequestSchema,
  CopyInputsRequestSchema,
  CreateDownloadGrantsBatchRequestSchema,
  CreateDownloadGrantsRequestSchema,
  CreateUploadGrantsBatchRequestSchema,
  CreateUploadGrantsRequestSchema,
  StatObjectsRequestSchema,
} from "@rgrid/proto";
import type { CopyInputsRequest, ObjectRef } from "@rgrid/proto";
import { objectNameProblem } from "./keys";

// The rules of StorageService requests that protovalidate cannot say: object names must be safe
// paths that no temporary file could have (objectNameProblem). Every other rule is declared in
// proto/rgrid/v1/storage.proto and checked first, so these may rely on it (at most 1000 names).

/** The largest page of ListStoredExecutions, and the size of a page that asks for none. */
export const MAX_STORED_EXECUTIONS_PAGE = 1000;
/** The most object refs a CreateUploadGrantsBatch, CreateDownloadGrantsBatch or CommitUploadsBatch takes in all (storage.proto). */
export const MAX_BATCH_REFS = 2000;
/** The longest validity S3 presigned URLs support (7 days); storage.proto bounds ttl_seconds by it too. */
export const MAX_GRANT_TTL_SECONDS = 7 * 24 * 60 * 60;

export const storageCodeRules: readonly CodeRule[] = [
  codeRule(CreateUploadGrantsRequestSchema, (request) => refNamesProblem(request.refs)),
  codeRule(CommitUploadsRequestSchema, (request) => refNamesProblem(request.refs)),
  codeRule(CreateUploadGrantsBatchRequestSchema, (request) => batchRefsProblem(request.requests)),
  codeRule(CommitUploadsBatchRequestSchema, (request) => batchRefsProblem(request.requests)),
  codeRule(CreateDownloadGrantsBatchRequestSchema, (request) => batchRefsProblem(request.requests)),
  codeRule(CreateDownloadGrantsRequestSchema, (request) => refNamesProblem(request.refs)),
  codeRule(StatObjectsRequestSchema, (request) => refNamesProblem(request.refs)),
  codeRule(CopyInputsRequestSchema, (request) => namesProblem(copyNames(request, ""))),
  codeRule(
    CopyInputsBatchRequestSchema,
    (request) => targetReadProblem(request.copies) ?? namesProblem(request.copies.flatMap((copy, index) => copyNames(copy, `copies[${index}].`))),
  ),
];

/**
 * The half of storage.proto's copies.targets_written_once that CEL could say only by comparing
 * every target with every source: no copy writes what another copy reads.
 */
function targetReadProblem(copies: readonly CopyInputsRequest[]): FieldProblem | undefined {
  const sources = new Set(copies.map((copy) => copy.sourceExecutionId));
  return copies.some((copy) => sources.has(copy.targetExecutionId))
    ? { field: "copies", rule: "copies.targets_written_once", problem: "each target execution id may appear once, and not as a source" }
    : undefined;
}

/** The object names one copy asks for, each with its field's path under `prefix`. */
function copyNames(copy: CopyInputsRequest, prefix: string): Array<{ name: string; field: string }> {
  return [
    ...copy.names.map((name, index) => ({ name, field: `${prefix}names[${index}]` })),
    // Empty: the script is not copied.
    ...(copy.scriptName === "" ? [] : [{ name: copy.scriptName, field: `${prefix}script_name` }]),
  ];
}

function refNamesProblem(refs: readonly ObjectRef[], prefix = ""): FieldProblem | undefined {
  return namesProblem(refs.map((ref, index) => ({ name: ref.name, field: `${prefix}refs[${index}].name` })));
}

/** A batch's requests: every name as its request would have it, and a bound on the work of one call. */
function batchRefsProblem(requests: readonly { refs: readonly ObjectRef[] }[]): FieldProblem | undefined {
  const total = requests.reduce((sum, request) => sum + request.refs.length, 0);
  if (total > MAX_BATCH_REFS) {
    return { field: "requests", rule: "rgrid.max_batch_refs", problem: `must name at most ${MAX_BATCH_REFS} objects in all (${total} named)` };
  }
  for (const [index, request] of requests.entries()) {
    const problem = refNamesProblem(request.refs, `requests[${index}].`);
    if (problem !== undefined) {
      return problem;
    }
  }
  return undefined;
}

function namesProblem(names: readonly { name: string; field: string }[]): FieldProblem | undefined {
  for (const { name, field } of names) {
    const problem = objectNameProblem(name);
    if (problem !== undefined) {
      return { field, rule: "rgrid.object_name", problem };
    }
  }
  return undefined;
}
