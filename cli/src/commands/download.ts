import { resolve } from "node:path";
import { fetchExecution } from "../context";
import type { ServerContext } from "../context";
import { ExitCode } from "../errors";
import { toJson } from "../json";
import { downloadOutputs, downloadedLine } from "../outputs";
import type { DownloadedOutput } from "../outputs";
import { formatBytes, isTerminal, statusName } from "../present";

export interface DownloadOptions {
  executionId: string;
  /** Where the outputs go; relative to the invocation's working directory. */
  dir: string;
  json: boolean;
  cwd: string;
}

export interface DownloadedOutputView {
  name: string;
  size_bytes: number;
  sha256: string;
  path: string;
}

/** `rgrid download <id> [--dir D]`: every output of a finished execution, at its relative path. */
export async function downloadCommand(options: DownloadOptions, context: ServerContext): Promise<number> {
  const { output } = context;
  const { executionId } = options;
  const execution = await fetchExecution(context, executionId);
  if (!isTerminal(execution.status)) {
    // Outputs are collected when the script ends; until then there is nothing complete to fetch.
    output.stderr(
      `Error: execution ${executionId} is ${statusName(execution.status)}; its outputs are collected when it ends. ` +
        `Wait with 'rgrid logs ${executionId} --follow', then run 'rgrid download ${executionId}' again.`,
    );
    return ExitCode.failed;
  }

  const directory = resolve(options.cwd, options.dir);
  const downloaded = await downloadOutputs(
    context,
    executionId,
    directory,
    (file) => {
      if (!options.json) {
        output.stdout(downloadedLine(file));
      }
    },
    output.status,
  );

  if (options.json) {
    output.stdout(toJson(downloaded.map(downloadedOutputView)));
  } else if (downloaded.length === 0) {
    output.stdout(`Execution ${executionId} has no output files.`);
  } else {
    const totalBytes = downloaded.reduce((sum, file) => sum + file.sizeBytes, 0);
    const files = downloaded.length === 1 ? "1 file" : `${downloaded.length} files`;
    output.stdout(`Downloaded ${files} (${formatBytes(totalBytes)}) to ${directory}`);
  }
  return ExitCode.success;
}

function downloadedOutputView(file: DownloadedOutput): DownloadedOutputView {
  return { name: file.name, size_bytes: file.sizeBytes, sha256: file.sha256, path: file.path };
}
