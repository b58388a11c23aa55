import { Code, ConnectError } from "@connectrpc/connect";
// Single modules of @rgrid/common: its index also loads the server stack, which the CLI never uses.
import { randomToken } from "@rgrid/common/ids";
import type { RetryExecutionResponse } from "@rgrid/proto";
import { aboutExecution } from "../context";
import type { ServerContext } from "../context";
import { ExitCode } from "../errors";
import { executionView, isTerminal, shorten, statusName } from "../present";
import { toJson } from "../json";

export interface RetryOptions {
  executionId: string;
  force: boolean;
  json: boolean;
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
      resend(() => client.retryExecution({ executionId: options.executionId, force: options.force, requestId })),
    );
  } catch (error) {
    if (!options.force && error instanceof ConnectError && error.code === Code.FailedPrecondition) {
      return explainRefusal(options.executionId, error, context);
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
  output.stdout("");
  output.stdout(`Check status: rgrid status ${retry.id}`);
  output.stdout(`View logs: rgrid logs ${retry.id}`);
  return ExitCode.success;
}

/**
 * The server refused because the original is not terminal. The refusal names no status, so the
 * current one is fetched to tell the user what they would be retrying.
 */
async function explainRefusal(executionId: string, refusal: ConnectError, context: ServerContext): Promise<number> {
  const { client, resend, output } = context;
  const { execution } = await aboutExecution(executionId, resend(() => client.getExecution({ executionId })));
  if (!execution || isTerminal(execution.status)) {
    // Refused for some other precondition; the server's own message says which.
    throw refusal;
  }
  output.stdout(`Warning: Execution status is '${statusName(execution.status)}'`);
  output.stdout("Use --force to retry anyway.");
  return ExitCode.failed;
}
