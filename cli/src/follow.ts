// Reading an execution's stored logs page by page, and following a live execution's logs as they
// arrive until it ends.
import { Code, ConnectError } from "@connectrpc/connect";
import { ExecutionStatus, LogEntry_Stream } from "@rgrid/proto/execution";
import type { Execution, LogEntry } from "@rgrid/proto/execution";
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
 * The server sends something at least every 15 s while a stream is idle; this much silence means
 * the connection died without the socket noticing, so the stream is opened again.
 */
const STREAM_SILENCE_LIMIT_MS = 60_000;

/**
 * Hands over an execution's log entries as they arrive, from the FollowLogs stream, until the
 * execution is terminal; returns that status. A dropped stream is opened again after the last
 * entry handed over, so nothing is skipped and nothing repeated.
 */
export async function followLogs(
  context: ServerContext,
  executionId: string,
  onEntry: (entry: LogEntry) => void,
): Promise<ExecutionStatus> {
  const { client, resend } = context;
  let after = 0n;
  return aboutExecution(
    executionId,
    resend(async (madeProgress) => {
      const silence = new AbortController();
      const watchdog = setTimeout(() => silence.abort(), STREAM_SILENCE_LIMIT_MS);
      let status = ExecutionStatus.UNSPECIFIED;
      try {
        for await (const message of client.followLogs({ executionId, afterSequence: after }, { signal: silence.signal })) {
          watchdog.refresh();
          madeProgress();
          for (const entry of message.entries) {
            // A server answering a resumed stream from too early must not make lines appear twice.
            if (entry.sequence > after) {
              onEntry(entry);
              after = entry.sequence;
            }
          }
          status = message.status;
        }
      } catch (error) {
        if (silence.signal.aborted) {
          throw new ConnectError(`no message from the server for ${STREAM_SILENCE_LIMIT_MS / 1000} s`, Code.Unavailable);
        }
        throw error;
      } finally {
        clearTimeout(watchdog);
      }
      if (!isTerminal(status)) {
        // A stream ends only once the execution has; an early end is a connection cut short.
        throw new ConnectError("the log stream ended before the execution did", Code.Unavailable);
      }
      return status;
    }),
  );
}

/** Follows the logs to the end, then returns the finished execution with its exit code and times. */
export async function followExecution(
  context: ServerContext,
  executionId: string,
  onEntry: (entry: LogEntry) => void,
): Promise<Execution> {
  await followLogs(context, executionId, onEntry);
  return fetchExecution(context, executionId);
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
