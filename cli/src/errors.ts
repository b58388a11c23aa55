// The CLI's exit codes and its own error types. Kept free of imports so that every command can
// use them without loading the RPC stack; failures.ts turns any error into a message.

export const ExitCode = {
  success: 0,
  /** The operation failed or the server refused it. */
  failed: 1,
  /** The command line or the configuration is wrong. */
  usage: 2,
  /** The server could not be reached, even after re-sending. */
  unreachable: 3,
} as const;

/** The user asked for something the CLI cannot do as written (bad flag, missing file...). */
export class UsageError extends Error {
  override readonly name = "UsageError";
}

/** The server does not know the execution (or it belongs to another account). */
export class ExecutionNotFoundError extends Error {
  override readonly name = "ExecutionNotFoundError";
  constructor(readonly executionId: string) {
    super(`execution ${executionId} not found`);
  }
}

export interface Failure {
  exitCode: number;
  /** Plain sentences for stderr; never a stack trace. */
  lines: string[];
}
