// The one place that turns any error a command throws into plain sentences and an exit code.
// Only the top-level catches (runCli, and main.ts for the environment) call describeFailure.
import { Code, ConnectError } from "@connectrpc/connect";
// Single modules of @rgrid/common: its index also loads the server stack, which the CLI never uses.
import { ConfigError } from "@rgrid/common/config";
import { TransferError } from "@rgrid/common/transfer";
import {
  ExecutionNotFoundError,
  ExitCode,
  OutputDownloadError,
  OutputsNotDownloadedError,
  UnsafeOutputNameError,
  UsageError,
} from "./errors";
import type { Failure } from "./errors";
import { isTransportFailure } from "./resend";

/** What the user needs to read and the exit code, for any error a command can throw. */
export function describeFailure(error: unknown, apiUrl: string | undefined): Failure {
  if (error instanceof UsageError) {
    return { exitCode: ExitCode.usage, lines: [`Error: ${sentence(error.message)}`] };
  }
  if (error instanceof ConfigError) {
    // A missing key or a malformed URL is fixed by the user, like a bad flag.
    return { exitCode: ExitCode.usage, lines: error.problems.map((problem) => `Error: ${sentence(problem)}`) };
  }
  if (error instanceof ExecutionNotFoundError) {
    return {
      exitCode: ExitCode.failed,
      lines: [`Error: ${sentence(error.message)} Check the id with 'rgrid list'.`],
    };
  }
  if (error instanceof OutputsNotDownloadedError) {
    // The script's failure is the news; a download problem only decides the code after success.
    const inner = describeFailure(error.cause, apiUrl);
    // A failed transfer already says to run the download again.
    const advice =
      error.cause instanceof OutputDownloadError
        ? []
        : [`The outputs stay on the server: fetch them with 'rgrid download ${error.executionId}'.`];
    return {
      exitCode: error.scriptExitCode !== ExitCode.success ? error.scriptExitCode : inner.exitCode,
      lines: [...inner.lines, ...advice],
    };
  }
  if (error instanceof UnsafeOutputNameError) {
    // Writing such a name would let a script place files anywhere on this machine.
    return { exitCode: ExitCode.failed, lines: [`Error: ${sentence(error.message)}`] };
  }
  if (error instanceof OutputDownloadError) {
    // Files finished before the failure are complete; the failed one left nothing behind.
    return {
      exitCode: ExitCode.failed,
      lines: [`Error: ${sentence(error.message)} Run 'rgrid download ${error.executionId}' again.`],
    };
  }
  if (error instanceof TransferError) {
    // Grant uploads go straight to object storage; the execution stays unconfirmed.
    return {
      exitCode: ExitCode.failed,
      lines: [`Error: ${sentence(problemOf(error))} Run the command again.`],
    };
  }
  if (error instanceof ConnectError) {
    return describeConnectError(error, apiUrl ?? "(unknown URL)");
  }
  const message = error instanceof Error ? error.message : String(error);
  return { exitCode: ExitCode.failed, lines: [`Error: ${sentence(message)}`] };
}

/**
 * What went wrong, as one phrase without advice, for a report that lists several failures and
 * gives its advice once (advice for one command, such as running it again, may not fit them all).
 */
export function problemOf(error: unknown): string {
  if (error instanceof TransferError) {
    return `uploading to object storage failed: ${error.message}`;
  }
  if (error instanceof ConnectError) {
    if (isTransportFailure(error)) {
      return `the server could not be reached: ${connectionProblem(error)}`;
    }
    switch (error.code) {
      case Code.InvalidArgument:
        return `the server refused the request: ${error.rawMessage}`;
      case Code.Internal:
      case Code.Unknown:
        return "the server failed with an internal error";
      default:
        return error.rawMessage;
    }
  }
  return error instanceof Error ? error.message : String(error);
}

function describeConnectError(error: ConnectError, apiUrl: string): Failure {
  const detail = error.rawMessage;
  if (isTransportFailure(error)) {
    // The resender has already re-sent; the server is down or the URL is wrong.
    return {
      exitCode: ExitCode.unreachable,
      lines: [
        `Error: cannot reach the rgrid server at ${apiUrl}: ${connectionProblem(error)}. ` +
          `Is it running? Start it with 'npm start' or set RGRID_API_URL.`,
      ],
    };
  }
  switch (error.code) {
    // The key is missing on the server side, revoked or mistyped.
    case Code.Unauthenticated:
    case Code.PermissionDenied:
      return {
        exitCode: ExitCode.failed,
        lines: [
          `Error: the server refused the API key (${detail}).`,
          `Check RGRID_API_KEY or run 'rgrid init --api-key <key>'.`,
        ],
      };
    // A server-side check of our request's fields; the message names the field.
    case Code.InvalidArgument:
      return { exitCode: ExitCode.failed, lines: [`Error: ${sentence(problemOf(error))}`] };
    // Reached only when a command did not turn NotFound into ExecutionNotFoundError itself.
    case Code.NotFound:
    // The execution is not in a state that allows the operation; the server says which.
    case Code.FailedPrecondition:
    case Code.AlreadyExists:
    case Code.ResourceExhausted:
      return { exitCode: ExitCode.failed, lines: [`Error: ${sentence(detail)}`] };
    // The server hides internals on purpose; its own log has the cause.
    case Code.Internal:
    case Code.Unknown:
      return {
        exitCode: ExitCode.failed,
        lines: ["Error: the server failed with an internal error. Check the server's log, then try again."],
      };
    // A stalled server is as unusable as an absent one, but re-sending was not safe to assume.
    case Code.DeadlineExceeded:
      return {
        exitCode: ExitCode.unreachable,
        lines: [`Error: the rgrid server at ${apiUrl} did not answer in time. Check that it is healthy, then try again.`],
      };
    default:
      return { exitCode: ExitCode.failed, lines: [`Error: ${sentence(detail)}`] };
  }
}

/** "connection refused" rather than "connect ECONNREFUSED 127.0.0.1:1". */
function connectionProblem(error: ConnectError): string {
  const code = (error.cause as { code?: unknown } | undefined)?.code;
  switch (code) {
    case "ECONNREFUSED":
      return "connection refused";
    case "ENOTFOUND":
    case "EAI_AGAIN":
      return "host not found";
    case "ECONNRESET":
      return "connection reset";
    case "ETIMEDOUT":
      return "connection timed out";
    default:
      return error.rawMessage;
  }
}

function sentence(text: string): string {
  const trimmed = text.trim();
  return /[.!?]$/.test(trimmed) ? trimmed : `${trimmed}.`;
}
