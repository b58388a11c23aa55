import type { FieldRule } from "@rgrid/common";
import { isExecutionId } from "@rgrid/common";
import type {
  CommitUploadsRequest,
  CopyInputsRequest,
  CreateDownloadGrantsRequest,
  CreateUploadGrantsRequest,
  DeleteExecutionObjectsRequest,
  ListObjectsRequest,
  ListStoredExecutionsRequest,
  ObjectRef,
  StatObjectsRequest,
} from "@rgrid/proto";
import { ObjectKind } from "@rgrid/proto";
import { isStagedKind, isStoredKind, objectNameProblem } from "./keys";

// The validation table of every StorageService request: one row per field, applied with
// validateRequest before a handler touches storage. A bad field is InvalidArgument naming it.

/** More objects than any execution carries; bounds the work one request can ask for. */
export const MAX_OBJECTS_PER_REQUEST = 1000;
/** The largest page of ListStoredExecutions, and the size of a page that asks for none. */
export const MAX_STORED_EXECUTIONS_PAGE = 1000;
/** The longest validity S3 presigned URLs support (7 days). */
export const MAX_GRANT_TTL_SECONDS = 7 * 24 * 60 * 60;

const executionId = <T>(field: string, get: (message: T) => string): FieldRule<T> => ({
  field,
  check: (message) => (isExecutionId(get(message)) ? undefined : "must be exec_ followed by 32 lowercase hex characters"),
});

const count = <T>(field: string, get: (message: T) => readonly unknown[], min: number): FieldRule<T> => ({
  field,
  check: (message) => {
    const length = get(message).length;
    if (length < min) {
      return "must not be empty";
    }
    return length > MAX_OBJECTS_PER_REQUEST ? `must have at most ${MAX_OBJECTS_PER_REQUEST} entries` : undefined;
  },
});

/** The first entry a check refuses, reported with its index. */
const each = <T, E>(field: string, get: (message: T) => readonly E[], check: (entry: E) => string | undefined): FieldRule<T> => ({
  field,
  check: (message) => {
    const entries = get(message);
    for (let index = 0; index < entries.length; index++) {
      const problem = check(entries[index] as E);
      if (problem !== undefined) {
        return `${problem} (at index ${index})`;
      }
    }
    return undefined;
  },
});

const refRules = <T extends { refs: ObjectRef[] }>(minRefs: number): FieldRule<T>[] => [
  count("refs", (message) => message.refs, minRefs),
  each("refs.kind", (message) => message.refs, (ref) => (isStoredKind(ref.kind) ? undefined : "must be SCRIPT, INPUT or OUTPUT")),
  each("refs.name", (message) => message.refs, (ref) => objectNameProblem(ref.name)),
];

const ttlSeconds = <T extends { ttlSeconds: number }>(): FieldRule<T> => ({
  field: "ttl_seconds",
  check: (message) =>
    message.ttlSeconds < 0 || message.ttlSeconds > MAX_GRANT_TTL_SECONDS
      ? `must be from 0 (the default) to ${MAX_GRANT_TTL_SECONDS}`
      : undefined,
});

export const createUploadGrantsRules: readonly FieldRule<CreateUploadGrantsRequest>[] = [
  executionId("execution_id", (message) => message.executionId),
  ...refRules<CreateUploadGrantsRequest>(1),
  each("refs.sha256", (message) => message.refs, (ref) =>
    ref.sha256 === "" || /^[0-9a-f]{64}$/.test(ref.sha256) ? undefined : "must be empty or 64 lowercase hex characters",
  ),
  ttlSeconds<CreateUploadGrantsRequest>(),
];

export const commitUploadsRules: readonly FieldRule<CommitUploadsRequest>[] = [
  executionId("execution_id", (message) => message.executionId),
  ...refRules<CommitUploadsRequest>(1),
  each("refs.kind", (message) => message.refs, (ref) => (isStagedKind(ref.kind) ? undefined : "must be SCRIPT or INPUT (outputs are not staged)")),
];

export const createDownloadGrantsRules: readonly FieldRule<CreateDownloadGrantsRequest>[] = [
  executionId("execution_id", (message) => message.executionId),
  ...refRules<CreateDownloadGrantsRequest>(1),
  ttlSeconds<CreateDownloadGrantsRequest>(),
];

export const copyInputsRules: readonly FieldRule<CopyInputsRequest>[] = [
  executionId("source_execution_id", (message) => message.sourceExecutionId),
  executionId("target_execution_id", (message) => message.targetExecutionId),
  {
    field: "target_execution_id",
    // Copying onto itself would overwrite the source, and a rollback would then delete it.
    check: (message) => (message.targetExecutionId === message.sourceExecutionId ? "must differ from source_execution_id" : undefined),
  },
  count("names", (message) => message.names, 0),
  each("names", (message) => message.names, objectNameProblem),
  {
    field: "names",
    // Two parallel copies onto one target key would race; a name is copied once.
    check: (message) => {
      const duplicate = message.names.find((name, index) => message.names.indexOf(name) !== index);
      return duplicate === undefined ? undefined : `must not repeat '${duplicate}'`;
    },
  },
  {
    field: "script_name",
    check: (message) => (message.scriptName === "" ? undefined : objectNameProblem(message.scriptName)),
  },
];

export const statObjectsRules: readonly FieldRule<StatObjectsRequest>[] = [
  executionId("execution_id", (message) => message.executionId),
  ...refRules<StatObjectsRequest>(0),
];

export const listObjectsRules: readonly FieldRule<ListObjectsRequest>[] = [
  executionId("execution_id", (message) => message.executionId),
  {
    field: "kind",
    check: (message) =>
      message.kind === ObjectKind.UNSPECIFIED || isStoredKind(message.kind) ? undefined : "must be a known object kind",
  },
];

export const deleteExecutionObjectsRules: readonly FieldRule<DeleteExecutionObjectsRequest>[] = [
  executionId("execution_id", (message) => message.executionId),
];

export const listStoredExecutionsRules: readonly FieldRule<ListStoredExecutionsRequest>[] = [
  {
    field: "after_execution_id",
    check: (message) =>
      message.afterExecutionId === "" || isExecutionId(message.afterExecutionId)
        ? undefined
        : "must be empty or exec_ followed by 32 lowercase hex characters",
  },
  {
    field: "page_size",
    check: (message) =>
      message.pageSize < 0 || message.pageSize > MAX_STORED_EXECUTIONS_PAGE
        ? `must be from 0 (the default, ${MAX_STORED_EXECUTIONS_PAGE}) to ${MAX_STORED_EXECUTIONS_PAGE}`
        : undefined,
  },
];
