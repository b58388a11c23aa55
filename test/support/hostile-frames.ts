// Request bodies and framings no client library produces, sent as raw bytes over HTTP/1.1 and
// HTTP/2 to any RPC, and the answer read back in each protocol's own encoding: envelope flags a
// client may not set, a compressed flag with no compression named, two messages for a unary RPC,
// a message that is no protobuf, compressed data that is not. Every one is the client's fault.
import * as http from "node:http";
import * as http2 from "node:http2";
import { gzipSync } from "node:zlib";
import type { DescMethod, DescService } from "@bufbuild/protobuf";
import { MethodOptions_IdempotencyLevel } from "@bufbuild/protobuf/wkt";
import { Code } from "@connectrpc/connect";

/** How a raw request travels and how its answer is encoded. */
export type FrameProtocol = "grpc" | "grpc-web" | "connect-binary" | "connect-json";
export type HttpVersion = "1.1" | "2";

/** gRPC needs HTTP/2; the others go over both. */
export const FRAME_ROUTES: readonly { protocol: FrameProtocol; http: HttpVersion }[] = [
  { protocol: "grpc", http: "2" },
  { protocol: "grpc-web", http: "1.1" },
  { protocol: "grpc-web", http: "2" },
  { protocol: "connect-binary", http: "1.1" },
  { protocol: "connect-binary", http: "2" },
  { protocol: "connect-json", http: "1.1" },
  { protocol: "connect-json", http: "2" },
];

export interface RawRequest {
  headers: Record<string, string>;
  body: Buffer;
  /** A Connect GET: the message goes in this query instead of the body. */
  query?: string;
}

export interface RawAnswer {
  /** The code's name as in the Code enum ("InvalidArgument"), "OK", or what went wrong instead. */
  code: string;
  message: string;
}

export interface FrameCase {
  kind: string;
  request: RawRequest;
}

/** A 5-byte-prefixed message, as gRPC, gRPC-Web and Connect streaming frame them. */
export function envelope(message: Buffer, flags = 0): Buffer {
  const header = Buffer.alloc(5);
  header.writeUInt8(flags, 0);
  header.writeUInt32BE(message.length, 1);
  return Buffer.concat([header, message]);
}

/** Bytes no request message decodes: field 2047 with wire type 7, which does not exist. */
export const UNDECODABLE = Buffer.from([0xff, 0x7f]);

const streams = (method: DescMethod) => method.methodKind !== "unary";

function contentType(protocol: FrameProtocol, method: DescMethod): string {
  switch (protocol) {
    case "grpc":
      return "application/grpc";
    case "grpc-web":
      return "application/grpc-web+proto";
    case "connect-binary":
      return streams(method) ? "application/connect+proto" : "application/proto";
    case "connect-json":
      return streams(method) ? "application/connect+json" : "application/json";
  }
}

/** Headers for `protocol` and `method`, with the caller's credential. */
export function protocolHeaders(protocol: FrameProtocol, method: DescMethod, authorization?: string): Record<string, string> {
  const headers: Record<string, string> = { "content-type": contentType(protocol, method) };
  if (protocol === "grpc") headers.te = "trailers";
  if (protocol.startsWith("connect")) headers["connect-protocol-version"] = "1";
  if (authorization !== undefined) headers.authorization = authorization;
  return headers;
}

/** Whether the protocol frames its request message in an envelope for this method. */
export const isEnveloped = (protocol: FrameProtocol, method: DescMethod) => protocol.startsWith("grpc") || streams(method);

/** The header naming the request's compression in this protocol, for this method. */
function encodingHeader(protocol: FrameProtocol, method: DescMethod): string {
  if (protocol.startsWith("grpc")) return "grpc-encoding";
  return streams(method) ? "connect-content-encoding" : "content-encoding";
}

/** The malformed bodies for `method` over `protocol`; each must be answered InvalidArgument. */
export function frameCases(protocol: FrameProtocol, method: DescMethod, authorization?: string): FrameCase[] {
  const headers = protocolHeaders(protocol, method, authorization);
  const json = protocol === "connect-json";
  const empty = Buffer.from(json ? "{}" : "");
  const undecodable = json ? Buffer.from('{"') : UNDECODABLE;
  const compressedAs = (name: string) => ({ ...headers, [encodingHeader(protocol, method)]: name });
  const cases: FrameCase[] = [];
  if (isEnveloped(protocol, method)) {
    cases.push(
      { kind: "compressed flag, no compression named", request: { headers, body: envelope(empty, 0x01) } },
      { kind: "envelope flag 0x80", request: { headers, body: envelope(empty, 0x80) } },
      { kind: "envelope flags 0x06", request: { headers, body: envelope(empty, 0x06) } },
      { kind: "two messages", request: { headers, body: Buffer.concat([envelope(empty), envelope(empty)]) } },
      { kind: "no message", request: { headers, body: Buffer.alloc(0) } },
      { kind: "envelope cut short", request: { headers, body: envelope(Buffer.alloc(10)).subarray(0, 8) } },
      { kind: "undecodable message", request: { headers, body: envelope(undecodable) } },
      { kind: "gzip flag on data that is not gzip", request: { headers: compressedAs("gzip"), body: envelope(Buffer.from("not gzip"), 0x01) } },
      { kind: "gzip of an undecodable message", request: { headers: compressedAs("gzip"), body: envelope(gzipSync(undecodable), 0x01) } },
    );
  } else {
    cases.push(
      { kind: "undecodable message", request: { headers, body: undecodable } },
      { kind: "gzip named, data not gzip", request: { headers: compressedAs("gzip"), body: Buffer.from("not gzip") } },
      { kind: "gzip of an undecodable message", request: { headers: compressedAs("gzip"), body: gzipSync(undecodable) } },
    );
  }
  return cases;
}

/**
 * Malformed Connect GET requests, for RPCs without side effects (their message travels in the
 * query); each must be answered InvalidArgument.
 */
export function getCases(method: DescMethod, authorization?: string): FrameCase[] {
  if (method.idempotency !== MethodOptions_IdempotencyLevel.NO_SIDE_EFFECTS) return [];
  const headers: Record<string, string> = authorization === undefined ? {} : { authorization };
  const get = (kind: string, params: Record<string, string>): FrameCase => ({
    kind: `GET ${kind}`,
    request: { headers, body: Buffer.alloc(0), query: new URLSearchParams({ connect: "v1", ...params }).toString() },
  });
  return [
    get("undecodable message", { encoding: "proto", base64: "1", message: UNDECODABLE.toString("base64url") }),
    get("message not base64", { encoding: "proto", base64: "1", message: "!!not base64!!" }),
    get("message not JSON", { encoding: "json", message: '{"' }),
    get("gzip named, data not gzip", { encoding: "proto", base64: "1", compression: "gzip", message: Buffer.from("not gzip").toString("base64url") }),
  ];
}

/** Every method of `services` with the path it is served at. */
export function methodsOf(services: readonly DescService[]): { path: string; method: DescMethod }[] {
  return services.flatMap((service) => service.methods.map((method) => ({ path: `/${service.typeName}/${method.name}`, method })));
}

// ---- Sending, and reading the answer in each protocol's own encoding ----

interface HttpAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  trailers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

/** One HTTP/2 connection, kept for the requests that follow: a refusal must not spoil it. */
export function openSession(baseUrl: string): http2.ClientHttp2Session {
  const session = http2.connect(baseUrl);
  // A failed session fails the requests on it, which report it; nothing more to do here.
  session.on("error", () => undefined);
  return session;
}

function postH2(session: http2.ClientHttp2Session, path: string, request: RawRequest): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const target = request.query === undefined ? { ":method": "POST", ":path": path } : { ":method": "GET", ":path": `${path}?${request.query}` };
    const stream = session.request({ ...target, ...request.headers });
    const answer: HttpAnswer = { status: 0, headers: {}, trailers: {}, body: Buffer.alloc(0) };
    const chunks: Buffer[] = [];
    stream.on("response", (headers) => {
      answer.status = Number(headers[":status"]);
      answer.headers = headers;
    });
    stream.on("trailers", (trailers) => (answer.trailers = trailers));
    stream.on("data", (chunk: Buffer) => chunks.push(chunk));
    stream.on("end", () => resolve({ ...answer, body: Buffer.concat(chunks) }));
    stream.on("error", reject);
    stream.end(request.query === undefined ? request.body : undefined);
  });
}

// Idle connections are let go after 2 s, before the server's 5 s keep-alive ends them: reusing
// one the server is closing at that very moment fails with "socket hang up", the client's race
// and not an answer of the server's.
const h1Agent = new http.Agent({ keepAlive: true, maxSockets: 4, timeout: 2_000 });

function postH1(baseUrl: string, path: string, request: RawRequest): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const url = request.query === undefined ? `${baseUrl}${path}` : `${baseUrl}${path}?${request.query}`;
    const req = http.request(url, { method: request.query === undefined ? "POST" : "GET", headers: request.headers, agent: h1Agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (chunk: Buffer) => chunks.push(chunk));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, trailers: res.trailers, body: Buffer.concat(chunks) }));
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end(request.query === undefined ? request.body : undefined);
  });
}

/** "invalid_argument" → "InvalidArgument", the Code enum's own names. */
const codeName = (connectCode: string) => connectCode.replace(/(^|_)([a-z])/g, (_, _sep: string, letter: string) => letter.toUpperCase());

const first = (value: string | string[] | undefined) => (Array.isArray(value) ? value[0] : value);

function grpcStatus(fields: Record<string, string | string[] | undefined>): RawAnswer | undefined {
  const status = first(fields["grpc-status"]);
  if (status === undefined) return undefined;
  const message = decodeURIComponent(first(fields["grpc-message"]) ?? "");
  return { code: status === "0" ? "OK" : (Code[Number(status)] ?? `grpc-status ${status}`), message };
}

/** The envelopes of a body, in order. */
function envelopes(body: Buffer): { flags: number; data: Buffer }[] {
  const found: { flags: number; data: Buffer }[] = [];
  for (let offset = 0; offset + 5 <= body.length; ) {
    const length = body.readUInt32BE(offset + 1);
    found.push({ flags: body.readUInt8(offset), data: body.subarray(offset + 5, offset + 5 + length) });
    offset += 5 + length;
  }
  return found;
}

function readAnswer(protocol: FrameProtocol, method: DescMethod, answer: HttpAnswer): RawAnswer {
  const unreadable = (what: string): RawAnswer => ({ code: `unreadable answer (${what})`, message: `HTTP ${answer.status}: ${answer.body.toString("latin1").slice(0, 200)}` });
  if (protocol === "grpc") {
    return grpcStatus(answer.trailers) ?? grpcStatus(answer.headers) ?? unreadable("no grpc-status");
  }
  if (protocol === "grpc-web") {
    const trailer = envelopes(answer.body).find((frame) => (frame.flags & 0x80) !== 0);
    if (trailer === undefined) return grpcStatus(answer.headers) ?? unreadable("no trailer frame");
    const fields = Object.fromEntries(
      trailer.data
        .toString("latin1")
        .split("\r\n")
        .filter((line) => line.includes(":"))
        .map((line) => [line.slice(0, line.indexOf(":")).trim().toLowerCase(), line.slice(line.indexOf(":") + 1).trim()]),
    );
    return grpcStatus(fields) ?? unreadable("no grpc-status in the trailer frame");
  }
  if (streams(method)) {
    const end = envelopes(answer.body).find((frame) => (frame.flags & 0x02) !== 0);
    if (end === undefined) return unreadable("no end-stream frame");
    const parsed = JSON.parse(end.data.toString("utf8")) as { error?: { code?: string; message?: string } };
    return parsed.error ? { code: codeName(parsed.error.code ?? "unknown"), message: parsed.error.message ?? "" } : { code: "OK", message: "" };
  }
  if (answer.status === 200) return { code: "OK", message: "" };
  try {
    const parsed = JSON.parse(answer.body.toString("utf8")) as { code?: string; message?: string };
    return { code: codeName(parsed.code ?? "unknown"), message: parsed.message ?? "" };
  } catch {
    return unreadable("error body is not JSON");
  }
}

/** Where raw requests go: the service's URL, and for HTTP/2 the one session they share. */
export interface FrameTarget {
  baseUrl: string;
  session: http2.ClientHttp2Session;
}

/** Sends one raw request and reads its answer; a request that fails outright is reported as such. */
export async function sendFrame(
  target: FrameTarget,
  route: { protocol: FrameProtocol; http: HttpVersion },
  path: string,
  method: DescMethod,
  request: RawRequest,
): Promise<RawAnswer> {
  try {
    const answer = route.http === "2" ? await postH2(target.session, path, request) : await postH1(target.baseUrl, path, request);
    return readAnswer(route.protocol, method, answer);
  } catch (error) {
    return { code: "request failed", message: String(error) };
  }
}
