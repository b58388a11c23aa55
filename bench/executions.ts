// Making executions straight through the API, as the CLI does: create, upload the script
// through its grant, confirm. Benchmarks that time one of these steps call them one by one;
// submitBatch makes many as `rgrid run --batch` does.
import { randomUUID } from "node:crypto";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { create } from "@bufbuild/protobuf";
import { digestFile, mapWithLimit, uploadFile } from "@rgrid/common";
import { ExecutionStatus, FileInfoSchema } from "@rgrid/proto";
import type { CreateExecutionRequest, Execution, FileInfo } from "@rgrid/proto";
import type { ExecutionClient } from "./bench-grid";

export interface ScriptFile {
  path: string;
  info: FileInfo;
}

export async function writeScript(dir: string, name: string, content: string): Promise<ScriptFile> {
  const path = join(dir, name);
  await writeFile(path, content);
  const digest = await digestFile(path);
  return { path, info: create(FileInfoSchema, { name, sizeBytes: BigInt(digest.sizeBytes), sha256: digest.sha256 }) };
}

/** Creates a python execution of `script` and uploads it; returns its id, still uploading. */
export async function createUploaded(
  client: ExecutionClient,
  script: ScriptFile,
  extra: Partial<Pick<CreateExecutionRequest, "batchId" | "maxRetries">> = {},
): Promise<string> {
  const created = await client.createExecution({ script: script.info, runtime: "python", requestId: randomUUID(), ...extra });
  const grant = created.scriptUpload;
  if (!created.execution || !grant) {
    throw new Error("CreateExecution answered without an execution or an upload grant");
  }
  await uploadFile(grant, script.path, Number(script.info.sizeBytes));
  return created.execution.id;
}

/**
 * `count` python executions of `script` in one batch, submitted as `rgrid run --batch` submits
 * them: a call creates up to 100, the script is uploaded once per call, a call confirms them.
 * Returns their ids, queued.
 */
export async function submitBatch(
  client: ExecutionClient,
  script: ScriptFile,
  count: number,
  batchId: string,
  extra: Partial<Pick<CreateExecutionRequest, "maxRetries">> = {},
): Promise<string[]> {
  const PER_CALL = 100;
  const calls = Array.from({ length: Math.ceil(count / PER_CALL) }, (_, call) => Math.min(PER_CALL, count - call * PER_CALL));
  const ids = await mapWithLimit(calls, 2, async (size) => {
    const requests = Array.from({ length: size }, () => ({ script: script.info, runtime: "python", requestId: randomUUID(), batchId, ...extra }));
    const { responses } = await client.batchCreateExecutions({ requests });
    const grant = responses[0]?.scriptUpload;
    if (responses.length !== size || !grant) {
      throw new Error("BatchCreateExecutions answered without every execution or the script's upload grant");
    }
    await uploadFile(grant, script.path, Number(script.info.sizeBytes));
    const executionIds = responses.map((response) => response.execution?.id ?? "");
    const { outcomes } = await client.batchConfirmUploads({ executionIds });
    const refused = outcomes.find((outcome) => outcome.refused !== "");
    if (refused) {
      throw new Error(`BatchConfirmUploads refused: ${refused.refused}`);
    }
    return executionIds;
  });
  return ids.flat();
}

const TERMINAL = new Set([
  ExecutionStatus.COMPLETED,
  ExecutionStatus.FAILED,
  ExecutionStatus.TIMED_OUT,
  ExecutionStatus.CANCELLED,
]);

function isTerminal(status: ExecutionStatus): boolean {
  return TERMINAL.has(status);
}

/** Polls GetExecution every `intervalMillis` until the execution is terminal; gives up after 60 s. */
export async function waitUntilTerminal(client: ExecutionClient, executionId: string, intervalMillis: number): Promise<Execution> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const { execution } = await client.getExecution({ executionId });
    if (execution && isTerminal(execution.status)) {
      return execution;
    }
    if (Date.now() > deadline) {
      throw new Error(`${executionId} did not finish within 60 s (status ${execution?.status})`);
    }
    await sleep(intervalMillis);
  }
}

export const sleep = (millis: number) => new Promise((resolve) => setTimeout(resolve, millis));

/** Wall-clock time in milliseconds with sub-millisecond resolution, comparable across processes. */
export const wallClockMs = () => performance.timeOrigin + performance.now();
