// Retry under faults, against the real processes: storage-service dying in the middle of a copy,
// the database refusing the insert after the copy, and execution-service dying in the middle of a
// burst of work. In each case nothing half-made may survive (a janitor pass clears what a dead
// process could not), and nothing a client was told had succeeded may be missing.
import { randomBytes } from "node:crypto";
import { Code, ConnectError } from "@connectrpc/connect";
import { ExecutionService, ExecutionStatus, RunnerService, StorageService } from "@rgrid/proto";
import { openDatabase } from "@rgrid/execution";
import type { Client as MinioClient } from "minio";
import { startCluster } from "../support/cluster";
import type { Cluster } from "../support/cluster";
import {
  allExecutionIds,
  clientFor,
  createUploadedExecution,
  failExecution,
  inputsPresent,
  objectDirs,
} from "../support/executions";
import type { ExecutionClient } from "../support/executions";
import { startS3Gate } from "../support/s3-gate";
import type { S3Gate } from "../support/s3-gate";
import { startS3rver } from "../../services/storage/test/helpers";
import type { S3rverFixture } from "../../services/storage/test/helpers";
import { printLogsOnFailure } from "../support/failure-logs";
import { runCli, startedId } from "../support/grid";

jest.setTimeout(180_000);

const BUCKET = "rgrid-faults";

function dumpLogsOnFailure(cluster: () => Cluster | undefined): void {
  printLogsOnFailure("cluster", () => cluster()?.logs);
}

/** A cluster on the embedded defaults for one describe block, with the owner's client. */
function clusterForSuite(): { cluster: Cluster; client: ExecutionClient } {
  const suite = {} as { cluster: Cluster; client: ExecutionClient };
  dumpLogsOnFailure(() => suite.cluster);
  beforeAll(async () => {
    suite.cluster = await startCluster();
    suite.client = clientFor(ExecutionService, suite.cluster.execution.url, suite.cluster.apiKey);
  });
  afterAll(async () => {
    await suite.cluster?.shutdown();
  });
  return suite;
}

async function rpcError(call: Promise<unknown>): Promise<ConnectError> {
  const outcome = await call.then(
    () => undefined,
    (error: unknown) => error,
  );
  if (!(outcome instanceof ConnectError)) {
    throw new Error(`expected the call to fail with a ConnectError, got ${String(outcome)}`);
  }
  return outcome;
}

describe("storage-service killed in the middle of CopyInputs", () => {
  let s3: S3rverFixture;
  let gate: S3Gate;
  let bucket: MinioClient;
  let cluster: Cluster;
  let client: ExecutionClient;
  dumpLogsOnFailure(() => cluster);

  beforeAll(async () => {
    s3 = await startS3rver();
    gate = await startS3Gate(s3.endpoint);
    bucket = s3.client();
    cluster = await startCluster({
      storageEnv: {
        RGRID_STORAGE_BACKEND: "s3",
        RGRID_S3_ENDPOINT: gate.endpoint,
        RGRID_S3_ACCESS_KEY: "S3RVER",
        RGRID_S3_SECRET_KEY: "S3RVER-secret",
        RGRID_S3_BUCKET: BUCKET,
      },
    });
    client = clientFor(ExecutionService, cluster.execution.url, cluster.apiKey);
  });

  afterAll(async () => {
    await cluster?.shutdown();
    await gate?.close();
    await s3?.stop();
  });

  async function storedExecutionIds(): Promise<string[]> {
    const ids = new Set<string>();
    for await (const item of bucket.listObjectsV2(BUCKET, "executions/", true)) {
      ids.add((item as { name: string }).name.split("/")[1] as string);
    }
    return [...ids].sort();
  }

  test("the retry fails as Unavailable, creates nothing, and one janitor pass removes the partial copy", async () => {
    const inputs = Array.from({ length: 5 }, (_, index) => ({ name: `data/part-${index}.bin`, bytes: randomBytes(4 * 1024 * 1024) }));
    const originalId = await createUploadedExecution(client, {
      script: { name: "main.py", bytes: Buffer.from("import sys; sys.exit(1)\n") },
      inputs,
      requestId: "create-big",
    });
    await failExecution(clientFor(RunnerService, cluster.execution.url, cluster.runnerToken), originalId);
    const before = await allExecutionIds(client);
    expect(await storedExecutionIds()).toEqual([originalId]);

    // Two of the six objects are copied; the third copy is held at the S3 server's door while
    // storage-service is killed.
    gate.holdCopiesAfter(2);
    const retry = rpcError(client.retryExecution({ executionId: originalId, requestId: "retry-during-crash" }));
    await gate.copied(2);
    await gate.held(1);
    await cluster.storage.kill("SIGKILL");
    gate.open();

    const error = await retry;
    expect(error.code).toBe(Code.Unavailable);
    expect(error.rawMessage).toMatch(/storage is unavailable/);
    expect(error.rawMessage).toMatch(/nothing was created/);

    await cluster.storage.restart();
    expect(await allExecutionIds(client)).toEqual(before);
    // Storage died before anyone could remove the partial copy.
    const orphans = (await storedExecutionIds()).filter((id) => id !== originalId);
    expect(orphans).toHaveLength(1);

    const report = await cluster.executionCommand(["janitor"], { RGRID_EXECUTION_JANITOR_GRACE_SECONDS: "0" });
    expect(report).toContain(orphans[0]);
    expect(await storedExecutionIds()).toEqual([originalId]);
    expect(await allExecutionIds(client)).toEqual(before);
    // The original keeps everything it had.
    const storage = clientFor(StorageService, cluster.storage.url, cluster.internalToken);
    const { execution } = await client.getExecution({ executionId: originalId });
    expect(await inputsPresent(storage, { id: originalId, script: execution?.script, inputs: execution?.inputs ?? [] })).toEqual([]);
  });

  test("rgrid retry re-sends through a storage crash with the same request id and makes exactly one retry", async () => {
    const originalId = await createUploadedExecution(client, {
      script: { name: "main.py", bytes: Buffer.from("import sys; sys.exit(1)\n") },
      inputs: [{ name: "a.bin", bytes: randomBytes(1024) }, { name: "b.bin", bytes: randomBytes(1024) }],
      requestId: "create-for-cli-resend",
    });
    await failExecution(clientFor(RunnerService, cluster.execution.url, cluster.runnerToken), originalId);

    // The CLI's first RetryExecution dies with storage in the middle of its copies.
    gate.holdCopiesAfter(1);
    const cli = runCli({ executionUrl: cluster.execution.url, apiKey: cluster.apiKey, dataDir: cluster.dataDir }, ["retry", originalId]);
    await gate.held(1);
    await cluster.storage.kill("SIGKILL");
    gate.open();
    await cluster.storage.restart();

    const result = await cli;
    expect(result.stderr).toContain("Connection lost. Retrying...");
    expect(result.code).toBe(0);
    const retryId = startedId(result.stdout);
    const { executions } = await client.listExecutions({ rootId: originalId });
    expect(executions.map((execution) => execution.id).sort()).toEqual([originalId, retryId].sort());
    const storage = clientFor(StorageService, cluster.storage.url, cluster.internalToken);
    const { execution: retry } = await client.getExecution({ executionId: retryId });
    expect(await inputsPresent(storage, { id: retryId, script: retry?.script, inputs: retry?.inputs ?? [] })).toEqual([]);
  });
});

describe("the database refusing the retry's insert after the copy", () => {
  const suite = clusterForSuite();

  /** Runs SQL on the grid's SQLite file beside the running service (WAL allows it). */
  async function onGridDatabase(statement: string): Promise<void> {
    const db = await openDatabase({ dialect: "sqlite", file: suite.cluster.databaseUrl.slice("sqlite:".length) });
    try {
      await db.fork().getConnection().execute(statement);
    } finally {
      await db.close();
    }
  }

  test("the retry fails as Internal without internals, and leaves no row and no objects", async () => {
    const originalId = await createUploadedExecution(suite.client, {
      script: { name: "main.py", bytes: Buffer.from("print('x')\n") },
      inputs: [{ name: "in.txt", bytes: Buffer.from("input\n") }],
      requestId: "create-for-trigger",
    });
    await failExecution(clientFor(RunnerService, suite.cluster.execution.url, suite.cluster.runnerToken), originalId);
    const before = await allExecutionIds(suite.client);
    const dirsBefore = await objectDirs(suite.cluster.objectsDir);

    await onGridDatabase(
      "CREATE TRIGGER refuse_retries BEFORE INSERT ON executions WHEN NEW.retry_of IS NOT NULL " +
        "BEGIN SELECT RAISE(ABORT, 'injected failure'); END",
    );
    try {
      const error = await rpcError(suite.client.retryExecution({ executionId: originalId, requestId: "retry-refused" }));
      expect(error.code).toBe(Code.Internal);
      expect(error.rawMessage).not.toMatch(/injected|sqlite|insert|executions|trigger|retry_of/i);
      expect(await allExecutionIds(suite.client)).toEqual(before);
      expect(await objectDirs(suite.cluster.objectsDir)).toEqual(dirsBefore);
      // The cause is logged on the server for an operator.
      expect(suite.cluster.logs.join("\n")).toContain("injected failure");
    } finally {
      await onGridDatabase("DROP TRIGGER refuse_retries");
    }

    // With the database healthy again the same request goes through.
    const { execution } = await suite.client.retryExecution({ executionId: originalId, requestId: "retry-refused" });
    expect(execution?.retryOf).toBe(originalId);
  });
});

describe("execution-service killed during a burst of creates and retries", () => {
  const suite = clusterForSuite();

  interface Succeeded {
    id: string;
    /** Confirmed uploads or a retry: its inputs must be in storage. */
    withInputs: boolean;
    retryOf?: string;
  }

  test("every execution a client was told about exists afterwards, with its inputs", async () => {
    const runner = clientFor(RunnerService, suite.cluster.execution.url, suite.cluster.runnerToken);
    const originals: string[] = [];
    for (const index of [0, 1]) {
      const id = await createUploadedExecution(suite.client, {
        script: { name: "main.py", bytes: Buffer.from(`print(${index})\n`) },
        inputs: [{ name: "data/in.csv", bytes: randomBytes(64 * 1024) }],
        requestId: `burst-original-${index}`,
      });
      await failExecution(runner, id);
      originals.push(id);
    }

    const succeeded: Succeeded[] = [];
    let killAfter: () => void = () => undefined;
    const enoughDone = new Promise<void>((resolve) => (killAfter = resolve));
    const record = (entry: Succeeded) => {
      succeeded.push(entry);
      if (succeeded.length >= 20) killAfter();
    };

    // Each client alternates creates (with uploads and confirm) and retries until the service dies.
    const clientLoop = async (clientIndex: number): Promise<unknown> => {
      const own = clientFor(ExecutionService, suite.cluster.execution.url, suite.cluster.apiKey);
      for (let round = 0; ; round++) {
        try {
          if (round % 2 === 0) {
            const id = await createUploadedExecution(
              own,
              {
                script: { name: "main.py", bytes: Buffer.from(`print(${clientIndex}, ${round})\n`) },
                inputs: [{ name: "in.bin", bytes: randomBytes(16 * 1024) }],
                requestId: `burst-${clientIndex}-${round}`,
              },
              (createdId) => record({ id: createdId, withInputs: false }),
            );
            record({ id, withInputs: true });
          } else {
            const originalId = originals[round % originals.length] as string;
            const { execution } = await own.retryExecution({ executionId: originalId, requestId: `burst-retry-${clientIndex}-${round}` });
            record({ id: execution?.id ?? "", withInputs: true, retryOf: originalId });
          }
        } catch (error) {
          return error;
        }
      }
    };
    const loops = Array.from({ length: 5 }, (_, index) => clientLoop(index));
    await enoughDone;
    await suite.cluster.execution.kill("SIGKILL");
    const endings = await Promise.all(loops);
    for (const ending of endings) {
      expect(ending).toBeInstanceOf(ConnectError);
    }

    await suite.cluster.execution.restart();
    const storage = clientFor(StorageService, suite.cluster.storage.url, suite.cluster.internalToken);
    const problems: string[] = [];
    for (const entry of succeeded) {
      const { execution } = await suite.client.getExecution({ executionId: entry.id });
      if (!execution) {
        problems.push(`${entry.id} is missing`);
        continue;
      }
      if (entry.retryOf !== undefined && execution.retryOf !== entry.retryOf) {
        problems.push(`${entry.id} retries ${execution.retryOf}, not ${entry.retryOf}`);
      }
      if (entry.withInputs) {
        if (execution.status !== ExecutionStatus.QUEUED) problems.push(`${entry.id} is ${ExecutionStatus[execution.status]}, not queued`);
        problems.push(...(await inputsPresent(storage, execution)));
      }
    }
    expect(succeeded.length).toBeGreaterThanOrEqual(20);
    expect(problems).toEqual([]);
  });
});
