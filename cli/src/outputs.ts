// Bringing an execution's output files to this machine: each one through its grant, streamed to
// disk and verified against the size and SHA-256 the runner recorded, a few at a time.
import { resolve } from "node:path";
// Single modules of @rgrid/common: its index also loads the server stack, which the CLI never uses.
import { mapWithLimit } from "@rgrid/common/concurrency";
import { relativePathProblem } from "@rgrid/common/paths";
import { TransferError, downloadFile } from "@rgrid/common/transfer";
import type { FileDigest } from "@rgrid/common/transfer";
import type { FileInfo, TransferGrant } from "@rgrid/proto/execution";
import { aboutExecution } from "./context";
import type { ServerContext, StatusLine } from "./context";
import { OutputDownloadError, UnsafeOutputNameError } from "./errors";
import { pathInside } from "./path-inside";
import { formatBytes } from "./present";

/** Files downloaded at once: enough to overlap latency, few enough to bound memory and sockets. */
const DOWNLOAD_CONCURRENCY = 4;

export interface DownloadedOutput {
  name: string;
  sizeBytes: number;
  sha256: string;
  /** Absolute path of the file written. */
  path: string;
}

interface PlannedDownload {
  file: FileInfo;
  grant: TransferGrant;
  path: string;
}

/**
 * Downloads every output of a finished execution below `directory`, keeping each relative path
 * and overwriting what is there. Names are checked before anything is written: the server is
 * trusted with the bytes, not with where they go on this machine.
 */
export async function downloadOutputs(
  context: Pick<ServerContext, "client" | "resend">,
  executionId: string,
  directory: string,
  onDownloaded: (output: DownloadedOutput) => void,
  status?: StatusLine,
): Promise<DownloadedOutput[]> {
  const { client, resend } = context;
  const { outputs, downloads } = await aboutExecution(
    executionId,
    resend(() => client.getOutputDownloads({ executionId })),
  );
  const planned = planDownloads(outputs, downloads, resolve(directory));
  const progress = createProgress(planned, status);
  try {
    return await mapWithLimit(planned, DOWNLOAD_CONCURRENCY, async (download) => {
      progress.started(download.file.name);
      const digest = await fetchOne(executionId, download);
      const downloaded = { name: download.file.name, ...digest, path: download.path };
      // The permanent line first: printing it erases the status line, which is then redrawn.
      onDownloaded(downloaded);
      progress.finished(download.file.name, digest.sizeBytes);
      return downloaded;
    });
  } finally {
    progress.end();
  }
}

/** "Downloaded out/result.txt (12 B)": the same line from `download` and `run --wait`. */
export function downloadedLine(file: DownloadedOutput): string {
  return `Downloaded ${file.name} (${formatBytes(file.sizeBytes)})`;
}

function planDownloads(
  outputs: readonly FileInfo[],
  grants: readonly TransferGrant[],
  directory: string,
): PlannedDownload[] {
  const placed: Array<{ file: FileInfo; path: string }> = [];
  const unsafe: string[] = [];
  for (const file of outputs) {
    const path = pathBelow(directory, file.name);
    if (path === undefined) {
      unsafe.push(file.name);
    } else {
      placed.push({ file, path });
    }
  }
  if (unsafe.length > 0) {
    throw new UnsafeOutputNameError(unsafe, directory);
  }
  return placed.map(({ file, path }) => {
    const grant = grants.find((candidate) => candidate.name === file.name);
    if (!grant) {
      throw new Error(`the server returned no download grant for the output ${file.name}`);
    }
    return { file, grant, path };
  });
}

/** Where `name` lands below `directory`, or undefined when it is not a safe path strictly inside. */
function pathBelow(directory: string, name: string): string | undefined {
  if (relativePathProblem(name) !== undefined) {
    return undefined;
  }
  // The name rules already forbid '..' and absolute paths; resolving and comparing holds even
  // if they change, or for separators this platform reads differently.
  const path = resolve(directory, name);
  return pathInside(directory, path) === undefined ? undefined : path;
}

async function fetchOne(executionId: string, download: PlannedDownload): Promise<FileDigest> {
  const { file, grant, path } = download;
  try {
    return await downloadFile(grant, path, { sizeBytes: Number(file.sizeBytes), sha256: file.sha256 });
  } catch (error) {
    if (error instanceof TransferError) {
      throw new OutputDownloadError(executionId, file.name, error.message);
    }
    throw error;
  }
}

interface Progress {
  started(name: string): void;
  finished(name: string, sizeBytes: number): void;
  end(): void;
}

/**
 * "Downloading outputs: 2/5 files, 1.2 MiB of 3.4 MiB (big.csv)". Counted per finished file:
 * downloadFile reports no bytes while it streams, and a count that moves per file is honest.
 */
function createProgress(planned: readonly PlannedDownload[], status: StatusLine | undefined): Progress {
  if (status === undefined || planned.length === 0) {
    return { started: () => undefined, finished: () => undefined, end: () => undefined };
  }
  const totalBytes = planned.reduce((sum, download) => sum + Number(download.file.sizeBytes), 0);
  const active = new Set<string>();
  let doneFiles = 0;
  let doneBytes = 0;
  const render = (): void => {
    const current = active.size > 0 ? ` (${[...active].join(", ")})` : "";
    status.show(
      `Downloading outputs: ${doneFiles}/${planned.length} files, ` +
        `${formatBytes(doneBytes)} of ${formatBytes(totalBytes)}${current}`,
    );
  };
  return {
    started(name) {
      active.add(name);
      render();
    },
    finished(name, sizeBytes) {
      active.delete(name);
      doneFiles++;
      doneBytes += sizeBytes;
      render();
    },
    end: () => status.clear(),
  };
}
