import { Code } from "@connectrpc/connect";
import { create } from "@bufbuild/protobuf";
import { FileInfoSchema, LogEntry_Stream } from "@rgrid/proto";
import type { ExecutionStatus } from "@rgrid/proto";
import type { CreateExecutionRequest } from "@rgrid/proto";
import { expectCode } from "./expect-code";
import { registeredRunner } from "./flows";
import { executionRequest, sha256Of, startHarness } from "./harness";
import type { Harness } from "./harness";

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h.close();
});

const file = (name: string, sizeBytes = 1n, sha256 = sha256Of(name)) => create(FileInfoSchema, { name, sizeBytes, sha256 });

const createRows: Array<[string, Partial<Omit<CreateExecutionRequest, "$typeName">>]> = [
  ["script", { script: undefined }],
  ["script.name", { script: file("../escape.py") }],
  ["script.name", { script: file("/abs.py") }],
  ["script.name", { script: file("a\u0000b.py") }],
  ["script.size_bytes", { script: file("ok.py", -1n) }],
  ["script.sha256", { script: file("ok.py", 1n, "ABC") }],
  ["runtime", { runtime: "" }],
  ["runtime", { runtime: "Python" }],
  ["runtime", { runtime: "python:3.11:x" }],
  ["args", { args: Array.from({ length: 1001 }, () => "a") }],
  ["args[0]", { args: ["x".repeat(64 * 1024 + 1)] }],
  ['env["1BAD"]', { env: { "1BAD": "x" } }],
  ['env["A-B"]', { env: { "A-B": "x" } }],
  ["env", { env: Object.fromEntries(Array.from({ length: 201 }, (_, i) => [`K${i}`, "v"])) }],
  // A huge key is shown shortened.
  [`env["${"K".repeat(64)}…"]`, { env: { ["K".repeat(70_000)]: "x" } }],
  ['env["BIG"]', { env: { BIG: "x".repeat(64 * 1024 + 1) } }],
  ["inputs[1].name", { inputs: [file("a.json"), file("a.json")] }],
  ["inputs[0].name", { inputs: [file("process.py")] }],
  ["inputs[0].name", { inputs: [file("dir/../x")] }],
  ["inputs[1].name", { inputs: [file("data"), file("data/in.json")] }],
  ["inputs[0].name", { script: file("tools"), inputs: [file("tools/x/config.json")] }],
  ['env["A"]', { env: { A: "x\u0000y" } }],
  ['metadata[""]', { metadata: { "": "x" } }],
  ['metadata["k"]', { metadata: { k: "a\u0000b" } }],
  ["timeout_seconds", { timeoutSeconds: -1 }],
  ["timeout_seconds", { timeoutSeconds: 86401 }],
  ["request_id", { requestId: "r".repeat(129) }],
  // The service's own retries use these prefixes; a client id must not collide with them.
  ["request_id", { requestId: "auto:exec_" + "0".repeat(32) }],
  ["request_id", { requestId: "batch:abc" }],
  ["max_retries", { maxRetries: 11 }],
  ["retry_on_exit_codes[0]", { retryOnExitCodes: [0] }],
  ["batch_id", { batchId: "batch_123" }],
  ["batch_parallelism", { batchParallelism: 2 }],
];

test.each(createRows)("CreateExecution rejects a bad %s with InvalidArgument", async (field, overrides) => {
  await expectCode(h.alice.createExecution(executionRequest(overrides)), Code.InvalidArgument, `invalid ${field}:`);
});

test("a valid request passes the same rules", async () => {
  const response = await h.alice.createExecution(executionRequest({ runtime: "node:20.1", inputs: [file("data/in put.csv", 0n)] }));
  expect(response.execution?.runtime).toBe("node:20.1");
});

test.each([
  ["execution_id", () => h.alice.getExecution({ executionId: "exec_123" })],
  ["execution_id", () => h.alice.confirmUploads({ executionId: "../x" })],
  ["execution_id", () => h.alice.retryExecution({ executionId: "nope", requestId: "r" })],
  ["request_id", () => h.alice.retryExecution({ executionId: "exec_" + "0".repeat(32), requestId: "r".repeat(129) })],
  ["request_id", () => h.alice.retryExecution({ executionId: "exec_" + "0".repeat(32), requestId: "auto:x" })],
  ["page_size", () => h.alice.listExecutions({ pageSize: 501 })],
  ["statuses[0]", () => h.alice.listExecutions({ statuses: [99 as ExecutionStatus] })],
  ["limit", () => h.alice.getLogs({ executionId: "exec_" + "0".repeat(32), limit: 10_001 })],
  ["after_sequence", () => h.alice.getLogs({ executionId: "exec_" + "0".repeat(32), afterSequence: -1n })],
  // Past 2^53 a position would be rounded on its way to the database: refused, not rounded.
  ["after_sequence", () => h.alice.getLogs({ executionId: "exec_" + "0".repeat(32), afterSequence: 2n ** 53n })],
  ["after_sequence", () => h.alice.getLogs({ executionId: "exec_" + "0".repeat(32), afterSequence: 2n ** 63n - 1n })],
  ["after_sequence", () => drain(h.alice.followLogs({ executionId: "exec_" + "0".repeat(32), afterSequence: 2n ** 63n - 512n }))],
  ["runtimes", () => h.runner.registerRunner({ name: "r", runtimes: [] })],
  ["name", () => h.runner.registerRunner({ name: "", runtimes: ["python"] })],
  ["runner_id", () => h.runner.claimExecution({ runnerId: "r1", waitMillis: 0 })],
  ["wait_millis", () => h.runner.claimExecution({ runnerId: "runner_" + "0".repeat(32), waitMillis: -5 })],
])("bad %s is InvalidArgument", async (field, call) => {
  await expectCode(call(), Code.InvalidArgument, `invalid ${field}:`);
});

test("runner reports are validated too", async () => {
  const runnerId = await registeredRunner(h);
  const executionId = "exec_" + "0".repeat(32);
  await expectCode(
    h.runner.appendLogs({ runnerId, executionId, entries: [{ sequence: 0n, stream: LogEntry_Stream.STDOUT, line: "x" }] }),
    Code.InvalidArgument,
    "invalid entries[0].sequence:",
  );
  await expectCode(
    h.runner.appendLogs({ runnerId, executionId, entries: [{ sequence: 1n, stream: LogEntry_Stream.UNSPECIFIED, line: "x" }] }),
    Code.InvalidArgument,
    "invalid entries[0].stream:",
  );
  await expectCode(h.runner.completeExecution({ runnerId, executionId }), Code.InvalidArgument, "invalid outcome:");
  await expectCode(
    h.runner.createOutputUploads({ runnerId, executionId, outputs: [file("../out")] }),
    Code.InvalidArgument,
    "invalid outputs[0].name:",
  );
});

// Without a request_id the service makes one (that call is then not safe to re-send): validation
// lets it through, and the unknown execution or batch is what is refused.
test("RetryExecution and RetryBatch take no request_id", async () => {
  await expectCode(h.alice.retryExecution({ executionId: "exec_" + "0".repeat(32) }), Code.NotFound);
  await expectCode(h.alice.retryBatch({ batchId: "batch_" + "0".repeat(32) }), Code.NotFound);
});

async function drain(stream: AsyncIterable<unknown>): Promise<void> {
  for await (const message of stream) void message;
}
