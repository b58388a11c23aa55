// Log latency: a script prints a line stamped with the wall clock every 100 ms; the time from
// its print to its arrival at a follower on the same machine, measured twice — at a FollowLogs
// stream client, and at the stdout of `rgrid logs --follow` (the built CLI).
//
//   node bench/dist/log-latency.js
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { Code, ConnectError } from "@connectrpc/connect";
import { LogEntry_Stream } from "@rgrid/proto";
import { CLI, startBenchGrid } from "./bench-grid";
import type { BenchGrid } from "./bench-grid";
import { runBenchmark } from "./entry";
import { createUploaded, waitUntilTerminal, wallClockMs, writeScript } from "./executions";
import type { ScriptFile } from "./executions";
import { ms, percentile, printTable, target } from "./stats";

const LINES = 40;
// The pause before the first line lets the follower connect, so no line is read as a backlog.
const SCRIPT = `import time
time.sleep(1.5)
for i in range(${LINES}):
    print(f"{time.time_ns()} {i}", flush=True)
    time.sleep(0.1)
`;
const FOLLOW_TIMEOUT_MILLIS = 60_000;

async function main(): Promise<void> {
  const bench = await startBenchGrid({ runners: 1 });
  try {
    const script = await writeScript(bench.dataDir, "ticker.py", SCRIPT);
    const rows: Array<[string, string, string]> = [["measure", "value", "target"]];
    const add = (follower: string, latencies: number[] | string) => {
      if (typeof latencies === "string") {
        rows.push([`print -> ${follower}`, latencies, ""]);
        return;
      }
      const p50 = percentile(latencies, 50);
      rows.push([`print -> ${follower}, p50`, ms(p50), target(p50, "<=", 200, "ms")]);
      rows.push([`print -> ${follower}, p99`, ms(percentile(latencies, 99)), ""]);
      rows.push([`lines received by ${follower}`, `${latencies.length}/${LINES}`, ""]);
    };
    add("FollowLogs stream", await throughFollowLogs(bench, script));
    add("`rgrid logs --follow` stdout", await throughCli(bench, script));

    process.stdout.write(`\nLog latency, one line every 100 ms, ${LINES} lines per follower, embedded defaults\n\n`);
    printTable(rows);
  } finally {
    await bench.stop();
  }
}

/** Latencies of the script's lines as a FollowLogs stream receives them, or why there are none. */
async function throughFollowLogs(bench: BenchGrid, script: ScriptFile): Promise<number[] | string> {
  const executionId = await createUploaded(bench.client, script);
  await bench.client.confirmUploads({ executionId });
  const latencies: number[] = [];
  try {
    const stream = bench.client.followLogs(
      { executionId, afterSequence: 0n },
      { signal: AbortSignal.timeout(FOLLOW_TIMEOUT_MILLIS) },
    );
    for await (const message of stream) {
      const arrived = wallClockMs();
      for (const entry of message.entries) {
        if (entry.stream === LogEntry_Stream.STDOUT) {
          latencies.push(arrived - printedAt(entry.line));
        }
      }
    }
  } catch (error) {
    if (error instanceof ConnectError && error.code === Code.Unimplemented) {
      await waitUntilTerminal(bench.client, executionId, 100);
      return "skipped: FollowLogs is not implemented by this execution-service";
    }
    throw error;
  }
  return latencies;
}

/** Latencies of the script's lines as `rgrid logs --follow` prints them. */
async function throughCli(bench: BenchGrid, script: ScriptFile): Promise<number[]> {
  const executionId = await createUploaded(bench.client, script);
  // Started before the execution is queued, so the CLI is following when the first line comes.
  const cli = spawn(process.execPath, [CLI, "logs", executionId, "--follow"], {
    env: bench.cliEnv,
    stdio: ["ignore", "pipe", "inherit"],
  });
  const exited = new Promise<number | null>((resolve) => cli.once("exit", resolve));
  const latencies: number[] = [];
  createInterface({ input: cli.stdout, crlfDelay: Infinity }).on("line", (line) => {
    latencies.push(wallClockMs() - printedAt(line));
  });
  await bench.client.confirmUploads({ executionId });
  const timer = setTimeout(() => cli.kill(), FOLLOW_TIMEOUT_MILLIS);
  const code = await exited;
  clearTimeout(timer);
  if (code !== 0) {
    throw new Error(`rgrid logs --follow exited with ${code}`);
  }
  return latencies;
}

function printedAt(line: string): number {
  const nanos = /^(\d+) \d+$/.exec(line)?.[1];
  if (nanos === undefined) {
    throw new Error(`unexpected line from the script: ${line}`);
  }
  return Number(BigInt(nanos) / 1000n) / 1000;
}

runBenchmark(main);
