import { silentLogger } from "@rgrid/common";
import type { RunningServer } from "@rgrid/common";
import { GRPC_OVER_H2C, REFLECT_PROTOCOLS, bufCurl, listedLines } from "../../../test/support/buf-curl";
import { issueApiKey } from "../src/accounts";
import { openDatabase } from "../src/db/orm";
import type { Database } from "../src/db/orm";
import { createExecutionServer } from "../src/server";
import { FakeStorage } from "./fake-storage";
import { TEST_SERVICE_SETTINGS, sha256Of } from "./harness";

// Over the wire with the real `buf curl` and no copy of the protos: everything it knows of the
// API it learns from the server's reflection service, in both reflection versions.

let db: Database;
let server: RunningServer;
let apiKey: string;

beforeAll(async () => {
  db = await openDatabase({ dialect: "sqlite", file: ":memory:" });
  await db.migrate();
  apiKey = (await issueApiKey(db.fork(), "alice", new Date())).key;
  server = await createExecutionServer({ db, storage: new FakeStorage().client(), ...TEST_SERVICE_SETTINGS, logger: silentLogger }).listen(0, "127.0.0.1");
});
afterAll(async () => {
  await server.close(1000);
  await db.close();
});

const authorization = () => `Authorization: Bearer ${apiKey}`;

describe.each(REFLECT_PROTOCOLS)("buf curl with --reflect-protocol %s", (reflectProtocol) => {
  const curl = (...args: string[]) => bufCurl([...GRPC_OVER_H2C, "--reflect-protocol", reflectProtocol, ...args]);

  test("lists every method served, without credentials", async () => {
    const listed = await curl("--list-methods", server.url);
    expect(listed).toMatchObject({ exitCode: 0, stderr: "" });
    const methods = listedLines(listed);
    expect(methods).toEqual(
      expect.arrayContaining([
        "rgrid.v1.ExecutionService/CreateExecution",
        "rgrid.v1.ExecutionService/FollowLogs",
        "rgrid.v1.RunnerService/ClaimExecution",
        "grpc.health.v1.Health/Check",
        "grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
        "grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
      ]),
    );
  });

  test("calls ExecutionService with an API key, encoding and decoding by reflection alone", async () => {
    const request = {
      script: { name: "process.py", sizeBytes: "12", sha256: sha256Of("print('hi')\n") },
      runtime: "python:3.11",
      timeoutSeconds: 60,
      requestId: `reflection-${reflectProtocol}`,
    };
    const created = await curl("-H", authorization(), "-d", JSON.stringify(request), `${server.url}/rgrid.v1.ExecutionService/CreateExecution`);
    expect(created).toMatchObject({ exitCode: 0, stderr: "" });
    const id = (JSON.parse(created.stdout) as { execution: { id: string } }).execution.id;

    const read = await curl("-H", authorization(), "-d", JSON.stringify({ executionId: id }), `${server.url}/rgrid.v1.ExecutionService/GetExecution`);
    expect(read).toMatchObject({ exitCode: 0, stderr: "" });
    expect(JSON.parse(read.stdout)).toMatchObject({ execution: { id, status: "EXECUTION_STATUS_UPLOADING", script: { name: "process.py", sizeBytes: "12" } } });
  });

  test("reflection needs no credentials, and the call it encodes still does", async () => {
    const refused = await curl("-d", "{}", `${server.url}/rgrid.v1.ExecutionService/ListExecutions`);
    expect(refused.exitCode).not.toBe(0);
    // The refusal is the call's, by the API key check: reflection has already described it.
    expect(JSON.parse(refused.stderr)).toMatchObject({ code: "unauthenticated", message: expect.stringContaining("API key") });
  });

  test("credentials sent to the reflection service as well do no harm", async () => {
    const listed = await curl("-H", authorization(), "--reflect-header", "*", "-d", "{}", `${server.url}/rgrid.v1.ExecutionService/ListExecutions`);
    expect(listed).toMatchObject({ exitCode: 0, stderr: "" });
  });
});

test("a call over the Connect protocol is described by reflection too", async () => {
  const listed = await bufCurl(["--protocol", "connect", "--http2-prior-knowledge", "-d", "{}", `${server.url}/grpc.health.v1.Health/Check`]);
  expect(listed).toMatchObject({ exitCode: 0, stderr: "" });
  expect(JSON.parse(listed.stdout)).toEqual({ status: "SERVING" });
});
