// Accounts and credentials kept apart, over the wire: another account's executions and batches
// are answered exactly like missing ones by every RPC; each service takes only its own kind of
// credential; and no API key is ever written to a process log.
import { randomBytes } from "node:crypto";
import { Code, ConnectError } from "@connectrpc/connect";
import { ExecutionService, ObjectKind, RunnerService, StorageService } from "@rgrid/proto";
import { startCluster } from "../support/cluster";
import type { Cluster } from "../support/cluster";
import { allExecutionIds, clientFor, createUploadedExecution, failExecution } from "../support/executions";
import type { ExecutionClient } from "../support/executions";

jest.setTimeout(120_000);

let cluster: Cluster;
let otherKey: string;
let owner: ExecutionClient;
let other: ExecutionClient;
let ownedId: string;
const ownedBatch = `batch_${randomBytes(16).toString("hex")}`;
const missingId = `exec_${"0".repeat(32)}`;
const missingBatch = `batch_${"0".repeat(32)}`;

beforeAll(async () => {
  cluster = await startCluster();
  otherKey = await cluster.createApiKey("other");
  owner = clientFor(ExecutionService, cluster.execution.url, cluster.apiKey);
  other = clientFor(ExecutionService, cluster.execution.url, otherKey);
  ownedId = await createUploadedExecution(owner, {
    script: { name: "main.py", bytes: Buffer.from("raise SystemExit(3)\n") },
    inputs: [{ name: "in.txt", bytes: Buffer.from("owned") }],
    requestId: "owned",
    batchId: ownedBatch,
  });
  await failExecution(clientFor(RunnerService, cluster.execution.url, cluster.runnerToken), ownedId);
});

afterAll(async () => {
  await cluster?.shutdown();
});

afterEach(() => {
  const state = expect.getState();
  if (state.assertionCalls !== state.numPassingAsserts) {
    process.stderr.write(`cluster logs:\n${cluster.logs.slice(-60).join("\n")}\n`);
  }
});

async function refusal(call: () => Promise<unknown>): Promise<{ code: string; message: string }> {
  try {
    await call();
  } catch (error) {
    const connectError = ConnectError.from(error);
    return { code: Code[connectError.code], message: connectError.rawMessage };
  }
  return { code: "OK", message: "" };
}

/** Reads a server stream to its end, so that an error in it is thrown. */
async function drain(stream: AsyncIterable<unknown>): Promise<void> {
  for await (const message of stream) void message;
}

type Probe = (client: ExecutionClient, id: string) => Promise<unknown>;

const executionProbes: Record<string, Probe> = {
  GetExecution: (client, id) => client.getExecution({ executionId: id }),
  ConfirmUploads: (client, id) => client.confirmUploads({ executionId: id }),
  RetryExecution: (client, id) => client.retryExecution({ executionId: id, requestId: `probe-${randomBytes(8).toString("hex")}` }),
  "RetryExecution --force": (client, id) => client.retryExecution({ executionId: id, requestId: `probe-${randomBytes(8).toString("hex")}`, force: true }),
  GetLogs: (client, id) => client.getLogs({ executionId: id }),
  GetOutputDownloads: (client, id) => client.getOutputDownloads({ executionId: id }),
  FollowLogs: (client, id) => drain(client.followLogs({ executionId: id })),
  CancelExecution: (client, id) => client.cancelExecution({ executionId: id }),
};

test.each(Object.keys(executionProbes))("%s of another account's execution answers exactly as for a missing one", async (name) => {
  const probe = executionProbes[name] as Probe;
  const before = await allExecutionIds(owner);
  const foreign = await refusal(() => probe(other, ownedId));
  const missing = await refusal(() => probe(other, missingId));
  expect(foreign.code).toBe("NotFound");
  expect(missing.code).toBe("NotFound");
  expect(foreign.message.replaceAll(ownedId, "ID")).toBe(missing.message.replaceAll(missingId, "ID"));
  // And it changed nothing of the owner's.
  expect(await allExecutionIds(owner)).toEqual(before);
  expect(await allExecutionIds(other)).toEqual([]);
});

test("another account's batch is answered exactly as a missing one", async () => {
  const before = await allExecutionIds(owner);
  const foreign = await refusal(() => other.retryBatch({ batchId: ownedBatch, requestId: "probe-batch" }));
  const missing = await refusal(() => other.retryBatch({ batchId: missingBatch, requestId: "probe-batch-2" }));
  expect(foreign.code).toBe(missing.code);
  expect(foreign.message.replaceAll(ownedBatch, "ID")).toBe(missing.message.replaceAll(missingBatch, "ID"));
  expect(["NotFound", "OK"]).toContain(foreign.code);
  if (foreign.code === "OK") {
    // An empty batch for this account: nothing retried, nothing of the owner's shown.
    const answer = await other.retryBatch({ batchId: ownedBatch, requestId: "probe-batch-3" });
    expect(answer.items).toEqual([]);
    expect(answer.retriedCount).toBe(0);
  }
  expect((await other.listExecutions({ batchId: ownedBatch })).executions).toEqual([]);
  expect((await owner.listExecutions({ batchId: ownedBatch })).executions.map((execution) => execution.id)).toEqual([ownedId]);
  expect(await allExecutionIds(owner)).toEqual(before);
});

test("storage-service refuses calls without the internal token or with a wrong one", async () => {
  const stat = (client: ReturnType<typeof clientFor<typeof StorageService>>) => () =>
    client.statObjects({ executionId: ownedId, refs: [{ kind: ObjectKind.INPUT, name: "in.txt" }] });
  for (const grpc of [false, true]) {
    const wrongTokens = ["", cluster.apiKey, cluster.runnerToken, `${cluster.internalToken.slice(0, -1)}x`];
    for (const token of wrongTokens) {
      const answer = await refusal(stat(clientFor(StorageService, cluster.storage.url, token, { grpc })));
      expect(answer.code).toBe("Unauthenticated");
    }
    expect((await refusal(stat(clientFor(StorageService, cluster.storage.url, cluster.internalToken, { grpc })))).code).toBe("OK");
  }
});

test("RunnerService refuses API keys, and ExecutionService refuses runner tokens", async () => {
  for (const key of [cluster.apiKey, otherKey]) {
    const runner = clientFor(RunnerService, cluster.execution.url, key);
    const answer = await refusal(() => runner.registerRunner({ name: "intruder", runtimes: ["python"] }));
    expect(["Unauthenticated", "PermissionDenied"]).toContain(answer.code);
  }
  const withRunnerToken = clientFor(ExecutionService, cluster.execution.url, cluster.runnerToken);
  for (const call of [() => withRunnerToken.listExecutions({}), () => withRunnerToken.getExecution({ executionId: ownedId })]) {
    expect(["Unauthenticated", "PermissionDenied"]).toContain((await refusal(call)).code);
  }
});

test("no API key, accepted or refused, appears in any process log", async () => {
  const tampered = `${cluster.apiKey.slice(0, -2)}zz`;
  await refusal(() => clientFor(ExecutionService, cluster.execution.url, tampered).listExecutions({}));
  await refusal(() => clientFor(RunnerService, cluster.execution.url, cluster.apiKey).registerRunner({ name: "x", runtimes: ["python"] }));
  const logs = cluster.logs.join("\n");
  expect(logs.length).toBeGreaterThan(0);
  for (const secret of [cluster.apiKey, otherKey, tampered, cluster.runnerToken, cluster.internalToken]) {
    expect(logs).not.toContain(secret);
    // Nor its body without the recognisable prefix.
    expect(logs).not.toContain(secret.replace(/^rgrid_/, ""));
  }
});
