// Malformed framings against the real processes, as raw bytes: every RPC of both services (and
// their health checks), over gRPC, gRPC-Web and Connect (binary and JSON, unary and streaming,
// and GET for the RPCs without side effects), over HTTP/1.1 and HTTP/2. Every answer must be a client error — never Internal or Unknown —
// with a bounded message, a request over the size limit must be refused with ResourceExhausted
// on HTTP/2 as on HTTP/1.1 and leave the connection usable, and both services must stay up.
import { create, toBinary, toJson } from "@bufbuild/protobuf";
import type { DescMethod, Message, MessageInitShape } from "@bufbuild/protobuf";
import type { GenMessage } from "@bufbuild/protobuf/codegenv2";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { MAX_ERROR_MESSAGE_CHARS } from "@rgrid/common";
import {
  CreateExecutionRequestSchema,
  ExecutionService,
  GetExecutionRequestSchema,
  Health,
  HealthCheckRequestSchema,
  HealthCheckResponse_ServingStatus,
  ObjectKind,
  RunnerService,
  StatObjectsRequestSchema,
  StorageService,
} from "@rgrid/proto";
import { startTestGrid } from "../support/grid";
import type { TestGrid } from "../support/grid";
import { FRAME_ROUTES, UNDECODABLE, envelope, frameCases, getCases, isEnveloped, methodsOf, openSession, protocolHeaders, sendFrame } from "../support/hostile-frames";
import type { FrameProtocol, FrameTarget, RawAnswer } from "../support/hostile-frames";

jest.setTimeout(120_000);

let grid: TestGrid;
let execution: FrameTarget;
let storage: FrameTarget;

beforeAll(async () => {
  grid = await startTestGrid({ runners: 0 });
  execution = { baseUrl: grid.executionUrl, session: openSession(grid.executionUrl) };
  storage = { baseUrl: grid.storageUrl, session: openSession(grid.storageUrl) };
});

afterAll(async () => {
  execution?.session.close();
  storage?.session.close();
  await grid?.shutdown();
});

const bearer = (token: string) => `Bearer ${token}`;

/** Each service's RPCs with the credential that lets a well-formed request in. */
function targets() {
  return [
    { name: "execution", target: execution, methods: methodsOf([ExecutionService]), credential: bearer(grid.apiKey) },
    { name: "execution", target: execution, methods: methodsOf([RunnerService]), credential: bearer(grid.runnerToken) },
    { name: "execution", target: execution, methods: methodsOf([Health]), credential: undefined },
    { name: "storage", target: storage, methods: methodsOf([StorageService, Health]), credential: bearer(grid.internalToken) },
  ];
}

interface Outcome {
  sent: string;
  expected: readonly string[];
  answer: RawAnswer;
}

const summary = (outcomes: readonly Outcome[]) =>
  outcomes.filter((o) => !o.expected.includes(o.answer.code)).map((o) => `${o.sent}: got ${o.answer.code} (${o.answer.message.slice(0, 120)})`);

async function expectServicesUp(): Promise<void> {
  await expect(Promise.race([grid.unexpectedExit, Promise.resolve("all running")])).resolves.toBe("all running");
  for (const url of [grid.executionUrl, grid.storageUrl]) {
    const health = createClient(Health, createGrpcTransport({ baseUrl: url }));
    expect((await health.check({})).status).toBe(HealthCheckResponse_ServingStatus.SERVING);
  }
}

test("malformed framings are InvalidArgument on every RPC, protocol and HTTP version, with or without credentials", async () => {
  const outcomes: Outcome[] = [];
  for (const { name, target, methods, credential } of targets()) {
    for (const { path, method } of methods) {
      for (const route of FRAME_ROUTES) {
        // With the right credential the framing is all that is wrong. Without one, a unary RPC is
        // still refused for its body (read before anything else); a streaming RPC may be
        // refused for the missing credential first.
        const anonymousExpected = method.methodKind === "unary" || credential === undefined ? ["InvalidArgument"] : ["InvalidArgument", "Unauthenticated"];
        for (const [who, authorization, expected] of [
          ["credential", credential, ["InvalidArgument"]],
          ["anonymous", undefined, anonymousExpected],
        ] as const) {
          if (who === "credential" && credential === undefined) continue;
          const gets = route.protocol === "connect-binary" ? getCases(method, authorization) : [];
          for (const hostile of [...frameCases(route.protocol, method, authorization), ...gets]) {
            const answer = await sendFrame(target, route, path, method, hostile.request);
            outcomes.push({ sent: `${name} ${path} ${route.protocol}/HTTP ${route.http} ${who} [${hostile.kind}]`, expected, answer });
          }
        }
      }
    }
  }
  const codes: Record<string, number> = {};
  for (const outcome of outcomes) codes[outcome.answer.code] = (codes[outcome.answer.code] ?? 0) + 1;
  console.log(`hostile frames: ${outcomes.length} requests, codes ${JSON.stringify(codes)}`);

  await expectServicesUp();
  expect(outcomes.length).toBeGreaterThan(1000);
  expect(codes.Internal ?? 0).toBe(0);
  expect(codes.Unknown ?? 0).toBe(0);
  expect(summary(outcomes)).toEqual([]);
});

/** A request message in both encodings: protobuf binary, and the proto3 JSON of it. */
function encoded<T extends Message>(schema: GenMessage<T>, init: MessageInitShape<GenMessage<T>>): { message: Buffer; json: unknown } {
  const message = create(schema, init);
  return { message: Buffer.from(toBinary(schema, message)), json: toJson(schema, message) };
}

function bodyFor(protocol: FrameProtocol, method: DescMethod, message: Buffer, json: unknown): Buffer {
  const payload = protocol === "connect-json" ? Buffer.from(JSON.stringify(json)) : message;
  return isEnveloped(protocol, method) ? envelope(payload) : payload;
}

const HEALTH_PATH = "/grpc.health.v1.Health/Check";

test("error messages quote a bounded prefix of a huge input, and reach the client on every protocol", async () => {
  const huge = "s".repeat(1024 * 1024);
  const longId = `exec_${"a".repeat(70_000)}`;
  const longKey = `${"K".repeat(70_000)}-`;
  const script = { name: "main.py", sizeBytes: 1n, sha256: "0".repeat(64) };
  const cases = [
    { target: execution, method: Health.method.check, path: HEALTH_PATH, credential: undefined, ...encoded(HealthCheckRequestSchema, { service: huge }), expected: "NotFound" },
    { target: storage, method: Health.method.check, path: HEALTH_PATH, credential: undefined, ...encoded(HealthCheckRequestSchema, { service: huge }), expected: "NotFound" },
    {
      target: execution,
      method: ExecutionService.method.getExecution,
      path: "/rgrid.v1.ExecutionService/GetExecution",
      credential: bearer(grid.apiKey),
      ...encoded(GetExecutionRequestSchema, { executionId: longId }),
      expected: "InvalidArgument",
    },
    {
      // The env key (not a valid name for its "-") is quoted in the refusal.
      target: execution,
      method: ExecutionService.method.createExecution,
      path: "/rgrid.v1.ExecutionService/CreateExecution",
      credential: bearer(grid.apiKey),
      ...encoded(CreateExecutionRequestSchema, { script, runtime: "python", env: { [longKey]: "v" }, requestId: "frames-1" }),
      expected: "InvalidArgument",
    },
    {
      target: storage,
      method: StorageService.method.statObjects,
      path: "/rgrid.v1.StorageService/StatObjects",
      credential: bearer(grid.internalToken),
      ...encoded(StatObjectsRequestSchema, { executionId: `exec_${"0".repeat(32)}`, refs: [{ kind: ObjectKind.INPUT, name: `../${longKey}` }] }),
      expected: "InvalidArgument",
    },
    {
      // A value of the wrong JSON type, which the JSON decoder's own message quotes whole.
      target: execution,
      method: ExecutionService.method.getExecution,
      path: "/rgrid.v1.ExecutionService/GetExecution",
      credential: bearer(grid.apiKey),
      message: UNDECODABLE,
      json: { executionId: [longId] },
      expected: "InvalidArgument",
    },
  ];
  const outcomes: Outcome[] = [];
  for (const hostile of cases) {
    for (const route of FRAME_ROUTES) {
      const body = bodyFor(route.protocol, hostile.method, hostile.message, hostile.json);
      const request = { headers: protocolHeaders(route.protocol, hostile.method, hostile.credential), body };
      const answer = await sendFrame(hostile.target, route, hostile.path, hostile.method, request);
      outcomes.push({ sent: `${hostile.path} ${route.protocol}/HTTP ${route.http}`, expected: [hostile.expected], answer });
    }
  }
  expect(summary(outcomes)).toEqual([]);
  const unbounded = outcomes.filter((o) => o.answer.message.length > MAX_ERROR_MESSAGE_CHARS + 64);
  expect(unbounded.map((o) => `${o.sent}: ${o.answer.message.length} characters`)).toEqual([]);
  // The cut says so.
  expect(outcomes.filter((o) => o.sent.includes("Health")).every((o) => o.answer.message.includes("1048576 characters"))).toBe(true);
  await expectServicesUp();
});

test("a request over the size limit is ResourceExhausted on HTTP/2 as on HTTP/1.1, and the connection serves the next one", async () => {
  const health = Health.method.check;
  const oversized = encoded(HealthCheckRequestSchema, { service: "x".repeat(21 * 1024 * 1024) });
  const valid = encoded(HealthCheckRequestSchema, {});
  const outcomes: Outcome[] = [];
  for (const target of [execution, storage]) {
    for (const route of FRAME_ROUTES) {
      const headers = protocolHeaders(route.protocol, health);
      const refused = await sendFrame(target, route, HEALTH_PATH, health, { headers, body: bodyFor(route.protocol, health, oversized.message, oversized.json) });
      outcomes.push({ sent: `${target.baseUrl} ${route.protocol}/HTTP ${route.http} 21 MiB`, expected: ["ResourceExhausted"], answer: refused });
      const next = await sendFrame(target, route, HEALTH_PATH, health, { headers, body: bodyFor(route.protocol, health, valid.message, valid.json) });
      outcomes.push({ sent: `${target.baseUrl} ${route.protocol}/HTTP ${route.http} the request after`, expected: ["OK"], answer: next });
    }
  }
  expect(summary(outcomes)).toEqual([]);
  const refusals = outcomes.filter((o) => o.answer.code === "ResourceExhausted");
  // Refused for the configured limit, whose size the message names.
  expect(refusals.filter((o) => !o.answer.message.includes("4194304")).map((o) => `${o.sent}: ${o.answer.message}`)).toEqual([]);
  // The HTTP/2 sessions the oversized requests went over are the ones still in use.
  expect(execution.session.closed || execution.session.destroyed).toBe(false);
  expect(storage.session.closed || storage.session.destroyed).toBe(false);
  await expectServicesUp();
});
