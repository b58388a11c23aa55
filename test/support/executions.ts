// What the fault, concurrency and isolation tests do to executions, over the wire: typed clients
// with a credential, an execution whose files are really uploaded, and a runner played by the
// test itself so an execution can be failed on cue without a script.
import { createHash } from "node:crypto";
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { createClient } from "@connectrpc/connect";
import type { Client, Interceptor } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { ExecutionService, ObjectKind, Outcome, RunnerService, StorageService } from "@rgrid/proto";
import type { DescService } from "@bufbuild/protobuf";

export type ExecutionClient = Client<typeof ExecutionService>;
export type RunnerClient = Client<typeof RunnerService>;
export type StorageClient = Client<typeof StorageService>;

const bearer = (token: string): Interceptor => (next) => (req) => {
  req.header.set("authorization", `Bearer ${token}`);
  return next(req);
};

/** Connect over HTTP/1.1 with a credential, or gRPC with `grpc: true`. */
export function clientFor<T extends DescService>(service: T, baseUrl: string, token: string, { grpc = false } = {}): Client<T> {
  const interceptors = [bearer(token)];
  const transport = grpc
    ? createGrpcTransport({ baseUrl, interceptors })
    : createConnectTransport({ baseUrl, httpVersion: "1.1", useBinaryFormat: true, interceptors });
  return createClient(service, transport);
}

export interface UploadFile {
  name: string;
  bytes: Buffer;
}

const describe = (file: UploadFile) => ({
  name: file.name,
  sizeBytes: BigInt(file.bytes.length),
  sha256: createHash("sha256").update(file.bytes).digest("hex"),
});

/**
 * Creates an execution, uploads its script and inputs through the grants, and confirms them.
 * `onCreated` hears the id as soon as CreateExecution has answered.
 */
export async function createUploadedExecution(
  client: ExecutionClient,
  files: { script: UploadFile; inputs?: UploadFile[]; requestId: string; batchId?: string },
  onCreated: (id: string) => void = () => undefined,
): Promise<string> {
  const inputs = files.inputs ?? [];
  const created = await client.createExecution({
    script: describe(files.script),
    runtime: "python",
    inputs: inputs.map(describe),
    requestId: files.requestId,
    batchId: files.batchId ?? "",
  });
  const id = created.execution?.id;
  if (!id || !created.scriptUpload) throw new Error("CreateExecution answered without an execution or grants");
  onCreated(id);
  const grants = [created.scriptUpload, ...created.inputUploads];
  const bodies = [files.script, ...inputs];
  for (const [index, grant] of grants.entries()) {
    const response = await fetch(grant.url, { method: grant.method, headers: grant.headers, body: bodies[index]?.bytes });
    if (!response.ok) throw new Error(`upload of ${grant.name} failed: HTTP ${response.status} ${await response.text()}`);
  }
  await client.confirmUploads({ executionId: id });
  return id;
}

/**
 * Plays a runner: claims queued executions until `executionId` is among them and reports it
 * failed with exit code 1 (others claimed on the way are completed). No runner process may be
 * running, or it could claim the execution first.
 */
export async function failExecution(runner: RunnerClient, executionId: string): Promise<void> {
  const { runnerId } = await runner.registerRunner({ name: "test-runner", runtimes: ["python"], version: "test" });
  for (let attempt = 0; attempt < 100; attempt++) {
    const { assignment } = await runner.claimExecution({ runnerId, waitMillis: 5000 });
    const claimed = assignment?.execution?.id;
    if (claimed === undefined) continue;
    const failed = claimed === executionId;
    await runner.completeExecution({
      runnerId,
      executionId: claimed,
      outcome: failed ? Outcome.FAILED : Outcome.COMPLETED,
      exitCode: failed ? 1 : 0,
      errorMessage: failed ? "failed on purpose by the test" : "",
    });
    if (failed) return;
  }
  throw new Error(`could not claim ${executionId}`);
}

export async function allExecutionIds(client: ExecutionClient): Promise<string[]> {
  const ids: string[] = [];
  let pageToken = "";
  do {
    const page = await client.listExecutions({ pageSize: 500, pageToken });
    ids.push(...page.executions.map((execution) => execution.id));
    pageToken = page.nextPageToken;
  } while (pageToken !== "");
  return ids;
}

/** The execution ids that have objects in the fs backend's directory. */
export async function objectDirs(objectsDir: string): Promise<string[]> {
  const names = await readdir(join(objectsDir, "executions")).catch((error: NodeJS.ErrnoException) => {
    if (error.code === "ENOENT") return [];
    throw error;
  });
  return names.sort();
}

/** Whether every script and input object of the execution exists in storage with its size. */
export async function inputsPresent(storage: StorageClient, execution: { id: string; script?: { name: string; sizeBytes: bigint }; inputs: { name: string; sizeBytes: bigint }[] }): Promise<string[]> {
  const wanted = [
    ...(execution.script ? [{ kind: ObjectKind.SCRIPT, file: execution.script }] : []),
    ...execution.inputs.map((file) => ({ kind: ObjectKind.INPUT, file })),
  ];
  const { objects } = await storage.statObjects({
    executionId: execution.id,
    refs: wanted.map(({ kind, file }) => ({ kind, name: file.name })),
  });
  const problems: string[] = [];
  for (const [index, { file }] of wanted.entries()) {
    const found = objects[index];
    if (!found?.exists) problems.push(`${execution.id}: ${file.name} missing`);
    else if (found.sizeBytes !== file.sizeBytes) problems.push(`${execution.id}: ${file.name} has ${found.sizeBytes} bytes, not ${file.sizeBytes}`);
  }
  return problems;
}
