// The hostile mix of the fuzz suites as a steady load on both services, for watching their
// memory: typed malformed requests to every ExecutionService, RunnerService and StorageService
// RPC over every client protocol, raw JSON and protobuf bodies, malformed framings, and now and
// then a request over the size limit — each drawn from its own index, so two windows of the same
// length carry the same kinds of request in the same proportions.
import { readFileSync } from "node:fs";
import { readFile, readdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { Code, createClient } from "@connectrpc/connect";
import type { CallOptions } from "@connectrpc/connect";
import { mapWithLimit } from "@rgrid/common";
import { runServiceCommand, serviceEntry } from "@rgrid/local";
import { ExecutionService, Health, RunnerService, StorageService } from "@rgrid/proto";
import { FUZZ_PROTOCOLS, bearer, fuzzTransport, sendHostile } from "./fuzz-clients";
import type { FuzzOutcome, FuzzProtocol } from "./fuzz-clients";
import type { TestGrid } from "./grid";
import { FRAME_ROUTES, frameCases, methodsOf, openSession, sendFrame } from "./hostile-frames";
import type { FrameTarget } from "./hostile-frames";
import { PROCEDURES, RAW_RPCS, TYPED_RPCS, rawHostileRequests } from "./hostile-raw";
import type { UnaryRpcName } from "./hostile-raw";
import { createFuzzTarget, hostileRequest } from "./hostile-requests";
import type { ExecutionClient, FuzzTargets, RpcName } from "./hostile-requests";
import { RUNNER_RPCS, hostileRunnerRequest } from "./hostile-runner-requests";
import type { RunnerClient, RunnerTargets } from "./hostile-runner-requests";
import { STORAGE_RPCS, hostileStorageRequest } from "./hostile-storage-requests";
import type { StorageClient } from "./hostile-storage-requests";
import { postRawConnect } from "./raw-connect";
import { seededRandom } from "./seeded-random";


const CONCURRENCY = 8;

export interface HostileLoadOptions {
  seed: number;
  /** The grid's database (for making a second account); its SQLite file unless given. */
  databaseUrl?: string;
  /**
   * In every this many requests (a multiple of 10, at least 30), three are over the request size
   * limit: one each to ExecutionService, RunnerService and StorageService.
   */
  overLimitEvery: number;
}

export interface HostileLoad {
  /** Sends requests number `from` to `from + count - 1` of the mix; returns how they were answered. */
  send(from: number, count: number): Promise<FuzzOutcome[]>;
  /** Closes the load's own HTTP/2 sessions. */
  close(): void;
}


/** Prepares the targets the mix aims at (an own and a foreign execution, a runner) on `grid`. */
export async function prepareHostileLoad(grid: TestGrid, { seed, overLimitEvery, databaseUrl }: HostileLoadOptions): Promise<HostileLoad> {
  if (overLimitEvery % 10 !== 0 || overLimitEvery < 30) throw new Error("overLimitEvery must be a multiple of 10, at least 30");
  const otherApiKey = await runServiceCommand(
    serviceEntry("@rgrid/execution"),
    ["create-api-key", "--account", "memory-other"],
    { PATH: process.env.PATH ?? "", RGRID_DATABASE_URL: databaseUrl ?? `sqlite:${join(grid.dataDir, "rgrid.db")}` },
    grid.dataDir,
  );
  const setup = createClient(ExecutionService, fuzzTransport("connect-binary", grid.executionUrl));
  const targets: FuzzTargets = {
    ownId: await createFuzzTarget(setup, grid.apiKey, "memory-own"),
    foreignId: await createFuzzTarget(setup, otherApiKey, "memory-foreign"),
    maxTimeoutSeconds: 86_400,
  };
  const runner = createClient(RunnerService, fuzzTransport("connect-binary", grid.executionUrl));
  // "node" only: the grid's own runner claims python work, and this one must hold nothing.
  const { runnerId } = await runner.registerRunner({ name: "memory-target", runtimes: ["node"], version: "test" }, bearer(grid.runnerToken));
  const runnerTargets: RunnerTargets = { runnerId, executionId: targets.ownId };

  const clientsFor = <T extends typeof ExecutionService | typeof RunnerService | typeof StorageService>(service: T, url: string) =>
    Object.fromEntries(FUZZ_PROTOCOLS.map((protocol) => [protocol, createClient(service, fuzzTransport(protocol, url))]));
  const executionClients = clientsFor(ExecutionService, grid.executionUrl) as Record<FuzzProtocol, ExecutionClient>;
  const runnerClients = clientsFor(RunnerService, grid.executionUrl) as Record<FuzzProtocol, RunnerClient>;
  const storageClients = clientsFor(StorageService, grid.storageUrl) as Record<FuzzProtocol, StorageClient>;
  const rawCases = new Map(RAW_RPCS.map((rpc) => [rpc, rawHostileRequests(rpc, 60, seededRandom(seed), targets.ownId)]));
  const frameTargets: { target: FrameTarget; methods: ReturnType<typeof methodsOf>; credential: string }[] = [
    { target: { baseUrl: grid.executionUrl, session: openSession(grid.executionUrl) }, methods: methodsOf([ExecutionService, Health]), credential: `Bearer ${grid.apiKey}` },
    { target: { baseUrl: grid.storageUrl, session: openSession(grid.storageUrl) }, methods: methodsOf([StorageService, Health]), credential: `Bearer ${grid.internalToken}` },
  ];
  const tokens = { internal: grid.internalToken, wrong: `${grid.internalToken.slice(0, -1)}${grid.internalToken.endsWith("A") ? "B" : "A"}` };

  /** Request `index` of the mix, the same for the same seed whatever else was sent before. */
  async function sendOne(index: number): Promise<FuzzOutcome> {
    const random = seededRandom(seed + index);
    // Shifted once per overLimitEvery, so that the over-limit requests take turns too.
    const protocol = FUZZ_PROTOCOLS[(index + Math.floor(index / overLimitEvery)) % FUZZ_PROTOCOLS.length] as FuzzProtocol;
    const round = Math.floor(index / 10);
    // Three in every overLimitEvery requests are over the size limit (indexes below 3 are the
    // generators' over-limit cases), landing on the slots of the three services' typed calls.
    const overLimit = [11, overLimitEvery - 14, overLimitEvery - 3].includes(index % overLimitEvery);
    const caseIndex = overLimit ? 0 : 3 + index;
    const slot = index % 10;
    if (slot < 5) {
      const rpc = TYPED_RPCS[round % TYPED_RPCS.length] as RpcName;
      const hostile = hostileRequest(rpc, caseIndex, random, targets);
      const anyCredential = hostile.expected.includes(Code.ResourceExhausted) || random.next() >= 0.1;
      const options: CallOptions = anyCredential ? bearer(grid.apiKey) : {};
      const expected = anyCredential ? hostile.expected : [...hostile.expected, Code.Unauthenticated];
      return sendHostile({ ...hostile, expected }, options, protocol, {
        shared: executionClients[protocol],
        isolated: () => createClient(ExecutionService, fuzzTransport(protocol, grid.executionUrl, { isolated: true })),
      });
    }
    if (slot < 7) {
      const rpc = RUNNER_RPCS[round % RUNNER_RPCS.length];
      const hostile = hostileRunnerRequest(rpc, caseIndex, random, runnerTargets);
      return sendHostile(hostile, bearer(grid.runnerToken), protocol, {
        shared: runnerClients[protocol],
        isolated: () => createClient(RunnerService, fuzzTransport(protocol, grid.executionUrl, { isolated: true })),
      });
    }
    if (slot === 7) {
      const rpc = STORAGE_RPCS[round % STORAGE_RPCS.length];
      const hostile = hostileStorageRequest(rpc, random, overLimit);
      const options = hostile.token === "none" ? {} : bearer(tokens[hostile.token]);
      return sendHostile(hostile, options, protocol, {
        shared: storageClients[protocol],
        isolated: () => createClient(StorageService, fuzzTransport(protocol, grid.storageUrl, { isolated: true })),
      });
    }
    if (slot === 8) {
      const rpc = RAW_RPCS[round % RAW_RPCS.length] as UnaryRpcName;
      const cases = rawCases.get(rpc) ?? [];
      const raw = cases[round % cases.length];
      if (raw === undefined) throw new Error(`no raw case for ${rpc}`);
      const answer = await postRawConnect(grid.executionUrl, PROCEDURES[rpc], raw.body, grid.apiKey);
      return { rpc, protocol: "raw-connect", kind: `${raw.body.contentType}: ${raw.kind}`, expected: ["invalid_argument"], got: answer.code, message: `HTTP ${answer.httpStatus}` };
    }
    const { target, methods, credential } = frameTargets[round % frameTargets.length] as (typeof frameTargets)[number];
    const { path, method } = random.pick(methods);
    const route = random.pick(FRAME_ROUTES);
    const hostile = random.pick(frameCases(route.protocol, method, method.parent.typeName === Health.typeName ? undefined : credential));
    const answer = await sendFrame(target, route, path, method, hostile.request);
    return { rpc: path, protocol: `${route.protocol}/HTTP ${route.http}`, kind: hostile.kind, expected: ["InvalidArgument"], got: answer.code, message: answer.message };
  }

  return {
    send: (from, count) => mapWithLimit(Array.from({ length: count }, (_, offset) => from + offset), CONCURRENCY, sendOne),
    close: () => frameTargets.forEach(({ target }) => target.session.close()),
  };
}

/**
 * What a service started with HEAP_SNAPSHOT_OPTIONS really holds, in MiB: it writes a heap
 * snapshot into its working directory when signalled, after a full garbage collection, and the
 * sizes of everything in it add up to the live heap (objects and the buffers they own). Unlike
 * RSS this does not move with how much room V8 keeps for garbage yet to be collected.
 */
export async function liveHeapMiB(pid: number | undefined, workingDir: string): Promise<number> {
  if (pid === undefined) throw new Error("the process has no pid");
  const isOwn = (name: string) => name.startsWith("Heap.") && name.includes(`.${pid}.`) && name.endsWith(".heapsnapshot");
  const before = new Set((await readdir(workingDir)).filter(isOwn));
  process.kill(pid, "SIGUSR2");
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 250));
    const written = (await readdir(workingDir)).find((name) => isOwn(name) && !before.has(name));
    if (written === undefined) continue;
    const file = join(workingDir, written);
    // The file grows while it is written; it is complete once it parses.
    try {
      const size = heapSnapshotBytes(await readFile(file, "utf8"));
      await rm(file);
      return size / (1024 * 1024);
    } catch (error) {
      if (!(error instanceof SyntaxError)) throw error;
    }
  }
  throw new Error(`process ${pid} wrote no heap snapshot within a minute`);
}

/** Node flags under which a service writes a heap snapshot on SIGUSR2 (see liveHeapMiB). */
export const HEAP_SNAPSHOT_OPTIONS = "--heapsnapshot-signal=SIGUSR2";

function heapSnapshotBytes(text: string): number {
  const snapshot = JSON.parse(text) as { snapshot: { meta: { node_fields: string[] } }; nodes: number[] };
  const fields = snapshot.snapshot.meta.node_fields;
  const selfSize = fields.indexOf("self_size");
  let total = 0;
  for (let offset = selfSize; offset < snapshot.nodes.length; offset += fields.length) {
    total += snapshot.nodes[offset] as number;
  }
  return total;
}

/** Resident memory of a process in MiB, from Linux's /proc (VmRSS). */
export function residentMiB(pid: number | undefined): number {
  if (pid === undefined) throw new Error("the process has no pid");
  const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  if (!match) throw new Error(`no VmRSS for process ${pid}`);
  return Number(match[1]) / 1024;
}
