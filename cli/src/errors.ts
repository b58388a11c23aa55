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

/** The server named outputs that would land outside the download directory; none was written. */
export class UnsafeOutputNameError extends Error {
  override readonly name = "UnsafeOutputNameError";
  constructor(
    readonly outputNames: readonly string[],
    readonly directory: string,
  ) {
    super(
      `the server named ${outputNames.length === 1 ? "an output" : "outputs"} ` +
        `${outputNames.map((name) => JSON.stringify(name)).join(", ")} that would be written outside ${directory}; ` +
        `nothing was downloaded`,
    );
  }
}

/** One output could not be fetched or did not match what the runner recorded. */
export class OutputDownloadError extends Error {
  override readonly name = "OutputDownloadError";
  constructor(
    readonly executionId: string,
    readonly outputName: string,
    reason: string,
  ) {
    super(`downloading ${outputName} failed: ${reason}`);
  }
}

/**
 * `run --wait` finished the script but could not bring its outputs home. The script's own exit
 * code still wins when it failed, so shells see the same status as without downloads.
 */
export class OutputsNotDownloadedError extends Error {
  override readonly name = "OutputsNotDownloadedError";
  constructor(
    readonly executionId: string,
    override readonly cause: unknown,
    readonly scriptExitCode: number,
  ) {
    super(`the outputs of ${executionId} were not downloaded`);
  }
}
