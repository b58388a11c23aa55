// Dispatch latency: from the client's ConfirmUploads call (the execution becomes queued) to the
// execution's started_at (a waiting runner claimed it), with two runners idle and waiting.
// Tiny executions, one at a time, on the embedded defaults.
//
//   node bench/dist/dispatch.js
import { timestampMs } from "@bufbuild/protobuf/wkt";
import { startBenchGrid } from "./bench-grid";
import { runBenchmark } from "./entry";
import { createUploaded, waitUntilTerminal, wallClockMs, writeScript } from "./executions";
import { ms, percentile, printTable, target } from "./stats";

const WARM_UP = 5;
const EXECUTIONS = 100;
/** GetExecution polls while waiting for the end of a run; they do not affect started_at. */
const POLL_MILLIS = 20;

async function main(): Promise<void> {
  const bench = await startBenchGrid({ runners: 2 });
  try {
    const script = await writeScript(bench.dataDir, "tiny.py", "print('hi')\n");
    const dispatch: number[] = [];
    const confirmCalls: number[] = [];
    for (let i = 0; i < WARM_UP + EXECUTIONS; i++) {
      const executionId = await createUploaded(bench.client, script);
      const confirmSent = wallClockMs();
      await bench.client.confirmUploads({ executionId });
      const confirmAnswered = wallClockMs();
      const finished = await waitUntilTerminal(bench.client, executionId, POLL_MILLIS);
      if (!finished.startedAt) {
        throw new Error(`${executionId} finished without a started_at`);
      }
      if (i >= WARM_UP) {
        dispatch.push(timestampMs(finished.startedAt) - confirmSent);
        confirmCalls.push(confirmAnswered - confirmSent);
      }
    }

    const p50 = percentile(dispatch, 50);
    process.stdout.write(`\nDispatch latency, ${EXECUTIONS} sequential tiny executions, 2 idle runners, embedded defaults\n\n`);
    printTable([
      ["measure", "value", "target"],
      ["confirm call -> started_at, p50", ms(p50), target(p50, "<=", 50, "ms")],
      ["confirm call -> started_at, p99", ms(percentile(dispatch, 99)), ""],
      ["confirm call -> started_at, min", ms(Math.min(...dispatch)), ""],
      ["ConfirmUploads round trip, p50", ms(percentile(confirmCalls, 50)), ""],
      ["peak RSS execution-service", bench.peakRss("execution"), ""],
    ]);
  } finally {
    await bench.stop();
  }
}

runBenchmark(main);
