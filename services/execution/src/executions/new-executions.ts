import { ErrorInfo_Reason } from "@rgrid/proto";
import type { CreateExecutionRequest, FileInfo } from "@rgrid/proto";
import { notYetRun } from "../db/entities";
import type { Execution, RetryKindName } from "../db/entities";
import { PreconditionError } from "../errors";
import { storedFile } from "./convert";
import type { AppliedOverrides, Overridable } from "./overrides";

// The record of every new execution is made here: an original from its CreateExecution request,
// a retry (manual, forced, automatic or batch: all go through retry.ts) from its original. Each
// field of the entity is in one of three groups:
// - what its owner asked for (Requested): from the request, and copied by every retry;
// - its run (notYetRun): empty until a runner claims it;
// - who it is and where it sits in its lineage (Lineage: every other field): set afresh.
// A field added to the entity lands in Lineage until it is put in one of the first two groups,
// so the functions below stop compiling until it is given a value: it cannot be left out of
// either record unnoticed.
//
// The groups are put together by `assembled`, one object literal naming every field, and not by
// spreading them into one object: on Node 20, V8 makes a new hidden class for every property
// added to an object after a spread, so a spread record cost about 40 µs and 20 KB of hidden
// classes, which live in the old generation and made most of a retry's work for its collector.

/** What the owner asked for: recorded at the create, and carried over by every retry. */
type Requested = Pick<
  Execution,
  | "accountId"
  | "scriptName"
  | "scriptSizeBytes"
  | "scriptSha256"
  | "runtime"
  | "runtimeName"
  | "args"
  | "env"
  | "inputs"
  | "metadata"
  | "timeoutSeconds"
  | "network"
  | "maxRetries"
  | "retryOnExitCodes"
  // A retry stays in its original's batch, so the batch shows each lineage's latest attempt.
  | "batchId"
  | "batchParallelism"
>;
type RunState = ReturnType<typeof notYetRun>;
type Lineage = Omit<Execution, keyof Requested | keyof RunState>;

/**
 * Creates and retries share one request_id space per account; a create re-sent with the id of
 * a retry is another request, refused rather than answered with that retry.
 */
export function requireCreated(earlier: Execution, requestId: string): Execution {
  if (earlier.retryOf !== null) {
    throw new PreconditionError(`request_id ${JSON.stringify(requestId)} was already used for another request; use a new one`, {
      reason: ErrorInfo_Reason.REQUEST_ID_REUSED,
    });
  }
  return earlier;
}

/** Automatic retries a lineage allows when its CreateExecution request leaves max_retries unset. */
const DEFAULT_MAX_RETRIES = 2;

/** Who an original is, and when and for whom it was made. */
export interface NewOriginal {
  id: string;
  accountId: string;
  createdAt: Date;
}

/**
 * The record of the execution `request` creates: uploading until its files are confirmed, and
 * the first of its lineage. What the request leaves unset gets its default here.
 */
export function originalRecord(request: CreateExecutionRequest, made: NewOriginal): Execution {
  // Validation refuses a request without a script.
  const script = request.script as FileInfo;
  const requested: Requested = {
    accountId: made.accountId,
    scriptName: script.name,
    scriptSizeBytes: Number(script.sizeBytes),
    scriptSha256: script.sha256,
    runtime: request.runtime,
    runtimeName: request.runtime.split(":")[0] as string,
    args: request.args,
    env: request.env,
    inputs: request.inputs.map(storedFile),
    metadata: request.metadata,
    timeoutSeconds: request.timeoutSeconds,
    network: request.network,
    maxRetries: request.maxRetries ?? DEFAULT_MAX_RETRIES,
    retryOnExitCodes: [...new Set(request.retryOnExitCodes)],
    batchId: request.batchId === "" ? null : request.batchId,
    batchParallelism: request.batchParallelism,
  };
  const lineage: Lineage = {
    id: made.id,
    status: "uploading",
    createdAt: made.createdAt,
    retryOf: null,
    rootId: made.id,
    attempt: 1,
    retryKind: "original",
    retriedBy: null,
    requestId: request.requestId === "" ? null : request.requestId,
    autoRetryNumber: 0,
    retryReason: "",
    overrides: null,
  };
  return assembled(requested, notYetRun(), lineage);
}

/** Made by the service itself after a transient failure (docs/architecture.md, automatic retries). */
export interface AutomaticRetry {
  /** Which automatic retry of its lineage this is (1, 2, ...). */
  number: number;
  /** "runner lost", "infrastructure error", "exit code 75". */
  reason: string;
  /** The backoff: the retry is not claimed before this time. */
  notBefore: Date;
}

/** Who a retry is, and how and by whom it was asked for. */
export interface NewRetry {
  id: string;
  createdAt: Date;
  kind: Exclude<RetryKindName, "original">;
  /** The API key or console session that asked; null when nobody did (an automatic retry). */
  retriedBy: string | null;
  requestId: string;
  automatic?: AutomaticRetry;
  /** A delayed retry's time, asked for by its owner; an automatic one waits out its backoff instead. */
  notBefore?: Date;
  /** What the retry asks for differently from its original (`rgrid retry --env …`). */
  overrides?: AppliedOverrides;
}

/**
 * The record of a retry of `original` (docs/architecture.md, "The retry rules"): queued (or
 * uploading, while its new script version is on its way), with everything its owner asked for
 * copied from the original but what its overrides change, and the next place in its lineage.
 * The original itself is never changed.
 */
export function retryRecordOf(original: Execution, retry: NewRetry): Execution {
  const lineage: Lineage = {
    id: retry.id,
    status: retry.overrides?.newScript === true ? "uploading" : "queued",
    createdAt: retry.createdAt,
    retryOf: original.id,
    rootId: original.rootId,
    attempt: original.attempt + 1,
    retryKind: retry.kind,
    retriedBy: retry.retriedBy,
    requestId: retry.requestId,
    autoRetryNumber: retry.automatic?.number ?? 0,
    retryReason: retry.automatic?.reason ?? "",
    overrides: retry.overrides?.record ?? null,
  };
  const run = notYetRun();
  run.notBefore = retry.automatic?.notBefore ?? retry.notBefore ?? null;
  return assembled(carriedOver(original, retry.overrides?.changed), run, lineage);
}

/** Copied, not shared (the two records are stored, and may be changed, apart), with a retry's overrides in place. */
function carriedOver(original: Requested, changed: Partial<Overridable> = {}): Requested {
  const requested: Requested = {
    accountId: original.accountId,
    scriptName: original.scriptName,
    scriptSizeBytes: original.scriptSizeBytes,
    scriptSha256: original.scriptSha256,
    runtime: original.runtime,
    runtimeName: original.runtimeName,
    args: copyOf(original.args),
    env: copyOf(original.env),
    inputs: copyOf(original.inputs),
    metadata: copyOf(original.metadata),
    timeoutSeconds: original.timeoutSeconds,
    network: original.network,
    maxRetries: original.maxRetries,
    retryOnExitCodes: copyOf(original.retryOnExitCodes),
    batchId: original.batchId,
    batchParallelism: original.batchParallelism,
  };
  // Stores into fields the record has already: no new hidden class.
  return Object.assign(requested, changed);
}

/** The whole record from its three groups: every field named once, always in this order. */
function assembled(requested: Requested, run: RunState, lineage: Lineage): Execution {
  return {
    id: lineage.id,
    accountId: requested.accountId,
    status: lineage.status,
    scriptName: requested.scriptName,
    scriptSizeBytes: requested.scriptSizeBytes,
    scriptSha256: requested.scriptSha256,
    runtime: requested.runtime,
    runtimeName: requested.runtimeName,
    args: requested.args,
    env: requested.env,
    inputs: requested.inputs,
    metadata: requested.metadata,
    outputs: run.outputs,
    timeoutSeconds: requested.timeoutSeconds,
    createdAt: lineage.createdAt,
    startedAt: run.startedAt,
    finishedAt: run.finishedAt,
    exitCode: run.exitCode,
    errorMessage: run.errorMessage,
    runnerId: run.runnerId,
    retryOf: lineage.retryOf,
    rootId: lineage.rootId,
    attempt: lineage.attempt,
    retryKind: lineage.retryKind,
    retriedBy: lineage.retriedBy,
    requestId: lineage.requestId,
    network: requested.network,
    maxRetries: requested.maxRetries,
    retryOnExitCodes: requested.retryOnExitCodes,
    batchId: requested.batchId,
    batchParallelism: requested.batchParallelism,
    failureKind: run.failureKind,
    autoRetryNumber: lineage.autoRetryNumber,
    retryReason: lineage.retryReason,
    sandboxWarnings: run.sandboxWarnings,
    cancelRequestedAt: run.cancelRequestedAt,
    notBefore: run.notBefore,
    logBytes: run.logBytes,
    logsTruncated: run.logsTruncated,
    logsArchived: run.logsArchived,
    autoRetryPending: run.autoRetryPending,
    overrides: lineage.overrides,
  };
}

/**
 * A deep copy of a field's value: scalars, dates, and the arrays and plain objects of JSON
 * columns. Not structuredClone: under a test runner's sandbox it answers with objects of another
 * realm, which deep comparisons tell apart from the original's.
 */
function copyOf<T>(value: T): T {
  if (Array.isArray(value)) {
    return value.map(copyOf) as T;
  }
  if (value instanceof Date) {
    return new Date(value.getTime()) as T;
  }
  if (typeof value === "object" && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([key, entry]) => [key, copyOf(entry)])) as T;
  }
  return value;
}
