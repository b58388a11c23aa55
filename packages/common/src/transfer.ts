import { createHash } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { mkdir, rename, rm } from "node:fs/promises";
import * as http from "node:http";
import * as https from "node:https";
import { dirname } from "node:path";
import { Transform } from "node:stream";
import type { TransformCallback } from "node:stream";
import { pipeline } from "node:stream/promises";

/** What a grant allows: one HTTP request against object storage. */
export interface Grant {
  method: string;
  url: string;
  headers: { [name: string]: string };
}

export class TransferError extends Error {
  constructor(
    message: string,
    /** The HTTP status, when the server answered. */
    readonly status?: number,
  ) {
    super(message);
    this.name = "TransferError";
  }
}

export interface FileDigest {
  sizeBytes: number;
  sha256: string;
}

/** Size and SHA-256 of a file, read as a stream so memory stays bounded whatever its size. */
export async function digestFile(path: string): Promise<FileDigest> {
  const meter = new DigestMeter();
  await pipeline(createReadStream(path), meter, async (source) => {
    for await (const _chunk of source) {
      // the meter has already counted and hashed the chunk
    }
  });
  return meter.digest();
}

/**
 * Streams a local file to the grant's URL with an explicit Content-Length (S3 presigned PUTs
 * refuse chunked bodies). Memory use is bounded by stream buffers, not the file size.
 */
export async function uploadFile(grant: Grant, path: string, sizeBytes: number, onBytes?: (bytes: number) => void): Promise<void> {
  const request = openRequest(grant, { "content-length": String(sizeBytes) });
  const response = waitForResponse(request);
  // Not pipeline(): a server may answer and close before the request reports 'finish', which
  // pipeline() would turn into a premature-close error although the upload succeeded. The
  // answer is what counts; a failing read aborts the request, which rejects `response`.
  const source = createReadStream(path);
  source.once("error", (error) => request.destroy(error));
  if (onBytes !== undefined) {
    source.on("data", (chunk) => onBytes(chunk.length));
  }
  source.pipe(request);
  const res = await response;
  const body = await readSmallBody(res);
  if (res.statusCode === undefined || res.statusCode < 200 || res.statusCode >= 300) {
    throw new TransferError(`upload refused with HTTP ${res.statusCode}: ${summarise(body)}`, res.statusCode);
  }
}

/**
 * Streams the grant's object into `path`, checking size and SHA-256 on the way. The file appears
 * under its name only when complete and verified; a failed download leaves nothing behind.
 */
export async function downloadFile(grant: Grant, path: string, expected?: FileDigest): Promise<FileDigest> {
  const request = openRequest(grant, {});
  const response = waitForResponse(request);
  request.end();
  const res = await response;
  if (res.statusCode !== 200) {
    const body = await readSmallBody(res);
    throw new TransferError(`download refused with HTTP ${res.statusCode}: ${summarise(body)}`, res.statusCode);
  }
  await mkdir(dirname(path), { recursive: true });
  const partial = `${path}.part-${process.pid}-${Date.now()}`;
  const meter = new DigestMeter();
  try {
    await pipeline(res, meter, createWriteStream(partial));
    const digest = meter.digest();
    if (expected && (digest.sizeBytes !== expected.sizeBytes || digest.sha256 !== expected.sha256)) {
      throw new TransferError(
        `downloaded content does not match: expected ${expected.sizeBytes} bytes sha256 ${expected.sha256}, ` +
          `got ${digest.sizeBytes} bytes sha256 ${digest.sha256}`,
      );
    }
    await rename(partial, path);
    return digest;
  } catch (error) {
    await rm(partial, { force: true });
    throw error;
  }
}

function openRequest(grant: Grant, extraHeaders: Record<string, string>): http.ClientRequest {
  const url = new URL(grant.url);
  const client = url.protocol === "https:" ? https : http;
  return client.request(url, {
    method: grant.method,
    headers: { ...grant.headers, ...extraHeaders },
    agent: false,
  });
}

function waitForResponse(request: http.ClientRequest): Promise<http.IncomingMessage> {
  return new Promise((resolve, reject) => {
    request.once("response", resolve);
    request.once("error", (error: NodeJS.ErrnoException) =>
      reject(
        error.syscall === undefined
          ? new TransferError(`transfer failed: ${error.message}`)
          : new TransferError(`cannot reach object storage at ${request.host}: ${error.message}`),
      ),
    );
  });
}

async function readSmallBody(res: http.IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let length = 0;
  for await (const chunk of res) {
    // Only error bodies are read whole, and only their start is worth showing.
    if (length < 4096) {
      chunks.push(chunk as Buffer);
      length += (chunk as Buffer).length;
    }
  }
  return Buffer.concat(chunks).toString("utf8");
}

function summarise(body: string): string {
  const code = /<Code>([^<]+)<\/Code>/.exec(body)?.[1];
  const text = code ?? body.trim();
  return text.length > 200 ? `${text.slice(0, 200)}…` : text || "(empty body)";
}

/** Passes bytes through while counting and hashing them. */
class DigestMeter extends Transform {
  private readonly hash = createHash("sha256");
  private size = 0;

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.hash.update(chunk);
    this.size += chunk.length;
    callback(null, chunk);
  }

  digest(): FileDigest {
    return { sizeBytes: this.size, sha256: this.hash.digest("hex") };
  }
}
