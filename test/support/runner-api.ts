// What the runner end-to-end tests ask of a grid over its public API: a client with the grid's
// key, executions created and uploaded without the CLI, waiting for an execution to reach a
// state, and its stored logs.
import { createHash } from "node:crypto";
import { createClient } from "@connectrpc/connect";
import type { Client } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { bearerAuth } from "@rgrid/common";
import { ExecutionStatus, ExecutionService } from "@rgrid/proto";
import type { Execution, LogEntry } from "@rgrid/proto";
import { pollUntil } from "./grid";

export type ExecutionClient = Client<typeof ExecutionService>;

export function executionClient(grid: { executionUrl: string; apiKey: string }): ExecutionClient {
  return createClient(
    ExecutionService,
    createConnectTransport({ baseUrl: grid.executionUrl, httpVersion: "1.1", interceptors: [bearerAuth(grid.apiKey)] }),
  );
}

export async function getExecution(client: ExecutionClient, id: string): Promise<Execution> {
  const { execution } = await client.getExecution({ executionId: id });
  if (!execution) {
    throw new Error(`GetExecution answered without an execution for ${id}`);
  }
  return execution;
}

const TERMINAL = new Set([
  ExecutionStatus.COMPLETED,
  ExecutionStatus.FAILED,
  ExecutionStatus.TIMED_OUT,
  ExecutionStatus.CANCELLED,
]);

export const isTerminal = (execution: Execution): boolean => TERMINAL.has(execution.status);

/** Polls the execution until `wanted` accepts it; fails after pollUntil's deadline naming `what`. */
export function waitForExecution(
  client: ExecutionClient,
  id: string,
  wanted: (execution: Execution) => boolean,
  what: string,
): Promise<Execution> {
  return pollUntil(
    () => getExecution(client, id),
    wanted,
    (execution) =>
      `${id} never became ${what}; last seen ${ExecutionStatus[execution.status]} ` +
      `(error ${JSON.stringify(execution.errorMessage)}, retried as [${execution.retriedAs.join(", ")}])`,
  );
}

/** The execution's automatic or manual retry, once the service has made it. */
export async function waitForRetryOf(client: ExecutionClient, id: string): Promise<Execution> {
  const original = await waitForExecution(client, id, (execution) => execution.retriedAs.length > 0, "retried");
  return getExecution(client, original.retriedAs[0] as string);
}

/** Every stored log entry of the execution, in sequence order. */
export async function storedLogs(client: ExecutionClient, id: string): Promise<LogEntry[]> {
  const entries: LogEntry[] = [];
  let after = 0n;
  for (;;) {
    const page = await client.getLogs({ executionId: id, afterSequence: after, limit: 10_000 });
    entries.push(...page.entries);
    if (!page.hasMore || page.entries.length === 0) {
      return entries;
    }
    after = page.entries[page.entries.length - 1]!.sequence;
  }
}

export interface ScriptRun {
  /** The script's name and content. */
  script: { name: string; content: string };
  runtime: string;
  args?: string[];
}

/**
 * Creates an execution as the CLI would, without the CLI's process start: CreateExecution,
 * the script's upload through its grant, ConfirmUploads. Returns the queued execution's id.
 */
export async function createQueuedExecution(client: ExecutionClient, run: ScriptRun, requestId: string): Promise<string> {
  const bytes = Buffer.from(run.script.content, "utf8");
  const created = await client.createExecution({
    script: { name: run.script.name, sizeBytes: BigInt(bytes.length), sha256: createHash("sha256").update(bytes).digest("hex") },
    runtime: run.runtime,
    args: run.args ?? [],
    requestId,
  });
  const id = created.execution?.id;
  const grant = created.scriptUpload;
  if (!id || !grant) {
    throw new Error("CreateExecution answered without an execution or an upload grant");
  }
  const response = await fetch(grant.url, { method: grant.method, headers: grant.headers, body: bytes });
  if (!response.ok) {
    throw new Error(`upload of ${run.script.name} failed: HTTP ${response.status} ${await response.text()}`);
  }
  await client.confirmUploads({ executionId: id });
  return id;
}
