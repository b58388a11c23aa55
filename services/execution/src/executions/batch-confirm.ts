// BatchConfirmUploads: ConfirmUploads for many executions at once, each confirmed or refused on
// its own. One storage call commits every execution's uploads; an execution whose script was
// not uploaded (BatchCreateExecutions granted it to another of the same script) gets it copied
// inside storage from one of the call's executions that has it; one statement queues them all,
// and one more storage call asks ahead for the grants their runners will download with.
import type { BatchConfirmUploadsRequest, Execution as ExecutionMessage, ObjectInfo } from "@rgrid/proto";
import type { Database } from "../db/orm";
import type { Execution } from "../db/entities";
import { MAX_COPIES_PER_BATCH, executionObjects } from "../storage";
import type { InputsCopy, StorageGateway } from "../storage";
import { scriptKey } from "./batch-create";
import { executionMessage } from "./convert";
import type { DownloadGrants } from "./download-grants";
import { executionNotFound, ownedExecutionRows, queueUploading, retriedAsByOriginal } from "./queries";
import { incompleteUploadsMessage, uploadProblems } from "./uploads";
import type { WorkNotifier } from "./work-notifier";

export interface BatchConfirmDeps {
  db: Database;
  storage: StorageGateway;
  notifier: WorkNotifier;
  downloadGrants: DownloadGrants;
}

export interface ConfirmOutcome {
  execution: ExecutionMessage;
  /** Why it is still uploading; empty when confirmed. */
  refused: string;
}

/** What storage has in place for an execution, in executionObjects order (script first). */
type InPlace = Map<string, Array<ObjectInfo | undefined>>;

export function createBatchConfirmUploads(deps: BatchConfirmDeps) {
  const { db, storage, notifier } = deps;

  /**
   * Gives each of `uploading` whose script is not in place a copy of it from an execution of the
   * call with the same script that has it: one that was uploaded now, else one confirmed before
   * (the copy is refused if its script is gone). Updates `inPlace` with what each copy made.
   */
  async function copyMissingScripts(executions: readonly Execution[], uploading: readonly Execution[], inPlace: InPlace): Promise<void> {
    const scriptInPlace = (execution: Execution) => {
      const found = inPlace.get(execution.id)?.[0];
      return found?.exists === true && Number(found.sizeBytes) === execution.scriptSizeBytes;
    };
    const sources = new Map<string, string>();
    for (const execution of [...uploading.filter(scriptInPlace), ...executions.filter((each) => each.status !== "uploading")]) {
      if (!sources.has(scriptKey(execution))) {
        sources.set(scriptKey(execution), execution.id);
      }
    }
    const copies: InputsCopy[] = uploading.flatMap((execution) => {
      const sourceId = sources.get(scriptKey(execution));
      const missing = inPlace.get(execution.id)?.[0]?.exists !== true;
      return missing && sourceId !== undefined ? [{ sourceId, targetId: execution.id, inputNames: [], scriptName: execution.scriptName }] : [];
    });
    for (let start = 0; start < copies.length; start += MAX_COPIES_PER_BATCH) {
      const group = copies.slice(start, start + MAX_COPIES_PER_BATCH);
      const outcomes = await storage.copyInputsBatch(group);
      group.forEach((copy, index) => {
        const copied = outcomes[index]?.copied[0];
        // A refused copy leaves the script missing, which the confirm then reports.
        if (copied !== undefined) {
          (inPlace.get(copy.targetId) as Array<ObjectInfo | undefined>)[0] = copied;
        }
      });
    }
  }

  return async function batchConfirmUploads(request: BatchConfirmUploadsRequest, accountId: string): Promise<ConfirmOutcome[]> {
    const ids = request.executionIds;
    const owned = await ownedExecutionRows(db, accountId, ids);
    const missing = ids.find((id) => !owned.has(id));
    if (missing !== undefined) {
      throw executionNotFound(missing);
    }
    const executions = ids.map((id) => owned.get(id) as Execution);
    const uploading = executions.filter((execution) => execution.status === "uploading");

    // Committing puts the uploads in place for good: no grant can change them afterwards.
    const committed = await storage.commitUploadsOfMany(uploading.map((execution) => ({ executionId: execution.id, objects: executionObjects(execution) })));
    const inPlace: InPlace = new Map(uploading.map((execution, index) => [execution.id, [...(committed[index] ?? [])]]));
    await copyMissingScripts(executions, uploading, inPlace);

    const refusals = new Map<string, string>();
    for (const execution of uploading) {
      const problems = uploadProblems(execution, inPlace.get(execution.id) ?? []);
      if (problems.length > 0) {
        refusals.set(execution.id, incompleteUploadsMessage(execution.id, problems));
      }
    }
    const queued = await queueUploading(
      db,
      uploading.filter((execution) => !refusals.has(execution.id)).map((execution) => execution.id),
    );
    if (queued.size > 0) {
      // Asked before runners are woken, so that their claims find the grants on their way.
      deps.downloadGrants.prefetch(executions.filter((execution) => queued.has(execution.id)));
      notifier.notify();
    }

    // Those queued here changed in nothing but their status, and have not been retried; every
    // other one may have moved on (a concurrent confirm queued it, a runner claimed it): read again.
    const others = ids.filter((id) => !queued.has(id));
    const current = others.length === 0 ? new Map<string, Execution>() : await ownedExecutionRows(db, accountId, others);
    const retries = await retriedAsByOriginal(db.fork(), others);
    return executions.map((execution) => {
      if (queued.has(execution.id)) {
        execution.status = "queued";
        return { execution: executionMessage(execution), refused: "" };
      }
      const now = current.get(execution.id) ?? execution;
      const refused = now.status === "uploading" ? (refusals.get(execution.id) ?? "") : "";
      return { execution: executionMessage(now, retries.get(execution.id)), refused };
    });
  };
}
