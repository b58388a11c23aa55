// What running remotely costs over running locally: wall time of `rgrid run --wait hello.py`
// (the built CLI, one idle runner, embedded defaults) against `python3 hello.py`.
//
//   node bench/dist/run-overhead.js
import { CLI, startBenchGrid } from "./bench-grid";
import { runCommand } from "./command";
import { runBenchmark } from "./entry";
import { writeScript } from "./executions";
import { ms, percentile, printTable, target } from "./stats";

const RUNS = 20;

async function main(): Promise<void> {
  const bench = await startBenchGrid({ runners: 1 });
  try {
    await writeScript(bench.dataDir, "hello.py", "print('hello')\n");
    const timeRuns = async (runs: number, command: string, args: string[], env: NodeJS.ProcessEnv) => {
      const times: number[] = [];
      for (let i = 0; i < runs; i++) {
        const result = await runCommand(command, args, { cwd: bench.dataDir, env });
        times.push(result.wallMillis);
        if (result.code !== 0 || !result.stdout.includes("hello")) {
          throw new Error(`${command} ${args.join(" ")} failed (${result.code}): ${result.stdout}${result.stderr}`);
        }
      }
      return times;
    };
    // One remote run first: the runner's first python start and the CLI's first connection
    // would otherwise count against a single sample.
    await timeRuns(1, process.execPath, [CLI, "run", "--wait", "hello.py"], bench.cliEnv);
    const local = await timeRuns(RUNS, "python3", ["hello.py"], { PATH: process.env.PATH });
    const remote = await timeRuns(RUNS, process.execPath, [CLI, "run", "--wait", "hello.py"], bench.cliEnv);

    const overhead = percentile(remote, 50) - percentile(local, 50);
    process.stdout.write(`\nrgrid run --wait hello.py vs python3 hello.py, ${RUNS} runs each, 1 idle runner, embedded defaults\n\n`);
    printTable([
      ["measure", "value", "target"],
      ["python3 hello.py, median", ms(percentile(local, 50)), ""],
      ["rgrid run --wait hello.py, median", ms(percentile(remote, 50)), ""],
      ["rgrid run --wait hello.py, p90", ms(percentile(remote, 90)), ""],
      ["overhead (difference of medians)", ms(overhead), target(overhead, "<=", 600, "ms")],
    ]);
  } finally {
    await bench.stop();
  }
}

runBenchmark(main);
