import type { Interceptor } from "@connectrpc/connect";
import { Health, reflectionV1, reflectionV1alpha } from "@rgrid/proto";
import { GRPC_OVER_H2C, REFLECT_PROTOCOLS, bufCurl, listedLines } from "../../../test/support/buf-curl";
import { FRAME_ROUTES, frameCases, methodsOf, openSession, sendFrame } from "../../../test/support/hostile-frames";
import type { FrameTarget } from "../../../test/support/hostile-frames";
import { registerHealth } from "../src/health";
import { silentLogger } from "../src/logger";
import { registerReflection } from "../src/reflection";
import { createConnectServer } from "../src/server";
import type { RunningServer } from "../src/server";

// Reflection through the whole server stack every service uses (the request guard, CORS, the
// error bounds), over the wire: the real `buf curl` in both reflection versions, and malformed
// request streams sent as raw bytes.

let server: RunningServer;
let target: FrameTarget;
/** The reflection services asked since the test began, in order. */
const reflectionAsked: string[] = [];

const recordReflection: Interceptor = (next) => (req) => {
  if (req.service.typeName.startsWith("grpc.reflection.")) {
    reflectionAsked.push(req.service.typeName);
  }
  return next(req);
};

beforeAll(async () => {
  server = await createConnectServer({
    routes: (router) => {
      registerHealth(router, []);
      registerReflection(router, [Health]);
    },
    interceptors: [recordReflection],
    readMaxBytes: 64 * 1024,
    corsOrigins: ["http://app.test"],
    logger: silentLogger,
  }).listen(0, "127.0.0.1");
  target = { baseUrl: server.url, session: openSession(server.url) };
});
afterAll(async () => {
  target.session.close();
  await server.close(1000);
});
beforeEach(() => {
  reflectionAsked.length = 0;
});

const SERVICE_OF_PROTOCOL = {
  "grpc-v1": reflectionV1.ServerReflection.typeName,
  "grpc-v1alpha": reflectionV1alpha.ServerReflection.typeName,
} as const;

test.each(REFLECT_PROTOCOLS)("buf curl lists the services and calls one by %s reflection alone", async (reflectProtocol) => {
  const curl = (...args: string[]) => bufCurl([...GRPC_OVER_H2C, "--reflect-protocol", reflectProtocol, ...args]);

  const listed = await curl("--list-services", server.url);
  expect(listed).toMatchObject({ exitCode: 0, stderr: "" });
  expect(listedLines(listed)).toEqual(["grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"]);

  const checked = await curl("-d", '{"service": ""}', `${server.url}/grpc.health.v1.Health/Check`);
  expect(checked).toMatchObject({ exitCode: 0, stderr: "" });
  expect(JSON.parse(checked.stdout)).toEqual({ status: "SERVING" });

  expect(reflectionAsked.length).toBeGreaterThan(0);
  expect(new Set(reflectionAsked)).toEqual(new Set([SERVICE_OF_PROTOCOL[reflectProtocol]]));
});

test("buf curl picks v1 on its own", async () => {
  const listed = await bufCurl(["--list-methods", server.url]);
  expect(listed).toMatchObject({ exitCode: 0, stderr: "" });
  expect(listedLines(listed)).toContain("grpc.health.v1.Health/Check");
  expect(new Set(reflectionAsked)).toEqual(new Set([reflectionV1.ServerReflection.typeName]));
});

// Malformed whatever the RPC; other cases of the unary suites ("two messages", "no message") are
// proper request streams for a bidi RPC. Bidi streaming needs HTTP/2: connect-es answers
// HTTP/1.1 with 505 before reading anything.
const MALFORMED_STREAMS = ["compressed flag, no compression named", "envelope cut short", "undecodable message", "gzip flag on data that is not gzip", "gzip of an undecodable message"];

test("a request stream that cannot be read is InvalidArgument, not a fault of the server", async () => {
  const failures: string[] = [];
  for (const { path, method } of methodsOf([reflectionV1.ServerReflection, reflectionV1alpha.ServerReflection])) {
    for (const route of FRAME_ROUTES.filter((candidate) => candidate.http === "2")) {
      for (const { kind, request } of frameCases(route.protocol, method).filter((candidate) => MALFORMED_STREAMS.includes(candidate.kind))) {
        const answer = await sendFrame(target, route, path, method, request);
        if (answer.code !== "InvalidArgument") {
          failures.push(`${path} ${route.protocol} ${kind}: ${answer.code} ${answer.message}`);
        }
      }
    }
  }
  expect(failures).toEqual([]);
});
