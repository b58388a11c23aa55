// The runner's configuration, parsed once from the environment by main.ts.

import * as os from "node:os";
import * as path from "node:path";
import { EnvReader, readLogFormat } from "@rgrid/common";
import type { Env, LogFormat } from "@rgrid/common";
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
  sandbox: SandboxConfig;
  logFormat: LogFormat;
}

/**
 * "required": refuse to start unless every isolation measure works on this machine;
 * "available": apply what works and announce (never hide) what is missing.
 */
export type IsolationMode = "required" | "available";

export interface SandboxConfig {
  isolation: IsolationMode;
  limits: ResourceLimits;
  /** Slot n runs its scripts as uid/gid `uidBase + n` when the runner is root. */
  uidBase: number;
  /** Set in the environment rather than defaulted: taken by another runner, it is an error. */
  uidBaseExplicit: boolean;
  /** Mount point of the cgroup v1 hierarchies (memory, pids). */
  cgroupRoot: string;
}

export interface ResourceLimits {
  cpuSeconds: number;
  maxFileBytes: number;
  maxProcesses: number;
  maxOpenFiles: number;
  memoryBytes: number;
}

const GIB = 1024 ** 3;

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
    sandbox: {
      isolation: reader.oneOf<IsolationMode>("RGRID_RUNNER_ISOLATION", ["required", "available"], "available"),
      limits: {
        cpuSeconds: reader.integer("RGRID_RUNNER_CPU_SECONDS", 3600, 1, 7 * 24 * 3600),
        maxFileBytes: reader.integer("RGRID_RUNNER_MAX_FILE_BYTES", GIB, 1024, 1024 * GIB),
        maxProcesses: reader.integer("RGRID_RUNNER_MAX_PROCESSES", 256, 8, 65536),
        maxOpenFiles: reader.integer("RGRID_RUNNER_MAX_OPEN_FILES", 1024, 64, 1_048_576),
        memoryBytes: reader.integer("RGRID_RUNNER_MEMORY_BYTES", GIB, 16 * 1024 ** 2, 1024 * GIB),
      },
      uidBase: reader.integer("RGRID_RUNNER_SANDBOX_UID_BASE", 61000, 1000, 2 ** 31 - 100),
      uidBaseExplicit: reader.optionalString("RGRID_RUNNER_SANDBOX_UID_BASE") !== undefined,
      cgroupRoot: path.resolve(reader.string("RGRID_RUNNER_CGROUP_ROOT", "/sys/fs/cgroup")),
    },
    logFormat: readLogFormat(reader),
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
