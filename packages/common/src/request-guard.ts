import { fromBinary } from "@bufbuild/protobuf";
import { base64Decode } from "@bufbuild/protobuf/wire";
import { Code, ConnectError } from "@connectrpc/connect";
import { createAsyncIterable } from "@connectrpc/connect/protocol";
import type { Compression, UniversalHandler, UniversalServerRequest, UniversalServerResponse } from "@connectrpc/connect/protocol";
import { codeToHttpStatus, errorToJsonBytes } from "@connectrpc/connect/protocol-connect";
import { boundMessage } from "./errors";

// connect-es 2.1.2 answers several malformed request bodies with Internal, before any interceptor
// runs: a binary message that does not decode, an envelope marked compressed when the request
// names no compression, a compressed message that does not decompress. It takes unknown envelope
// flags (0x80) for plain messages, calls a second message for a unary RPC Unimplemented, and
// quotes whatever it failed on in full. Every one of them is the client's fault. This guard
// reads the one request message of a unary or server-streaming RPC before the handler does and
// judges it; a body it refuses is handed on as a body whose reading fails with InvalidArgument
// (or ResourceExhausted), which every protocol handler then reports in its own encoding. A
// Connect GET, whose message is in the query, is judged the same way and refused here.

/** Bytes before each message of an enveloped body: one flag byte and a big-endian uint32 length. */
const ENVELOPE_HEADER_BYTES = 5;
/** The only envelope flag a client may set on a request message (gRPC, gRPC-Web, Connect). */
const COMPRESSED_FLAG = 0b0000_0001;

export interface RequestGuardOptions {
  /** Largest request message accepted, before and after decompression. */
  readMaxBytes: number;
  compressions: readonly Compression[];
}

/** How the body of a request carries its one message, judged by content type as connect-es does. */
interface Framing {
  enveloped: boolean;
  binary: boolean;
  /** The request header that names the message's compression. */
  encodingHeader: string;
  protocol: string;
}

const GRPC_CONTENT_TYPE = /^application\/grpc(-web)?(?:\+(?:(json)(?:; ?charset=utf-?8)?|proto))?$/i;
const CONNECT_UNARY_CONTENT_TYPE = /^application\/(?:(json)(?:; ?charset=utf-?8)?|proto)$/i;
const CONNECT_STREAM_CONTENT_TYPE = /^application\/connect\+(?:(json)(?:; ?charset=utf-?8)?|proto)$/i;

function framingOf(contentType: string, unary: boolean): Framing | undefined {
  const grpc = GRPC_CONTENT_TYPE.exec(contentType);
  if (grpc) {
    return { enveloped: true, binary: grpc[2] === undefined, encodingHeader: "grpc-encoding", protocol: grpc[1] ? "gRPC-Web" : "gRPC" };
  }
  if (unary) {
    const connect = CONNECT_UNARY_CONTENT_TYPE.exec(contentType);
    return connect ? { enveloped: false, binary: connect[1] === undefined, encodingHeader: "content-encoding", protocol: "Connect" } : undefined;
  }
  const stream = CONNECT_STREAM_CONTENT_TYPE.exec(contentType);
  return stream ? { enveloped: true, binary: stream[1] === undefined, encodingHeader: "connect-content-encoding", protocol: "Connect" } : undefined;
}

/** Unary and server-streaming RPCs: the request is one message, and the answer follows it. */
export function hasOneRequestMessage(handler: UniversalHandler): boolean {
  return handler.method.methodKind === "unary" || handler.method.methodKind === "server_streaming";
}

/**
 * Wraps an RPC's handler so that its request message is read and judged first (see above).
 * Client- and bidi-streaming RPCs, whose messages arrive while the handler runs, and bodies of
 * content types connect-es does not serve (it answers those itself) pass through untouched.
 */
export function guardRequestMessages(
  handler: UniversalHandler,
  options: RequestGuardOptions,
): (request: UniversalServerRequest) => Promise<UniversalServerResponse> {
  const kind = handler.method.methodKind;
  if (!hasOneRequestMessage(handler)) {
    return handler;
  }
  return async (request) => {
    if (request.method === "GET" && kind === "unary") {
      const refusal = await judgeGetRequest(request.url, handler, options);
      return refusal === undefined ? handler(request) : connectUnaryError(refusal);
    }
    const framing = framingOf(request.header.get("content-type") ?? "", kind === "unary");
    const body = request.body;
    if (request.method !== "POST" || framing === undefined || !isByteStream(body)) {
      return handler(request);
    }
    const read = await readBody(body, framing, request.header, options);
    const failure = read.failure ?? (await judgeMessage(read.bytes, framing, request.header, handler, options));
    return handler({ ...request, body: replay(read.bytes, failure) });
  };
}

function isByteStream(body: UniversalServerRequest["body"]): body is AsyncIterable<Uint8Array> {
  return typeof body === "object" && body !== null && Symbol.asyncIterator in body;
}

/** The body again for the handler: the same bytes, or — refused — a failure before any byte. */
async function* replay(bytes: Uint8Array, failure: unknown): AsyncGenerator<Uint8Array> {
  if (failure !== undefined) {
    throw failure;
  }
  if (bytes.byteLength > 0) {
    yield bytes;
  }
}

/**
 * Reads the whole body, up to one message's worth. A body over the limit — by its declared length
 * or by what arrives — is refused with ResourceExhausted as soon as that is known, its rest left
 * unread (server.ts deals with that). A body that fails while being read (the client went away)
 * is handed on as that failure.
 */
async function readBody(
  body: AsyncIterable<Uint8Array>,
  framing: Framing,
  header: Headers,
  options: RequestGuardOptions,
): Promise<{ bytes: Uint8Array; failure?: unknown }> {
  const keepMaxBytes = options.readMaxBytes + (framing.enveloped ? ENVELOPE_HEADER_BYTES : 0);
  const declaredLength = framing.enveloped ? undefined : Number(header.get("content-length") ?? Number.NaN);
  const chunks: Uint8Array[] = [];
  let received = 0;
  let overLimit = declaredLength !== undefined && declaredLength > options.readMaxBytes;
  // Not a for-await loop: leaving one early would destroy the request, and with it the stream
  // the refusal is to be sent on.
  const iterator = body[Symbol.asyncIterator]();
  try {
    while (!overLimit) {
      const next = await iterator.next();
      if (next.done === true) {
        break;
      }
      chunks.push(next.value);
      received += next.value.byteLength;
      // An envelope says how long its message is: once its header is in, no need to wait.
      const headerArrived = framing.enveloped && received >= ENVELOPE_HEADER_BYTES && received - next.value.byteLength < ENVELOPE_HEADER_BYTES;
      overLimit = received > keepMaxBytes || (headerArrived && declaredMessageBytes(chunks) > options.readMaxBytes);
    }
  } catch (error) {
    return { bytes: new Uint8Array(0), failure: error };
  }
  if (overLimit) {
    const failure = new ConnectError(`request message larger than the limit of ${options.readMaxBytes} bytes`, Code.ResourceExhausted);
    return { bytes: new Uint8Array(0), failure };
  }
  return { bytes: concat(chunks, received) };
}

/** The message length the first envelope header announces (its five bytes are in `chunks`). */
function declaredMessageBytes(chunks: readonly Uint8Array[]): number {
  const head = concat(chunks, ENVELOPE_HEADER_BYTES);
  return Buffer.from(head.buffer, head.byteOffset, head.byteLength).readUInt32BE(1);
}

/** The first `maxBytes` bytes of `chunks` (all of them if they hold fewer) as one array. */
function concat(chunks: readonly Uint8Array[], maxBytes: number): Uint8Array {
  if (chunks.length === 1 && (chunks[0] as Uint8Array).byteLength <= maxBytes) {
    return chunks[0] as Uint8Array;
  }
  const all = Buffer.concat(chunks);
  return all.byteLength > maxBytes ? all.subarray(0, maxBytes) : all;
}

const invalid = (message: string) => new ConnectError(boundMessage(message), Code.InvalidArgument);

/** The error to refuse the body with, or undefined when it holds exactly one decodable message. */
async function judgeMessage(
  bytes: Uint8Array,
  framing: Framing,
  header: Headers,
  handler: UniversalHandler,
  options: RequestGuardOptions,
): Promise<ConnectError | undefined> {
  const codec = compressionNamed(header.get(framing.encodingHeader), options);
  if (codec === "unsupported") {
    return undefined; // the handler refuses the unsupported compression, as its protocol says
  }
  let message = bytes;
  let compressed = codec !== undefined;
  if (framing.enveloped) {
    const envelope = singleEnvelope(bytes);
    if (typeof envelope === "string") {
      return invalid(`${envelope} (${framing.protocol})`);
    }
    if ((envelope.flags & ~COMPRESSED_FLAG) !== 0) {
      return invalid(`unknown envelope flags 0x${envelope.flags.toString(16).padStart(2, "0")}: a request message may only be marked compressed (0x01)`);
    }
    compressed = (envelope.flags & COMPRESSED_FLAG) !== 0;
    if (compressed && codec === undefined) {
      return invalid(`the request message is marked compressed, but no ${framing.encodingHeader} header names its compression`);
    }
    message = envelope.data;
  }
  return judgeDecoded(message, compressed ? codec : undefined, framing.binary, handler, options);
}

/** The compression a header or parameter names: none, one we accept, or one we do not. */
function compressionNamed(name: string | null, options: RequestGuardOptions): Compression | "unsupported" | undefined {
  if (name === null || name === "" || name === "identity") {
    return undefined;
  }
  return options.compressions.find((candidate) => candidate.name === name) ?? "unsupported";
}

/** Decompresses (with `codec`, if any) and decodes one message; the error to refuse it with, if it fails. */
async function judgeDecoded(
  bytes: Uint8Array,
  codec: Compression | undefined,
  binary: boolean,
  handler: UniversalHandler,
  options: RequestGuardOptions,
): Promise<ConnectError | undefined> {
  let message = bytes;
  if (codec !== undefined) {
    try {
      message = await codec.decompress(message, options.readMaxBytes);
    } catch (error) {
      if (isOverReadLimit(error)) {
        return new ConnectError(`request message larger than the limit of ${options.readMaxBytes} bytes once decompressed`, Code.ResourceExhausted);
      }
      return invalid(`the request message is not valid ${codec.name} data`);
    }
  }
  if (!binary) {
    // connect-es refuses JSON it cannot parse with InvalidArgument itself: no second parse here.
    return undefined;
  }
  try {
    fromBinary(handler.method.input, message);
    return undefined;
  } catch (error) {
    return invalid(`cannot decode the request message: ${error instanceof Error ? error.message : String(error)}`);
  }
}

/**
 * Whether decompressing failed for the size of the result. connect-node says so with
 * ResourceExhausted, judging by the zlib error's code — unless that error comes from another
 * realm (as under jest), when it says Internal; the code is then still on the cause.
 */
function isOverReadLimit(error: unknown): boolean {
  if (!(error instanceof ConnectError)) {
    return false;
  }
  const cause = error.cause as { code?: unknown } | undefined;
  return error.code === Code.ResourceExhausted || cause?.code === "ERR_BUFFER_TOO_LARGE";
}

/**
 * A Connect GET carries its message in the query (RPCs without side effects): the same checks,
 * plus base64 that does not decode, which connect-es answers with Internal.
 */
async function judgeGetRequest(url: string, handler: UniversalHandler, options: RequestGuardOptions): Promise<ConnectError | undefined> {
  const query = new URL(url).searchParams;
  const encoding = query.get("encoding");
  const codec = compressionNamed(query.get("compression"), options);
  if ((encoding !== "proto" && encoding !== "json") || codec === "unsupported") {
    return undefined; // the handler refuses these, as the protocol says
  }
  const text = query.get("message") ?? "";
  let bytes: Uint8Array;
  if (query.get("base64") === "1") {
    try {
      bytes = base64Decode(text);
    } catch {
      return invalid("the message query parameter is not base64");
    }
  } else {
    bytes = new TextEncoder().encode(text);
  }
  if (bytes.byteLength > options.readMaxBytes) {
    return new ConnectError(`request message larger than the limit of ${options.readMaxBytes} bytes`, Code.ResourceExhausted);
  }
  return judgeDecoded(bytes, codec, encoding === "proto", handler, options);
}

/** The answer to a refused Connect unary request, encoded as the protocol says (a GET is one). */
function connectUnaryError(error: ConnectError): UniversalServerResponse {
  const body = errorToJsonBytes(error, undefined);
  return {
    status: codeToHttpStatus(error.code),
    header: new Headers({ "content-type": "application/json", "content-length": String(body.byteLength) }),
    body: createAsyncIterable([body]),
  };
}

/** The one envelope of an enveloped body, or what is wrong with the body. */
function singleEnvelope(bytes: Uint8Array): { flags: number; data: Uint8Array } | string {
  if (bytes.byteLength === 0) {
    return "the request has no message";
  }
  const view = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.length < ENVELOPE_HEADER_BYTES || view.length < ENVELOPE_HEADER_BYTES + view.readUInt32BE(1)) {
    return "the request body ends inside a message";
  }
  const end = ENVELOPE_HEADER_BYTES + view.readUInt32BE(1);
  if (end < view.length) {
    return "this RPC takes exactly one request message, and the body holds more";
  }
  return { flags: view.readUInt8(0), data: bytes.subarray(ENVELOPE_HEADER_BYTES, end) };
}
