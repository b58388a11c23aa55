import * as os from "node:os";
import * as path from "node:path";
import { ConfigError } from "@rgrid/common";
import { loadRunnerConfig } from "../src/config";

describe("loadRunnerConfig", () => {
  it("applies the documented defaults", () => {
    const config = loadRunnerConfig({
      RGRID_EXECUTION_URL: "http://127.0.0.1:7400/",
      RGRID_RUNNER_TOKEN: "runner-token-0123456789",
      PATH: "/usr/bin:/bin",
    });
    expect(config).toEqual({
      executionUrl: "http://127.0.0.1:7400",
      runnerToken: "runner-token-0123456789",
      runnerName: os.hostname(),
      workDir: path.join(os.tmpdir(), "rgrid-runner"),
      runtimes: undefined,
      concurrency: 2,
      killGraceSeconds: 5,
      shutdownGraceSeconds: 30,
      searchPath: "/usr/bin:/bin",
      sandbox: {
        isolation: "available",
        limits: { cpuSeconds: 3600, maxFileBytes: 1024 ** 3, maxProcesses: 256, maxOpenFiles: 1024, memoryBytes: 1024 ** 3 },
        uidBase: 61000,
        uidBaseExplicit: false,
        cgroupRoot: "/sys/fs/cgroup",
      },
      logFormat: "text",
    });
  });

  it("reads every variable", () => {
    const config = loadRunnerConfig({
      RGRID_EXECUTION_URL: "https://exec.internal:7400",
      RGRID_RUNNER_TOKEN: "runner-token-0123456789",
      RGRID_RUNNER_NAME: "box-7",
      RGRID_RUNNER_WORK_DIR: "/srv/rgrid",
      RGRID_RUNNER_RUNTIMES: "node, python",
      RGRID_RUNNER_CONCURRENCY: "8",
      RGRID_RUNNER_KILL_GRACE_SECONDS: "1",
      RGRID_RUNNER_SHUTDOWN_GRACE_SECONDS: "60",
      RGRID_RUNNER_ISOLATION: "required",
      RGRID_RUNNER_CPU_SECONDS: "60",
      RGRID_RUNNER_MAX_FILE_BYTES: "1048576",
      RGRID_RUNNER_MAX_PROCESSES: "32",
      RGRID_RUNNER_MAX_OPEN_FILES: "128",
      RGRID_RUNNER_MEMORY_BYTES: "268435456",
      RGRID_RUNNER_SANDBOX_UID_BASE: "70000",
      RGRID_RUNNER_CGROUP_ROOT: "/cg",
      RGRID_LOG_FORMAT: "json",
    });
    expect(config).toMatchObject({
      runnerName: "box-7",
      workDir: "/srv/rgrid",
      runtimes: ["node", "python"],
      concurrency: 8,
      killGraceSeconds: 1,
      shutdownGraceSeconds: 60,
      sandbox: {
        isolation: "required",
        limits: { cpuSeconds: 60, maxFileBytes: 1048576, maxProcesses: 32, maxOpenFiles: 128, memoryBytes: 268435456 },
        uidBase: 70000,
        uidBaseExplicit: true,
        cgroupRoot: "/cg",
      },
      logFormat: "json",
    });
  });

  it("reports every problem at once, with no fallback for the token", () => {
    let caught: unknown;
    try {
      loadRunnerConfig({
        RGRID_RUNNER_RUNTIMES: "python,ruby",
        RGRID_RUNNER_CONCURRENCY: "0",
        RGRID_RUNNER_ISOLATION: "strict",
        RGRID_RUNNER_MEMORY_BYTES: "lots",
      });
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    expect((caught as ConfigError).problems).toEqual([
      "RGRID_EXECUTION_URL is required",
      "RGRID_RUNNER_TOKEN is required",
      'RGRID_RUNNER_RUNTIMES: unknown runtime "ruby" (known: python, node)',
      'RGRID_RUNNER_CONCURRENCY must be an integer from 1 to 64, got "0"',
      'RGRID_RUNNER_ISOLATION must be one of required, available, got "strict"',
      'RGRID_RUNNER_MEMORY_BYTES must be an integer from 16777216 to 1099511627776, got "lots"',
    ]);
  });
});
