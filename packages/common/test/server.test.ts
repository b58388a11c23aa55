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
