import { fromBinary } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import type { Compression, UniversalHandler, UniversalServerRequest, UniversalServerResponse } from "@connectrpc/connect/protocol";

/** Bytes before each message of an enveloped body: one flag byte and a big-endian uint32 length. */
const ENVELOPE_HEADER_BYTES = 5;
const COMPRESSED_FLAG = 0b0000_0001;

/** How a request body carries its one message, judged by content type. */
type BodyFraming =
  | { kind: "whole"; encodingHeader: "content-encoding" } // Connect unary, application/proto
  | { kind: "enveloped"; encodingHeader: "grpc-encoding" }; // gRPC and gRPC-Web, binary

function binaryFramingOf(contentType: string | null): BodyFraming | undefined {
  const mediaType = (contentType ?? "").split(";", 1)[0].trim().toLowerCase();
  switch (mediaType) {
    case "application/proto":
      return { kind: "whole", encodingHeader: "content-encoding" };
    case "application/grpc":
    case "application/grpc+proto":
    case "application/grpc-web":
    case "application/grpc-web+proto":
      return { kind: "enveloped", encodingHeader: "grpc-encoding" };
    default:
      return undefined; // JSON (already InvalidArgument when undecodable) or unsupported
  }
}

/**
 * Connect answers a unary request whose binary message cannot be decoded with Internal, before
 * any interceptor runs — but an undecodable request is the client's fault. This wrapper reads the
 * (small, unary) body first and, when its one message does not decode, makes the body fail with
 * InvalidArgument, which every protocol handler then reports in its own encoding. Bodies it cannot
 * judge (too large, not exactly one envelope, unknown compression) pass through untouched so the
 * handler's own checks answer as before.
 */
export function rejectUndecodableRequests(
  handler: UniversalHandler,
  options: { readMaxBytes: number; compressions: Compression[] },
): (request: UniversalServerRequest) => Promise<UniversalServerResponse> {
  return async (request) => {
    const framing = binaryFramingOf(request.header.get("content-type"));
    const body = request.body;
    if (handler.method.methodKind !== "unary" || request.method !== "POST" || framing === undefined || !isByteStream(body)) {
      return handler(request);
    }
    const compression = request.header.get(framing.encodingHeader);
    const checkedBody = await readAndCheck(body, options.readMaxBytes + ENVELOPE_HEADER_BYTES, (bytes) =>
      checkMessage(bytes, framing, compression, handler, options),
    );
    return handler({ ...request, body: checkedBody });
  };
}

function isByteStream(body: UniversalServerRequest["body"]): body is AsyncIterable<Uint8Array> {
  return typeof body === "object" && body !== null && Symbol.asyncIterator in body;
}

/**
 * Reads the body (up to `maxBytes`), then hands back an equivalent body: the same bytes, or —
 * when `check` rejects them — a body whose reading fails with that error. A reading error (a
 * client that disconnects) is handed on the same way. A
 * body over the bound is not checked: the handler's own size limit answers it, so the rest is
 * passed on unread.
 */
async function readAndCheck(
  body: AsyncIterable<Uint8Array>,
  maxBytes: number,
  check: (bytes: Uint8Array) => Promise<ConnectError | undefined>,
): Promise<AsyncIterable<Uint8Array>> {
  const iterator = body[Symbol.asyncIterator]();
  const chunks: Uint8Array[] = [];
  let received = 0;
  let failure: unknown;
  let unread = false;
  try {
    for (let next = await iterator.next(); next.done !== true; next = await iterator.next()) {
      chunks.push(next.value);
      received += next.value.byteLength;
      if (received > maxBytes) {
        unread = true;
        break;
      }
    }
  } catch (error) {
    failure = error;
  }
  if (failure === undefined && !unread) {
    failure = await check(Buffer.concat(chunks));
  }
  const replay = async function* (): AsyncGenerator<Uint8Array> {
    // Fail before any byte: the handler parses a message as soon as its envelope is complete.
    if (failure !== undefined) {
      throw failure;
    }
    yield* chunks;
    if (unread) {
      yield* { [Symbol.asyncIterator]: () => iterator };
    }
  };
  return replay();
}

/** The error to answer with when the body's one message is undecodable; undefined otherwise. */
async function checkMessage(
  bytes: Uint8Array,
  framing: BodyFraming,
  compressionName: string | null,
  handler: UniversalHandler,
  options: { readMaxBytes: number; compressions: Compression[] },
): Promise<ConnectError | undefined> {
  let message = bytes;
  let compressed = compressionName !== null && compressionName !== "identity";
  if (framing.kind === "enveloped") {
    const header = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    if (header.length < ENVELOPE_HEADER_BYTES) {
      return undefined;
    }
    const flags = header.readUInt8(0);
    const length = header.readUInt32BE(1);
    if (header.length !== ENVELOPE_HEADER_BYTES + length || (flags & ~COMPRESSED_FLAG) !== 0) {
      return undefined; // not exactly one plain message: the handler names the protocol error
    }
    message = bytes.subarray(ENVELOPE_HEADER_BYTES);
    compressed = (flags & COMPRESSED_FLAG) !== 0;
  }
  if (message.byteLength > options.readMaxBytes) {
    return undefined; // the handler answers ResourceExhausted
  }
  if (compressed) {
    const codec = options.compressions.find((candidate) => candidate.name === compressionName);
    if (codec === undefined) {
      return undefined; // the handler answers the unsupported compression
    }
    try {
      message = await codec.decompress(message, options.readMaxBytes);
    } catch {
      return undefined; // corrupt or oversized compressed data: the handler reports it
    }
  }
  try {
    fromBinary(handler.method.input, message);
    return undefined;
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    return new ConnectError(`cannot decode the request message: ${reason}`, Code.InvalidArgument);
  }
}
