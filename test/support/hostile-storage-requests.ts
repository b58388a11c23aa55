// Malformed requests for every StorageService RPC, drawn from a seeded random source: ids, names
// and counts its validation refuses, credentials it does not accept, and now and then a request
// over the size limit. None names a real execution's objects, so none can change any.
import { Code } from "@connectrpc/connect";
import type { CallOptions, Client } from "@connectrpc/connect";
import { ObjectKind } from "@rgrid/proto";
import type { StorageService } from "@rgrid/proto";
import { OVER_REQUEST_LIMIT_BYTES, malformedExecutionId, malformedName, unknownExecutionId } from "./hostile-values";
import type { SeededRandom } from "./seeded-random";

export type StorageClient = Client<typeof StorageService>;
export type StorageRpcName = keyof StorageClient;

export const STORAGE_RPCS: StorageRpcName[] = [
  "createUploadGrants",
  "commitUploads",
  "createDownloadGrants",
  "createUploadGrantsBatch",
  "createDownloadGrantsBatch",
  "commitUploadsBatch",
  "copyInputs",
  "copyInputsBatch",
  "statObjects",
  "listObjects",
  "deleteExecutionObjects",
  "listStoredExecutions",
  "storeLogs",
];

export interface StorageHostileCase {
  rpc: StorageRpcName;
  kind: string;
  expected: readonly Code[];
  /** The caller's token is swapped for this one (or none) before sending. */
  token: "internal" | "none" | "wrong";
  send(client: StorageClient, options: CallOptions): Promise<unknown>;
}

const invalid = [Code.InvalidArgument] as const;

function storageCase<R extends StorageRpcName>(rpc: R, kind: string, request: Parameters<StorageClient[R]>[0], expected: readonly Code[] = invalid): StorageHostileCase {
  return {
    rpc,
    kind,
    expected,
    token: "internal",
    send: (client, options) => (client[rpc] as (request: unknown, options: CallOptions) => Promise<unknown>)(request, options),
  };
}

const badName = (random: SeededRandom) => malformedName(random);

const refs = (name: string) => [{ kind: ObjectKind.INPUT, name, sha256: "" }];

/** A malformed StorageService request for `rpc`, or with `overLimit` one over the request size limit. */
export function hostileStorageRequest(rpc: StorageRpcName, random: SeededRandom, overLimit: boolean): StorageHostileCase {
  const id = unknownExecutionId(random);
  if (overLimit) {
    return storageCase("statObjects", "over request limit", { executionId: id, refs: refs("x".repeat(OVER_REQUEST_LIMIT_BYTES)) }, [Code.ResourceExhausted]);
  }
  const roll = random.next();
  if (roll < 0.05 || roll > 0.97) {
    // Any request at all, without the internal token or with a wrong one.
    const token = roll < 0.05 ? "none" : "wrong";
    return { ...storageCase("statObjects", `${token} token`, { executionId: id, refs: [] }, [Code.Unauthenticated]), token };
  }
  switch (rpc) {
    case "createUploadGrants":
    case "createDownloadGrants":
      return random.pick([
        () => storageCase(rpc, "execution_id", { executionId: malformedExecutionId(random), refs: refs("in.txt") }),
        () => storageCase(rpc, "ref name", { executionId: id, refs: refs(badName(random)) }),
        () => storageCase(rpc, "no refs", { executionId: id, refs: [] }),
        () => storageCase(rpc, "ref kind", { executionId: id, refs: [{ kind: random.pick([ObjectKind.UNSPECIFIED, 17 as ObjectKind]), name: "a.txt", sha256: "" }] }),
        () => storageCase(rpc, "ttl_seconds", { executionId: id, refs: refs("in.txt"), ttlSeconds: random.pick([-1, 7 * 24 * 3600 + 1, 2_147_483_647]) }),
        () => storageCase(rpc, "too many refs", { executionId: id, refs: Array.from({ length: 1001 }, (_, n) => ({ kind: ObjectKind.INPUT, name: `f${n}`, sha256: "" })) }),
      ])();
    case "commitUploads":
      return random.pick([
        () => storageCase(rpc, "execution_id", { executionId: malformedExecutionId(random), refs: refs("in.txt") }),
        () => storageCase(rpc, "ref name", { executionId: id, refs: refs(badName(random)) }),
        () => storageCase(rpc, "output kind", { executionId: id, refs: [{ kind: ObjectKind.OUTPUT, name: "out.txt", sha256: "" }] }),
      ])();
    case "createUploadGrantsBatch":
    case "createDownloadGrantsBatch":
    case "commitUploadsBatch": {
      // Each refuses the whole call, so nothing is granted or committed.
      const request = () => ({ executionId: unknownExecutionId(random), refs: refs("in.txt") });
      const shared = unknownExecutionId(random);
      const thousandRefs = Array.from({ length: 1000 }, (_, n) => ({ kind: ObjectKind.INPUT, name: `f${n}`, sha256: "" }));
      return random.pick([
        () => storageCase(rpc, "no requests", { requests: [] }),
        () => storageCase(rpc, "too many requests", { requests: Array.from({ length: 101 }, request) }),
        () => storageCase(rpc, "one execution twice", { requests: [{ ...request(), executionId: shared }, { ...request(), executionId: shared }] }),
        () => storageCase(rpc, "ref name", { requests: [request(), { ...request(), refs: refs(badName(random)) }] }),
        () => storageCase(rpc, "execution_id", { requests: [request(), { ...request(), executionId: malformedExecutionId(random) }] }),
        () => storageCase(rpc, "over 2000 refs in all", { requests: [1, 2, 3].map(() => ({ ...request(), refs: thousandRefs })) }),
      ])();
    }
    case "copyInputs":
      return random.pick([
        () => storageCase(rpc, "source id", { sourceExecutionId: malformedExecutionId(random), targetExecutionId: id, names: ["in.txt"] }),
        () => storageCase(rpc, "onto itself", { sourceExecutionId: id, targetExecutionId: id, names: ["in.txt"] }),
        () => storageCase(rpc, "name", { sourceExecutionId: id, targetExecutionId: unknownExecutionId(random), names: [badName(random)] }),
        () => storageCase(rpc, "repeated name", { sourceExecutionId: id, targetExecutionId: unknownExecutionId(random), names: ["a.txt", "a.txt"] }),
      ])();
    case "copyInputsBatch": {
      const copy = () => ({ sourceExecutionId: id, targetExecutionId: unknownExecutionId(random), names: ["in.txt"] });
      const shared = unknownExecutionId(random);
      return random.pick([
        () => storageCase(rpc, "no copies", { copies: [] }),
        () => storageCase(rpc, "too many copies", { copies: Array.from({ length: 101 }, copy) }),
        () => storageCase(rpc, "copy onto itself", { copies: [copy(), { sourceExecutionId: id, targetExecutionId: id }] }),
        () => storageCase(rpc, "one target twice", { copies: [{ ...copy(), targetExecutionId: shared }, { ...copy(), targetExecutionId: shared }] }),
        () => storageCase(rpc, "target is a source", { copies: [{ ...copy(), targetExecutionId: shared }, { ...copy(), sourceExecutionId: shared }] }),
        () => storageCase(rpc, "name", { copies: [copy(), { ...copy(), names: [badName(random)] }] }),
        () => storageCase(rpc, "source id", { copies: [{ ...copy(), sourceExecutionId: malformedExecutionId(random) }] }),
      ])();
    }
    case "statObjects":
      return storageCase(rpc, "ref name", { executionId: random.chance(0.5) ? malformedExecutionId(random) : id, refs: refs(badName(random)) });
    case "listObjects":
    case "deleteExecutionObjects":
      // Only malformed ids: a well-formed one could name real objects.
      return storageCase(rpc, "execution_id", { executionId: malformedExecutionId(random) });
    case "listStoredExecutions":
      return random.pick([
        () => storageCase(rpc, "after id", { afterExecutionId: `x${unknownExecutionId(random)}` }),
        () => storageCase(rpc, "page_size", { pageSize: random.pick([-1, 1001, 2_147_483_647]) }),
      ])();
    case "storeLogs": {
      // Each malformed in a way that refuses the whole call, so no log is written.
      const log = () => ({ executionId: unknownExecutionId(random), content: new TextEncoder().encode("{}\n") });
      const shared = unknownExecutionId(random);
      return random.pick([
        () => storageCase(rpc, "no logs", { logs: [] }),
        () => storageCase(rpc, "too many logs", { logs: Array.from({ length: 101 }, log) }),
        () => storageCase(rpc, "one execution twice", { logs: [{ ...log(), executionId: shared }, { ...log(), executionId: shared }] }),
        () => storageCase(rpc, "execution_id", { logs: [log(), { ...log(), executionId: malformedExecutionId(random) }] }),
        () => storageCase(rpc, "log over 1 MiB", { logs: [log(), { ...log(), content: new Uint8Array(1024 * 1024 + 1) }] }),
      ])();
    }
  }
}
