import * as net from "node:net";
import { Code, createClient } from "@connectrpc/connect";
import type { Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { Health } from "@rgrid/proto";
import { registerHealth } from "../src/health";
import { createJsonLogger } from "../src/json-logger";
import { createLogger } from "../src/logger";
import type { Logger } from "../src/logger";
import { Registry } from "../src/metrics";
import { rpcLinesFor } from "../src/rpc-observer";
import type { RpcLines } from "../src/rpc-observer";
import { createConnectServer } from "../src/server";
import type { RunningServer } from "../src/server";

// Over the wire: every RPC gets one log line with its request id, name, code and duration, the
// id travels back in a header, and a client cannot forge log lines through the id or its
// request. Each server has a registry of its own, as in production.

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

const servers: RunningServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => server.close(1000)));
});

/** A server answering the health check; `failing` makes the check throw an unexpected error. */
async function serve(logger: Logger, options: { failing?: boolean; rpcLines?: RpcLines } = {}): Promise<RunningServer> {
  const server = await createConnectServer({
    routes: (router) =>
      registerHealth(router, ["rgrid.v1.Example"], () => {
        if (options.failing === true) {
          throw new Error("database gone");
        }
        return true;
      }),
    readMaxBytes: 64 * 1024,
    metrics: { registry: new Registry() },
    logger,
    rpcLines: options.rpcLines,
  }).listen(0, "127.0.0.1");
  servers.push(server);
  return server;
}

function jsonLogs(): { logger: Logger; records: () => Array<Record<string, unknown>> } {
  const lines: string[] = [];
  const logger = createJsonLogger("test", { write: (chunk) => lines.push(...chunk.split("\n").filter((line) => line !== "")) });
  return { logger, records: () => lines.map((line) => JSON.parse(line) as Record<string, unknown>) };
}

const rpcRecords = (records: Array<Record<string, unknown>>) => records.filter((record) => record["component"] === "test/rpc");

const transports: Record<string, (url: string) => Transport> = {
  "Connect over HTTP/1.1": (url) => createConnectTransport({ baseUrl: url, httpVersion: "1.1" }),
  "gRPC over h2c": (url) => createGrpcTransport({ baseUrl: url }),
};

describe.each(Object.entries(transports))("%s", (_name, transportTo) => {
  test("the client's request id comes back and is on the RPC's JSON log line with its name, code and duration", async () => {
    const logs = jsonLogs();
    const server = await serve(logs.logger);
    let echoed: string | null = null;
    await createClient(Health, transportTo(server.url)).check(
      {},
      { headers: { "x-request-id": "req-7f3a:client/1" }, onHeader: (header) => (echoed = header.get("x-request-id")) },
    );
    expect(echoed).toBe("req-7f3a:client/1");
    const [line] = rpcRecords(logs.records());
    expect(line).toMatchObject({
      level: "info",
      msg: "rpc",
      requestId: "req-7f3a:client/1",
      rpc: "grpc.health.v1.Health/Check",
      code: "ok",
    });
    expect(typeof line?.["durationMs"]).toBe("number");
  });

  test("a refused call is logged with its code and message, and its error carries the request id", async () => {
    const logs = jsonLogs();
    const server = await serve(logs.logger);
    const error = await createClient(Health, transportTo(server.url))
      .check({ service: "nope.v1.Missing" }, { headers: { "x-request-id": "refused-1" } })
      .then(
        () => undefined,
        (caught: unknown) => caught as { code: Code; metadata: Headers },
      );
    expect(error?.code).toBe(Code.NotFound);
    expect(error?.metadata.get("x-request-id")).toBe("refused-1");
    expect(rpcRecords(logs.records())).toEqual([
      expect.objectContaining({ level: "info", requestId: "refused-1", code: "not_found", message: 'unknown service "nope.v1.Missing"' }),
    ]);
  });

  test("an unexpected error is Internal to the client, a warning in the log, and keeps the request id", async () => {
    const logs = jsonLogs();
    const server = await serve(logs.logger, { failing: true });
    const error = await createClient(Health, transportTo(server.url))
      .check({}, { headers: { "x-request-id": "broken-1" } })
      .then(
        () => undefined,
        (caught: unknown) => caught as { code: Code; rawMessage: string; metadata: Headers },
      );
    expect(error?.code).toBe(Code.Internal);
    expect(error?.rawMessage).toBe("internal error");
    expect(error?.metadata.get("x-request-id")).toBe("broken-1");
    expect(rpcRecords(logs.records())).toEqual([expect.objectContaining({ level: "warn", requestId: "broken-1", code: "internal" })]);
  });

  test("without a sane request id the call gets a fresh one, different every time", async () => {
    const logs = jsonLogs();
    const server = await serve(logs.logger);
    const health = createClient(Health, transportTo(server.url));
    const echoed: Array<string | null> = [];
    for (const sent of [undefined, "", "x".repeat(129), "two words", "tab\there", "ünïcode"]) {
      await health.check({}, { headers: sent === undefined ? {} : { "x-request-id": sent }, onHeader: (header) => echoed.push(header.get("x-request-id")) });
    }
    expect(new Set(echoed).size).toBe(6);
    for (const id of echoed) {
      expect(id).toMatch(UUID);
    }
    expect(rpcRecords(logs.records()).map((record) => record["requestId"])).toEqual(echoed);
  });
});

test("hostile request ids and request fields cannot add or forge lines in the readable format", async () => {
  const lines: string[] = [];
  const server = await serve(createLogger("test", (line) => lines.push(line)));
  const forged = "2026-01-01T00:00:00.000Z INFO  test/rpc: rpc requestId=forged rpc=x code=ok";
  const hostileIds = [
    `a\r\n${forged}`,
    `a\n${forged}`,
    "a\u0000b",
    "a\u0001b",
    "a\u007fb",
    "a\u0085b",
    `${"y".repeat(5000)}`,
  ];
  // Raw bytes on a socket: a client library would refuse to send most of these.
  const answers = await Promise.all(hostileIds.map((id) => rawHealthCheck(server.port, id, "{}")));
  // And a field the service quotes in its error message.
  answers.push(await rawHealthCheck(server.port, "quoted-1", JSON.stringify({ service: `x\n${forged}\u2028` })));

  for (const line of lines) {
    expect(line).not.toMatch(/[\n\r\u0000-\u001f\u007f-\u009f\u2028\u2029]/);
  }
  const rpcLines = lines.filter((line) => / test\/rpc: /.test(line));
  // One line per request the server took for an RPC (some bytes are refused as malformed HTTP).
  expect(rpcLines).toHaveLength(answers.filter((answer) => answer.startsWith("HTTP/1.1 200") || answer.startsWith("HTTP/1.1 404")).length);
  expect(lines.filter((line) => line.startsWith("2026-01-01T00:00:00.000Z"))).toEqual([]);
  const ids = rpcLines.map((line) => / test\/rpc: rpc requestId=(\S+) /.exec(line)?.[1]);
  // Every hostile id was refused by the HTTP parser or replaced, except where a bare line feed
  // ended the header for the parser (the id is then "a", and the rest another header); the
  // quoted field stays inside its message's quotes.
  expect(ids.filter((id) => id !== "quoted-1" && id !== "a").every((id) => UUID.test(id ?? ""))).toBe(true);
  expect(ids).toContain("quoted-1");
  expect(rpcLines.find((line) => line.includes("requestId=quoted-1"))).toMatch(
    /rpc=grpc.health.v1.Health\/Check code=not_found durationMs=\S+ message="unknown service \\"x\\\\n2026-01-01T00:00:00.000Z INFO/,
  );
});

/** A Connect unary call written byte by byte, with `requestId` as the x-request-id header's raw value. */
function rawHealthCheck(port: number, requestId: string, body: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, "127.0.0.1");
    let answer = "";
    socket.on("data", (chunk: Buffer) => (answer += chunk.toString("latin1")));
    socket.on("error", reject);
    socket.on("close", () => resolve(answer));
    const payload = Buffer.from(body, "utf8");
    socket.write(
      Buffer.concat([
        Buffer.from(
          "POST /grpc.health.v1.Health/Check HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nConnection: close\r\n" +
            `X-Request-Id: ${requestId}\r\nContent-Length: ${payload.length}\r\n\r\n`,
          "latin1",
        ),
        payload,
      ]),
    );
  });
}

test("the readable format logs only RPCs answered with an error; JSON logs every one", async () => {
  expect(rpcLinesFor("json")).toBe("all");
  const logs = jsonLogs();
  const server = await serve(logs.logger, { rpcLines: rpcLinesFor("text") });
  const health = createClient(Health, createConnectTransport({ baseUrl: server.url, httpVersion: "1.1" }));
  await health.check({});
  await expect(health.check({ service: "rgrid.v1.Unknown" })).rejects.toMatchObject({ code: Code.NotFound });
  expect(rpcRecords(logs.records()).map((record) => record["code"])).toEqual(["not_found"]);
});
