// Every benchmark, one after another, each in its own process so that none inherits another's
// warm caches or memory peak. Arguments are passed on to each (e.g. `embedded` to skip the
// PostgreSQL + S3 runs).
//
//   node bench/dist/all.js [embedded|production]
import { spawn } from "node:child_process";
import { join } from "node:path";
import { runBenchmark } from "./entry";

const BENCHMARKS = ["dispatch", "log-latency", "run-overhead", "retry", "batch-retry", "console", "hostile-memory", "validation"];
// These run on one backend only (the embedded defaults) and take no argument.
const EMBEDDED_ONLY = new Set(["dispatch", "log-latency", "run-overhead", "console", "hostile-memory", "validation"]);

async function main(): Promise<void> {
  const backend = process.argv[2];
  const started = performance.now();
  const failed: string[] = [];
  for (const name of BENCHMARKS) {
    if (backend === "production" && EMBEDDED_ONLY.has(name)) {
      continue;
    }
    const args = EMBEDDED_ONLY.has(name) || backend === undefined ? [] : [backend];
    const benchStarted = performance.now();
    const code = await new Promise<number | null>((resolve, reject) => {
      const child = spawn(process.execPath, [join(__dirname, `${name}.js`), ...args], { stdio: "inherit" });
      child.once("error", reject);
      child.once("exit", resolve);
    });
    process.stdout.write(`(${name}: ${((performance.now() - benchStarted) / 1000).toFixed(0)} s)\n`);
    if (code !== 0) {
      failed.push(name);
    }
  }
  process.stdout.write(`\nAll benchmarks: ${((performance.now() - started) / 1000).toFixed(0)} s\n`);
  if (failed.length > 0) {
    throw new Error(`failed: ${failed.join(", ")}`);
  }
}

runBenchmark(main);
