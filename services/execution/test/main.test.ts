import { execFile, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { bearerAuth } from "@rgrid/common";
import { ExecutionService, Health, HealthCheckResponse_ServingStatus } from "@rgrid/proto";

// Over the wire: the built entry point, as the local launcher and production run it.
const MAIN = join(__dirname, "..", "dist", "main.js");

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "rgrid-execution-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

test("create-api-key prints only a key, and the served API accepts it until SIGTERM", async () => {
  const env = { ...process.env, RGRID_DATABASE_URL: `sqlite:${join(dir, "db", "rgrid.db")}` };
  const { stdout } = await promisify(execFile)(process.execPath, [MAIN, "create-api-key", "--account", "local"], { env });
  const key = stdout.trim();
  expect(stdout).toMatch(/^rgrid_[A-Za-z0-9_-]{43}\n$/);

  const child = spawn(process.execPath, [MAIN], {
    env: {
      ...env,
      RGRID_EXECUTION_PORT: "0",
      RGRID_STORAGE_URL: "http://127.0.0.1:9",
      RGRID_INTERNAL_TOKEN: "internal-token-0123456789",
      RGRID_RUNNER_TOKENS: "runner-token-0123456789",
    },
    stdio: ["ignore", "ignore", "pipe"],
  });
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  const url = await new Promise<string>((resolve, reject) => {
    let seen = "";
    child.stderr.on("data", (chunk: Buffer) => {
      seen += chunk.toString();
      const match = /listening url=(http:\/\/\S+)/.exec(seen);
      if (match?.[1]) resolve(match[1]);
    });
    child.once("exit", () => reject(new Error(`exited before listening:\n${seen}`)));
  });

  try {
    const transport = createConnectTransport({ baseUrl: url, httpVersion: "1.1", interceptors: [bearerAuth(key)] });
    const health = await createClient(Health, transport).check({});
    expect(health.status).toBe(HealthCheckResponse_ServingStatus.SERVING);
    const listed = await createClient(ExecutionService, transport).listExecutions({});
    expect(listed.executions).toEqual([]);
  } finally {
    child.kill("SIGTERM");
  }
  expect(await exited).toBe(0);
});

test("a configuration missing its secrets is refused with every problem listed", async () => {
  const result = await promisify(execFile)(process.execPath, [MAIN], {
    env: { PATH: process.env["PATH"], RGRID_DATABASE_URL: "mysql://x" },
  }).then(
    () => undefined,
    (error: { code: number; stderr: string }) => error,
  );
  expect(result?.code).toBe(2);
  expect(result?.stderr).toContain("RGRID_DATABASE_URL must start with sqlite: or postgres://");
  expect(result?.stderr).toContain("RGRID_STORAGE_URL is required");
  expect(result?.stderr).toContain("RGRID_INTERNAL_TOKEN is required");
  expect(result?.stderr).toContain("RGRID_RUNNER_TOKENS is required");
});
