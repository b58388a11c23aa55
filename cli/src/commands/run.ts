import { stat } from "node:fs/promises";
import { basename, extname, resolve } from "node:path";
// Single modules of @rgrid/common: its index also loads the server stack, which the CLI never uses.
import { mapWithLimit } from "@rgrid/common/concurrency";
import { randomToken } from "@rgrid/common/ids";
import { relativePathProblem } from "@rgrid/common/paths";
import { digestFile, uploadFile } from "@rgrid/common/transfer";
import type { FileDigest } from "@rgrid/common/transfer";
import { create } from "@bufbuild/protobuf";
import { ExecutionStatus, FileInfoSchema } from "@rgrid/proto";
import type { Execution, FileInfo, TransferGrant } from "@rgrid/proto";
import type { ServerContext } from "../context";
import { ExitCode, OutputsNotDownloadedError, UsageError } from "../errors";
import { followExecution, printLogEntry } from "../follow";
import { planInputs } from "../inputs";
import { downloadOutputs, downloadedLine } from "../outputs";
import { executionView, formatDuration, runDuration, shorten } from "../present";
import { toJson } from "../json";

/** Files digested or uploaded at once: enough to overlap latency, few enough to bound memory. */
const TRANSFER_CONCURRENCY = 4;

const RUNTIME_BY_EXTENSION: ReadonlyMap<string, string> = new Map([
  [".py", "python"],
  [".js", "node"],
  [".mjs", "node"],
  [".cjs", "node"],
]);

export interface RunOptions {
  script: string;
  args: string[];
  /** Inferred from the script's extension when absent. */
  runtime?: string;
  env: Record<string, string>;
  metadata: Record<string, string>;
  /** Seconds; the service default when absent. */
  timeoutSeconds?: number;
  wait: boolean;
  /** With wait: leave the outputs on the server instead of downloading them into cwd. */
  remoteOnly: boolean;
  json: boolean;
  /** Relative script and input paths are resolved against this directory; outputs land here. */
  cwd: string;
  pollIntervalMs: number;
}

interface LocalFile {
  name: string;
  localPath: string;
  digest: FileDigest;
}

/** `rgrid run <script> [args...]`: upload script and inputs through grants, then queue. */
export async function runCommand(options: RunOptions, context: ServerContext): Promise<number> {
  const { client, resend, output } = context;
  const scriptPath = resolve(options.cwd, options.script);
  await requireFile(scriptPath, options.script);
  const scriptName = basename(scriptPath);
  const nameProblem = relativePathProblem(scriptName);
  if (nameProblem !== undefined) {
    throw new UsageError(`the script's name ${scriptName} ${nameProblem}`);
  }
  const runtime = options.runtime ?? RUNTIME_BY_EXTENSION.get(extname(scriptName).toLowerCase());
  if (runtime === undefined) {
    throw new UsageError(`cannot tell the runtime of ${options.script} from its extension. Pass --runtime (for example --runtime python)`);
  }
  const plan = await planInputs(options.args, options.cwd);

  const [script, ...inputs] = await mapWithLimit(
    [{ name: scriptName, localPath: scriptPath }, ...plan.inputs],
    TRANSFER_CONCURRENCY,
    async (file): Promise<LocalFile> => ({ ...file, digest: await digestFile(file.localPath) }),
  );

  // One id for this invocation: a re-send after a lost connection returns the same execution.
  const requestId = randomToken(16);
  const created = await resend(() =>
    client.createExecution({
      script: fileInfo(script),
      runtime,
      args: plan.args,
      env: options.env,
      inputs: inputs.map(fileInfo),
      metadata: options.metadata,
      timeoutSeconds: options.timeoutSeconds ?? 0,
      requestId,
    }),
  );
  const createdExecution = created.execution;
  if (!createdExecution) {
    throw new Error("the server's answer carried no execution");
  }
  const executionId = createdExecution.id;

  const uploads = [
    { file: script, grant: created.scriptUpload },
    ...inputs.map((file) => ({ file, grant: created.inputUploads.find((grant) => grant.name === file.name) })),
  ];
  await mapWithLimit(uploads, TRANSFER_CONCURRENCY, ({ file, grant }) => upload(file, grant));
  const confirmed = await resend(() => client.confirmUploads({ executionId }));

  if (!options.wait) {
    if (options.json) {
      output.stdout(toJson(executionView(confirmed.execution ?? createdExecution)));
    } else {
      output.stdout(`Execution started: ${executionId}`);
    }
    return ExitCode.success;
  }

  if (!options.json) {
    output.stdout(`Execution started: ${executionId}`);
  }
  const finished = await followExecution(context, executionId, options.pollIntervalMs, (entry) => {
    // JSON output is the final execution alone; log lines would break it.
    if (!options.json) {
      printLogEntry(output, entry);
    }
  });
  output.stdout(options.json ? toJson(executionView(finished)) : outcomeLine(finished));
  const exitCode = exitCodeOf(finished);
  if (!options.remoteOnly) {
    await downloadAfterRun(context, executionId, options.cwd, exitCode);
  }
  return exitCode;
}

/**
 * Outputs are collected whether the script succeeded or not, so they are fetched either way.
 * Their lines go to stderr: stdout stays the script's output and the outcome line.
 */
async function downloadAfterRun(
  context: ServerContext,
  executionId: string,
  cwd: string,
  scriptExitCode: number,
): Promise<void> {
  const { output } = context;
  try {
    await downloadOutputs(context, executionId, cwd, (file) => output.stderr(downloadedLine(file)), output.status);
  } catch (error) {
    throw new OutputsNotDownloadedError(executionId, error, scriptExitCode);
  }
}

async function requireFile(path: string, asGiven: string): Promise<void> {
  try {
    if ((await stat(path)).isFile()) {
      return;
    }
  } catch {
    // reported below, the same way as a directory
  }
  throw new UsageError(`script ${asGiven} not found (it must be an existing file)`);
}

function fileInfo(file: LocalFile): FileInfo {
  return create(FileInfoSchema, { name: file.name, sizeBytes: BigInt(file.digest.sizeBytes), sha256: file.digest.sha256 });
}

async function upload(file: LocalFile, grant: TransferGrant | undefined): Promise<void> {
  if (!grant) {
    throw new Error(`the server returned no upload grant for ${file.name}`);
  }
  await uploadFile(grant, file.localPath, file.digest.sizeBytes);
}

/** The last line of `run --wait`. */
export function outcomeLine(execution: Execution): string {
  const subject = `Execution ${execution.id}`;
  const duration = runDuration(execution);
  const reason = execution.errorMessage ? `: ${shorten(execution.errorMessage)}` : "";
  switch (execution.status) {
    case ExecutionStatus.COMPLETED:
      return duration === undefined ? `${subject} completed` : `${subject} completed in ${formatDuration(duration)}`;
    case ExecutionStatus.FAILED:
      return execution.exitCode === undefined
        ? `${subject} failed${reason}`
        : `${subject} failed (exit code ${execution.exitCode})`;
    case ExecutionStatus.TIMED_OUT:
      return `${subject} timed out${reason}`;
    default:
      return `${subject} was cancelled`;
  }
}

/** The script's own exit code when it failed with one, so `rgrid run --wait` composes in shells. */
export function exitCodeOf(execution: Execution): number {
  if (execution.status === ExecutionStatus.COMPLETED) {
    return ExitCode.success;
  }
  const code = execution.exitCode;
  // Codes a process cannot exit with (signals reported negative, > 255) become plain failure.
  return code !== undefined && code >= 1 && code <= 255 ? code : ExitCode.failed;
}
