import { Code, ConnectError } from "@connectrpc/connect";
import { ExecutionStatus } from "@rgrid/proto/execution";
import type { Execution } from "@rgrid/proto/execution";
import { aboutExecution, fetchExecution } from "../context";
import type { ServerContext } from "../context";
import { ExitCode } from "../errors";
import { toJson } from "../json";
import { executionView, isTerminal, readableStatus } from "../present";

/** How long to wait for a runner to stop a running execution before leaving it to finish on its own. */
export const CANCEL_WAIT_MS = 15_000;

export interface CancelOptions {
  executionId: string;
  /** Why (`--reason`): recorded in the audit with the cancel. */
  reason?: string;
  json: boolean;
  /** Pause between status checks while the runner stops the script. */
  pollIntervalMs: number;
}

/**
 * `rgrid cancel <id>`: a queued execution is cancelled at once; a running one is stopped by its
 * runner at its next heartbeat, which is waited for a little while; a finished one is refused.
 */
export async function cancelCommand(options: CancelOptions, context: ServerContext): Promise<number> {
  const { client, resend, output } = context;
  const { executionId } = options;
  let execution: Execution | undefined;
  let sends = 0;
  try {
    // Cancelling twice is the same as once, so a re-send after a lost connection is harmless.
    ({ execution } = await aboutExecution(
      executionId,
      resend(() => {
        sends++;
        return client.cancelExecution({ executionId, reason: options.reason ?? "" });
      }),
    ));
  } catch (error) {
    if (!(error instanceof ConnectError && error.code === Code.FailedPrecondition)) {
      throw error;
    }
    execution = await fetchExecution(context, executionId);
    // A re-send refused because the execution is now cancelled most likely met this invocation's
    // own cancel, whose answer was lost: that is the success it asked for, not a refusal.
    if (!(sends > 1 && execution.status === ExecutionStatus.CANCELLED)) {
      return explainRefusal(execution, error, context);
    }
  }
  if (!execution) {
    throw new Error("the server's answer to the cancel carried no execution");
  }
  if (!isTerminal(execution.status)) {
    execution = await waitUntilFinished(context, executionId, options.pollIntervalMs, execution);
  }

  if (options.json) {
    output.stdout(toJson(executionView(execution)));
  } else if (execution.status === ExecutionStatus.CANCELLED) {
    output.stdout(`Cancelled: ${executionId}`);
  } else if (isTerminal(execution.status)) {
    output.stdout(`Execution ${executionId} ${readableStatus(execution.status)} before the runner could stop it.`);
  } else {
    output.stdout(`Cancellation requested: ${executionId}`);
    output.stdout(`The runner stops it at its next heartbeat. Check with: rgrid status ${executionId}`);
  }
  // A script that finished on its own first was not cancelled: the request did not take effect.
  return isTerminal(execution.status) && execution.status !== ExecutionStatus.CANCELLED ? ExitCode.failed : ExitCode.success;
}

/** Polls for up to CANCEL_WAIT_MS; returns the execution as last seen. */
async function waitUntilFinished(
  context: ServerContext,
  executionId: string,
  pollIntervalMs: number,
  running: Execution,
): Promise<Execution> {
  const { output, clock } = context;
  let execution = running;
  for (let waitedMs = 0; waitedMs < CANCEL_WAIT_MS && !isTerminal(execution.status); waitedMs += pollIntervalMs) {
    output.status?.show(`Waiting for the runner to stop ${executionId}...`);
    await clock.sleep(pollIntervalMs);
    execution = await fetchExecution(context, executionId);
  }
  output.status?.clear();
  return execution;
}

/** The server refused because the execution has finished; says how it finished. */
function explainRefusal(execution: Execution, refusal: ConnectError, context: ServerContext): number {
  if (!isTerminal(execution.status)) {
    // Refused for some other precondition; the server's own message says which.
    throw refusal;
  }
  context.output.stderr(
    `Execution ${execution.id} is already ${readableStatus(execution.status)}; there is nothing to cancel.`,
  );
  return ExitCode.failed;
}
