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
    });
    expect(config).toMatchObject({
      runnerName: "box-7",
      workDir: "/srv/rgrid",
      runtimes: ["node", "python"],
      concurrency: 8,
      killGraceSeconds: 1,
      shutdownGraceSeconds: 60,
    });
  });

  it("reports every problem at once, with no fallback for the token", () => {
    let caught: unknown;
    try {
      loadRunnerConfig({ RGRID_RUNNER_RUNTIMES: "python,ruby", RGRID_RUNNER_CONCURRENCY: "0" });
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    expect((caught as ConfigError).problems).toEqual([
      "RGRID_EXECUTION_URL is required",
      "RGRID_RUNNER_TOKEN is required",
      'RGRID_RUNNER_RUNTIMES: unknown runtime "ruby" (known: python, node)',
      'RGRID_RUNNER_CONCURRENCY must be an integer from 1 to 64, got "0"',
    ]);
  });
});
