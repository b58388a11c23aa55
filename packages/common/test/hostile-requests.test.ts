// The common server against requests no client library sends, in process: malformed framings,
// a huge input quoted in an error, and requests over the size limit on HTTP/2 and HTTP/1.1.
import * as http from "node:http";
import * as http2 from "node:http2";
import { gzipSync } from "node:zlib";
import { create, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import type { ConnectRouter } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { ExecutionService, FollowLogsRequestSchema, Health, HealthCheckRequestSchema } from "@rgrid/proto";
import { MAX_ERROR_MESSAGE_CHARS } from "../src/errors";
import { registerHealth } from "../src/health";
import { silentLogger } from "../src/logger";
import { createConnectServer } from "../src/server";
import type { RunningServer } from "../src/server";

const READ_MAX_BYTES = 64 * 1024;
const DISCARD_MAX_BYTES = 32 * 1024 * 1024;

/** Health, and two ExecutionService RPCs that answer with what they were sent. */
function routes(router: ConnectRouter): void {
  registerHealth(router, ["rgrid.v1.ExecutionService"]);
  router.service(ExecutionService, {
    getExecution(request) {
      // A careless error message: it quotes the client's input whole.
      throw new ConnectError(`no execution "${request.executionId}"`, Code.NotFound);
    },
    async *followLogs(request) {
      yield { entries: [{ sequence: request.afterSequence + 1n, line: "a line" }] };
    },
  });
}

let server: RunningServer;

beforeAll(async () => {
  server = await createConnectServer({ routes, readMaxBytes: READ_MAX_BYTES, discardMaxBytes: DISCARD_MAX_BYTES, logger: silentLogger }).listen(0, "127.0.0.1");
});

afterAll(() => server.close(1000));

const envelope = (message: Uint8Array, flags = 0) => {
  const header = Buffer.alloc(5);
  header.writeUInt8(flags, 0);
  header.writeUInt32BE(message.byteLength, 1);
  return Buffer.concat([header, message]);
};
const healthCheck = (service = "") => toBinary(HealthCheckRequestSchema, create(HealthCheckRequestSchema, { service }));
const UNDECODABLE = Buffer.from([0xff, 0x7f]);

interface H2Answer {
  status: number;
  fields: http2.IncomingHttpHeaders;
  body: Buffer;
  closed: Promise<number>;
}

/** One raw HTTP/2 request; `closed` resolves with the stream's reset code once both sides are done. */
function postH2(session: http2.ClientHttp2Session, path: string, headers: http2.OutgoingHttpHeaders, body?: Buffer): Promise<H2Answer> {
  return new Promise((resolve, reject) => {
    const stream = session.request({ ":method": body === undefined ? "GET" : "POST", ":path": path, ...headers });
    const closed = new Promise<number>((resolveClosed) => stream.once("close", () => resolveClosed(stream.rstCode ?? 0)));
    let fields: http2.IncomingHttpHeaders = {};
    const chunks: Buffer[] = [];
    stream.on("response", (received) => (fields = { ...fields, ...received }));
    stream.on("trailers", (received) => (fields = { ...fields, ...received }));
    stream.on("data", (chunk: Buffer) => chunks.push(chunk));
    stream.on("end", () => resolve({ status: Number(fields[":status"]), fields, body: Buffer.concat(chunks), closed }));
    stream.on("error", reject);
    stream.end(body);
  });
}

const grpc = { "content-type": "application/grpc", te: "trailers" };

/** The error a call failed with; a call that succeeds fails the test. */
const failureOf = (call: Promise<unknown>): Promise<ConnectError> =>
  call.then(
    () => Promise.reject(new Error("the call succeeded")),
    (caught: unknown) => ConnectError.from(caught),
  );
const HEALTH = "/grpc.health.v1.Health/Check";

describe("malformed framings are InvalidArgument, never Internal or Unimplemented", () => {
  let session: http2.ClientHttp2Session;
  beforeAll(() => (session = http2.connect(server.url)));
  afterAll(() => session.close());

  test.each([
    ["the compressed flag with no grpc-encoding", envelope(healthCheck(), 0x01)],
    ["envelope flag 0x80", envelope(healthCheck(), 0x80)],
    ["envelope flag 0x02", envelope(healthCheck(), 0x02)],
    ["two messages for a unary RPC", Buffer.concat([envelope(healthCheck()), envelope(healthCheck())])],
    ["no message", Buffer.alloc(0)],
    ["an envelope cut short", envelope(healthCheck("x")).subarray(0, 6)],
  ])("gRPC: %s", async (_name, body) => {
    const answer = await postH2(session, HEALTH, grpc, body);
    expect(answer.fields["grpc-status"]).toBe(String(Code.InvalidArgument));
  });

  test("gRPC: gzip named, data that is not gzip", async () => {
    const answer = await postH2(session, HEALTH, { ...grpc, "grpc-encoding": "gzip" }, envelope(Buffer.from("not gzip"), 0x01));
    expect(answer.fields["grpc-status"]).toBe(String(Code.InvalidArgument));
  });

  test("Connect streaming (server-streaming RPC): an undecodable message", async () => {
    const answer = await postH2(session, "/rgrid.v1.ExecutionService/FollowLogs", { "content-type": "application/connect+proto" }, envelope(UNDECODABLE));
    // The only frame is the end of the stream, carrying the error.
    expect(answer.body.readUInt8(0)).toBe(0x02);
    expect(JSON.parse(answer.body.subarray(5).toString("utf8"))).toMatchObject({ error: { code: "invalid_argument" } });
  });

  test("Connect streaming: a valid message still streams", async () => {
    const valid = toBinary(FollowLogsRequestSchema, create(FollowLogsRequestSchema, { executionId: "exec_x", afterSequence: 4n }));
    const answer = await postH2(session, "/rgrid.v1.ExecutionService/FollowLogs", { "content-type": "application/connect+proto" }, envelope(valid));
    expect(answer.body.readUInt8(0)).toBe(0); // a message first, then the end of the stream
  });

  test.each([
    ["base64 that does not decode", "encoding=proto&base64=1&message=!!"],
    ["an undecodable message", `encoding=proto&base64=1&message=${UNDECODABLE.toString("base64url")}`],
    ["JSON that does not parse", "encoding=json&message=%7B%22"],
  ])("Connect GET (an RPC without side effects): %s", async (_name, query) => {
    const answer = await fetch(`${server.url}/rgrid.v1.ExecutionService/GetExecution?connect=v1&${query}`);
    expect(answer.status).toBe(400);
    expect(await answer.json()).toMatchObject({ code: "invalid_argument" });
  });
});

test("an error that quotes a huge input reaches a gRPC client, cut to a bounded message", async () => {
  const client = createClient(ExecutionService, createGrpcTransport({ baseUrl: server.url }));
  const error = await failureOf(client.getExecution({ executionId: "e".repeat(60_000) }));
  expect(error.code).toBe(Code.NotFound);
  expect(error.rawMessage.length).toBeLessThan(MAX_ERROR_MESSAGE_CHARS + 30);
  expect(error.rawMessage).toMatch(/^no execution "eee.*… \(\d+ more characters\)$/);

  const health = createClient(Health, createGrpcTransport({ baseUrl: server.url }));
  const unknown = await failureOf(health.check({ service: "s".repeat(60_000) }));
  expect(unknown.code).toBe(Code.NotFound);
  expect(unknown.rawMessage).toBe(`unknown service "${"s".repeat(64)}"… (60000 characters)`);
});

describe("a request over the size limit", () => {
  test.each([
    ["1 MiB", 1024 * 1024],
    ["24 MiB, more than a Node client keeps queued before resetting its own stream", 24 * 1024 * 1024],
  ])("of %s is ResourceExhausted over gRPC on HTTP/2, and the same connection serves the next call", async (_name, size) => {
    const transport = createGrpcTransport({ baseUrl: server.url });
    const health = createClient(Health, transport);
    const refused = await failureOf(health.check({ service: "x".repeat(size) }));
    expect([refused.code, refused.rawMessage]).toEqual([Code.ResourceExhausted, `request message larger than the limit of ${READ_MAX_BYTES} bytes`]);
    await expect(health.check({})).resolves.toBeDefined();
  });

  test("is ResourceExhausted over Connect on HTTP/2 and HTTP/1.1", async () => {
    for (const httpVersion of ["2", "1.1"] as const) {
      const health = createClient(Health, createConnectTransport({ baseUrl: server.url, httpVersion }));
      const refused = await failureOf(health.check({ service: "x".repeat(2 * 1024 * 1024) }));
      expect(refused.code).toBe(Code.ResourceExhausted);
      await expect(health.check({})).resolves.toBeDefined();
    }
  });

  test("leaves no HTTP/2 stream open behind its answer", async () => {
    const session = http2.connect(server.url);
    try {
      for (let index = 0; index < 3; index++) {
        const answer = await postH2(session, HEALTH, grpc, envelope(healthCheck("x".repeat(1024 * 1024))));
        expect(answer.fields["grpc-status"]).toBe(String(Code.ResourceExhausted));
        // The server read the rest and ended its side: the stream is over, not half-open.
        await expect(Promise.race([answer.closed, new Promise((resolve) => setTimeout(() => resolve("still open"), 2000))])).resolves.toBe(0);
      }
    } finally {
      session.close();
    }
  });

  test("past discardMaxBytes, HTTP/2 resets the stream and HTTP/1.1 closes the connection after answering", async () => {
    const session = http2.connect(server.url);
    session.on("error", () => undefined);
    try {
      const body = envelope(healthCheck("x".repeat(DISCARD_MAX_BYTES + 1024 * 1024)));
      const reset = await postH2(session, HEALTH, grpc, body).then(
        () => "answered",
        (error: { code?: string; message: string }) => error.message,
      );
      expect(reset).toMatch(/ENHANCE_YOUR_CALM/);
    } finally {
      session.destroy();
    }
    const answer = await new Promise<http.IncomingMessage>((resolve, reject) => {
      const request = http.request(`${server.url}${HEALTH}`, { method: "POST", headers: { "content-type": "application/grpc-web+proto" } }, resolve);
      request.on("error", reject);
      request.end(envelope(healthCheck("x".repeat(DISCARD_MAX_BYTES + 1024 * 1024))));
    });
    expect(answer.headers.connection).toBe("close");
    answer.resume();
  });

  test("compressed under the limit but over it once decompressed is ResourceExhausted", async () => {
    const session = http2.connect(server.url);
    try {
      const bomb = gzipSync(healthCheck("x".repeat(4 * READ_MAX_BYTES)));
      const answer = await postH2(session, HEALTH, { ...grpc, "grpc-encoding": "gzip" }, envelope(bomb, 0x01));
      expect(answer.fields["grpc-status"]).toBe(String(Code.ResourceExhausted));
    } finally {
      session.close();
    }
  });
});
