import { execFile, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { bearerAuth, createConnectServer, silentLogger } from "@rgrid/common";
import type { SelfSignedCertificate } from "../../../packages/common/test/self-signed";
import { createSelfSignedCertificate, opensslAvailable } from "../../../packages/common/test/self-signed";
import { FakeStorage } from "./fake-storage";
import { executionRequest } from "./harness";
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

(opensslAvailable ? describe : describe.skip)("over TLS (skipped without the openssl CLI)", () => {
  let certificate: SelfSignedCertificate;
  beforeAll(async () => {
    certificate = await createSelfSignedCertificate();
  });
  afterAll(() => certificate.remove());

  test("serves https and calls an https StorageService trusted through NODE_EXTRA_CA_CERTS", async () => {
    // Storage over TLS with the same self-signed certificate; a fake, since this is about the wire.
    const storage = new FakeStorage();
    const storageServer = await createConnectServer({
      routes: storage.routes(),
      readMaxBytes: 1024 * 1024,
      tls: { cert: certificate.cert, key: certificate.key },
      logger: silentLogger,
    }).listen(0, "127.0.0.1");
    const env = { ...process.env, RGRID_DATABASE_URL: `sqlite:${join(dir, "rgrid.db")}` };
    const { stdout } = await promisify(execFile)(process.execPath, [MAIN, "create-api-key", "--account", "tls"], { env });
    const child = spawn(process.execPath, [MAIN], {
      env: {
        ...env,
        RGRID_EXECUTION_PORT: "0",
        RGRID_STORAGE_URL: storageServer.url,
        RGRID_INTERNAL_TOKEN: "internal-token-0123456789",
        RGRID_RUNNER_TOKENS: "runner-token-0123456789",
        RGRID_TLS_CERT_FILE: certificate.certFile,
        RGRID_TLS_KEY_FILE: certificate.keyFile,
        NODE_EXTRA_CA_CERTS: certificate.certFile,
      },
      stdio: ["ignore", "ignore", "pipe"],
    });
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
    try {
      const url = await new Promise<string>((resolve, reject) => {
        let seen = "";
        child.stderr.on("data", (chunk: Buffer) => {
          seen += chunk.toString();
          const match = /listening url=(\S+)/.exec(seen);
          if (match?.[1]) resolve(match[1]);
        });
        child.once("exit", () => reject(new Error(`exited before listening:\n${seen}`)));
      });
      expect(url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);

      const transport = createConnectTransport({
        baseUrl: url,
        httpVersion: "1.1",
        interceptors: [bearerAuth(stdout.trim())],
        nodeOptions: { ca: certificate.cert },
      });
      // Creating an execution asks storage for upload grants over the https connection.
      const created = await createClient(ExecutionService, transport).createExecution(executionRequest());
      expect(created.scriptUpload?.method).toBe("PUT");
      expect(storage.calls.createUploadGrants).toBe(1);
    } finally {
      child.kill("SIGTERM");
      await exited;
      await storageServer.close(1000);
    }
  });
});
