import { create } from "@bufbuild/protobuf";
import { DurationSchema, timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
// Single modules of @rgrid/common: its index also loads the server stack, which the CLI never uses.
import { randomToken } from "@rgrid/common/ids";
import { ErrorInfo_Reason, ErrorInfoSchema } from "@rgrid/proto";
import type { ExecutionStatus, RetryExecutionRequest, RetryExecutionResponse } from "@rgrid/proto";
import { aboutExecution } from "../context";
import type { ServerContext } from "../context";
import { ExitCode } from "../errors";
import { executionView, queuedUntilLine, shorten, statusName } from "../present";
import { toJson } from "../json";

export interface RetryOptions {
  executionId: string;
  force: boolean;
  /** Why (`--reason`): recorded in the audit with the retry. */
  reason?: string;
  json: boolean;
  /** A delayed retry: made now, queued until then (`--in` as a delay, `--at` as a time). */
  startAfter?: { delayMs: number } | { at: Date };
}

/** `rgrid retry <id> [--force]`: the server decides; this presents its answer. */
export async function retryCommand(options: RetryOptions, context: ServerContext): Promise<number> {
  const { client, resend, output } = context;
  // One id for this invocation: a re-send after a lost connection must not create a second retry.
  const requestId = randomToken(16);
  let response: RetryExecutionResponse;
  try {
    response = await aboutExecution(
      options.executionId,
      resend(() =>
        client.retryExecution({
          executionId: options.executionId,
          force: options.force,
          requestId,
          reason: options.reason ?? "",
          queuedUntil: queuedUntilOf(options.startAfter),
        }),
      ),
    );
  } catch (error) {
    const notFinished = notTerminalStatus(error);
    if (!options.force && notFinished !== undefined) {
      output.stdout(`Warning: Execution status is '${statusName(notFinished)}'`);
      output.stdout("Use --force to retry anyway.");
      return ExitCode.failed;
    }
    throw error;
  }

  const retry = response.execution;
  if (!retry) {
    throw new Error("the server's answer to the retry carried no execution");
  }
  if (options.json) {
    output.stdout(toJson(executionView(retry)));
    return ExitCode.success;
  }
  output.stdout(`Retry started: ${retry.id}`);
  output.stdout(`Original: ${options.executionId}`);
  if (response.original?.errorMessage) {
    output.stdout(`Original error: ${shorten(response.original.errorMessage)}`);
  }
  output.stdout(`Status: ${statusName(retry.status)}`);
  // From the answer, not the flag: a re-sent request gets the first request's time.
  const queuedUntil = queuedUntilLine(retry, context.clock.now());
  if (queuedUntil !== undefined) {
    output.stdout(queuedUntil);
  }
  output.stdout("");
  output.stdout(`Check status: rgrid status ${retry.id}`);
  output.stdout(`View logs: rgrid logs ${retry.id}`);
  return ExitCode.success;
}

/**
 * A delay travels as a duration, counted on the server's clock, so this machine's clock being off
 * does not change how long the retry waits; a time the user named travels as that time.
 */
function queuedUntilOf(startAfter: RetryOptions["startAfter"]): RetryExecutionRequest["queuedUntil"] {
  if (startAfter === undefined) {
    return { case: undefined };
  }
  if ("at" in startAfter) {
    return { case: "notBefore", value: timestampFromDate(startAfter.at) };
  }
  const seconds = Math.floor(startAfter.delayMs / 1000);
  return {
    case: "delay",
    value: create(DurationSchema, { seconds: BigInt(seconds), nanos: (startAfter.delayMs - seconds * 1000) * 1_000_000 }),
  };
}

/** The original's status when the server refused because it has not finished (its ErrorInfo). */
function notTerminalStatus(error: unknown): ExecutionStatus | undefined {
  if (!(error instanceof ConnectError) || error.code !== Code.FailedPrecondition) {
    return undefined;
  }
  const info = error.findDetails(ErrorInfoSchema).find((detail) => detail.reason === ErrorInfo_Reason.NOT_TERMINAL);
  return info?.status;
}
