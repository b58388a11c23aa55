// Submitting one execution: record it, upload its script and inputs through the grants the server
// hands out, then confirm so it is queued. `rgrid run` submits one; `rgrid run --batch` many.
import { stat } from "node:fs/promises";
import { basename, extname, resolve } from "node:path";
import { create } from "@bufbuild/protobuf";
// Single modules of @rgrid/common: its index also loads the server stack, which the CLI never uses.
import { mapWithLimit } from "@rgrid/common/concurrency";
import { randomToken } from "@rgrid/common/ids";
import { relativePathProblem } from "@rgrid/common/paths";
import { digestFile, uploadFile } from "@rgrid/common/transfer";
import type { FileDigest } from "@rgrid/common/transfer";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { FileInfoSchema } from "@rgrid/proto/execution";
import type { CreateExecutionRequestSchema } from "@rgrid/proto/execution";
import type { Execution, FileInfo, TransferGrant } from "@rgrid/proto/execution";
import type { ServerContext, StatusLine } from "./context";
import { UsageError } from "./errors";
import type { InputPlan } from "./inputs";
import { createUploadProgress } from "./upload-progress";

/** Files digested or uploaded at once per execution: enough to overlap latency, few enough to bound memory. */
export const TRANSFER_CONCURRENCY = 4;

const RUNTIME_BY_EXTENSION: ReadonlyMap<string, string> = new Map([
  [".py", "python"],
  [".js", "node"],
  [".mjs", "node"],
  [".cjs", "node"],
]);

export interface LocalFile {
  /** The name on the runner, '/' separated. */
  name: string;
  localPath: string;
  digest: FileDigest;
}

export interface PreparedScript {
  file: LocalFile;
  runtime: string;
}

/** What every execution of one invocation shares, apart from its args and inputs. */
export interface ExecutionSettings {
  env: Record<string, string>;
  metadata: Record<string, string>;
  /** Seconds; the service default when absent. */
  timeoutSeconds?: number;
  network: boolean;
  /** The service default when absent. */
  maxRetries?: number;
  retryOnExitCodes: number[];
  batchId?: string;
  /** Zero: no limit. */
  batchParallelism?: number;
}

/** Checks the script exists and has a name and runtime a runner can use, and digests it. */
export async function prepareScript(scriptArg: string, runtime: string | undefined, cwd: string): Promise<PreparedScript> {
  const file = await prepareScriptFile(scriptArg, cwd);
  const chosen = runtime ?? RUNTIME_BY_EXTENSION.get(extname(file.name).toLowerCase());
  if (chosen === undefined) {
    throw new UsageError(`cannot tell the runtime of ${scriptArg} from its extension. Pass --runtime (for example --runtime python)`);
  }
  return { file, runtime: chosen };
}

/** Checks the script exists and has a name a runner can use, and digests it. */
export async function prepareScriptFile(scriptArg: string, cwd: string): Promise<LocalFile> {
  const localPath = resolve(cwd, scriptArg);
  await requireFile(localPath, scriptArg);
  const name = basename(localPath);
  const nameProblem = relativePathProblem(name);
  if (nameProblem !== undefined) {
    throw new UsageError(`the script's name ${name} ${nameProblem}`);
  }
  return { name, localPath, digest: await digestFile(localPath) };
}

/**
 * The script and its inputs share the runner's working directory, so an input cannot take the
 * script's name, nor one name be a file and another's directory. The server refuses both; seen
 * here, they stop a batch before any of its executions exists.
 */
export function requireDistinctNames(script: PreparedScript, plan: InputPlan): void {
  const clash = plan.inputs.find((input) => input.name === script.file.name);
  if (clash) {
    throw new UsageError(
      clash.localPath === script.file.localPath
        ? `the script ${clash.name} cannot also be one of its own input files`
        : `input file ${clash.localPath} would have the script's name ${clash.name} on the runner; rename one of them`,
    );
  }
  const names = [script.file.name, ...plan.inputs.map((input) => input.name)];
  const asFiles = new Set(names);
  for (const name of names) {
    for (let slash = name.indexOf("/"); slash >= 0; slash = name.indexOf("/", slash + 1)) {
      if (asFiles.has(name.slice(0, slash))) {
        throw new UsageError(`${name.slice(0, slash)} cannot be a file and also the directory of ${name} on the runner`);
      }
    }
  }
}

/** Digests each planned input; `digest` lets a batch share one digest of a file every execution uses. */
export async function digestInputs(
  plan: InputPlan,
  digest: (localPath: string) => Promise<FileDigest> = digestFile,
): Promise<LocalFile[]> {
  return mapWithLimit(plan.inputs, TRANSFER_CONCURRENCY, async (input) => ({ ...input, digest: await digest(input.localPath) }));
}

/** What one execution of an invocation is: its script, args and inputs, and the settings it shares with the others. */
export interface Submission {
  script: PreparedScript;
  args: string[];
  inputs: LocalFile[];
  settings: ExecutionSettings;
  /** Chosen once per execution of an invocation: a re-send after a lost connection returns the same one. */
  requestId: string;
}

/** A request id for one execution of this invocation. */
export const newSubmissionRequestId = (): string => randomToken(16);

/** The CreateExecution request of `submission`. */
export function createRequestOf(submission: Submission): MessageInitShape<typeof CreateExecutionRequestSchema> {
  const { script, inputs, settings } = submission;
  return {
    script: fileInfo(script.file),
    runtime: script.runtime,
    args: submission.args,
    env: settings.env,
    inputs: inputs.map(fileInfo),
    metadata: settings.metadata,
    timeoutSeconds: settings.timeoutSeconds ?? 0,
    network: settings.network,
    maxRetries: settings.maxRetries,
    retryOnExitCodes: settings.retryOnExitCodes,
    batchId: settings.batchId ?? "",
    batchParallelism: settings.batchParallelism ?? 0,
    requestId: submission.requestId,
  };
}

/** Creates the execution, uploads its files and confirms them; returns it queued. */
export async function submitExecution(
  context: ServerContext,
  submission: Submission,
  /** Where to show upload progress; a batch, with its own progress, shows none. */
  options: { progress?: StatusLine } = {},
): Promise<Execution> {
  const { client, resend } = context;
  const { script, inputs } = submission;
  const created = await resend(() => client.createExecution(createRequestOf(submission)));
  const createdExecution = created.execution;
  if (!createdExecution) {
    throw new Error("the server's answer carried no execution");
  }
  const executionId = createdExecution.id;
  const uploads = [
    { file: script.file, grant: created.scriptUpload },
    ...inputs.map((file) => ({ file, grant: created.inputUploads.find((grant) => grant.name === file.name) })),
  ];
  const totalBytes = uploads.reduce((sum, { file }) => sum + file.digest.sizeBytes, 0);
  const progress = createUploadProgress(totalBytes, options.progress);
  try {
    await mapWithLimit(uploads, TRANSFER_CONCURRENCY, ({ file, grant }) => upload(file, grant, progress.sent));
  } finally {
    progress.end();
  }
  const confirmed = await resend(() => client.confirmUploads({ executionId }));
  return confirmed.execution ?? createdExecution;
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

export function fileInfo(file: LocalFile): FileInfo {
  return create(FileInfoSchema, { name: file.name, sizeBytes: BigInt(file.digest.sizeBytes), sha256: file.digest.sha256 });
}

export async function upload(file: LocalFile, grant: TransferGrant | undefined, onBytes: (bytes: number) => void = () => undefined): Promise<void> {
  if (!grant) {
    throw new Error(`the server returned no upload grant for ${file.name}`);
  }
  await uploadFile(grant, file.localPath, file.digest.sizeBytes, onBytes);
}
