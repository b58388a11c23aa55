import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import type { Logger } from "@rgrid/common";
import { ARCHIVED_LOG_NAME, mapWithLimit } from "@rgrid/common";
import type {
  CommitUploadsRequest,
  CopyInputsRequest,
  CreateDownloadGrantsRequest,
  CreateUploadGrantsRequest,
  ObjectRef,
  StorageService,
} from "@rgrid/proto";
import { ObjectKind } from "@rgrid/proto";
import { CopyMismatchError, MissingSourceObjectError } from "./copy-errors";
import { executionPrefix, isStagedKind, kindLabel, kindPrefix, objectKey, parseObjectKey, stagedKey } from "./keys";
import type { ObjectGrant, ObjectStore } from "./object-store";
import { ObjectConflictError, ObjectNotFoundError } from "./object-store";
import { MAX_STORED_EXECUTIONS_PAGE } from "./validation";

export interface StorageHandlerDeps {
  /** Issues grants with their expiry from its own clock, so no clock is needed here. */
  store: ObjectStore;
  /** Validity of grants whose request leaves ttl_seconds at 0. */
  grantTtlSeconds: number;
  /**
   * Backend calls (copies, stats) one request runs at once, BATCH_PARALLEL_COPIES times as many
   * for a CopyInputsBatch: a request may name up to 1000 objects, and on S3 each is an HTTP
   * request, so this bounds the load one caller can cause.
   */
  backendConcurrency: number;
  logger: Logger;
}

/**
 * How many copies' worth of backend calls one CopyInputsBatch runs at once (and how many
 * executions' commits one CommitUploadsBatch runs). Its copies are
 * often retries that arrived together (execution-service coalesces them), which as separate
 * CopyInputs calls would each have had backendConcurrency; a slow object store must not serve
 * them one call's worth at a time. Bounded, since a batch may hold 100 copies.
 */
export const BATCH_PARALLEL_COPIES = 4;

type PlannedRef = { kind: ObjectKind; name: string };

/** The objects a copy makes: the script (unless not asked for), then the inputs in the request's order. */
function copyPlan(copy: CopyInputsRequest): PlannedRef[] {
  return [
    ...(copy.scriptName === "" ? [] : [{ kind: ObjectKind.SCRIPT, name: copy.scriptName }]),
    ...copy.names.map((name) => ({ kind: ObjectKind.INPUT, name })),
  ];
}

/** A copy refused for its own objects (one missing, not matching, or its target's path taken), which fails that copy alone. */
function isRefusal(error: unknown): error is Error {
  return error instanceof MissingSourceObjectError || error instanceof CopyMismatchError || error instanceof ObjectConflictError;
}

interface ObjectInfoInit {
  ref: { kind: ObjectKind; name: string };
  exists: boolean;
  sizeBytes: bigint;
}

export function createStorageHandlers(deps: StorageHandlerDeps): ServiceImpl<typeof StorageService> {
  const { store, logger } = deps;

  const grants = async (
    refs: readonly ObjectRef[],
    ttlSeconds: number,
    issue: (ref: ObjectRef, ttlSeconds: number) => Promise<ObjectGrant>,
  ) => {
    const ttl = ttlSeconds === 0 ? deps.grantTtlSeconds : ttlSeconds;
    const issued = await Promise.all(refs.map((ref) => issue(ref, ttl)));
    return issued.map((grant, index) => ({
      name: refs[index]?.name ?? "",
      method: grant.method,
      url: grant.url,
      headers: grant.headers,
      expiresAt: timestampFromDate(grant.expiresAt),
    }));
  };

  /** Removes what a failed CopyInputs wrote; a failure here is logged, not allowed to hide the cause. */
  const rollBack = async (targetKeys: readonly string[]): Promise<void> => {
    try {
      await store.delete(targetKeys);
    } catch (error) {
      logger.error("could not remove partial copy", { keys: targetKeys.join(","), error });
    }
  };

  /** Copies one object of `copy`, noting its target in `touchedTargets` before writing it. */
  const copyObject = async (copy: CopyInputsRequest, ref: PlannedRef, touchedTargets: string[]): Promise<ObjectInfoInit> => {
    const sourceKey = objectKey(copy.sourceExecutionId, ref.kind, ref.name);
    const targetKey = objectKey(copy.targetExecutionId, ref.kind, ref.name);
    touchedTargets.push(targetKey);
    let copied;
    try {
      copied = await store.copy(sourceKey, targetKey);
    } catch (error) {
      throw error instanceof ObjectNotFoundError ? new MissingSourceObjectError(kindLabel(ref.kind), ref.name, copy.sourceExecutionId) : error;
    }
    const { source, target } = copied;
    // The target, as the store read it back, must have the source's size to count as copied.
    if (target?.sizeBytes !== source.sizeBytes) {
      throw new CopyMismatchError(kindLabel(ref.kind), ref.name, copy.targetExecutionId, source.sizeBytes, target?.sizeBytes);
    }
    return { ref, exists: true, sizeBytes: BigInt(target.sizeBytes) };
  };

  /** Grants to upload the objects of one execution: scripts and inputs to their staging place. */
  const uploadGrants = async (request: CreateUploadGrantsRequest) => {
    const { executionId } = request;
    // Scripts and inputs are uploaded beside their place and committed once complete; an
    // output is written in place by the runner that made it.
    const issue = (ref: ObjectRef, ttl: number) =>
      isStagedKind(ref.kind)
        ? store.uploadGrant(stagedKey(executionId, ref.kind, ref.name), ttl, ref.sha256 === "" ? undefined : ref.sha256)
        : store.uploadGrant(objectKey(executionId, ref.kind, ref.name), ttl);
    return { grants: await grants(request.refs, request.ttlSeconds, issue) };
  };

  /** Grants to download objects of one execution in place. */
  const downloadGrants = async (request: CreateDownloadGrantsRequest) => {
    const issue = (ref: ObjectRef, ttl: number) => store.downloadGrant(objectKey(request.executionId, ref.kind, ref.name), ttl);
    return { grants: await grants(request.refs, request.ttlSeconds, issue) };
  };

  /** Puts the staged objects of one execution in place, once each; what is in place after. */
  const commitUploads = async (request: CommitUploadsRequest) => {
    const { executionId } = request;
    const objects = await mapWithLimit(request.refs, deps.backendConcurrency, async (ref): Promise<ObjectInfoInit> => {
      const target = objectKey(executionId, ref.kind, ref.name);
      const staged = stagedKey(executionId, ref.kind, ref.name);
      let placed = await store.stat(target);
      if (placed !== undefined) {
        // Committed before: what is in place stays. Anything staged since came through an
        // old grant after the commit and is dropped.
        await store.delete([staged]);
      } else {
        try {
          await store.move(staged, target);
        } catch (error) {
          // Nothing staged: never uploaded, or a concurrent commit moved it first.
          if (!(error instanceof ObjectNotFoundError)) {
            throw error;
          }
        }
        placed = await store.stat(target);
      }
      return { ref: { kind: ref.kind, name: ref.name }, exists: placed !== undefined, sizeBytes: BigInt(placed?.sizeBytes ?? 0) };
    });
    return { objects };
  };

  return {
    createUploadGrants: uploadGrants,

    async createUploadGrantsBatch(request) {
      // Signing is local work: nothing to bound.
      return { responses: await Promise.all(request.requests.map(uploadGrants)) };
    },

    commitUploads,

    async commitUploadsBatch(request) {
      // As many executions' commits at once as a CopyInputsBatch runs copies, each with its own
      // backendConcurrency: the same bound on what one caller makes the backend do.
      return { responses: await mapWithLimit(request.requests, BATCH_PARALLEL_COPIES, commitUploads) };
    },

    createDownloadGrants: downloadGrants,

    async createDownloadGrantsBatch(request) {
      return { responses: await Promise.all(request.requests.map(downloadGrants)) };
    },

    async copyInputs(request) {
      const plan = copyPlan(request);
      const touchedTargets: string[] = [];
      try {
        return { copied: await mapWithLimit(plan, deps.backendConcurrency, (ref) => copyObject(request, ref, touchedTargets)) };
      } catch (error) {
        // All or nothing: a retry must never start with some of its inputs.
        await rollBack(touchedTargets);
        throw error;
      }
    },

    async copyInputsBatch(request) {
      // Every object of every copy in one queue, so the backend is kept as busy as a few
      // CopyInputs keep it, however the objects are spread over the copies.
      // Each object's answer goes to its place in its copy's plan, whenever it finishes.
      const copies = request.copies.map((copy) => ({ copy, touchedTargets: [] as string[], refused: "", copied: [] as ObjectInfoInit[] }));
      const work = copies.flatMap((state) => copyPlan(state.copy).map((ref, position) => ({ state, ref, position })));
      const concurrency = deps.backendConcurrency * Math.min(copies.length, BATCH_PARALLEL_COPIES);
      try {
        await mapWithLimit(work, concurrency, async ({ state, ref, position }) => {
          if (state.refused !== "") {
            return;
          }
          try {
            state.copied[position] = await copyObject(state.copy, ref, state.touchedTargets);
          } catch (error) {
            if (!isRefusal(error)) {
              throw error;
            }
            state.refused = error.message;
          }
        });
      } catch (error) {
        await rollBack(copies.flatMap((state) => state.touchedTargets));
        throw error;
      }
      const refused = copies.filter((state) => state.refused !== "");
      if (refused.length > 0) {
        await rollBack(refused.flatMap((state) => state.touchedTargets));
      }
      return {
        outcomes: copies.map((state) =>
          state.refused === "" ? { copied: state.copied, refused: "" } : { copied: [], refused: state.refused },
        ),
      };
    },

    async statObjects(request) {
      const objects = await mapWithLimit(request.refs, deps.backendConcurrency, async (ref): Promise<ObjectInfoInit> => {
        const found = await store.stat(objectKey(request.executionId, ref.kind, ref.name));
        return {
          ref: { kind: ref.kind, name: ref.name },
          exists: found !== undefined,
          sizeBytes: BigInt(found?.sizeBytes ?? 0),
        };
      });
      return { objects };
    },

    async listObjects(request) {
      const prefix =
        request.kind === ObjectKind.UNSPECIFIED
          ? executionPrefix(request.executionId)
          : kindPrefix(request.executionId, request.kind);
      const objects: ObjectInfoInit[] = [];
      for (const stored of await store.list(prefix)) {
        // Keys this service did not write (unsafe names, foreign layouts) are not reported.
        const parsed = parseObjectKey(stored.key);
        if (parsed !== undefined) {
          objects.push({ ref: { kind: parsed.kind, name: parsed.name }, exists: true, sizeBytes: BigInt(stored.sizeBytes) });
        }
      }
      return { objects };
    },

    async deleteExecutionObjects(request) {
      const keys = (await store.list(executionPrefix(request.executionId))).map((stored) => stored.key);
      await store.delete(keys);
      return { deletedCount: keys.length };
    },

    async storeLogs(request) {
      await mapWithLimit(request.logs, deps.backendConcurrency, (log) =>
        store.put(objectKey(log.executionId, ObjectKind.LOG, ARCHIVED_LOG_NAME), log.content),
      );
      return {};
    },

    async listStoredExecutions(request) {
      const pageSize = request.pageSize === 0 ? MAX_STORED_EXECUTIONS_PAGE : request.pageSize;
      // One more than the page tells whether another page follows.
      const found = await store.listExecutions(request.afterExecutionId, pageSize + 1);
      return {
        executions: found.slice(0, pageSize).map((stored) => ({
          executionId: stored.executionId,
          newestObjectAt: timestampFromDate(stored.newestObjectAt),
        })),
        hasMore: found.length > pageSize,
      };
    },
  };
}
