// Memory under hostile load: RSS of execution-service and storage-service after 1,000 requests of
// the fuzz suites' malformed-request mix and after 10,000 more, the growth between the two (the
// target is at most 30 MiB), and each service's live heap at the end. The mix is the test suites'
// own (test/support/hostile-memory.ts, which only jest compiles), so this runs the benchmark mode
// of test/e2e/hostile-memory.test.ts and passes on what it prints.
//
//   node bench/dist/hostile-memory.js
import { spawn } from "node:child_process";
import { resolve } from "node:path";
import { runBenchmark } from "./entry";

const REPO_ROOT = resolve(__dirname, "../..");

async function main(): Promise<void> {
  const code = await new Promise<number | null>((resolvePromise, reject) => {
    const jest = spawn(process.execPath, [resolve(REPO_ROOT, "node_modules/jest/bin/jest.js"), "--runTestsByPath", "test/e2e/hostile-memory.test.ts", "--silent=false", "--verbose=false"], {
      cwd: REPO_ROOT,
      env: { ...process.env, RGRID_HOSTILE_MEMORY_BENCH: "1" },
      stdio: "inherit",
    });
    jest.once("error", reject);
    jest.once("exit", resolvePromise);
  });
  if (code !== 0) {
    throw new Error(`the benchmark run failed (jest exited with ${code})`);
  }
}

runBenchmark(main);
