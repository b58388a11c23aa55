import { ConfigError } from "@rgrid/common";
import { loadExecutionConfig } from "../src/config";

const base = {
  RGRID_STORAGE_URL: "http://127.0.0.1:7401",
  RGRID_INTERNAL_TOKEN: "internal-token-0123456789",
  RGRID_RUNNER_TOKENS: "runner-token-0123456789",
};

function problemsOf(env: Record<string, string>): readonly string[] {
  try {
    loadExecutionConfig({ ...base, ...env }, "/");
  } catch (error) {
    if (error instanceof ConfigError) {
      return error.problems;
    }
    throw error;
  }
  throw new Error("the configuration was accepted");
}

describe("lease, heartbeat, retry backoff and log cap settings", () => {
  test("default to a 15 s lease, heartbeats every fifth of it, 5 s backoff and 10 MiB of logs", () => {
    expect(loadExecutionConfig(base, "/")).toMatchObject({
      leaseTimeoutMillis: 15_000,
      heartbeatIntervalMillis: 3_000,
      retryBackoffBaseMillis: 5_000,
      maxLogBytes: 10 * 1024 * 1024,
    });
  });

  test("accept fractions of a second, and derive the heartbeat from the lease", () => {
    const config = loadExecutionConfig(
      {
        ...base,
        RGRID_EXECUTION_LEASE_TIMEOUT_SECONDS: "0.5",
        RGRID_EXECUTION_RETRY_BACKOFF_SECONDS: "0.25",
        RGRID_EXECUTION_MAX_LOG_BYTES: "2048",
      },
      "/",
    );
    expect(config).toMatchObject({
      leaseTimeoutMillis: 500,
      heartbeatIntervalMillis: 100,
      retryBackoffBaseMillis: 250,
      maxLogBytes: 2048,
    });
    expect(
      loadExecutionConfig({ ...base, RGRID_EXECUTION_HEARTBEAT_INTERVAL_SECONDS: "1.5" }, "/").heartbeatIntervalMillis,
    ).toBe(1500);
  });

  test("report every bad value at once", () => {
    const problems = problemsOf({
      RGRID_EXECUTION_LEASE_TIMEOUT_SECONDS: "soon",
      RGRID_EXECUTION_HEARTBEAT_INTERVAL_SECONDS: "-1",
      RGRID_EXECUTION_RETRY_BACKOFF_SECONDS: "1e3",
      RGRID_EXECUTION_MAX_LOG_BYTES: "1.5",
    });
    expect(problems).toEqual([
      expect.stringContaining("RGRID_EXECUTION_LEASE_TIMEOUT_SECONDS"),
      expect.stringContaining("RGRID_EXECUTION_HEARTBEAT_INTERVAL_SECONDS"),
      expect.stringContaining("RGRID_EXECUTION_RETRY_BACKOFF_SECONDS"),
      expect.stringContaining("RGRID_EXECUTION_MAX_LOG_BYTES"),
    ]);
  });

  test("refuse a heartbeat interval that is not shorter than the lease", () => {
    expect(
      problemsOf({ RGRID_EXECUTION_LEASE_TIMEOUT_SECONDS: "2", RGRID_EXECUTION_HEARTBEAT_INTERVAL_SECONDS: "2" }),
    ).toEqual([expect.stringMatching(/HEARTBEAT_INTERVAL_SECONDS \(2\) must be less than .*LEASE_TIMEOUT_SECONDS \(2\)/)]);
  });
});

describe("janitor settings", () => {
  test("default to no periodic pass (a wrong database would make everything look orphaned) and an hour's grace", () => {
    expect(loadExecutionConfig(base, "/")).toMatchObject({ janitorIntervalMillis: 0, janitorGraceMillis: 3_600_000 });
    expect(loadExecutionConfig({ ...base, RGRID_EXECUTION_JANITOR_INTERVAL_SECONDS: "3600" }, "/").janitorIntervalMillis).toBe(3_600_000);
  });

  test("0 switches the periodic pass off; negative values are refused", () => {
    expect(loadExecutionConfig({ ...base, RGRID_EXECUTION_JANITOR_INTERVAL_SECONDS: "0" }, "/").janitorIntervalMillis).toBe(0);
    expect(problemsOf({ RGRID_EXECUTION_JANITOR_GRACE_SECONDS: "-1" }).join("\n")).toContain("RGRID_EXECUTION_JANITOR_GRACE_SECONDS");
  });
});
