// Two execution-service replicas on one PostgreSQL database, each with its cluster channel: a
// waiting call on one hears of the other's changes through LISTEN/NOTIFY (their polling is set
// to a minute, so only a notification can answer in time), and one of them leads maintenance.
import { create } from "@bufbuild/protobuf";
import { createClient } from "@connectrpc/connect";
import { createLogger } from "@rgrid/common";
import { ExecutionService, FailureKind, LogEntry_Stream, LogEntrySchema, Outcome, RunnerService } from "@rgrid/proto";
import type { FollowLogsResponse } from "@rgrid/proto";
import { Client } from "pg";
import { issueApiKey } from "../src/accounts";
import { joinCluster } from "../src/cluster/cluster";
import type { Cluster } from "../src/cluster/cluster";
import { CLUSTER_APPLICATION_NAME } from "../src/cluster/postgres-channel";
import type { ChannelMessage } from "../src/cluster/postgres-channel";
import { LOGS_CHANNEL, WORK_CHANNEL, connectClusterSignals } from "../src/cluster/signals";
import { openDatabase } from "../src/db/orm";
import type { Database } from "../src/db/orm";
import { ExecutionActivity } from "../src/executions/execution-activity";
import { WorkNotifier } from "../src/executions/work-notifier";
import { createExecutionService } from "../src/server";
import type { ExecutionServerDeps, ExecutionService as ServedExecutionService } from "../src/server";
import { createScratchDatabase, postgresServerUrl } from "../../../test/support/postgres";
import { FakeStorage } from "./fake-storage";
import { queuedExecution, registeredRunner } from "./flows";
import { RUNNER_TOKEN, TEST_SERVICE_SETTINGS, inMemoryTransport } from "./harness";
import type { Harness } from "./harness";

/** Waiting calls look at the database on their own only this seldom here. */
const POLL_MILLIS = 60_000;
/** Far below POLL_MILLIS: an answer this soon came from a notification. */
const PROMPTLY_MILLIS = 5_000;

interface Replica {
  /** What the shared flows (queuedExecution, ...) need of a harness. */
  h: Harness;
  /** Every line the replica logged. */
  lines: string[];
  cluster: Cluster;
  service: ServedExecutionService;
  close(): Promise<void>;
}

const describeOnPostgres = postgresServerUrl === undefined ? describe.skip : describe;

describeOnPostgres("replicas on one PostgreSQL database", () => {
  let scratch: Awaited<ReturnType<typeof createScratchDatabase>>;
  let storage: FakeStorage;
  let aliceKey: string;
  let bobKey: string;
  const replicas: Replica[] = [];

  async function startReplica(settings: Partial<ExecutionServerDeps> = {}): Promise<Replica> {
    const lines: string[] = [];
    const logger = createLogger("execution", (line) => lines.push(line));
    const db: Database = await openDatabase({ dialect: "postgresql", url: scratch.url });
    const cluster = await joinCluster({ databaseUrl: scratch.url, logger, leaderClaimIntervalMillis: 100 });
    const service = createExecutionService({ db, storage: storage.client(), ...TEST_SERVICE_SETTINGS, logger, claimRecheckMillis: POLL_MILLIS, cluster, ...settings });
    const transportWith = (token: string) => inMemoryTransport(service, token);
    const h: Harness = {
      db,
      storage,
      aliceKey,
      alice: createClient(ExecutionService, transportWith(aliceKey)),
      bob: createClient(ExecutionService, transportWith(bobKey)),
      runner: createClient(RunnerService, transportWith(RUNNER_TOKEN)),
      transportWith,
      service,
      close: async () => undefined,
    };
    const replica: Replica = {
      h,
      lines,
      cluster,
      service,
      async close() {
        await service.leases.stop();
        await service.bulkRetries.stop();
        await cluster.close();
        await db.close();
      },
    };
    replicas.push(replica);
    return replica;
  }

  beforeEach(async () => {
    scratch = await createScratchDatabase(postgresServerUrl!);
    storage = new FakeStorage();
    const setup = await openDatabase({ dialect: "postgresql", url: scratch.url });
    await setup.migrate();
    aliceKey = (await issueApiKey(setup.fork(), "alice", new Date())).key;
    bobKey = (await issueApiKey(setup.fork(), "bob", new Date())).key;
    await setup.close();
  });

  afterEach(async () => {
    await Promise.all(replicas.splice(0).map((replica) => replica.close()));
    await scratch.drop();
  });

  test("a claim waiting on one replica takes an execution queued through the other at once", async () => {
    const [a, b] = [await startReplica(), await startReplica()];
    const runnerId = await registeredRunner(a.h);
    const started = Date.now();
    const claim = a.h.runner.claimExecution({ runnerId, waitMillis: 20_000 });
    await sleep(200); // the claim is waiting
    const queued = await queuedExecution(b.h);
    const claimed = await claim;
    expect(claimed.assignment?.execution?.id).toBe(queued.id);
    expect(Date.now() - started).toBeLessThan(PROMPTLY_MILLIS);
  });

  test("a retry made through one replica wakes a claim waiting on the other", async () => {
    const [a, b] = [await startReplica(), await startReplica()];
    const runnerId = await registeredRunner(a.h);
    const original = await queuedExecution(b.h);
    expect((await a.h.runner.claimExecution({ runnerId, waitMillis: 0 })).assignment?.execution?.id).toBe(original.id);
    await a.h.runner.completeExecution({ runnerId, executionId: original.id, outcome: Outcome.FAILED, exitCode: 1, errorMessage: "boom" });

    const claim = a.h.runner.claimExecution({ runnerId, waitMillis: 20_000 });
    await sleep(200);
    const started = Date.now();
    const retry = await b.h.alice.retryExecution({ executionId: original.id });
    expect((await claim).assignment?.execution?.id).toBe(retry.execution!.id);
    expect(Date.now() - started).toBeLessThan(PROMPTLY_MILLIS);
  });

  test("a log stream on one replica gets the lines stored through the other, and its end", async () => {
    const [a, b] = [await startReplica(), await startReplica()];
    const queued = await queuedExecution(a.h);
    const runnerId = await registeredRunner(a.h);
    await a.h.runner.claimExecution({ runnerId, waitMillis: 0 });

    const messages: FollowLogsResponse[] = [];
    const ended = (async () => {
      for await (const message of b.h.alice.followLogs({ executionId: queued.id })) {
        messages.push(message);
      }
    })();
    await waitFor(() => messages.length > 0, "the stream's first message");
    const started = Date.now();
    await a.h.runner.appendLogs({
      runnerId,
      executionId: queued.id,
      entries: [create(LogEntrySchema, { sequence: 1n, stream: LogEntry_Stream.STDOUT, line: "from replica a" })],
    });
    await waitFor(() => messages.some((message) => message.entries.some((entry) => entry.line === "from replica a")), "the line stored through a");
    expect(Date.now() - started).toBeLessThan(PROMPTLY_MILLIS);

    await a.h.runner.completeExecution({ runnerId, executionId: queued.id, outcome: Outcome.COMPLETED, exitCode: 0 });
    await ended;
    expect(Date.now() - started).toBeLessThan(PROMPTLY_MILLIS);
  });

  test("one replica leads maintenance, and another takes over when it goes", async () => {
    const [a, b] = [await startReplica(), await startReplica()];
    await waitFor(() => a.cluster.leadership.isLeader() || b.cluster.leadership.isLeader(), "a leader");
    await sleep(300); // several claim intervals: the other stays a follower
    expect([a, b].filter((replica) => replica.cluster.leadership.isLeader())).toHaveLength(1);

    const [leader, follower] = a.cluster.leadership.isLeader() ? [a, b] : [b, a];
    await leader.close();
    replicas.splice(replicas.indexOf(leader), 1);
    await waitFor(() => follower.cluster.leadership.isLeader(), "the follower to take over");
  });

  test("only the leader sweeps: an execution of a silent runner is given up once, by the leader", async () => {
    const lease = { leaseTimeoutMillis: 400, heartbeatIntervalMillis: 100 };
    const [a, b] = [await startReplica(lease), await startReplica(lease)];
    await waitFor(() => a.cluster.leadership.isLeader() || b.cluster.leadership.isLeader(), "a leader");
    const [leader, follower] = a.cluster.leadership.isLeader() ? [a, b] : [b, a];
    a.service.leases.start();
    b.service.leases.start();
    const queued = await queuedExecution(follower.h);
    const runnerId = await registeredRunner(follower.h);
    await follower.h.runner.claimExecution({ runnerId, waitMillis: 0 });

    // The runner goes silent: after its lease the execution fails as runner lost.
    const lost = await pollFor(async () => (await follower.h.alice.getExecution({ executionId: queued.id })).execution!, (found) => found.failureKind === FailureKind.RUNNER_LOST);
    expect(lost.errorMessage).toMatch(/^runner lost/);
    const gaveUp = (replica: Replica) => replica.lines.filter((line) => line.includes("gave up executions of silent runners"));
    expect(gaveUp(leader)).toHaveLength(1);
    expect(gaveUp(follower)).toHaveLength(0);
  });

  test("a replica whose channel was cut listens again, and hears the other as before", async () => {
    const [a, b] = [await startReplica(), await startReplica()];
    await waitFor(() => a.cluster.channel.connected && b.cluster.channel.connected, "both channels");
    await terminateClusterConnections(scratch.url);
    await waitFor(() => a.cluster.channel.connected && b.cluster.channel.connected, "both channels back");

    const runnerId = await registeredRunner(a.h);
    const claim = a.h.runner.claimExecution({ runnerId, waitMillis: 20_000 });
    await sleep(200);
    const started = Date.now();
    const queued = await queuedExecution(b.h);
    expect((await claim).assignment?.execution?.id).toBe(queued.id);
    expect(Date.now() - started).toBeLessThan(PROMPTLY_MILLIS);
  });

  test("a replica alone announces nothing; once another joins, it announces its work", async () => {
    const a = await startReplica();
    const outsider = await listeningClient(scratch.url, "an-outsider");
    try {
      await waitFor(() => !a.cluster.peers.present, "the replica to see it is alone");
      await queuedExecution(a.h);
      await sleep(300);
      expect(outsider.heard.filter((message) => message.payload === a.cluster.replicaId)).toEqual([]);

      const b = await startReplica();
      // The answer goes out once the replica heard the other join, on its way like any notification.
      const welcome = { channel: WORK_CHANNEL, payload: `${a.cluster.replicaId} welcome ${b.cluster.replicaId}` };
      await waitFor(() => outsider.heard.some((message) => message.payload === welcome.payload), "the replica's welcome to the other");
      expect(a.cluster.peers.present).toBe(true);
      expect(outsider.heard).toContainEqual({ channel: WORK_CHANNEL, payload: `${b.cluster.replicaId} joined` });
      expect(outsider.heard).toContainEqual(welcome);
      await queuedExecution(a.h);
      await waitFor(() => outsider.heard.some((message) => message.payload === a.cluster.replicaId), "the replica's announcement");
    } finally {
      await outsider.end();
    }
  });

  test("notifications made while one is on its way go out together in the next, and none is lost", async () => {
    const replica = await startReplica();
    // A second set of signals on the replica's database and channel, whose notifiers the test drives.
    const notifier = new WorkNotifier();
    const logActivity = new ExecutionActivity();
    const peers = replica.cluster.peers;
    connectClusterSignals({ db: replica.h.db, channel: replica.cluster.channel, peers, replicaId: "burst", notifier, logActivity, logger: createLogger("burst", () => undefined) });
    // The listener joins as a replica would, so that the replica has someone to tell.
    const listener = await listeningClient(scratch.url, CLUSTER_APPLICATION_NAME);
    try {
      await listener.query(`select pg_notify('${WORK_CHANNEL}', 'listener joined')`);
      await waitFor(() => listener.heard.some((message) => message.payload === `${replica.cluster.replicaId} welcome listener`), "the replica's welcome");
      const heard = listener.heard;

      // 40 changes, one per turn of the event loop, as 40 retries answered one after another are.
      const executionIds = Array.from({ length: 40 }, (_, index) => `exec_burst${String(index).padStart(4, "0")}`);
      for (const executionId of executionIds) {
        notifier.notify();
        logActivity.notify(executionId);
        await new Promise((resolve) => setImmediate(resolve));
      }

      // Every execution is announced, the last one included...
      const logPayloads = () => heard.filter((message) => message.channel === LOGS_CHANNEL).map((message) => message.payload);
      await waitFor(() => logPayloads().length === executionIds.length, "every execution's announcement");
      expect(logPayloads()).toEqual(executionIds.map((executionId) => `burst ${executionId}`));
      // ...in fewer statements than changes: a work announcement is one per statement.
      const workAnnouncements = heard.filter((message) => message.channel === WORK_CHANNEL && message.payload === "burst").length;
      expect(workAnnouncements).toBeGreaterThanOrEqual(1);
      expect(workAnnouncements).toBeLessThan(executionIds.length);
    } finally {
      await listener.end();
    }
  });
});

/** A connection listening on the cluster's channels under `applicationName`, keeping all it hears. */
async function listeningClient(databaseUrl: string, applicationName: string): Promise<Client & { heard: ChannelMessage[] }> {
  const client = Object.assign(new Client({ connectionString: databaseUrl, application_name: applicationName }), { heard: [] as ChannelMessage[] });
  await client.connect();
  client.on("notification", (message) => client.heard.push({ channel: message.channel, payload: message.payload ?? "" }));
  await client.query(`listen ${WORK_CHANNEL}; listen ${LOGS_CHANNEL}`);
  return client;
}

/** Ends the cluster channels' sessions on the server side, as a restart of PostgreSQL or a cut network would. */
async function terminateClusterConnections(databaseUrl: string): Promise<void> {
  const client = new Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const { rows } = await client.query(
      "select pg_terminate_backend(pid) as ended from pg_stat_activity where datname = current_database() and application_name = 'rgrid-cluster'",
    );
    expect(rows.length).toBe(2);
  } finally {
    await client.end();
  }
}

async function pollFor<T>(read: () => Promise<T>, done: (value: T) => boolean): Promise<T> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const value = await read();
    if (done(value)) {
      return value;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out; last seen ${JSON.stringify(value, (_, field: unknown) => (typeof field === "bigint" ? String(field) : field))}`);
    }
    await sleep(50);
  }
}

const sleep = (millis: number) => new Promise((resolve) => setTimeout(resolve, millis));

async function waitFor(condition: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (!condition()) {
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what}`);
    }
    await sleep(10);
  }
}
