// RGRID_LOG_FORMAT as the built processes read it: JSON lines a collector can parse (with the
// request id a client sent), and a value no process knows refused at start with a clear message.
import { execFile, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { Health } from "@rgrid/proto";
import { REPO_ROOT } from "../support/grid";

const MAINS = {
  storage: join(REPO_ROOT, "services", "storage", "dist", "main.js"),
  execution: join(REPO_ROOT, "services", "execution", "dist", "main.js"),
  runner: join(REPO_ROOT, "services", "runner", "dist", "main.js"),
};

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "rgrid-log-format-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Settings each process needs to start, apart from its log format. */
function envOf(service: keyof typeof MAINS): Record<string, string> {
  const common = { PATH: process.env["PATH"] ?? "/usr/bin:/bin", RGRID_INTERNAL_TOKEN: "internal-token-0123456789" };
  switch (service) {
    case "storage":
      return { ...common, RGRID_STORAGE_PORT: "0", RGRID_STORAGE_DIR: join(dir, "objects"), RGRID_STORAGE_SIGNING_KEY: "signing-key-0123456789" };
    case "execution":
      return {
        ...common,
        RGRID_EXECUTION_PORT: "0",
        RGRID_DATABASE_URL: `sqlite:${join(dir, "rgrid.db")}`,
        RGRID_STORAGE_URL: "http://127.0.0.1:9",
        RGRID_RUNNER_TOKENS: "runner-token-0123456789",
        RGRID_CONSOLE: "off",
      };
    case "runner":
      return { ...common, RGRID_EXECUTION_URL: "http://127.0.0.1:9", RGRID_RUNNER_TOKEN: "runner-token-0123456789", RGRID_RUNNER_WORK_DIR: join(dir, "work") };
  }
}

test.each([
  ["storage", 1],
  ["execution", 2],
  ["runner", 2],
] as const)("%s refuses to start with an unknown RGRID_LOG_FORMAT, saying which values it takes", async (service, exitCode) => {
  const failed = await promisify(execFile)(process.execPath, [MAINS[service]], {
    env: { ...envOf(service), RGRID_LOG_FORMAT: "yaml" },
    cwd: dir,
  }).then(
    () => undefined,
    (error: { code: number; stderr: string }) => error,
  );
  expect(failed?.code).toBe(exitCode);
  expect(failed?.stderr).toContain("invalid configuration");
  expect(failed?.stderr).toContain('RGRID_LOG_FORMAT must be one of text, json, got "yaml"');
  // A message for a person, not a crash.
  expect(failed?.stderr).not.toMatch(/\n\s+at /);
});

test("with RGRID_LOG_FORMAT=json, every line execution-service writes is a JSON object, the RPC's with the client's request id", async () => {
  const child = spawn(process.execPath, [MAINS.execution], {
    env: { ...envOf("execution"), RGRID_LOG_FORMAT: "json" },
    cwd: dir,
    stdio: ["ignore", "ignore", "pipe"],
  });
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  let output = "";
  child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString("utf8")));
  const records = () => output.split("\n").filter((line) => line !== "").map((line) => JSON.parse(line) as Record<string, unknown>);
  try {
    const url = await waitFor(() => records().find((record) => record["msg"] === "listening")?.["url"] as string | undefined);
    await createClient(Health, createConnectTransport({ baseUrl: url, httpVersion: "1.1" })).check({}, { headers: { "x-request-id": "e2e-json-1" } });
    const rpc = await waitFor(() => records().find((record) => record["requestId"] === "e2e-json-1"));
    expect(rpc).toMatchObject({ level: "info", component: "execution/rpc", msg: "rpc", rpc: "grpc.health.v1.Health/Check", code: "ok" });
    expect(typeof rpc["time"]).toBe("string");
  } finally {
    child.kill("SIGTERM");
  }
  expect(await exited).toBe(0);
  expect(records().map((record) => record["msg"])).toEqual(expect.arrayContaining(["database ready", "listening", "rpc", "stopping", "stopped"]));
});

async function waitFor<T>(find: () => T | undefined, timeoutMillis = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMillis;
  for (;;) {
    const found = find();
    if (found !== undefined) {
      return found;
    }
    if (Date.now() > deadline) {
      throw new Error("timed out waiting for a log line");
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
