import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { bearerAuth, newExecutionId } from "@rgrid/common";
import { Health, HealthCheckResponse_ServingStatus, ObjectKind, StorageService } from "@rgrid/proto";
import type { S3rverFixture } from "./helpers";
import { startS3rver, tempDir, uniqueBucketName } from "./helpers";
import type { SelfSignedCertificate } from "../../../packages/common/test/self-signed";
import { createSelfSignedCertificate, opensslAvailable } from "../../../packages/common/test/self-signed";

// The built entry point as a process: configuration from the environment, the pinned
// "listening url=" line, and a graceful exit on SIGTERM. Runs against dist/, built by `tsc -b`.
const MAIN = join(__dirname, "..", "dist", "main.js");
const TOKEN = "internal-token-for-main-0123456789";

interface Started {
  child: ChildProcess;
  url: string;
  /** How it ended: its exit code, or the signal that ended it. */
  exited: Promise<number | NodeJS.Signals | null>;
  /** Everything it wrote to stderr so far. */
  output(): string;
}

async function startMain(env: Record<string, string>, cwd: string): Promise<Started> {
  if (!existsSync(MAIN)) {
    throw new Error(`${MAIN} is missing: build with \`npx tsc -b services/storage\` first`);
  }
  const child = spawn(process.execPath, [MAIN], {
    cwd,
    env: { PATH: process.env.PATH ?? "", RGRID_INTERNAL_TOKEN: TOKEN, RGRID_STORAGE_PORT: "0", ...env },
    stdio: ["ignore", "ignore", "pipe"],
  });
  const exited = new Promise<number | NodeJS.Signals | null>((resolve) => child.once("exit", (code, signal) => resolve(code ?? signal)));
  let output = "";
  const url = await new Promise<string>((resolve, reject) => {
    child.stderr?.on("data", (chunk: Buffer) => {
      output += chunk.toString();
      const match = /listening url=(\S+)/.exec(output);
      if (match?.[1] !== undefined) {
        resolve(match[1]);
      }
    });
    void exited.then((code) => reject(new Error(`exited with ${code} before listening:\n${output}`)));
  });
  return { child, url, exited, output: () => output };
}

/** "exit 0" when it stopped gracefully; otherwise how it ended, with what it wrote. */
async function stopMain(started: Started): Promise<string> {
  started.child.kill("SIGTERM");
  const ended = await started.exited;
  return ended === 0 ? "exit 0" : `ended by ${ended}; its stderr:\n${started.output()}`;
}

describe("storage main", () => {
  it("serves the filesystem backend and exits 0 on SIGTERM", async () => {
    const dir = await tempDir("main");
    const started = await startMain({ RGRID_STORAGE_SIGNING_KEY: "signing-key-for-main-0123456789" }, dir.path);
    try {
      const transport = createConnectTransport({ baseUrl: started.url, httpVersion: "1.1", interceptors: [bearerAuth(TOKEN)] });
      expect((await createClient(Health, transport).check({})).status).toBe(HealthCheckResponse_ServingStatus.SERVING);
      const { grants } = await createClient(StorageService, transport).createUploadGrants({
        executionId: newExecutionId(),
        refs: [{ kind: ObjectKind.INPUT, name: "a.txt" }],
      });
      // Signed URLs default to the address the service listens on.
      expect(grants[0]?.url.startsWith(`${started.url}/objects/executions/`)).toBe(true);
      expect(existsSync(join(dir.path, ".rgrid", "objects"))).toBe(true);
    } finally {
      expect(await stopMain(started)).toBe("exit 0");
      await dir.remove();
    }
  });

  describe("with the S3 backend", () => {
    let s3: S3rverFixture;

    beforeAll(async () => {
      s3 = await startS3rver();
    });

    afterAll(async () => {
      await s3.stop();
    });

    it("creates the configured bucket at start", async () => {
      const dir = await tempDir("main-s3");
      const bucket = uniqueBucketName();
      const started = await startMain(
        {
          RGRID_STORAGE_BACKEND: "s3",
          RGRID_S3_ENDPOINT: s3.endpoint,
          RGRID_S3_ACCESS_KEY: "S3RVER",
          RGRID_S3_SECRET_KEY: "S3RVER-secret",
          RGRID_S3_BUCKET: bucket,
        },
        dir.path,
      );
      try {
        expect(await s3.client().bucketExists(bucket)).toBe(true);
      } finally {
        expect(await stopMain(started)).toBe("exit 0");
        await dir.remove();
      }
    });
  });

  (opensslAvailable ? describe : describe.skip)("over TLS (skipped without the openssl CLI)", () => {
    let certificate: SelfSignedCertificate;
    beforeAll(async () => {
      certificate = await createSelfSignedCertificate();
    });
    afterAll(() => certificate.remove());

    it("listens on https and hands out https signed URLs", async () => {
      const dir = await tempDir("main-tls");
      const started = await startMain(
        {
          RGRID_STORAGE_SIGNING_KEY: "signing-key-for-main-0123456789",
          RGRID_TLS_CERT_FILE: certificate.certFile,
          RGRID_TLS_KEY_FILE: certificate.keyFile,
        },
        dir.path,
      );
      try {
        expect(started.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
        const transport = createGrpcTransport({
          baseUrl: started.url,
          interceptors: [bearerAuth(TOKEN)],
          nodeOptions: { ca: certificate.cert },
        });
        const { grants } = await createClient(StorageService, transport).createUploadGrants({
          executionId: newExecutionId(),
          refs: [{ kind: ObjectKind.INPUT, name: "a.txt" }],
        });
        expect(grants[0]?.url.startsWith(`${started.url}/objects/executions/`)).toBe(true);
      } finally {
        expect(await stopMain(started)).toBe("exit 0");
        await dir.remove();
      }
    });
  });

  it("refuses to start without its secrets", async () => {
    const dir = await tempDir("main-bad");
    await expect(startMain({ RGRID_INTERNAL_TOKEN: "" }, dir.path)).rejects.toThrow(
      /exited with 1[\s\S]*RGRID_INTERNAL_TOKEN is required[\s\S]*RGRID_STORAGE_SIGNING_KEY is required/,
    );
    await dir.remove();
  });
});
