import { ConfigError } from "@rgrid/common";
import { loadStorageConfig } from "../src/config";
import type { SelfSignedCertificate } from "../../../packages/common/test/self-signed";
import { createSelfSignedCertificate, opensslAvailable } from "../../../packages/common/test/self-signed";

const TOKEN = "internal-token-0123456789";
const SIGNING = "signing-key-0123456789";

describe("loadStorageConfig", () => {
  it("uses the embedded defaults", () => {
    const config = loadStorageConfig({ RGRID_INTERNAL_TOKEN: TOKEN, RGRID_STORAGE_SIGNING_KEY: SIGNING }, "/srv/app");
    expect(config).toEqual({
      host: "127.0.0.1",
      port: 7401,
      internalToken: TOKEN,
      backend: { kind: "fs", dir: "/srv/app/.rgrid/objects", signingKey: SIGNING, publicUrl: undefined },
      grantTtlSeconds: 900,
      maxObjectBytes: 10 * 1024 ** 3,
      maxRequestBytes: 4 * 1024 ** 2,
      logFormat: "text",
    });
  });

  it("reads the S3 backend", () => {
    const config = loadStorageConfig(
      {
        RGRID_INTERNAL_TOKEN: TOKEN,
        RGRID_STORAGE_BACKEND: "s3",
        RGRID_S3_ENDPOINT: "http://minio:9000/",
        RGRID_S3_PUBLIC_ENDPOINT: "https://files.example.com",
        RGRID_S3_ACCESS_KEY: "minioadmin",
        RGRID_S3_SECRET_KEY: "minioadmin",
        RGRID_STORAGE_PORT: "0",
      },
      "/",
    );
    expect(config.port).toBe(0);
    expect(config.backend).toEqual({
      kind: "s3",
      endpoint: "http://minio:9000",
      publicEndpoint: "https://files.example.com",
      accessKey: "minioadmin",
      secretKey: "minioadmin",
      bucket: "rgrid",
      region: "us-east-1",
    });
  });

  it("reports every problem at once and has no fallback for secrets", () => {
    let caught: unknown;
    try {
      loadStorageConfig(
        { RGRID_STORAGE_PORT: "70000", RGRID_GRANT_TTL_SECONDS: "-5", RGRID_STORAGE_PUBLIC_URL: "ftp://x" },
        "/",
      );
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    const problems = (caught as ConfigError).problems.join("\n");
    for (const name of [
      "RGRID_STORAGE_PORT",
      "RGRID_INTERNAL_TOKEN",
      "RGRID_STORAGE_SIGNING_KEY",
      "RGRID_GRANT_TTL_SECONDS",
      "RGRID_STORAGE_PUBLIC_URL",
    ]) {
      expect(problems).toContain(name);
    }
  });

  it("reads the log format and the metrics token, refusing a format it does not know and a short token", () => {
    const base = { RGRID_INTERNAL_TOKEN: TOKEN, RGRID_STORAGE_SIGNING_KEY: SIGNING };
    const config = loadStorageConfig({ ...base, RGRID_LOG_FORMAT: "json", RGRID_METRICS_TOKEN: "metrics-token-0123456789" }, "/");
    expect(config.logFormat).toBe("json");
    expect(config.metricsToken).toBe("metrics-token-0123456789");
    expect(() => loadStorageConfig({ ...base, RGRID_LOG_FORMAT: "yaml", RGRID_METRICS_TOKEN: "short" }, "/")).toThrow(
      /RGRID_LOG_FORMAT must be one of text, json, got "yaml"[\s\S]*RGRID_METRICS_TOKEN must be at least 16 characters/,
    );
  });

  it("requires the S3 settings in s3 mode", () => {
    expect(() =>
      loadStorageConfig({ RGRID_INTERNAL_TOKEN: TOKEN, RGRID_STORAGE_BACKEND: "s3", RGRID_S3_BUCKET: "Bad_Bucket" }, "/"),
    ).toThrow(/RGRID_S3_ENDPOINT[\s\S]*RGRID_S3_ACCESS_KEY[\s\S]*RGRID_S3_SECRET_KEY|RGRID_S3_BUCKET/);
  });
});

describe("TLS settings (the rules themselves are tested with readTlsFiles in @rgrid/common)", () => {
  const base = { RGRID_INTERNAL_TOKEN: TOKEN, RGRID_STORAGE_SIGNING_KEY: SIGNING };
  (opensslAvailable ? describe : describe.skip)("with a certificate (skipped without the openssl CLI)", () => {
    let certificate: SelfSignedCertificate;
    beforeAll(async () => {
      certificate = await createSelfSignedCertificate();
    });
    afterAll(() => certificate.remove());

    it("reads the certificate and key", () => {
      const config = loadStorageConfig(
        { ...base, RGRID_TLS_CERT_FILE: certificate.certFile, RGRID_TLS_KEY_FILE: certificate.keyFile },
        "/",
      );
      expect(config.tls).toEqual({ cert: certificate.cert, key: certificate.key });
    });
  });
});
