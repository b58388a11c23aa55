import type { LogEntry } from "@rgrid/proto";
import type { ServerContext } from "../context";
import { ExitCode } from "../errors";
import { drainLogs, followExecution, printLogEntry } from "../follow";
import { logEntryView } from "../present";
import { toJson } from "../json";

export interface LogsOptions {
  executionId: string;
  /** Keep reading until the execution ends. */
  follow: boolean;
  json: boolean;
  pollIntervalMs: number;
}

/** `rgrid logs <id> [--follow]`: stdout entries to stdout, stderr entries to stderr. */
export async function logsCommand(options: LogsOptions, context: ServerContext): Promise<number> {
  const { output } = context;
  const collected: LogEntry[] = [];
  // JSON is one array printed at the end; text streams as it arrives.
  const onEntry = options.json
    ? (entry: LogEntry) => collected.push(entry)
    : (entry: LogEntry) => printLogEntry(output, entry);
  if (options.follow) {
    await followExecution(context, options.executionId, options.pollIntervalMs, onEntry);
  } else {
    await drainLogs(context, options.executionId, 0n, onEntry);
  }
  if (options.json) {
    output.stdout(toJson(collected.map(logEntryView)));
  }
  return ExitCode.success;
}
