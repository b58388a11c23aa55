import * as http2 from "node:http2";
import * as net from "node:net";
import { gzipSync } from "node:zlib";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { Code, ConnectError } from "@connectrpc/connect";
import { Health, HealthCheckResponse_ServingStatus } from "@rgrid/proto";
import { registerHealth } from "../src/health";
import { silentLogger } from "../src/logger";
import { createConnectServer } from "../src/server";
import type { RunningServer } from "../src/server";

let server: RunningServer;
let serving = true;

beforeAll(async () => {
  server = await createConnectServer({
    routes: (router) => registerHealth(router, ["rgrid.v1.Example"], () => serving),
    fallback: (_req, res) => {
      res.writeHead(418, { "content-type": "text/plain" });
      res.end("not an RPC");
    },
    readMaxBytes: 1024,
    logger: silentLogger,
  }).listen(0, "127.0.0.1");
});

afterAll(() => server.close(1000));

const transports = {
  "gRPC over h2c": () => createGrpcTransport({ baseUrl: server.url }),
  "Connect over HTTP/1.1": () => createConnectTransport({ baseUrl: server.url, httpVersion: "1.1" }),
  "Connect over h2c": () => createConnectTransport({ baseUrl: server.url, httpVersion: "2" }),
  "gRPC-Web over HTTP/1.1": () => createGrpcWebTransport({ baseUrl: server.url, httpVersion: "1.1" }),
};

describe.each(Object.entries(transports))("one port answers %s", (_name, makeTransport) => {
  test("the health check says SERVING", async () => {
    const health = createClient(Health, makeTransport());
    expect((await health.check({})).status).toBe(HealthCheckResponse_ServingStatus.SERVING);
    expect((await health.check({ service: "rgrid.v1.Example" })).status).toBe(HealthCheckResponse_ServingStatus.SERVING);
  });

  test("an unknown service is NotFound", async () => {
    const health = createClient(Health, makeTransport());
    await expect(health.check({ service: "nope.v1.Missing" })).rejects.toMatchObject({ code: Code.NotFound });
  });

  test("a request over the size limit is refused with ResourceExhausted", async () => {
    const health = createClient(Health, makeTransport());
    const error = await health.check({ service: "x".repeat(4096) }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(ConnectError);
    expect((error as ConnectError).code).toBe(Code.ResourceExhausted);
  });
});

test("the health check reports NOT_SERVING when the server says so", async () => {
  serving = false;
  try {
    const health = createClient(Health, createGrpcTransport({ baseUrl: server.url }));
    expect((await health.check({})).status).toBe(HealthCheckResponse_ServingStatus.NOT_SERVING);
  } finally {
    serving = true;
  }
});

test("plain HTTP requests that are no RPC reach the fallback", async () => {
  const response = await fetch(`${server.url}/objects/anything`);
  expect(response.status).toBe(418);
  expect(await response.text()).toBe("not an RPC");
});

test("close lets an in-flight request finish and then refuses new connections", async () => {
  let release: () => void = () => undefined;
  const slow = await createConnectServer({
    routes: (router) => registerHealth(router, [], () => true),
    fallback: (_req, res) => {
      release = () => res.end("finished");
    },
    readMaxBytes: 1024,
    logger: silentLogger,
  }).listen(0, "127.0.0.1");
  const inFlight = fetch(`${slow.url}/slow`).then((response) => response.text());
  await new Promise((resolve) => setTimeout(resolve, 100));
  const closed = slow.close(5000);
  await new Promise((resolve) => setTimeout(resolve, 50));
  release();
  expect(await inFlight).toBe("finished");
  await closed;
  await expect(fetch(`${slow.url}/again`)).rejects.toThrow();
});

describe("a binary request body that does not decode is InvalidArgument on every protocol", () => {
  const CHECK_PATH = "/grpc.health.v1.Health/Check";
  // HealthCheckRequest field 1 (service, a string), wire type 2: invalid UTF-8, then a length
  // that runs past the end of the message.
  const undecodable = {
    "invalid UTF-8": Buffer.from([0x0a, 0x02, 0xff, 0xfe]),
    "a truncated length": Buffer.from([0x0a, 0x05, 0x61]),
  };
  const valid = Buffer.concat([Buffer.from([0x0a, 16]), Buffer.from("rgrid.v1.Example")]);

  /** A 5-byte-prefixed gRPC / gRPC-Web message. */
  const envelope = (message: Buffer, flags = 0) => {
    const header = Buffer.alloc(5);
    header.writeUInt8(flags, 0);
    header.writeUInt32BE(message.length, 1);
    return Buffer.concat([header, message]);
  };

  interface H2Answer {
    headers: http2.IncomingHttpHeaders;
    trailers: http2.IncomingHttpHeaders;
    body: Buffer;
  }
  async function postOverH2c(headers: http2.OutgoingHttpHeaders, body: Buffer): Promise<H2Answer> {
    const session = http2.connect(server.url);
    try {
      return await new Promise<H2Answer>((resolve, reject) => {
        const stream = session.request({ ":method": "POST", ":path": CHECK_PATH, ...headers });
        const answer: H2Answer = { headers: {}, trailers: {}, body: Buffer.alloc(0) };
        stream.on("response", (received) => (answer.headers = received));
        stream.on("trailers", (received) => (answer.trailers = received));
        stream.on("data", (chunk: Buffer) => (answer.body = Buffer.concat([answer.body, chunk])));
        stream.on("end", () => resolve(answer));
        stream.on("error", reject);
        stream.end(body);
      });
    } finally {
      session.close();
    }
  }

  const postOverHttp1 = (contentType: string, body: Buffer) =>
    fetch(`${server.url}${CHECK_PATH}`, { method: "POST", headers: { "content-type": contentType }, body });

  /** gRPC puts the status in the trailers, or in the headers of a trailers-only answer. */
  const grpcStatusOf = (answer: H2Answer) => answer.trailers["grpc-status"] ?? answer.headers["grpc-status"];

  /** The trailer frame (flag 0x80) at the end of a gRPC-Web body, as header lines. */
  function grpcWebTrailer(body: Buffer): Record<string, string> {
    let offset = 0;
    while (offset + 5 <= body.length) {
      const flags = body.readUInt8(offset);
      const length = body.readUInt32BE(offset + 1);
      const data = body.subarray(offset + 5, offset + 5 + length);
      if ((flags & 0x80) !== 0) {
        const lines = data.toString("latin1").split("\r\n").filter((line) => line.length > 0);
        return Object.fromEntries(lines.map((line) => line.split(/:\s*/, 2) as [string, string]));
      }
      offset += 5 + length;
    }
    throw new Error("no trailer frame in the gRPC-Web body");
  }

  describe.each(Object.entries(undecodable))("with %s", (_name, message) => {
    test("Connect over HTTP/1.1: HTTP 400 and code invalid_argument", async () => {
      const response = await postOverHttp1("application/proto", message);
      expect(response.status).toBe(400);
      expect(await response.json()).toMatchObject({ code: "invalid_argument" });
    });

    test("Connect over h2c: HTTP 400 and code invalid_argument", async () => {
      const answer = await postOverH2c({ "content-type": "application/proto" }, message);
      expect(answer.headers[":status"]).toBe(400);
      expect(JSON.parse(answer.body.toString("utf8"))).toMatchObject({ code: "invalid_argument" });
    });

    test("gRPC over h2c: grpc-status 3", async () => {
      const answer = await postOverH2c({ "content-type": "application/grpc", te: "trailers" }, envelope(message));
      expect(grpcStatusOf(answer)).toBe("3");
    });

    test("gRPC over h2c with a gzip-compressed message: grpc-status 3", async () => {
      const answer = await postOverH2c(
        { "content-type": "application/grpc", te: "trailers", "grpc-encoding": "gzip" },
        envelope(gzipSync(message), 1),
      );
      expect(grpcStatusOf(answer)).toBe("3");
    });

    test("gRPC-Web over HTTP/1.1: grpc-status 3 in the trailer frame", async () => {
      const response = await postOverHttp1("application/grpc-web+proto", envelope(message));
      expect(response.status).toBe(200);
      const trailer = grpcWebTrailer(Buffer.from(await response.arrayBuffer()));
      expect(trailer["grpc-status"]).toBe("3");
    });
  });

  test("a valid hand-encoded request still succeeds over Connect and gRPC", async () => {
    const connect = await postOverHttp1("application/proto", valid);
    expect(connect.status).toBe(200);
    const grpc = await postOverH2c(
      { "content-type": "application/grpc", te: "trailers", "grpc-encoding": "gzip" },
      envelope(gzipSync(valid), 1),
    );
    expect(grpcStatusOf(grpc)).toBe("0");
  });

  test("an oversized binary request stays ResourceExhausted, not InvalidArgument", async () => {
    const oversized = Buffer.concat([Buffer.from([0x0a, 0x88, 0x10]), Buffer.alloc(2056, 0xff)]);
    const answer = await postOverH2c({ "content-type": "application/grpc", te: "trailers" }, envelope(oversized));
    expect(grpcStatusOf(answer)).toBe(String(Code.ResourceExhausted));
  });
});

test("without a fallback, a path that is no RPC is 404", async () => {
  const bare = await createConnectServer({
    routes: (router) => registerHealth(router, [], () => true),
    readMaxBytes: 1024,
    logger: silentLogger,
  }).listen(0, "127.0.0.1");
  try {
    expect((await fetch(`${bare.url}/nothing/here`)).status).toBe(404);
  } finally {
    await bare.close(1000);
  }
});

test("an HTTP/2 connection that carries nothing for idleSessionMillis is ended by the server", async () => {
  const idle = await createConnectServer({
    routes: (router) => registerHealth(router, [], () => true),
    readMaxBytes: 1024,
    idleSessionMillis: 300,
    logger: silentLogger,
  }).listen(0, "127.0.0.1");
  const session = http2.connect(idle.url);
  /** One gRPC health check on this very session; resolves with its grpc-status. */
  const checkOnSession = () =>
    new Promise<string>((resolve, reject) => {
      const stream = session.request({ ":method": "POST", ":path": "/grpc.health.v1.Health/Check", "content-type": "application/grpc", te: "trailers" });
      let status = "none";
      stream.on("trailers", (trailers) => (status = String(trailers["grpc-status"])));
      stream.on("error", reject);
      stream.on("close", () => resolve(status));
      stream.resume();
      stream.end(Buffer.alloc(5)); // one empty, uncompressed message
    });
  try {
    let goneAway = false;
    const goaway = new Promise<string>((resolve) =>
      session.once("goaway", () => {
        goneAway = true;
        resolve("goaway");
      }),
    );
    // Traffic every 100 ms for three idle periods: a session in use is never ended.
    for (let sent = 0; sent < 9; sent++) {
      expect(await checkOnSession()).toBe("0");
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(goneAway).toBe(false);
    // Then silence: ended within a few idle periods.
    const timeout = new Promise<string>((resolve) => setTimeout(() => resolve("still open"), 3000));
    await expect(Promise.race([goaway, timeout])).resolves.toBe("goaway");
  } finally {
    session.destroy();
    await idle.close(1000);
  }
});

test("an HTTP/1.1 connection kept alive between requests is ended by the server after idleSessionMillis, not Node's 5 s", async () => {
  /** Serves with `idleSessionMillis`; one Connect call on a raw keep-alive connection, then how long the server kept it, idle. */
  const idleLifeOf = async (idleSessionMillis: number, giveUpMillis: number): Promise<number | "still open"> => {
    const server = await createConnectServer({
      routes: (router) => registerHealth(router, [], () => true),
      readMaxBytes: 1024,
      idleSessionMillis,
      logger: silentLogger,
    }).listen(0, "127.0.0.1");
    const socket = net.connect(server.port, "127.0.0.1");
    try {
      const answered = new Promise<void>((resolve, reject) => {
        let received = "";
        socket.on("data", (chunk: Buffer) => {
          received += chunk.toString("latin1");
          if (/^HTTP\/1\.1 200 [^]*\r\n\r\n\{.*\}$/.test(received)) resolve();
        });
        socket.once("error", reject);
      });
      socket.write("POST /grpc.health.v1.Health/Check HTTP/1.1\r\nHost: rgrid\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}");
      await answered;
      const idleFrom = performance.now();
      return await new Promise((resolve) => {
        const giveUp = setTimeout(() => resolve("still open"), giveUpMillis);
        socket.once("close", () => {
          clearTimeout(giveUp);
          resolve(performance.now() - idleFrom);
        });
      });
    } finally {
      socket.destroy();
      await server.close(1000);
    }
  };
  expect(await idleLifeOf(300, 3000)).toBeGreaterThanOrEqual(250);
  // Open past Node's default of 5 s, which Node's own agents share: clients close theirs first.
  expect(await idleLifeOf(60_000, 5500)).toBe("still open");
});
