import { createClient } from "@connectrpc/connect";
import { silentLogger } from "@rgrid/common";
import { RunnerService } from "@rgrid/proto";
import { createRunner } from "../src/runner";
import type { Runner, RunnerDeps } from "../src/runner";
import type { FakeRunnerService } from "./fake-runner-service";

/**
 * A runner of `service` with short waits and retries, so that tests see claims, log flushes and
 * retries promptly; `settings` give what each test is about.
 */
export function createTestRunner(
  service: FakeRunnerService,
  settings: Pick<RunnerDeps, "name" | "runtimes" | "workDir" | "concurrency" | "sandbox"> & Partial<RunnerDeps>,
): Runner {
  return createRunner({
    client: createClient(RunnerService, service.transport),
    logger: silentLogger,
    version: "0.0.0",
    killGraceMs: 500,
    shutdownGraceMs: 5000,
    claimWaitMillis: 1000,
    retryPolicy: { initialDelayMs: 10, maxDelayMs: 50, maxAttempts: 5 },
    logFlushIntervalMs: 20,
    ...settings,
  });
}
