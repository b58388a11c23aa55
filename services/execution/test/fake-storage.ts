import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { Client, ConnectRouter, ServiceImpl } from "@connectrpc/connect";
import { Code, ConnectError, createClient, createRouterTransport } from "@connectrpc/connect";
import { ARCHIVED_LOG_NAME, validateRequests } from "@rgrid/common";
import { ObjectInfoSchema, ObjectKind, ObjectRefSchema, StorageService, TransferGrantSchema } from "@rgrid/proto";
import type { CopyInputsRequest, ObjectInfo, ObjectRef } from "@rgrid/proto";

type Method = keyof ServiceImpl<typeof StorageService>;

const GRANT_URL_BASE = "http://storage.invalid/";

const KIND_SEGMENT: Partial<Record<ObjectKind, string>> = {
  [ObjectKind.SCRIPT]: "script",
  [ObjectKind.INPUT]: "inputs",
  [ObjectKind.OUTPUT]: "outputs",
  [ObjectKind.LOG]: "logs",
};

/**
 * An in-memory StorageService: objects really live in a Map keyed like the real ones, copies
 * really copy, and any method can be told to fail. A dependency of the code under test.
 */
export class FakeStorage {
  readonly objects = new Map<string, { sizeBytes: number; storedAt: Date }>();
  readonly calls: Record<Method, number> = {
    createUploadGrants: 0,
    createUploadGrantsBatch: 0,
    createDownloadGrantsBatch: 0,
    commitUploadsBatch: 0,
    createDownloadGrants: 0,
    copyInputs: 0,
    copyInputsBatch: 0,
    statObjects: 0,
    commitUploads: 0,
    listObjects: 0,
    deleteExecutionObjects: 0,
    listStoredExecutions: 0,
    storeLogs: 0,
  };
  /** The bytes of objects written through StoreLogs, by key; other objects here have a size only. */
  readonly contents = new Map<string, Uint8Array>();
  /** Runs before each StoreLogs is answered, e.g. to act while one is in hand. */
  beforeStoreLogs?: () => void;
  /** Copies made whole, by CopyInputs or as one of a CopyInputsBatch. */
  copiesMade = 0;
  private readonly failures = new Map<Method, ConnectError>();
  /** Runs (and may throw) before each CreateDownloadGrants answer, e.g. to act while a claim is handed over. */
  beforeDownloadGrants?: (executionId: string) => Promise<void>;

  failWith(method: Method, error: ConnectError): void {
    this.failures.set(method, error);
  }

  /** Undoes failWith: `method` answers normally again. */
  recover(method: Method): void {
    this.failures.delete(method);
  }

  put(executionId: string, kind: ObjectKind, name: string, sizeBytes: number, storedAt = new Date()): void {
    this.objects.set(key(executionId, kind, name), { sizeBytes, storedAt });
  }

  /** The bytes a download grant of this fake would serve, if they were written through StoreLogs. */
  bytesAt(url: string): Uint8Array | undefined {
    return this.contents.get(url.slice(GRANT_URL_BASE.length));
  }

  keysUnder(executionId: string): string[] {
    return [...this.objects.keys()].filter((k) => k.startsWith(`executions/${executionId}/`));
  }

  /** A client of this fake, which refuses what storage.proto's rules refuse, as the real service does. */
  client(): Client<typeof StorageService> {
    return createClient(StorageService, createRouterTransport(this.routes(), { router: { interceptors: [validateRequests([])] } }));
  }

  /** For serving this fake on a real port. */
  routes(): (router: ConnectRouter) => void {
    return (router) => router.service(StorageService, this.impl());
  }

  private impl(): ServiceImpl<typeof StorageService> {
    const grant = (method: string, executionId: string, ref: ObjectRef) =>
      create(TransferGrantSchema, {
        name: ref.name,
        method,
        url: `${GRANT_URL_BASE}${key(executionId, ref.kind, ref.name)}`,
        expiresAt: timestampFromDate(new Date(Date.now() + 3_600_000)),
      });
    const info = (executionId: string, ref: ObjectRef): ObjectInfo => {
      const object = this.objects.get(key(executionId, ref.kind, ref.name));
      return create(ObjectInfoSchema, { ref, exists: object !== undefined, sizeBytes: BigInt(object?.sizeBytes ?? 0) });
    };
    return {
      createUploadGrants: (req) => {
        this.enter("createUploadGrants");
        return { grants: req.refs.map((ref) => grant("PUT", req.executionId, ref)) };
      },
      createUploadGrantsBatch: (req) => {
        this.enter("createUploadGrantsBatch");
        return { responses: req.requests.map((each) => ({ grants: each.refs.map((ref) => grant("PUT", each.executionId, ref)) })) };
      },
      createDownloadGrants: async (req) => {
        await this.beforeDownloadGrants?.(req.executionId);
        this.enter("createDownloadGrants");
        return { grants: req.refs.map((ref) => grant("GET", req.executionId, ref)) };
      },
      createDownloadGrantsBatch: (req) => {
        this.enter("createDownloadGrantsBatch");
        return { responses: req.requests.map((each) => ({ grants: each.refs.map((ref) => grant("GET", each.executionId, ref)) })) };
      },
      copyInputs: async (req) => {
        this.enter("copyInputs");
        // Answer asynchronously, as a real copy would, so concurrent callers really overlap.
        await new Promise((resolve) => setTimeout(resolve, 5));
        const missing = this.copy(req);
        if (missing !== undefined) {
          throw new ConnectError(missing, Code.NotFound);
        }
        return { copied: copyRefs(req).map((ref) => info(req.targetExecutionId, ref)) };
      },
      copyInputsBatch: async (req) => {
        this.enter("copyInputsBatch");
        await new Promise((resolve) => setTimeout(resolve, 5));
        return {
          outcomes: req.copies.map((copy) => {
            const refused = this.copy(copy) ?? "";
            return { copied: refused === "" ? copyRefs(copy).map((ref) => info(copy.targetExecutionId, ref)) : [], refused };
          }),
        };
      },
      statObjects: (req) => {
        this.enter("statObjects");
        return { objects: req.refs.map((ref) => info(req.executionId, ref)) };
      },
      // Uploads here land in place at once (put), so committing finds them where they are.
      commitUploads: (req) => {
        this.enter("commitUploads");
        return { objects: req.refs.map((ref) => info(req.executionId, ref)) };
      },
      commitUploadsBatch: (req) => {
        this.enter("commitUploadsBatch");
        return { responses: req.requests.map((each) => ({ objects: each.refs.map((ref) => info(each.executionId, ref)) })) };
      },
      listObjects: (req) => {
        this.enter("listObjects");
        const objects = [...this.objects.entries()].flatMap(([k, object]) => {
          const match = /^executions\/([^/]+)\/(script|inputs|outputs)\/(.+)$/.exec(k);
          const kind = Number(Object.entries(KIND_SEGMENT).find(([, segment]) => segment === match?.[2])?.[0]) as ObjectKind;
          if (!match || match[1] !== req.executionId || (req.kind !== ObjectKind.UNSPECIFIED && req.kind !== kind)) {
            return [];
          }
          const ref = create(ObjectRefSchema, { kind, name: match[3] });
          return [create(ObjectInfoSchema, { ref, exists: true, sizeBytes: BigInt(object.sizeBytes) })];
        });
        return { objects };
      },
      deleteExecutionObjects: (req) => {
        this.enter("deleteExecutionObjects");
        const keys = this.keysUnder(req.executionId);
        keys.forEach((k) => this.objects.delete(k));
        return { deletedCount: keys.length };
      },
      storeLogs: (req) => {
        this.beforeStoreLogs?.();
        this.enter("storeLogs");
        for (const log of req.logs) {
          const logKey = key(log.executionId, ObjectKind.LOG, ARCHIVED_LOG_NAME);
          this.objects.set(logKey, { sizeBytes: log.content.length, storedAt: new Date() });
          this.contents.set(logKey, log.content);
        }
        return {};
      },
      listStoredExecutions: (req) => {
        this.enter("listStoredExecutions");
        const newestById = new Map<string, Date>();
        for (const [k, object] of this.objects) {
          const executionId = k.split("/")[1] ?? "";
          const newest = newestById.get(executionId);
          if (executionId > req.afterExecutionId && (newest === undefined || object.storedAt > newest)) {
            newestById.set(executionId, object.storedAt);
          }
        }
        const ids = [...newestById.keys()].sort();
        const pageSize = req.pageSize === 0 ? 1000 : req.pageSize;
        return {
          executions: ids.slice(0, pageSize).map((executionId) => ({
            executionId,
            newestObjectAt: timestampFromDate(newestById.get(executionId) as Date),
          })),
          hasMore: ids.length > pageSize,
        };
      },
    };
  }

  /** Copies one request's objects, all or none: why not, when one is missing. */
  private copy(req: CopyInputsRequest): string | undefined {
    const copied: string[] = [];
    for (const ref of copyRefs(req)) {
      const source = this.objects.get(key(req.sourceExecutionId, ref.kind, ref.name));
      if (source === undefined) {
        copied.forEach((k) => this.objects.delete(k));
        return `${ref.name} does not exist in ${req.sourceExecutionId}`;
      }
      const target = key(req.targetExecutionId, ref.kind, ref.name);
      // A copy is stored now, as in real storage, whatever its source's age.
      this.objects.set(target, { sizeBytes: source.sizeBytes, storedAt: new Date() });
      copied.push(target);
    }
    this.copiesMade++;
    return undefined;
  }

  private enter(method: Method): void {
    this.calls[method]++;
    const failure = this.failures.get(method);
    if (failure) {
      throw failure;
    }
  }
}

function copyRefs(req: CopyInputsRequest): ObjectRef[] {
  return [
    ...(req.scriptName ? [create(ObjectRefSchema, { kind: ObjectKind.SCRIPT, name: req.scriptName })] : []),
    ...req.names.map((name) => create(ObjectRefSchema, { kind: ObjectKind.INPUT, name })),
  ];
}

function key(executionId: string, kind: ObjectKind, name: string): string {
  return `executions/${executionId}/${KIND_SEGMENT[kind] ?? "unknown"}/${name}`;
}
