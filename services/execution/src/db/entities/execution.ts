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

/** A file recorded with an execution: its inputs and outputs. */
export interface StoredFile {
  name: string;
  sizeBytes: number;
  sha256: string;
}

/** The fields every new execution (created or retried) starts with: no runner has run it yet. */
export function notYetRun(): Pick<Execution, "outputs" | "startedAt" | "finishedAt" | "exitCode" | "errorMessage" | "runnerId"> {
  return { outputs: [], startedAt: null, finishedAt: null, exitCode: null, errorMessage: "", runnerId: null };
}

/** The record of one execution (DESIGN.md §3), including its retry lineage. */
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
  },
});
