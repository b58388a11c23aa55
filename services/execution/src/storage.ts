import { create } from "@bufbuild/protobuf";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import type { Client } from "@connectrpc/connect";
import { Code, ConnectError } from "@connectrpc/connect";
import { ObjectKind, ObjectRefSchema } from "@rgrid/proto";
import { mapWithLimit } from "@rgrid/common";
import type { ObjectInfo, ObjectRef, StorageService, TransferGrant } from "@rgrid/proto";
import type { Execution } from "./db/entities";
import { StorageRejectedError, StorageUnavailableError } from "./errors";

export type StorageClient = Client<typeof StorageService>;

export interface ObjectName {
  kind: ObjectKind;
  name: string;
  /** For upload grants of scripts and inputs: the recorded SHA-256 the bytes must have. */
  sha256?: string;
}

/** An execution id that has objects in storage, and when its newest object was stored. */
export interface StoredExecution {
  executionId: string;
  newestObjectAt: Date;
}

/** One copy of a CopyInputsBatch. */
export interface InputsCopy {
  sourceId: string;
  targetId: string;
  inputNames: readonly string[];
  /** Empty: the script is not copied. */
  scriptName: string;
}

/** The most copies one CopyInputsBatch takes (storage.proto). */
export const MAX_COPIES_PER_BATCH = 100;

/** Objects of one execution, in the calls that take several executions at once. */
export interface ExecutionObjects {
  executionId: string;
  objects: readonly ObjectName[];
}

/** The most executions, and objects in all, one CreateUploadGrantsBatch, CreateDownloadGrantsBatch or CommitUploadsBatch takes (storage.proto). */
const MAX_EXECUTIONS_PER_OBJECTS_BATCH = 100;
const MAX_REFS_PER_OBJECTS_BATCH = 2000;
/** Such batch calls in flight at once for one caller's request. */
const OBJECTS_BATCHES_IN_FLIGHT = 2;
/** Single calls in flight at once when storage predates the batch calls. */
const SINGLE_CALLS_IN_FLIGHT = 8;

export interface StoredExecutionsPage {
  /** In id order. */
  executions: StoredExecution[];
  /** Whether ids follow the last one in `executions`. */
  hasMore: boolean;
}

/**
 * StorageService as this service uses it: typed calls whose failures are translated into this
 * service's own errors, so a storage problem never reaches our clients under storage's code
 * (storage's Unauthenticated would otherwise look like the caller's own).
 */
export interface StorageGateway {
  uploadGrants(executionId: string, objects: readonly ObjectName[]): Promise<TransferGrant[]>;
  downloadGrants(executionId: string, objects: readonly ObjectName[]): Promise<TransferGrant[]>;
  stat(executionId: string, objects: readonly ObjectName[]): Promise<ObjectInfo[]>;
  /** Puts uploaded scripts and inputs in place, after which no grant can change them. */
  commitUploads(executionId: string, objects: readonly ObjectName[]): Promise<ObjectInfo[]>;
  /** uploadGrants of many executions, in as few calls as storage takes them; answered in order. */
  uploadGrantsOfMany(requests: readonly ExecutionObjects[]): Promise<TransferGrant[][]>;
  /** downloadGrants of many executions, in as few calls as storage takes them; answered in order. */
  downloadGrantsOfMany(requests: readonly ExecutionObjects[]): Promise<TransferGrant[][]>;
  /** commitUploads of many executions, in as few calls as storage takes them; answered in order. */
  commitUploadsOfMany(requests: readonly ExecutionObjects[]): Promise<ObjectInfo[][]>;
  copyInputs(sourceId: string, targetId: string, inputNames: readonly string[], scriptName: string): Promise<ObjectInfo[]>;
  /**
   * Many copyInputs in one call (at most MAX_COPIES_PER_BATCH), in order: each outcome is the
   * copied objects, or why that copy was refused (nothing of it remains).
   */
  copyInputsBatch(copies: readonly InputsCopy[]): Promise<Array<{ copied: ObjectInfo[]; refused: string }>>;
  deleteExecutionObjects(executionId: string): Promise<void>;
  /** Execution ids that have objects, after `afterExecutionId` ("" for the first page). */
  listStoredExecutions(afterExecutionId: string, pageSize: number): Promise<StoredExecutionsPage>;
  /**
   * Writes finished executions' logs in place, at most MAX_LOGS_PER_CALL in one call
   * (storage.proto); "unsupported" when storage predates StoreLogs, which leaves them to grants.
   */
  storeLogs(logs: readonly StoredLog[]): Promise<"stored" | "unsupported">;
}

/** A finished execution's log, as the archive keeps it. */
export interface StoredLog {
  executionId: string;
  content: Uint8Array;
}

/** The most logs one StoreLogs takes (storage.proto, which also caps each log at 1 MiB). */
export const MAX_LOGS_PER_CALL = 100;

const refs = (objects: readonly ObjectName[]): ObjectRef[] => objects.map((object) => create(ObjectRefSchema, object));

export function createStorageGateway(client: StorageClient): StorageGateway {
  const uploadGrants = async (executionId: string, objects: readonly ObjectName[]): Promise<TransferGrant[]> => {
    const response = await call(() => client.createUploadGrants({ executionId, refs: refs(objects) }));
    return expectOnePer(objects, response.grants);
  };
  const downloadGrants = async (executionId: string, objects: readonly ObjectName[]): Promise<TransferGrant[]> => {
    const response = await call(() => client.createDownloadGrants({ executionId, refs: refs(objects) }));
    return expectOnePer(objects, response.grants);
  };
  const commitUploads = async (executionId: string, objects: readonly ObjectName[]): Promise<ObjectInfo[]> => {
    const response = await call(() => client.commitUploads({ executionId, refs: refs(objects) }));
    return expectOnePer(objects, response.objects);
  };
  return {
    uploadGrants,
    downloadGrants,
    async stat(executionId, objects) {
      const response = await call(() => client.statObjects({ executionId, refs: refs(objects) }));
      return expectOnePer(objects, response.objects);
    },
    commitUploads,
    async uploadGrantsOfMany(requests) {
      return inObjectsBatches(
        requests,
        async (batch) => (await client.createUploadGrantsBatch({ requests: batch })).responses.map((response) => response.grants),
        (one) => uploadGrants(one.executionId, one.objects),
      );
    },
    async downloadGrantsOfMany(requests) {
      return inObjectsBatches(
        requests,
        async (batch) => (await client.createDownloadGrantsBatch({ requests: batch })).responses.map((response) => response.grants),
        (one) => downloadGrants(one.executionId, one.objects),
      );
    },
    async commitUploadsOfMany(requests) {
      return inObjectsBatches(
        requests,
        async (batch) => (await client.commitUploadsBatch({ requests: batch })).responses.map((response) => response.objects),
        (one) => commitUploads(one.executionId, one.objects),
      );
    },
    async copyInputs(sourceExecutionId, targetExecutionId, names, scriptName) {
      const response = await call(() =>
        client.copyInputs({ sourceExecutionId, targetExecutionId, names: [...names], scriptName }),
      );
      return response.copied;
    },
    async copyInputsBatch(copies) {
      const response = await call(() =>
        client.copyInputsBatch({
          copies: copies.map((copy) => ({
            sourceExecutionId: copy.sourceId,
            targetExecutionId: copy.targetId,
            names: [...copy.inputNames],
            scriptName: copy.scriptName,
          })),
        }),
      );
      return expectOnePer(copies, response.outcomes);
    },
    async deleteExecutionObjects(executionId) {
      await call(() => client.deleteExecutionObjects({ executionId }));
    },
    async storeLogs(logs) {
      const request = { logs: logs.map((log) => ({ executionId: log.executionId, content: log.content })) };
      try {
        await client.storeLogs(request);
      } catch (error) {
        // An execution-service upgraded before its storage-service still archives, the old way.
        if (ConnectError.from(error).code === Code.Unimplemented) {
          return "unsupported";
        }
        throw storageFailure(error);
      }
      return "stored";
    },
    async listStoredExecutions(afterExecutionId, pageSize) {
      const response = await call(() => client.listStoredExecutions({ afterExecutionId, pageSize }));
      return {
        executions: response.executions.map((stored) => {
          if (stored.newestObjectAt === undefined) {
            throw new Error(`storage listed ${stored.executionId} without the time of its newest object`);
          }
          return { executionId: stored.executionId, newestObjectAt: timestampDate(stored.newestObjectAt) };
        }),
        hasMore: response.hasMore,
      };
    },
  };
}

export const scriptObject = (name: string, sha256?: string): ObjectName => ({ kind: ObjectKind.SCRIPT, name, sha256 });
export const inputObject = (name: string, sha256?: string): ObjectName => ({ kind: ObjectKind.INPUT, name, sha256 });
export const outputObject = (name: string): ObjectName => ({ kind: ObjectKind.OUTPUT, name });

/**
 * Script first, then the inputs in recorded order: the order grants and stats come back in. Each
 * carries its recorded SHA-256, which upload grants bind the bytes to.
 */
export function executionObjects(execution: Execution): ObjectName[] {
  return [
    scriptObject(execution.scriptName, execution.scriptSha256),
    ...execution.inputs.map((input) => inputObject(input.name, input.sha256)),
  ];
}

/**
 * Sends `requests` in batches of at most what storage takes in one call, a few at once, and
 * answers in their order: each answer lists one per object of its request. A storage-service
 * from before the batch calls answers Unimplemented and is asked one execution at a time.
 */
async function inObjectsBatches<T>(
  requests: readonly ExecutionObjects[],
  sendBatch: (batch: Array<{ executionId: string; refs: ObjectRef[] }>) => Promise<T[][]>,
  sendOne: (request: ExecutionObjects) => Promise<T[]>,
): Promise<T[][]> {
  const batches: ExecutionObjects[][] = [];
  let refCount = 0;
  for (const request of requests) {
    const last = batches.at(-1);
    if (last === undefined || last.length === MAX_EXECUTIONS_PER_OBJECTS_BATCH || refCount + request.objects.length > MAX_REFS_PER_OBJECTS_BATCH) {
      batches.push([request]);
      refCount = request.objects.length;
    } else {
      last.push(request);
      refCount += request.objects.length;
    }
  }
  let unsupported = false;
  const answered = await mapWithLimit(batches, OBJECTS_BATCHES_IN_FLIGHT, async (batch) => {
    if (!unsupported) {
      try {
        const answers = await sendBatch(batch.map((request) => ({ executionId: request.executionId, refs: refs(request.objects) })));
        expectOnePer(batch, answers).forEach((answer, index) => expectOnePer(batch[index]!.objects, answer));
        return answers;
      } catch (error) {
        if (ConnectError.from(error).code !== Code.Unimplemented) {
          throw storageFailure(error);
        }
        unsupported = true;
      }
    }
    return mapWithLimit(batch, SINGLE_CALLS_IN_FLIGHT, sendOne);
  });
  return answered.flat();
}

async function call<T>(send: () => Promise<T>): Promise<T> {
  try {
    return await send();
  } catch (error) {
    throw storageFailure(error);
  }
}

/** A failed storage call as this service's own error. */
function storageFailure(error: unknown): Error {
  const connectError = ConnectError.from(error);
  switch (connectError.code) {
    // Could not reach storage, or it did not answer in time: worth trying again later.
    // Canceled too: this service never cancels its storage calls, so a cancelled stream means
    // storage went away mid-call (HTTP/2 RST_STREAM CANCEL from a dying peer). And Aborted:
    // storage never answers with it, so it is connect-node's name for a connection reset
    // under the call (ECONNRESET, a destroyed stream) — storage died or dropped us.
    case Code.Unavailable:
    case Code.DeadlineExceeded:
    case Code.Canceled:
    case Code.Aborted:
      return new StorageUnavailableError("storage is unavailable; try again", { cause: error });
    // Storage looked at the objects and refused: its message says which object and why.
    case Code.NotFound:
    case Code.FailedPrecondition:
      return new StorageRejectedError(connectError.rawMessage, { cause: error });
    // Anything else (bad token, our own malformed request) is a fault on our side.
    default:
      return new Error(`storage call failed: ${connectError.message}`, { cause: error });
  }
}

function expectOnePer<T>(objects: readonly unknown[], answers: T[]): T[] {
  if (answers.length !== objects.length) {
    throw new Error(`storage answered ${answers.length} items for ${objects.length} objects`);
  }
  return answers;
}
