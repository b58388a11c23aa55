import { BigIntType, EntitySchema } from "@mikro-orm/core";

export type ExecutionState =
  | "uploading"
  | "queued"
  | "running"
  | "completed"
  | "failed"
  | "timed_out"
  | "cancelled";

export const TERMINAL_STATES: readonly ExecutionState[] = ["completed", "failed", "timed_out", "cancelled"];

export function isTerminal(state: ExecutionState): boolean {
  return TERMINAL_STATES.includes(state);
}

export type RetryKindName = "original" | "manual" | "forced" | "automatic";

/** Why a failed execution failed; "infrastructure" and "runner_lost" are transient. */
export type FailureKindName = "script" | "infrastructure" | "runner_lost";

/** A file recorded with an execution: its inputs and outputs. */
export interface StoredFile {
  name: string;
  sizeBytes: number;
  sha256: string;
}

/** What a retry changed from the execution it retried, each part with its value before and after. */
export interface StoredOverrides {
  /** Sorted by key; a null before: added; a null after: removed. */
  env?: Array<{ key: string; before: string | null; after: string | null }>;
  args?: { before: string[]; after: string[] };
  timeout?: { before: number; after: number };
  runtime?: { before: string; after: string };
  script?: { before: StoredFile; after: StoredFile };
}

/** The record of one execution, including its retry lineage (docs/architecture.md, "Executions"). */
export class Execution {
  id!: string;
  accountId!: string;
  status!: ExecutionState;
  scriptName!: string;
  scriptSizeBytes!: number;
  scriptSha256!: string;
  runtime!: string;
  /** The runtime without its version ("python" for "python:3.11"); what claims match on. */
  runtimeName!: string;
  args!: string[];
  env!: Record<string, string>;
  inputs!: StoredFile[];
  metadata!: Record<string, string>;
  outputs!: StoredFile[];
  /** As requested; zero means the service default, applied when a runner claims it. */
  timeoutSeconds!: number;
  createdAt!: Date;
  startedAt!: Date | null;
  finishedAt!: Date | null;
  exitCode!: number | null;
  errorMessage!: string;
  runnerId!: string | null;
  retryOf!: string | null;
  rootId!: string;
  attempt!: number;
  retryKind!: RetryKindName;
  /** Id of the API key that asked for the retry. */
  retriedBy!: string | null;
  /** The client's idempotency key, unique per account across creates and retries. */
  requestId!: string | null;
  /** The script may use the network; otherwise the runner gives it none. */
  network!: boolean;
  /** Automatic retries allowed for this lineage after transient failures. */
  maxRetries!: number;
  /** Script exit codes the owner declared transient (retried automatically). */
  retryOnExitCodes!: number[];
  batchId!: string | null;
  /** How many executions of the batch may run at once; 0 means no limit. */
  batchParallelism!: number;
  failureKind!: FailureKindName | null;
  /** 0 unless this is an automatic retry: then which one of its lineage (1, 2, ...). */
  autoRetryNumber!: number;
  /** Why an automatic retry was made ("runner lost", "exit code 75", ...). */
  retryReason!: string;
  /** Isolation measures the runner could not apply on its machine, copied at claim time. */
  sandboxWarnings!: string[];
  /** Set when the owner cancels a running execution; the runner stops it on its next heartbeat. */
  cancelRequestedAt!: Date | null;
  /** A queued execution is not claimed before this time (the backoff of an automatic retry). */
  notBefore!: Date | null;
  /** Bytes of log lines stored so far, and whether later lines were dropped at the cap. */
  logBytes!: number;
  logsTruncated!: boolean;
  /** The log lines were moved out of the database into one object in storage (executions/log-archive.ts). */
  logsArchived!: boolean;
  /**
   * Set with a failure that is due an automatic retry, cleared when the retry is made or can
   * never be: the lease sweep looks only at these to make the retries still missing.
   */
  autoRetryPending!: boolean;
  /** A retry's changes to what the execution it retried asked for; null when it changed nothing. */
  overrides!: StoredOverrides | null;
}

type RunState =
  | "outputs"
  | "startedAt"
  | "finishedAt"
  | "exitCode"
  | "errorMessage"
  | "runnerId"
  | "failureKind"
  | "sandboxWarnings"
  | "cancelRequestedAt"
  | "notBefore"
  | "logBytes"
  | "logsTruncated"
  | "logsArchived"
  | "autoRetryPending";

/** The fields every new execution (created or retried) starts with: no runner has run it yet. */
export function notYetRun(): Pick<Execution, RunState> {
  return {
    outputs: [],
    startedAt: null,
    finishedAt: null,
    exitCode: null,
    errorMessage: "",
    runnerId: null,
    failureKind: null,
    sandboxWarnings: [],
    cancelRequestedAt: null,
    notBefore: null,
    logBytes: 0,
    logsTruncated: false,
    logsArchived: false,
    autoRetryPending: false,
  };
}

export const ExecutionSchema = new EntitySchema<Execution>({
  class: Execution,
  tableName: "executions",
  properties: {
    id: { type: "string", primary: true },
    accountId: { type: "string" },
    status: { type: "string" },
    scriptName: { type: "text" },
    scriptSizeBytes: { type: new BigIntType("number") },
    scriptSha256: { type: "string" },
    runtime: { type: "string" },
    runtimeName: { type: "string" },
    args: { type: "json" },
    env: { type: "json" },
    inputs: { type: "json" },
    metadata: { type: "json" },
    outputs: { type: "json" },
    timeoutSeconds: { type: "integer" },
    createdAt: { type: "datetime" },
    startedAt: { type: "datetime", nullable: true },
    finishedAt: { type: "datetime", nullable: true },
    exitCode: { type: "integer", nullable: true },
    errorMessage: { type: "text" },
    runnerId: { type: "string", nullable: true },
    retryOf: { type: "string", nullable: true },
    rootId: { type: "string" },
    attempt: { type: "integer" },
    retryKind: { type: "string" },
    retriedBy: { type: "string", nullable: true },
    requestId: { type: "string", nullable: true },
    network: { type: "boolean" },
    maxRetries: { type: "integer" },
    retryOnExitCodes: { type: "json" },
    batchId: { type: "string", nullable: true },
    batchParallelism: { type: "integer" },
    failureKind: { type: "string", nullable: true },
    autoRetryNumber: { type: "integer" },
    retryReason: { type: "text" },
    sandboxWarnings: { type: "json" },
    cancelRequestedAt: { type: "datetime", nullable: true },
    notBefore: { type: "datetime", nullable: true },
    logBytes: { type: new BigIntType("number") },
    logsTruncated: { type: "boolean" },
    logsArchived: { type: "boolean" },
    autoRetryPending: { type: "boolean" },
    overrides: { type: "json", nullable: true },
  },
});

/**
 * Every field of an execution, as its schema maps them: a partial load names its fields from
 * this list, so a field added to the entity is loaded unless it is left out on purpose.
 */
export const EXECUTION_FIELDS = Object.keys(ExecutionSchema.meta.properties) as ReadonlyArray<keyof Execution>;
