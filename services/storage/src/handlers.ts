import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import type { Logger } from "@rgrid/common";
import { mapWithLimit } from "@rgrid/common";
import type { ObjectRef, StorageService } from "@rgrid/proto";
import { ObjectKind } from "@rgrid/proto";
import { CopyMismatchError, MissingSourceObjectError } from "./copy-errors";
import { executionPrefix, isStagedKind, kindLabel, kindPrefix, objectKey, parseObjectKey, stagedKey } from "./keys";
import type { ObjectGrant, ObjectStore } from "./object-store";
import { ObjectNotFoundError } from "./object-store";
import { MAX_STORED_EXECUTIONS_PAGE } from "./validation";

export interface StorageHandlerDeps {
  /** Issues grants with their expiry from its own clock, so no clock is needed here. */
  store: ObjectStore;
  /** Validity of grants whose request leaves ttl_seconds at 0. */
  grantTtlSeconds: number;
  /**
   * Backend calls (copies, stats) one request runs at once: a request may name up to 1000
   * objects, and on S3 each is an HTTP request, so this bounds the load one caller can cause.
   */
  backendConcurrency: number;
  logger: Logger;
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

  return {
    async createUploadGrants(request) {
      const { executionId } = request;
      // Scripts and inputs are uploaded beside their place and committed once complete; an
      // output is written in place by the runner that made it.
      const issue = (ref: ObjectRef, ttl: number) =>
        isStagedKind(ref.kind)
          ? store.uploadGrant(stagedKey(executionId, ref.kind, ref.name), ttl, ref.sha256 === "" ? undefined : ref.sha256)
          : store.uploadGrant(objectKey(executionId, ref.kind, ref.name), ttl);
      return { grants: await grants(request.refs, request.ttlSeconds, issue) };
    },

    async commitUploads(request) {
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
    },

    async createDownloadGrants(request) {
      const issue = (ref: ObjectRef, ttl: number) => store.downloadGrant(objectKey(request.executionId, ref.kind, ref.name), ttl);
      return { grants: await grants(request.refs, request.ttlSeconds, issue) };
    },

    async copyInputs(request) {
      const { sourceExecutionId: source, targetExecutionId: target } = request;
      const plan = [
        ...(request.scriptName === "" ? [] : [{ kind: ObjectKind.SCRIPT, name: request.scriptName }]),
        ...request.names.map((name) => ({ kind: ObjectKind.INPUT, name })),
      ];
      const touchedTargets: string[] = [];

      const copyOne = async (ref: { kind: ObjectKind; name: string }): Promise<ObjectInfoInit> => {
        const sourceKey = objectKey(source, ref.kind, ref.name);
        const targetKey = objectKey(target, ref.kind, ref.name);
        const missing = () => new MissingSourceObjectError(kindLabel(ref.kind), ref.name, source);
        const original = await store.stat(sourceKey);
        if (original === undefined) {
          throw missing();
        }
        touchedTargets.push(targetKey);
        let copy;
        try {
          copy = await store.copy(sourceKey, targetKey);
        } catch (error) {
          throw error instanceof ObjectNotFoundError ? missing() : error;
        }
        // The target, as the store read it back, must have the source's size to count as copied.
        if (copy?.sizeBytes !== original.sizeBytes) {
          throw new CopyMismatchError(kindLabel(ref.kind), ref.name, target, original.sizeBytes, copy?.sizeBytes);
        }
        return { ref, exists: true, sizeBytes: BigInt(copy.sizeBytes) };
      };

      try {
        return { copied: await mapWithLimit(plan, deps.backendConcurrency, copyOne) };
      } catch (error) {
        // All or nothing: a retry must never start with some of its inputs.
        await rollBack(touchedTargets);
        throw error;
      }
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
