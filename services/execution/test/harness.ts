import { createHash, randomBytes } from "node:crypto";
import type { Client, Transport } from "@connectrpc/connect";
import { createClient, createRouterTransport } from "@connectrpc/connect";
import { bearerAuth, silentLogger } from "@rgrid/common";
import { ExecutionService, ObjectKind, RunnerService } from "@rgrid/proto";
import type { CreateExecutionRequest, Execution } from "@rgrid/proto";
import { create } from "@bufbuild/protobuf";
import { CreateExecutionRequestSchema } from "@rgrid/proto";
import { issueApiKey } from "../src/accounts";
import type { DatabaseTarget } from "../src/db/database-url";
import type { Database } from "../src/db/orm";
import { openDatabase } from "../src/db/orm";
import { createExecutionService } from "../src/server";
import type { ExecutionService as ServedExecutionService, ExecutionServerDeps } from "../src/server";
import { FakeStorage } from "./fake-storage";

export const RUNNER_TOKEN = "runner-token-for-tests-0123456789";

export interface Harness {
  db: Database;
  storage: FakeStorage;
  /** Clients acting as two different accounts, and as a runner. */
  alice: Client<typeof ExecutionService>;
  bob: Client<typeof ExecutionService>;
  runner: Client<typeof RunnerService>;
  aliceKey: string;
  transportWith(token: string): Transport;
  /** The service behind the clients, e.g. to sweep leases. */
  service: ServedExecutionService;
  close(): Promise<void>;
}

/** The settings test services share; each test overrides those it is about. */
export const TEST_SERVICE_SETTINGS = {
  logger: silentLogger,
  runnerTokens: [RUNNER_TOKEN],
  defaultTimeoutSeconds: 3600,
  maxTimeoutSeconds: 86400,
  readMaxBytes: 4 * 1024 * 1024,
  claimRecheckMillis: 50,
} satisfies Partial<ExecutionServerDeps>;

/** Reaches `service` in memory, through its interceptors, presenting `token`. */
export function inMemoryTransport(service: ServedExecutionService, token: string): Transport {
  return createRouterTransport(service.routes, {
    router: { interceptors: service.interceptors },
    transport: { interceptors: [bearerAuth(token)] },
  });
}

/**
 * A service on a fresh in-memory SQLite database and fake storage, reached in memory; `overrides`
 * change its settings (lease, clock, ...).
 */
export async function startHarness(overrides: Partial<Omit<ExecutionServerDeps, "db" | "storage">> = {}): Promise<Harness> {
  return startHarnessOn({ target: { dialect: "sqlite", file: ":memory:" }, drop: async () => undefined }, overrides);
}

/** As startHarness, on a database of the caller's (a scratch PostgreSQL one, say), dropped at close. */
export async function startHarnessOn(
  database: { target: DatabaseTarget; drop(): Promise<void> },
  overrides: Partial<Omit<ExecutionServerDeps, "db" | "storage">> = {},
): Promise<Harness> {
  const db = await openDatabase(database.target);
  await db.migrate();
  const storage = new FakeStorage();
  const service = createExecutionService({ db, storage: storage.client(), ...TEST_SERVICE_SETTINGS, ...overrides });
  const transportWith = (token: string) => inMemoryTransport(service, token);
  const aliceKey = (await issueApiKey(db.fork(), "alice", new Date())).key;
  const bobKey = (await issueApiKey(db.fork(), "bob", new Date())).key;
  return {
    db,
    storage,
    aliceKey,
    alice: createClient(ExecutionService, transportWith(aliceKey)),
    bob: createClient(ExecutionService, transportWith(bobKey)),
    runner: createClient(RunnerService, transportWith(RUNNER_TOKEN)),
    transportWith,
    service,
    close: async () => {
      await service.leases.stop();
      await service.bulkRetries.stop();
      await db.close();
      await database.drop();
    },
  };
}

export const sha256Of = (text: string) => createHash("sha256").update(text).digest("hex");

/** A valid request; tests override the fields they are about. */
export function executionRequest(overrides: Partial<Omit<CreateExecutionRequest, "$typeName">> = {}): CreateExecutionRequest {
  return create(CreateExecutionRequestSchema, {
    script: { name: "process.py", sizeBytes: 12n, sha256: sha256Of("print('hi')\n") },
    runtime: "python:3.11",
    args: ["input.json", "--verbose"],
    env: { MODE: "test" },
    inputs: [{ name: "input.json", sizeBytes: 7n, sha256: sha256Of('{"a":1}') }],
    metadata: { team: "data" },
    timeoutSeconds: 60,
    requestId: randomBytes(8).toString("hex"),
    ...overrides,
  });
}

/** Plays the CLI's part of an upload: objects appear in storage with the declared sizes. */
export function uploadAll(storage: FakeStorage, execution: Execution, request: Pick<CreateExecutionRequest, "inputs">): void {
  storage.put(execution.id, ObjectKind.SCRIPT, execution.script?.name ?? "", Number(execution.script?.sizeBytes ?? 0));
  for (const input of request.inputs) {
    storage.put(execution.id, ObjectKind.INPUT, input.name, Number(input.sizeBytes));
  }
}
