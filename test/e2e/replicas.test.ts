// Two execution-service replicas on PostgreSQL and S3 (s3rver), one storage-service, three
// runners, and Debian's HAProxy with deploy/haproxy.cfg in front: every protocol goes through
// the proxy, executions submitted alternately through both replicas run exactly once, retries
// made through the other replica get byte-identical inputs, and a replica SIGKILLed mid-load
// loses nothing that was acknowledged.
import { createHash, randomUUID } from "node:crypto";
import { createClient } from "@connectrpc/connect";
import type { Client, Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { bearerAuth, mapWithLimit } from "@rgrid/common";
import { ExecutionService, ExecutionStatus, FailureKind } from "@rgrid/proto";
import type { Execution } from "@rgrid/proto";
import type { Client as MinioClient } from "minio";
import { objectDigest, s3StorageEnv } from "../support/bucket";
import { startCluster } from "../support/cluster";
import type { Cluster } from "../support/cluster";
import { haproxyInstalled, startHaproxy } from "../support/haproxy";
import { createScratchDatabase, postgresServerUrl } from "../support/postgres";
import type { ScratchDatabase } from "../support/postgres";
import { allExecutionIds } from "../support/executions";
import { isTerminal, storedLogs, waitForRetryOf } from "../support/runner-api";
import { startS3rver } from "../../services/storage/test/helpers";
import type { S3rverFixture } from "../../services/storage/test/helpers";

jest.setTimeout(1_200_000);

const BUCKET = "rgrid-replicas";
/**
 * Executions of the first load, submitted alternately through the two replicas; of the second,
 * through the proxy while a replica is killed and restarted. CI runs 100 and 40;
 * RGRID_TEST_REPLICA_EXECUTIONS=2000 runs the full load (a few minutes on two cores).
 */
const EXECUTIONS = Number(process.env["RGRID_TEST_REPLICA_EXECUTIONS"] ?? "100");
const EXECUTIONS_DURING_KILL = Math.max(30, Math.round(EXECUTIONS * 0.4));
const SUBMIT_CONCURRENCY = 8;
/** A script failure retried by hand; a failure the execution asks to be retried automatically. */
const MANUAL_EXIT = 3;
const AUTOMATIC_EXIT = 75;

// Prints its number once, then exits with the code its input names.
const SCRIPT = 'import json, sys\nd = json.load(open("input.json"))\nprint("ran", d["n"], flush=True)\nsys.exit(d["exit"])\n';

const suite = postgresServerUrl !== undefined && haproxyInstalled ? describe : describe.skip;

type ExecutionClient = Client<typeof ExecutionService>;

suite("replicas behind HAProxy on PostgreSQL and S3 (needs RGRID_TEST_POSTGRES_URL and haproxy)", () => {
  let database: ScratchDatabase;
  let s3: S3rverFixture;
  let bucket: MinioClient;
  let cluster: Cluster;
  let replicaClients: ExecutionClient[];
  let frontClient: ExecutionClient;

  beforeAll(async () => {
    database = await createScratchDatabase(postgresServerUrl ?? "");
    s3 = await startS3rver();
    bucket = s3.client();
    const logs: string[] = [];
    cluster = await startCluster({
      databaseUrl: database.url,
      replicas: 2,
      runners: 3,
      front: (replicas) => startHaproxy(replicas, logs),
      storageEnv: s3StorageEnv(s3.endpoint, BUCKET),
      // Executions a killed replica had handed out, unbeknown to their runner, are given up soon.
      executionEnv: { RGRID_EXECUTION_LEASE_TIMEOUT_SECONDS: "3", RGRID_EXECUTION_RETRY_BACKOFF_SECONDS: "1" },
      runnerEnv: { RGRID_RUNNER_CONCURRENCY: "2" },
    });
    cluster.logs.push(...logs);
    replicaClients = cluster.replicas.map((replica) => clientOn(createConnectTransport({ baseUrl: replica.url, httpVersion: "2", interceptors: withKey() })));
    frontClient = clientOn(createConnectTransport({ baseUrl: cluster.frontUrl, httpVersion: "2", interceptors: withKey() }));
  });

  afterAll(async () => {
    await cluster?.shutdown();
    await s3?.stop();
    await database?.drop();
  });

  afterEach(() => {
    const state = expect.getState();
    if (state.assertionCalls !== state.numPassingAsserts || state.currentTestName === undefined) {
      process.stderr.write(`${cluster.logs.slice(-120).join("\n")}\n`);
    }
  });

  function clientOn(transport: Transport): ExecutionClient {
    return createClient(ExecutionService, transport);
  }

  /** The cluster's API key on every call. */
  const withKey = () => [bearerAuth(cluster.apiKey)];

  test("gRPC, Connect and gRPC-Web over HTTP/1.1 and HTTP/2 pass through the proxy, streams included", async () => {
    const url = cluster.frontUrl;
    const clients: Array<[string, ExecutionClient]> = [
      ["gRPC (HTTP/2)", clientOn(createGrpcTransport({ baseUrl: url, interceptors: withKey() }))],
      ["Connect, HTTP/1.1, JSON", clientOn(createConnectTransport({ baseUrl: url, httpVersion: "1.1", interceptors: withKey() }))],
      ["Connect, HTTP/2, binary", clientOn(createConnectTransport({ baseUrl: url, httpVersion: "2", useBinaryFormat: true, interceptors: withKey() }))],
      ["gRPC-Web, HTTP/1.1", clientOn(createGrpcWebTransport({ baseUrl: url, httpVersion: "1.1", interceptors: withKey() }))],
      ["gRPC-Web, HTTP/2", clientOn(createGrpcWebTransport({ baseUrl: url, httpVersion: "2", interceptors: withKey() }))],
    ];
    const id = await submit(clients[0]![1], { n: -1, exit: 0, seconds: 1 });
    for (const [name, client] of clients) {
      const { execution } = await client.getExecution({ executionId: id });
      expect({ name, id: execution?.id }).toEqual({ name, id });
      // A server stream through the proxy, to the execution's end.
      const lines: string[] = [];
      for await (const message of client.followLogs({ executionId: id })) {
        lines.push(...message.entries.map((entry) => entry.line));
      }
      expect({ name, lines }).toEqual({ name, lines: ["ran -1"] });
    }
  });

  test("executions submitted through both replicas run once each; retries through the other get identical inputs", async () => {
    const countBefore = (await allExecutionIds(frontClient)).length;
    const submitted = await mapWithLimit(range(EXECUTIONS), SUBMIT_CONCURRENCY, async (n) => {
      const exit = n % 5 === 0 ? MANUAL_EXIT : n % 7 === 0 ? AUTOMATIC_EXIT : 0;
      const replica = n % 2;
      return { n, exit, replica, id: await submit(replicaClients[replica]!, { n, exit }) };
    });
    const finished = await waitUntilAllFinished(submitted.map((item) => item.id));
    for (const item of submitted) {
      const execution = finished.get(item.id)!;
      expect({ n: item.n, status: ExecutionStatus[execution.status] }).toEqual({ n: item.n, status: item.exit === 0 ? "COMPLETED" : "FAILED" });
    }

    // Automatic retries (exit 75) were made by whichever replica heard the report; they fail again.
    const automatic = submitted.filter((item) => item.exit === AUTOMATIC_EXIT);
    const automaticRetries = await Promise.all(automatic.map(async (item) => (await waitForRetryOf(frontClient, item.id)).id));
    // Manual retries, each through the replica the execution was not submitted through.
    const manual = submitted.filter((item) => item.exit === MANUAL_EXIT);
    const manualRetries = await mapWithLimit(manual, SUBMIT_CONCURRENCY, async (item) => {
      const { execution } = await replicaClients[1 - item.replica]!.retryExecution({ executionId: item.id, requestId: randomUUID() });
      return execution!.id;
    });
    const retried = await waitUntilAllFinished([...automaticRetries, ...manualRetries]);
    expect([...retried.values()].every((execution) => execution.status === ExecutionStatus.FAILED)).toBe(true);

    // Exactly once: each execution and each retry was started by one runner, once (a second
    // run's log lines would be refused as resends, so the log alone cannot tell), and printed
    // its own number.
    const everyId = [...submitted.map((item) => item.id), ...automaticRetries, ...manualRetries];
    const numberOf = new Map(submitted.map((item) => [item.id, item.n]));
    for (const [retryId, item] of [...automaticRetries.map((id, index) => [id, automatic[index]!] as const), ...manualRetries.map((id, index) => [id, manual[index]!] as const)]) {
      numberOf.set(retryId, item.n);
    }
    await mapWithLimit(everyId, SUBMIT_CONCURRENCY, async (id) => {
      const starts = cluster.logs.filter((line) => line.startsWith("runner-") && line.includes(`execution started id=${id} `));
      expect({ id, starts: starts.length }).toEqual({ id, starts: 1 });
      const lines = (await storedLogs(frontClient, id)).map((entry) => entry.line);
      expect({ id, lines }).toEqual({ id, lines: [`ran ${numberOf.get(id)}`] });
    });

    // Byte-identical inputs: the retry's stored input is the original's, byte for byte.
    for (const [retryId, item] of manualRetries.map((id, index) => [id, manual[index]!] as const)) {
      expect(await storedInputDigest(retryId)).toBe(await storedInputDigest(item.id));
    }
    expect((await allExecutionIds(frontClient)).length - countBefore).toBe(EXECUTIONS + automatic.length + manual.length);
  });

  test("a replica SIGKILLed mid-load and restarted loses nothing acknowledged; runners and clients fail over", async () => {
    const killed = cluster.replicas[1]!;
    const countBefore = (await allExecutionIds(frontClient)).length;
    const acknowledged: string[] = [];
    let killedAt = -1;
    const load = mapWithLimit(range(EXECUTIONS_DURING_KILL), SUBMIT_CONCURRENCY, async (n) => {
      if (n === Math.floor(EXECUTIONS_DURING_KILL / 3)) {
        killedAt = acknowledged.length;
        await killed.kill("SIGKILL");
      }
      // Through the proxy, as the CLI goes: a call that fails is sent again with its request id.
      const requestId = randomUUID();
      const id = await withResends(() => submit(frontClient, { n: 1000 + n, exit: 0 }, requestId));
      acknowledged.push(id);
      return id;
    });
    const ids = await load;
    expect(killedAt).toBeGreaterThan(0);
    await killed.restart();

    // Every acknowledged execution exists, once, and finishes (an execution the killed replica had
    // just handed out is given up when its lease ends, and retried automatically).
    expect(new Set(ids).size).toBe(EXECUTIONS_DURING_KILL);
    const finished = await waitUntilAllFinished(ids);
    let attempts = 0;
    for (const id of ids) {
      const lineage = await lineageOf(finished.get(id)!);
      attempts += lineage.attempts;
      expect({ id, status: ExecutionStatus[lineage.last.status] }).toEqual({ id, status: "COMPLETED" });
    }
    // Nothing was made twice: a resend after the kill answered with what the first send made.
    expect((await allExecutionIds(frontClient)).length - countBefore).toBe(attempts);
    // Both replicas serve again.
    for (const client of replicaClients) {
      expect((await client.getExecution({ executionId: ids[0]! })).execution?.id).toBe(ids[0]);
    }
  });

  /** Creates an execution with its script and one input, uploads both and confirms it. */
  async function submit(client: ExecutionClient, input: { n: number; exit: number; seconds?: number }, requestId = randomUUID()): Promise<string> {
    const script = Buffer.from(input.seconds === undefined ? SCRIPT : `import time\ntime.sleep(${input.seconds})\n${SCRIPT}`);
    const data = Buffer.from(JSON.stringify({ n: input.n, exit: input.exit }));
    const created = await client.createExecution(
      {
        script: { name: "count.py", sizeBytes: BigInt(script.length), sha256: sha256(script) },
        runtime: "python",
        inputs: [{ name: "input.json", sizeBytes: BigInt(data.length), sha256: sha256(data) }],
        requestId,
        maxRetries: 1,
        retryOnExitCodes: [AUTOMATIC_EXIT],
      },
    );
    const id = created.execution!.id;
    if (created.execution!.status === ExecutionStatus.UPLOADING) {
      for (const [grant, body] of [[created.scriptUpload!, script], [created.inputUploads[0]!, data]] as const) {
        const response = await fetch(grant.url, { method: grant.method, headers: grant.headers, body });
        if (!response.ok && response.status !== 409) {
          throw new Error(`upload failed: HTTP ${response.status} ${await response.text()}`);
        }
      }
      await client.confirmUploads({ executionId: id });
    }
    return id;
  }

  async function waitUntilAllFinished(ids: readonly string[]): Promise<Map<string, Execution>> {
    const finished = new Map<string, Execution>();
    const deadline = Date.now() + Math.max(240_000, EXECUTIONS * 300);
    for (;;) {
      await mapWithLimit(ids.filter((id) => !finished.has(id)), SUBMIT_CONCURRENCY, async (id) => {
        const { execution } = await frontClient.getExecution({ executionId: id });
        if (execution !== undefined && isTerminal(execution) && (execution.retriedAs.length > 0 || !awaitsAutomaticRetry(execution))) {
          finished.set(id, execution);
        }
      });
      if (finished.size === ids.length) {
        return finished;
      }
      if (Date.now() > deadline) {
        throw new Error(`${ids.length - finished.size} of ${ids.length} executions did not finish`);
      }
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  }



  /** The last attempt of the lineage `execution` starts, once finished, and how many attempts it has. */
  async function lineageOf(execution: Execution): Promise<{ last: Execution; attempts: number }> {
    let last = execution;
    let attempts = 1;
    while (last.retriedAs.length > 0) {
      last = (await waitUntilAllFinished([last.retriedAs[0]!])).get(last.retriedAs[0]!)!;
      attempts++;
    }
    return { last, attempts };
  }

  const storedInputDigest = (executionId: string) => objectDigest(bucket, BUCKET, `executions/${executionId}/inputs/input.json`);



});


/** A failure the service will retry on its own (its retry is not made the same instant). */
function awaitsAutomaticRetry(execution: Execution): boolean {
  if (execution.status !== ExecutionStatus.FAILED || execution.autoRetryNumber >= execution.maxRetries) {
    return false;
  }
  return execution.failureKind === FailureKind.SCRIPT
    ? execution.exitCode !== undefined && execution.retryOnExitCodes.includes(execution.exitCode)
    : execution.failureKind !== FailureKind.UNSPECIFIED;
}

/** Sends a call again while it fails for want of a replica (the CLI's own resending does the same). */
async function withResends<T>(call: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await call();
    } catch (error) {
      if (attempt >= 10) {
        throw error;
      }
      await new Promise((resolve) => setTimeout(resolve, 200 * attempt));
    }
  }
}

const range = (count: number) => Array.from({ length: count }, (_, index) => index);
const sha256 = (bytes: Buffer) => createHash("sha256").update(bytes).digest("hex");
