import { Code, ConnectError } from "@connectrpc/connect";
import { ErrorInfo_Reason, ErrorInfoSchema } from "@rgrid/proto/execution";
import type { DiffExecutionsResponse } from "@rgrid/proto/execution";
import type { ServerContext } from "../context";
import { diffLines, diffView } from "../diff-report";
import { ExecutionNotFoundError, ExitCode } from "../errors";
import { toJson } from "../json";

export interface DiffOptions {
  executionA: string;
  executionB: string;
  showValues: boolean;
  json: boolean;
}

/**
 * `rgrid diff <a> <b>`: a report, so it succeeds whatever differs; only a failure to compare
 * (an unknown execution, an unreachable server) is an error.
 */
export async function diffCommand(options: DiffOptions, context: ServerContext): Promise<number> {
  const { client, resend, output } = context;
  const { executionA, executionB, showValues } = options;
  let diff: DiffExecutionsResponse;
  try {
    // A read: re-sending after a lost connection is harmless.
    diff = await resend(() => client.diffExecutions({ executionA, executionB, showValues }));
  } catch (error) {
    throw notFoundAsUnknownExecution(error, options);
  }
  if (options.json) {
    output.stdout(toJson(diffView(diff, showValues)));
  } else {
    for (const line of diffLines(diff)) {
      output.stdout(line);
    }
  }
  return ExitCode.success;
}

/** NotFound names the execution it is about in its ErrorInfo, so the message can name it too. */
function notFoundAsUnknownExecution(error: unknown, options: DiffOptions): unknown {
  if (!(error instanceof ConnectError && error.code === Code.NotFound)) {
    return error;
  }
  const info = error.findDetails(ErrorInfoSchema).find((detail) => detail.reason === ErrorInfo_Reason.NOT_FOUND);
  return new ExecutionNotFoundError(info?.executionId || `${options.executionA} or ${options.executionB}`);
}
