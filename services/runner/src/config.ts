// The runner's configuration, parsed once from the environment by main.ts.

import * as os from "node:os";
import * as path from "node:path";
import { EnvReader } from "@rgrid/common";
import type { Env } from "@rgrid/common";
import { RUNTIME_FAMILIES } from "./runtimes";

export interface RunnerConfig {
  /** Base URL of execution-service, which serves RunnerService. */
  executionUrl: string;
  runnerToken: string;
  runnerName: string;
  /** Parent of the per-execution working directories. */
  workDir: string;
  /** Runtime families to advertise; undefined means "whatever is found". */
  runtimes: string[] | undefined;
  concurrency: number;
  killGraceSeconds: number;
  /** How long running executions may go on after SIGTERM before they are killed. */
  shutdownGraceSeconds: number;
  /** The runner's own PATH, searched for interpreters (never passed to scripts). */
  searchPath: string;
}

export function loadRunnerConfig(env: Env): RunnerConfig {
  const reader = new EnvReader(env);
  const config: RunnerConfig = {
    executionUrl: reader.url("RGRID_EXECUTION_URL"),
    runnerToken: reader.secret("RGRID_RUNNER_TOKEN"),
    runnerName: reader.string("RGRID_RUNNER_NAME", os.hostname()),
    workDir: path.resolve(reader.string("RGRID_RUNNER_WORK_DIR", path.join(os.tmpdir(), "rgrid-runner"))),
    runtimes: parseRuntimeList(reader, reader.optionalString("RGRID_RUNNER_RUNTIMES")),
    concurrency: reader.integer("RGRID_RUNNER_CONCURRENCY", 2, 1, 64),
    killGraceSeconds: reader.integer("RGRID_RUNNER_KILL_GRACE_SECONDS", 5, 0, 300),
    shutdownGraceSeconds: reader.integer("RGRID_RUNNER_SHUTDOWN_GRACE_SECONDS", 30, 0, 3600),
    searchPath: reader.string("PATH", "/usr/local/bin:/usr/bin:/bin"),
  };
  reader.finish();
  return config;
}

function parseRuntimeList(reader: EnvReader, raw: string | undefined): string[] | undefined {
  if (raw === undefined) {
    return undefined;
  }
  const names = [...new Set(raw.split(",").map((name) => name.trim()).filter((name) => name !== ""))];
  if (names.length === 0) {
    reader.problem("RGRID_RUNNER_RUNTIMES must name at least one runtime");
  }
  for (const name of names) {
    if (!(RUNTIME_FAMILIES as readonly string[]).includes(name)) {
      reader.problem(`RGRID_RUNNER_RUNTIMES: unknown runtime "${name}" (known: ${RUNTIME_FAMILIES.join(", ")})`);
    }
  }
  return names;
}
