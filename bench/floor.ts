// `npm run bench:floor`: RetryExecution against the floor the fixed architecture allows, measured
// side by side in one run, so that a noisy shared machine moves both alike. The floor of a retry
// is two RPC hops (client → execution-service → storage-service, each its own process, with
// rgrid's real request and response sizes: floor-hop.ts), plus the same database statements on
// the raw driver (better-sqlite3, or `pg` on PostgreSQL), plus the bare file copies (hard links,
// as the local-file store makes them). Three rounds, interleaved; medians; each figure with its
// ratio to its floor. A second table splits the CPU of a call at c=16 by process (the services or
// hops, the client, PostgreSQL's server), which is what throughput on two cores is spent on.
//
//   node bench/dist/floor.js [sqlite|postgresql]     (both when not told; PostgreSQL when reachable)
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { randomUUID } from "node:crypto";
import { readFileSync, readdirSync } from "node:fs";
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { create, toBinary } from "@bufbuild/protobuf";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { createInternalClient, newExecutionId } from "@rgrid/common";
import {
  CopyInputsRequestSchema,
  CopyInputsResponseSchema,
  ExecutionService,
  RetryExecutionResponseSchema,
  StorageService,
} from "@rgrid/proto";
import type { Backend } from "./backends";
import { embeddedBackend, postgresFilesBackend } from "./backends";
import { CLI, failedOriginalWithThreeInputs, startBenchGrid } from "./bench-grid";
import type { BenchGrid } from "./bench-grid";
import { runCommand } from "./command";
import { removeWhenDone, runBenchmark } from "./entry";
import { SCRIPT_AND_THREE_INPUTS, linkFloor, rawPostgres, rawSqlite } from "./raw-floor";
import type { RawDatabase } from "./raw-floor";
import { ms, percentile, processCpuMillis } from "./stats";

const ROUNDS = 3;
const SEQUENTIAL = 200;
const CONCURRENT = 800;
const CONCURRENCY = 16;
const CLI_RUNS = 15;
const HOP = resolve(__dirname, "floor-hop.js");

/** One round's figures; the table shows the median of each over the rounds. */
interface Round {
  retryP50: number;
  hopsP50: number;
  dbP50: number;
  copyP50: number;
  retryCpu: number;
  hopsCpu: number;
  dbCpu: number;
  copyCpu: number;
  retryThroughput: Throughput;
  hopsThroughput: Throughput;
  dbThroughput: Throughput;
}

/** Calls per second at CONCURRENCY, and the CPU each part spent per call meanwhile (ms). */
interface Throughput {
  perSecond: number;
  cpu: CpuSplit;
}

/**
 * Who spent the CPU of a call: the process answering it (execution-service, or the front hop),
 * the one behind it (storage-service, or the back hop), this process (the client; for the raw
 * floor, the driver itself) and PostgreSQL's server processes, which share this machine's cores.
 */
interface CpuSplit {
  front: number;
  back: number;
  here: number;
  database: number;
}

/** Executions in the account when ListExecutions pages are compared. */
const LISTED = 100_000;
const LIST_PAGE = 50;
const LIST_CALLS = 60;

async function floorOn(backend: Backend): Promise<void> {
  const bench = await startBenchGrid({ runners: 1, backend });
  const work = await mkdtemp(join(tmpdir(), "rgrid-floor-"));
  const hops: ChildProcess[] = [];
  let raw: RawDatabase | undefined;
  try {
    const originalId = await failedOriginalWithThreeInputs(bench.dataDir, bench.cliEnv);
    await bench.stopRunners();
    const retry = () => bench.client.retryExecution({ executionId: originalId, requestId: randomUUID() });

    // The floor hops carry rgrid's own messages: a real answer, a real CopyInputs request and answer.
    const sample = await retry();
    const storage = createInternalClient(StorageService, bench.grid.storageUrl, bench.grid.internalToken);
    const copyRequest = create(CopyInputsRequestSchema, {
      sourceExecutionId: originalId,
      targetExecutionId: newExecutionId(),
      names: sample.execution!.inputs.map((input) => input.name),
      scriptName: sample.execution!.script!.name,
    });
    const copyResponse = await storage.copyInputs(copyRequest);
    await storage.deleteExecutionObjects({ executionId: copyRequest.targetExecutionId });
    await writeFile(join(work, "retry-response.bin"), toBinary(RetryExecutionResponseSchema, sample));
    await writeFile(join(work, "copy-request.bin"), toBinary(CopyInputsRequestSchema, copyRequest));
    await writeFile(join(work, "copy-response.bin"), toBinary(CopyInputsResponseSchema, copyResponse));
    const back = await startHop(hops, ["back", join(work, "copy-response.bin")]);
    const front = await startHop(hops, ["front", join(work, "retry-response.bin"), back.url, join(work, "copy-request.bin")]);
    const hopClient = createClient(ExecutionService, createConnectTransport({ baseUrl: front.url, httpVersion: "2", useBinaryFormat: true }));
    const hopCall = () => hopClient.retryExecution({ executionId: originalId, requestId: randomUUID() });

    raw = backend.kind === "embedded" ? await rawSqlite(bench, originalId, work) : await rawPostgres(bench, originalId, CONCURRENCY);
    const copies = await linkFloor(work, SCRIPT_AND_THREE_INPUTS);

    for (let i = 0; i < 50; i++) {
      await retry();
      await hopCall();
      await raw.retryOnce();
      await copies();
    }
    const servicePids = ["execution", "storage"].map((name) => bench.grid.processes.find((service) => service.name === name)?.pid as number);
    // Started back first: listed front first, as the services are.
    const hopPids = hops.map((hop) => hop.pid as number).reverse();
    const databasePids = backend.kind === "embedded" ? () => [] : localPostgresPids;
    const rounds: Round[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const retryRun = await sequential(retry, servicePids);
      const hopsRun = await sequential(hopCall, hopPids);
      const dbRun = await sequential(() => raw!.retryOnce(), [], true);
      const copyRun = await sequential(copies, [], true);
      rounds.push({
        retryP50: retryRun.p50,
        hopsP50: hopsRun.p50,
        dbP50: dbRun.p50,
        copyP50: copyRun.p50,
        retryCpu: retryRun.cpuPerCall,
        hopsCpu: hopsRun.cpuPerCall,
        dbCpu: dbRun.cpuPerCall,
        copyCpu: copyRun.cpuPerCall,
        retryThroughput: await throughput(retry, servicePids, databasePids),
        hopsThroughput: await throughput(hopCall, hopPids, databasePids),
        dbThroughput: await throughput(() => raw!.retryOnce(), [], databasePids),
      });
    }
    const median = (pick: (round: Round) => number) => percentile(rounds.map(pick), 50);
    const floorP50 = median((r) => r.hopsP50) + median((r) => r.dbP50) + median((r) => r.copyP50);
    const floorCpu = median((r) => r.hopsCpu) + median((r) => r.dbCpu) + median((r) => r.copyCpu);
    const throughputFloor = Math.min(median((r) => r.hopsThroughput.perSecond), median((r) => r.dbThroughput.perSecond));
    const label = backend.kind === "embedded" ? "SQLite + local files" : "PostgreSQL + local files";
    process.stdout.write(`\nRetryExecution at its floor, ${label} (3 inputs of 1 MiB; medians of ${ROUNDS} interleaved rounds)\n\n`);
    const rows: Array<[string, string, string, string, string]> = [
      ["measure", "rgrid", "floor", "ratio", "target"],
      [
        "RetryExecution p50, c=1",
        ms(median((r) => r.retryP50)),
        `${ms(floorP50)} (hops ${ms(median((r) => r.hopsP50))} + db ${ms(median((r) => r.dbP50))} + copies ${ms(median((r) => r.copyP50))})`,
        ratio(median((r) => r.retryP50), floorP50),
        backend.kind === "embedded" ? "≤ 1.40×" : "",
      ],
      [
        "server CPU per retry",
        ms(median((r) => r.retryCpu)),
        `${ms(floorCpu)} (hops ${ms(median((r) => r.hopsCpu))} + db ${ms(median((r) => r.dbCpu))} + copies ${ms(median((r) => r.copyCpu))})`,
        ratio(median((r) => r.retryCpu), floorCpu),
        backend.kind === "embedded" ? "≤ 1.60×" : "",
      ],
      [
        `throughput, c=${CONCURRENCY}`,
        `${median((r) => r.retryThroughput.perSecond).toFixed(0)}/s`,
        `${throughputFloor.toFixed(0)}/s (hops ${median((r) => r.hopsThroughput.perSecond).toFixed(0)}/s, db ${median((r) => r.dbThroughput.perSecond).toFixed(0)}/s)`,
        ratio(median((r) => r.retryThroughput.perSecond), throughputFloor),
        backend.kind === "embedded" ? "≥ 0.70×" : "≥ 0.60×",
      ],
    ];
    if (backend.kind === "embedded") {
      // Measured here, on the grid the figures above were measured on, before the listing's
      // 100k rows and the 10,000 retries of the memory figure are added.
      const cli = await cliAgainstImportFloor(bench, originalId, work);
      rows.push(["`rgrid retry` wall, median", ms(cli.retry), `${ms(cli.floor)} (node loading connect, connect-node, protobuf, commander)`, ratio(cli.retry, cli.floor), "≤ 1.30×"]);
      rows.push(["  the same, first run (no compile cache)", ms(cli.firstRun), ms(cli.floor), ratio(cli.firstRun, cli.floor), ""]);
    }
    const pages = await listPages(bench.client, raw);
    rows.push([
      `ListExecutions page at ${LISTED / 1000}k executions, p50`,
      `${ms(pages.deep)} (${pages.depth.toLocaleString("en")} rows deep)`,
      `${ms(pages.first)} (the first page)`,
      ratio(pages.deep, pages.first),
      "≤ 1.50×",
    ]);
    if (backend.kind === "embedded") {
      const memory = await rssAcrossRetries(retry, servicePids[0] as number);
      rows.push([
        "execution-service RSS, 10,000 retries on",
        `${memory.after10k.toFixed(0)} MiB`,
        `${memory.after1k.toFixed(0)} MiB (1,000 retries on)`,
        ratio(memory.after10k, memory.after1k),
        "≤ 1.20×",
      ]);
    }
    printRows(rows);
    printCpuSplit(backend, rounds);
  } finally {
    await raw?.close();
    for (const hop of hops) hop.kill("SIGTERM");
    await bench.stop();
    removeWhenDone(work);
  }
}

/** Latency of `call` one at a time, and the CPU the given processes (or this one) spent per call. */
async function sequential(call: () => Promise<unknown>, pids: number[], inProcess = false): Promise<{ p50: number; cpuPerCall: number }> {
  const cpuBefore = inProcess ? cpuOfThisProcess() : cpuOf(pids);
  const latencies: number[] = [];
  for (let i = 0; i < SEQUENTIAL; i++) {
    const started = performance.now();
    await call();
    latencies.push(performance.now() - started);
  }
  const cpuAfter = inProcess ? cpuOfThisProcess() : cpuOf(pids);
  return { p50: percentile(latencies, 50), cpuPerCall: (cpuAfter - cpuBefore) / SEQUENTIAL };
}

/** `call` CONCURRENCY at a time: calls per second, and who spent how much CPU per call (`serverPids`: front, back). */
async function throughput(call: () => Promise<unknown>, serverPids: readonly number[], databasePids: () => number[]): Promise<Throughput> {
  const serversBefore = serverPids.map((pid) => cpuOf([pid]));
  const hereBefore = cpuOfThisProcess();
  const databaseBefore = new Map(databasePids().map((pid) => [pid, cpuOfIfRunning(pid)]));
  let remaining = CONCURRENT;
  const worker = async () => {
    while (remaining-- > 0) await call();
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  const perSecond = CONCURRENT / ((performance.now() - started) / 1000);
  const server = (index: number) => (index < serverPids.length ? cpuOf([serverPids[index]!]) - serversBefore[index]! : 0);
  // The pool's connections live through the run; one that ended meanwhile took its ticks along.
  let database = 0;
  for (const [pid, before] of databaseBefore) {
    const after = cpuOfIfRunning(pid);
    database += before === undefined || after === undefined ? 0 : after - before;
  }
  return {
    perSecond,
    cpu: {
      front: server(0) / CONCURRENT,
      back: server(1) / CONCURRENT,
      here: (cpuOfThisProcess() - hereBefore) / CONCURRENT,
      database: database / CONCURRENT,
    },
  };
}

/** The table of where a call's CPU went at CONCURRENCY, rgrid beside each floor (medians of the rounds). */
function printCpuSplit(backend: Backend, rounds: readonly Round[]): void {
  const median = (pick: (round: Round) => number) => percentile(rounds.map(pick), 50);
  const columns: Array<(round: Round) => Throughput> = [(r) => r.retryThroughput, (r) => r.hopsThroughput, (r) => r.dbThroughput];
  const cell = (part: (cpu: CpuSplit) => number) => columns.map((of) => ms(median((r) => part(of(r).cpu))));
  const rows: string[][] = [
    ["part", "RetryExecution", "floor: two hops", "floor: raw driver"],
    ["execution-service / the front hop", ...cell((cpu) => cpu.front)],
    ["storage-service / the back hop", ...cell((cpu) => cpu.back)],
    ["this process: the client, or the raw driver", ...cell((cpu) => cpu.here)],
  ];
  if (backend.kind !== "embedded") {
    rows.push(["PostgreSQL's server processes", ...cell((cpu) => cpu.database)]);
  }
  rows.push(["all of them", ...cell((cpu) => cpu.front + cpu.back + cpu.here + cpu.database)]);
  process.stdout.write(`\nCPU per call at c=${CONCURRENCY}, by process (medians of ${rounds.length} rounds): what throughput is spent on\n\n`);
  printRows(rows);
}

/** The resident memory of execution-service after 1,000 retries, and after 10,000: growth means a leak. */
async function rssAcrossRetries(retry: () => Promise<unknown>, pid: number): Promise<{ after1k: number; after10k: number }> {
  const rssMiB = () => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1]) / 1024;
  const retries = async (count: number) => {
    let remaining = count;
    await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
      while (remaining-- > 0) await retry();
    }));
  };
  await retries(1_000);
  const after1k = rssMiB();
  await retries(9_000);
  return { after1k, after10k: rssMiB() };
}

/** The first page of a listing against one deep in it, at LISTED executions, interleaved. */
async function listPages(client: BenchGrid["client"], raw: RawDatabase): Promise<{ first: number; deep: number; depth: number }> {
  const { executions } = await client.listExecutions({ pageSize: 1 });
  await raw.addExecutions(LISTED - executions.length);
  // Deep in the listing: the page after the execution 90% of the way down, by its own token.
  const depth = Math.floor(LISTED * 0.9);
  let token = "";
  for (let skipped = 0; skipped < depth; skipped += 500) {
    const page = await client.listExecutions({ pageSize: Math.min(500, depth - skipped), pageToken: token });
    token = page.nextPageToken;
    if (token === "") {
      throw new Error(`the listing ended ${skipped + page.executions.length} rows deep, before ${depth}`);
    }
  }
  const first: number[] = [];
  const deep: number[] = [];
  for (let i = 0; i < LIST_CALLS; i++) {
    let started = performance.now();
    await client.listExecutions({ pageSize: LIST_PAGE });
    first.push(performance.now() - started);
    started = performance.now();
    await client.listExecutions({ pageSize: LIST_PAGE, pageToken: token });
    deep.push(performance.now() - started);
  }
  return { first: percentile(first, 50), deep: percentile(deep, 50), depth };
}

/** User + system CPU milliseconds of processes, from /proc (10 ms ticks; enough over 200 calls). */
function cpuOf(pids: readonly number[]): number {
  return pids.reduce((sum, pid) => sum + processCpuMillis(pid), 0);
}

/** As cpuOf, for a process that may have ended: undefined then. */
function cpuOfIfRunning(pid: number): number | undefined {
  try {
    return cpuOf([pid]);
  } catch {
    return undefined;
  }
}

/** PostgreSQL's server processes on this machine, when it runs here (none when it runs elsewhere). */
function localPostgresPids(): number[] {
  return readdirSync("/proc")
    .filter((entry) => /^\d+$/.test(entry))
    .filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/comm`, "utf8").trim() === "postgres";
      } catch {
        return false; // ended since the listing
      }
    })
    .map(Number);
}

function cpuOfThisProcess(): number {
  const usage = process.cpuUsage();
  return (usage.user + usage.system) / 1000;
}

function startHop(hops: ChildProcess[], args: string[]): Promise<{ url: string }> {
  const child = spawn(process.execPath, [HOP, ...args], { stdio: ["ignore", "pipe", "inherit"] });
  hops.push(child);
  return new Promise((resolvePromise, reject) => {
    child.once("exit", (code) => reject(new Error(`floor hop ${args[0]} exited with ${code}`)));
    createInterface({ input: child.stdout! }).on("line", (line) => {
      const url = /listening url=(\S+)/.exec(line)?.[1];
      if (url) resolvePromise({ url });
    });
  });
}

/**
 * `rgrid retry` against what any Connect CLI must load: node with connect, connect-node, protobuf
 * and commander. As users run it, from its compile cache (kept after the first run), and as on a
 * first run, with an empty cache directory each time.
 */
async function cliAgainstImportFloor(bench: BenchGrid, originalId: string, work: string): Promise<{ retry: number; firstRun: number; floor: number }> {
  const floorScript = "require('@connectrpc/connect'); require('@connectrpc/connect-node'); require('@bufbuild/protobuf'); require('commander')";
  const cwd = resolve(__dirname, "../../cli");
  const retry = async (env: NodeJS.ProcessEnv) => {
    const retried = await runCommand(process.execPath, [CLI, "retry", originalId], { env, cwd });
    if (retried.code !== 0) throw new Error(`rgrid retry failed: ${retried.stderr}`);
    return retried.wallMillis;
  };
  const retries: number[] = [];
  const firstRuns: number[] = [];
  const floors: number[] = [];
  for (let i = 0; i < CLI_RUNS; i++) {
    retries.push(await retry(bench.cliEnv));
    firstRuns.push(await retry({ ...bench.cliEnv, XDG_CACHE_HOME: join(work, `cli-cache-${i}`) }));
    floors.push((await runCommand(process.execPath, ["-e", floorScript], { env: bench.cliEnv, cwd })).wallMillis);
  }
  return { retry: percentile(retries, 50), firstRun: percentile(firstRuns, 50), floor: percentile(floors, 50) };
}

function ratio(measured: number, floor: number): string {
  return `${(measured / floor).toFixed(2)}×`;
}

function printRows(rows: ReadonlyArray<readonly string[]>): void {
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => (row[column] ?? "").length)));
  for (const row of rows) {
    process.stdout.write(`${row.map((cell, column) => cell.padEnd(widths[column] ?? 0)).join("  ").trimEnd()}\n`);
  }
}

async function main(): Promise<void> {
  const chosen = process.argv[2];
  if (chosen === undefined || chosen === "sqlite") {
    await floorOn(embeddedBackend);
  }
  if (chosen === undefined || chosen === "postgresql") {
    const backend = await postgresFilesBackend();
    if ("unavailable" in backend) {
      process.stdout.write(`\nPostgreSQL skipped: ${backend.unavailable}\n`);
    } else {
      try {
        await floorOn(backend);
      } finally {
        await backend.close();
      }
    }
  }
}

runBenchmark(main);
