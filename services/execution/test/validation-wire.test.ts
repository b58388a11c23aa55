import { createClient } from "@connectrpc/connect";
import type { ConnectError, Transport } from "@connectrpc/connect";
import { Code } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { bearerAuth } from "@rgrid/common";
import type { RunningServer } from "@rgrid/common";
import { create } from "@bufbuild/protobuf";
import { ExecutionService, FileInfoSchema, LogEntry_Stream, RunnerService, bufValidate } from "@rgrid/proto";
import { issueApiKey } from "../src/accounts";
import type { Database } from "../src/db/orm";
import { openDatabase } from "../src/db/orm";
import { createExecutionServer } from "../src/server";
import { expectCode } from "./expect-code";
import { FakeStorage } from "./fake-storage";
import { RUNNER_TOKEN, TEST_SERVICE_SETTINGS, executionRequest } from "./harness";

// The rules declared in execution.proto and runner.proto, enforced by the served service on
// both protocols: InvalidArgument naming the field, with a buf.validate.Violations detail.

let db: Database;
let server: RunningServer;
let apiKey: string;

beforeAll(async () => {
  db = await openDatabase({ dialect: "sqlite", file: ":memory:" });
  await db.migrate();
  apiKey = (await issueApiKey(db.fork(), "alice", new Date())).key;
  server = await createExecutionServer({ db, storage: new FakeStorage().client(), ...TEST_SERVICE_SETTINGS }).listen(0, "127.0.0.1");
});

afterAll(async () => {
  await server.close(1000);
  await db.close();
});

const PROTOCOLS = {
  "gRPC over HTTP/2": (token: string) => createGrpcTransport({ baseUrl: server.url, interceptors: [bearerAuth(token)] }),
  "Connect over HTTP/1.1": (token: string) => createConnectTransport({ baseUrl: server.url, httpVersion: "1.1", interceptors: [bearerAuth(token)] }),
} satisfies Record<string, (token: string) => Transport>;

const ruleIdsOf = (error: ConnectError) =>
  error.findDetails(bufValidate.ViolationsSchema).flatMap((detail) => detail.violations.map((violation) => violation.ruleId));

describe.each(Object.entries(PROTOCOLS))("%s", (_protocol, transport) => {
  test("an execution id is held to its rule in the proto", async () => {
    const client = createClient(ExecutionService, transport(apiKey));
    const refusal = await expectCode(
      client.getExecution({ executionId: "exec_123" }),
      Code.InvalidArgument,
      "invalid execution_id: must be exec_ followed by 32 lowercase hex characters",
    );
    expect(ruleIdsOf(refusal)).toEqual(["rgrid.execution_id"]);
  });

  test("BatchCreateExecutions holds each request to CreateExecution's rules, naming the request, and bounds the batch", async () => {
    const client = createClient(ExecutionService, transport(apiKey));
    const file = (name: string) => create(FileInfoSchema, { name, sizeBytes: 1n, sha256: "a".repeat(64) });
    const unsafe = executionRequest({ inputs: [file("../up.csv")] });
    const named = await expectCode(
      client.batchCreateExecutions({ requests: [executionRequest(), unsafe] }),
      Code.InvalidArgument,
      "invalid requests[1].inputs[0].name: must not contain empty, '.' or '..' segments",
    );
    expect(ruleIdsOf(named)).toEqual(["rgrid.relative_path"]);

    const timeout = await expectCode(client.batchCreateExecutions({ requests: [executionRequest({ timeoutSeconds: 86401 })] }), Code.InvalidArgument, "invalid requests[0].timeout_seconds");
    expect(ruleIdsOf(timeout)).toEqual(["rgrid.max_timeout"]);

    const shared = executionRequest();
    const twice = await expectCode(
      client.batchCreateExecutions({ requests: [shared, executionRequest({ requestId: shared.requestId })] }),
      Code.InvalidArgument,
      "invalid requests: each request_id may appear once",
    );
    expect(ruleIdsOf(twice)).toEqual(["requests.unique_request_id"]);

    const inputs = Array.from({ length: 400 }, (_, index) => file(`in/${index}.csv`));
    const tooManyInputs = await expectCode(
      client.batchCreateExecutions({ requests: [1, 2, 3].map(() => executionRequest({ inputs })) }),
      Code.InvalidArgument,
      "invalid requests: must declare at most 1000 input files in all (1200 declared)",
    );
    expect(ruleIdsOf(tooManyInputs)).toEqual(["rgrid.max_batch_inputs"]);
    expect(ruleIdsOf(await expectCode(client.batchCreateExecutions({ requests: [] }), Code.InvalidArgument))).toEqual(["repeated.min_items"]);
  });

  test("BatchConfirmUploads takes 1 to 100 well-formed execution ids, each once", async () => {
    const client = createClient(ExecutionService, transport(apiKey));
    const id = `exec_${"0".repeat(32)}`;
    const twice = await expectCode(client.batchConfirmUploads({ executionIds: [id, id] }), Code.InvalidArgument, "invalid execution_ids");
    expect(ruleIdsOf(twice)).toEqual(["repeated.unique"]);
    const malformed = await expectCode(
      client.batchConfirmUploads({ executionIds: [id, "exec_1"] }),
      Code.InvalidArgument,
      "invalid execution_ids[1]: must be exec_ followed by 32 lowercase hex characters",
    );
    expect(ruleIdsOf(malformed)).toEqual(["rgrid.execution_id"]);
    expect(ruleIdsOf(await expectCode(client.batchConfirmUploads({ executionIds: [] }), Code.InvalidArgument))).toEqual(["repeated.min_items"]);
  });

  test("a request_id may not take the prefixes of the service's own retries", async () => {
    const client = createClient(ExecutionService, transport(apiKey));
    const refusal = await expectCode(
      client.createExecution(executionRequest({ requestId: "auto:exec_0" })),
      Code.InvalidArgument,
      "invalid request_id: must not start with auto:, batch: or server:",
    );
    expect(ruleIdsOf(refusal)).toEqual(["rgrid.client_request_id"]);
  });

  test("a runner's report is held to runner.proto", async () => {
    const runner = createClient(RunnerService, transport(RUNNER_TOKEN));
    const { runnerId } = await runner.registerRunner({ name: "wire", runtimes: ["python"] });
    const refusal = await expectCode(
      runner.appendLogs({ runnerId, executionId: `exec_${"0".repeat(32)}`, entries: [{ sequence: 1n, stream: LogEntry_Stream.UNSPECIFIED }] }),
      Code.InvalidArgument,
      "invalid entries[0].stream: must not be in list [0]; expected one of STREAM_STDOUT, STREAM_STDERR, STREAM_SYSTEM",
    );
    expect(ruleIdsOf(refusal)).toEqual(["enum.not_in"]);
  });

  test("the configured maximum timeout, kept in code, is refused the same way", async () => {
    const client = createClient(ExecutionService, transport(apiKey));
    const refusal = await expectCode(
      client.createExecution(executionRequest({ timeoutSeconds: TEST_SERVICE_SETTINGS.maxTimeoutSeconds + 1 })),
      Code.InvalidArgument,
      `invalid timeout_seconds: must be from 0 (the default) to ${TEST_SERVICE_SETTINGS.maxTimeoutSeconds}`,
    );
    expect(ruleIdsOf(refusal)).toEqual(["rgrid.max_timeout"]);
  });

  test("a caller without a credential learns nothing about the request's validity", async () => {
    const client = createClient(ExecutionService, transport("rgrid_not-a-key"));
    await expectCode(client.getExecution({ executionId: "exec_123" }), Code.Unauthenticated);
  });
});
