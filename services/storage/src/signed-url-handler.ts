import type { IncomingHttpHeaders } from "node:http";
import { pipeline } from "node:stream/promises";
import type { Logger, NodeHandler } from "@rgrid/common";
import type { Clock } from "./clock";
import type { FileSystemStore } from "./fs-store";
import { IncompleteUploadError, ObjectTooLargeError, UploadDigestMismatchError } from "./fs-store";
import { objectKey, parseObjectKey, parseStagedKey } from "./keys";
import { ObjectConflictError } from "./object-store";
import type { UrlSigner } from "./url-signing";
import { OBJECTS_PATH } from "./url-signing";

export interface SignedUrlHandlerOptions {
  store: FileSystemStore;
  signer: UrlSigner;
  clock: Clock;
  maxObjectBytes: number;
  logger: Logger;
}

type NodeRequest = Parameters<NodeHandler>[0];
type NodeResponse = Parameters<NodeHandler>[1];

/**
 * Serves the filesystem backend's signed URLs (the plain HTTP requests that match no RPC on the
 * service's port). The signature is the only authorization: it names the method, the key and
 * the expiry, and nothing about the request can widen what it grants.
 */
export function createSignedUrlHandler(options: SignedUrlHandlerOptions): NodeHandler {
  const { store, signer, clock, maxObjectBytes, logger } = options;

  const put = async (key: string, expectedSha256: string | undefined, req: NodeRequest, res: NodeResponse): Promise<void> => {
    const staged = parseStagedKey(key);
    if (staged !== undefined && (await store.stat(objectKey(staged.executionId, staged.kind, staged.name))) !== undefined) {
      // The upload was confirmed: its object is in place, and no grant may change it now.
      return reply(res, 409, "this upload grant is no longer valid: the execution's files were confirmed", closeAfter(req));
    }
    const announced = contentLength(req.headers);
    if (announced === "invalid") {
      return reply(res, 400, "invalid Content-Length");
    }
    if (announced !== undefined && announced > maxObjectBytes) {
      // Refused before reading: the body is never accepted, so the connection cannot be reused.
      return reply(res, 413, `object exceeds the limit of ${maxObjectBytes} bytes`, closeAfter(req));
    }
    try {
      await store.write(key, req, { maxBytes: maxObjectBytes, expectedBytes: announced, expectedSha256 });
    } catch (error) {
      if (error instanceof ObjectTooLargeError) {
        return reply(res, 413, error.message, closeAfter(req));
      }
      if (error instanceof IncompleteUploadError || error instanceof UploadDigestMismatchError) {
        return reply(res, 400, error.message);
      }
      if (error instanceof ObjectConflictError) {
        return reply(res, 409, error.message);
      }
      throw error;
    }
    reply(res, 200, "");
  };

  const get = async (key: string, res: NodeResponse): Promise<void> => {
    const object = await store.open(key);
    if (object === undefined) {
      return reply(res, 404, "no such object");
    }
    res.writeHead(200, {
      "content-type": "application/octet-stream",
      "content-length": String(object.sizeBytes),
    });
    await pipeline(object.stream, res);
  };

  const serve = async (req: NodeRequest, res: NodeResponse): Promise<void> => {
    const url = req.url ?? "/";
    if (!url.startsWith(OBJECTS_PATH)) {
      return reply(res, 404, "not found");
    }
    const verified = signer.verify(url);
    if ("refused" in verified) {
      return reply(res, 403, verified.refused);
    }
    if (verified.method !== req.method) {
      return reply(res, 403, `this URL grants ${verified.method} only`);
    }
    if (verified.expiresAtSeconds * 1000 <= clock.now().getTime()) {
      return reply(res, 403, "signed URL has expired");
    }
    // Signed keys come from validated requests; a key that does not parse was never handed out.
    if (parseObjectKey(verified.key) === undefined && parseStagedKey(verified.key) === undefined) {
      return reply(res, 403, "bad signature");
    }
    if (verified.method === "PUT") {
      return put(verified.key, verified.sha256, req, res);
    }
    return get(verified.key, res);
  };

  return (req, res) => {
    serve(req, res).catch((error: unknown) => {
      // A client that hangs up mid-transfer is routine; the partial upload has been discarded.
      if (isClientGone(error)) {
        logger.warn("object transfer interrupted", { method: req.method, error: String(error) });
        res.destroy();
        return;
      }
      logger.error("object request failed", { method: req.method, error });
      if (!res.headersSent) {
        reply(res, 500, "internal error");
      } else {
        res.destroy();
      }
    });
  };
}

function isClientGone(error: unknown): boolean {
  const code = typeof error === "object" && error !== null && "code" in error ? String(error.code) : undefined;
  return code === "ECONNRESET" || code === "ERR_STREAM_PREMATURE_CLOSE" || code === "ERR_HTTP2_STREAM_ERROR";
}

/**
 * An unread request body leaves an HTTP/1.1 connection unusable, so it is closed after the reply.
 * HTTP/2 forbids the header; its streams end independently.
 */
function closeAfter(req: NodeRequest): Record<string, string> {
  return req.httpVersionMajor === 1 ? { connection: "close" } : {};
}

function contentLength(headers: IncomingHttpHeaders): number | undefined | "invalid" {
  const raw = headers["content-length"];
  if (raw === undefined) {
    return undefined;
  }
  return /^\d{1,16}$/.test(raw) ? Number(raw) : "invalid";
}

function reply(res: NodeResponse, status: number, message: string, headers: Record<string, string> = {}): void {
  const body = message === "" ? "" : message + "\n";
  res.writeHead(status, {
    ...headers,
    "content-type": "text/plain; charset=utf-8",
    "content-length": String(Buffer.byteLength(body)),
  });
  res.end(body);
}
