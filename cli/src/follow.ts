// Reading an execution's stored logs page by page, and following a live execution to its end.
import { LogEntry_Stream } from "@rgrid/proto";
import type { Execution, LogEntry } from "@rgrid/proto";
import { aboutExecution, fetchExecution } from "./context";
import type { Output, ServerContext } from "./context";
import { isTerminal } from "./present";

/** Fetches every entry after `afterSequence`, paging until the server has no more. */
export async function drainLogs(
  context: ServerContext,
  executionId: string,
  afterSequence: bigint,
  onEntry: (entry: LogEntry) => void,
): Promise<bigint> {
  const { client, resend } = context;
  let after = afterSequence;
  for (;;) {
    const page = await aboutExecution(
      executionId,
      resend(() => client.getLogs({ executionId, afterSequence: after })),
    );
    for (const entry of page.entries) {
      onEntry(entry);
      after = entry.sequence;
    }
    // An empty page that claims more would loop forever; trust the entries, not the flag.
    if (!page.hasMore || page.entries.length === 0) {
      return after;
    }
  }
}

/**
 * Polls until the execution is terminal, handing over log entries as they appear. The status is
 * read before the logs on each round, so once a terminal status is seen the logs drained after
 * it are complete.
 */
export async function followExecution(
  context: ServerContext,
  executionId: string,
  pollIntervalMs: number,
  onEntry: (entry: LogEntry) => void,
): Promise<Execution> {
  const { clock } = context;
  let after = 0n;
  for (;;) {
    const execution = await fetchExecution(context, executionId);
    after = await drainLogs(context, executionId, after, onEntry);
    if (isTerminal(execution.status)) {
      return execution;
    }
    await clock.sleep(pollIntervalMs);
  }
}

/** Script output to the matching stream; rgrid's own notes to stderr, marked as such. */
export function printLogEntry(output: Output, entry: LogEntry): void {
  switch (entry.stream) {
    case LogEntry_Stream.STDOUT:
      output.stdout(entry.line);
      return;
    case LogEntry_Stream.STDERR:
      output.stderr(entry.line);
      return;
    default:
      output.stderr(`[rgrid] ${entry.line}`);
  }
}
