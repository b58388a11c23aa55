import type { LogEntry } from "@rgrid/proto/execution";
import type { ServerContext } from "../context";
import { ExitCode } from "../errors";
import { drainLogs, followLogs, printLogEntry } from "../follow";
import { logEntryView } from "../present";
import { toJson } from "../json";

export interface LogsOptions {
  executionId: string;
  /** Keep reading until the execution ends. */
  follow: boolean;
  json: boolean;
}

/**
 * `rgrid logs <id> [--follow]`: stdout entries to stdout, stderr entries to stderr; with --follow,
 * live from the server's stream until the execution ends.
 */
export async function logsCommand(options: LogsOptions, context: ServerContext): Promise<number> {
  const { output } = context;
  const collected: LogEntry[] = [];
  // JSON is one array printed at the end; text streams as it arrives.
  const onEntry = options.json
    ? (entry: LogEntry) => collected.push(entry)
    : (entry: LogEntry) => printLogEntry(output, entry);
  if (options.follow) {
    // Exit 0 whatever the execution's outcome: the command's job, showing the logs, was done.
    await followLogs(context, options.executionId, onEntry);
  } else {
    await drainLogs(context, options.executionId, 0n, onEntry);
  }
  if (options.json) {
    output.stdout(toJson(collected.map(logEntryView)));
  }
  return ExitCode.success;
}
