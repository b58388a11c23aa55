import { create } from "@bufbuild/protobuf";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { DurationSchema, timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
// Single modules of @rgrid/common: its index also loads the server stack, which the CLI never uses.
import { randomToken } from "@rgrid/common/ids";
import { ErrorInfo_Reason, ErrorInfoSchema } from "@rgrid/proto/execution";
import type {
  ExecutionStatus,
  RetryExecutionRequest,
  RetryExecutionResponse,
  RetryOverridesSchema,
} from "@rgrid/proto/execution";
import { aboutExecution } from "../context";
import type { ServerContext } from "../context";
import { ExitCode } from "../errors";
import { overridesSummary } from "../overrides-view";
import { executionView, queuedUntilLine, shorten, statusName } from "../present";
import { toJson } from "../json";
import { load } from "../lazy";
import type { LocalFile } from "../submit";

export interface RetryOptions {
  executionId: string;
  force: boolean;
  /** Why (`--reason`): recorded in the audit with the retry. */
  reason?: string;
  json: boolean;
  /** A delayed retry: made now, queued until then (`--in` as a delay, `--at` as a time). */
  startAfter?: { delayMs: number } | { at: Date };
  /** What the retry changes (`--env`, `--unset-env`, `--args`, `--timeout`, `--runtime`, `--script`). */
  overrides?: OverrideFlags;
  /** Print the values of changed env variables, not only their names. */
  showValues?: boolean;
  /** Where `--script` is read relative to. */
  cwd: string;
}

export interface OverrideFlags {
  setEnv: Record<string, string>;
  unsetEnv: string[];
  /** Replaces the args; an empty list runs the script with none. */
  args?: string[];
  timeoutSeconds?: number;
  runtime?: string;
  /** A new version of the script, a local file. */
  script?: string;
}

/** `rgrid retry <id> [--force]`: the server decides; this presents its answer. */
export async function retryCommand(options: RetryOptions, context: ServerContext): Promise<number> {
  const { client, resend, output } = context;
  // One id for this invocation: a re-send after a lost connection must not create a second retry.
  const requestId = randomToken(16);
  const script =
    options.overrides?.script === undefined ? undefined : await load.scriptUpload().prepareScriptFile(options.overrides.script, options.cwd);
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
          overrides: options.overrides && overridesOf(options.overrides, script),
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

  let retry = response.execution;
  if (!retry) {
    throw new Error("the server's answer to the retry carried no execution");
  }
  if (response.scriptUpload !== undefined && script !== undefined) {
    retry = await load.scriptUpload().uploadNewScript(context, retry, script, response.scriptUpload);
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
  const changes = overridesSummary(retry.overrides, options.showValues === true);
  if (changes !== undefined) {
    output.stdout(`Overrides: ${changes}`);
  }
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

function overridesOf(flags: OverrideFlags, script: LocalFile | undefined): MessageInitShape<typeof RetryOverridesSchema> {
  return {
    setEnv: flags.setEnv,
    unsetEnv: flags.unsetEnv,
    args: flags.args === undefined ? undefined : { values: flags.args },
    timeoutSeconds: flags.timeoutSeconds,
    runtime: flags.runtime,
    script: script === undefined ? undefined : load.scriptUpload().fileInfo(script),
  };
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
