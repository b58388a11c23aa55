// BatchCreateExecutions: CreateExecution for many executions at once (`rgrid run --batch`), with
// one storage call for their grants and one transaction for their rows instead of a call and a
// statement each. Executions of the call that share a script upload it once: only the first of
// them still uploading gets a grant for it, and BatchConfirmUploads copies that upload to the
// others inside storage (batch-confirm.ts).
import { newExecutionId } from "@rgrid/common";
import type { BatchCreateExecutionsRequest, CreateExecutionRequest, Execution as ExecutionMessage, TransferGrant } from "@rgrid/proto";
import type { Database } from "../db/orm";
import type { Execution } from "../db/entities";
import { isUniqueViolation } from "../errors";
import { inputObject, scriptObject } from "../storage";
import type { StorageGateway } from "../storage";
import { executionMessage } from "./convert";
import { originalRecord, requireCreated } from "./new-executions";
import { executionsByRequestIds, insertExecutions } from "./queries";

export interface BatchCreateDeps {
  db: Database;
  storage: StorageGateway;
  clock: () => Date;
}

export interface CreatedExecution {
  execution: ExecutionMessage;
  scriptUpload?: TransferGrant;
  inputUploads: TransferGrant[];
}

/** The same script, as far as sharing one upload goes: the same name and the same bytes. */
export const scriptKey = (execution: Pick<Execution, "scriptName" | "scriptSha256">): string =>
  `${execution.scriptSha256}/${execution.scriptName}`;

export function createBatchCreateExecutions(deps: BatchCreateDeps) {
  const { db, storage, clock } = deps;

  /** One pass: the executions of earlier requests as they are, new ones recorded; grants for whatever still waits for its files. */
  async function createOnce(requests: readonly CreateExecutionRequest[], accountId: string): Promise<CreatedExecution[]> {
    const requestIds = requests.map((request) => request.requestId).filter((requestId) => requestId !== "");
    const earlier = await executionsByRequestIds(db, accountId, requestIds);
    const createdAt = clock();
    const fresh: Execution[] = [];
    const executions = requests.map((request) => {
      const found = request.requestId === "" ? undefined : earlier.get(request.requestId);
      if (found !== undefined) {
        return requireCreated(found, request.requestId);
      }
      const execution = originalRecord(request, { id: newExecutionId(), accountId, createdAt });
      fresh.push(execution);
      return execution;
    });

    // Grants first, as for a single create: if storage is down nothing is recorded, and a grant
    // for an id that is never used is harmless.
    const uploading = executions.filter((execution) => execution.status === "uploading");
    const scriptUploaders = firstOfEachScript(uploading);
    const needs = uploading
      .map((execution) => ({ execution, uploadsScript: scriptUploaders.has(execution.id) }))
      .filter(({ execution, uploadsScript }) => uploadsScript || execution.inputs.length > 0);
    const grants = await storage.uploadGrantsOfMany(
      needs.map(({ execution, uploadsScript }) => ({
        executionId: execution.id,
        objects: [
          ...(uploadsScript ? [scriptObject(execution.scriptName, execution.scriptSha256)] : []),
          ...execution.inputs.map((input) => inputObject(input.name, input.sha256)),
        ],
      })),
    );
    const grantsById = new Map(
      needs.map(({ execution, uploadsScript }, index) => {
        const granted = grants[index] ?? [];
        return [execution.id, uploadsScript ? { scriptUpload: granted[0], inputUploads: granted.slice(1) } : { inputUploads: granted }];
      }),
    );
    await insertExecutions(db, fresh);
    return executions.map((execution) => ({ execution: executionMessage(execution), inputUploads: [], ...grantsById.get(execution.id) }));
  }

  return async function batchCreateExecutions(request: BatchCreateExecutionsRequest, accountId: string): Promise<CreatedExecution[]> {
    try {
      return await createOnce(request.requests, accountId);
    } catch (error) {
      // A concurrent call with one of these request_ids recorded its execution first: a second
      // pass finds it and answers with it, as a single create does.
      if (!isUniqueViolation(error)) {
        throw error;
      }
      return createOnce(request.requests, accountId);
    }
  };
}

/** The ids of the first execution with each script (scriptKey): the one that uploads it for the others. */
function firstOfEachScript(executions: readonly Execution[]): Set<string> {
  const firstByScript = new Map<string, string>();
  for (const execution of executions) {
    const key = scriptKey(execution);
    if (!firstByScript.has(key)) {
      firstByScript.set(key, execution.id);
    }
  }
  return new Set(firstByScript.values());
}
