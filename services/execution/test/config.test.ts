import { loadExecutionConfig } from "../src/config";
import type { SelfSignedCertificate } from "../../../packages/common/test/self-signed";
import { createSelfSignedCertificate, opensslAvailable } from "../../../packages/common/test/self-signed";

const base = {
  RGRID_STORAGE_URL: "https://storage.internal:7401",
  RGRID_INTERNAL_TOKEN: "internal-token-0123456789",
  RGRID_RUNNER_TOKENS: "runner-token-0123456789",
};

describe("TLS settings (the rules themselves are tested with readTlsFiles in @rgrid/common)", () => {
  it("is off without either variable, and accepts an https storage URL", () => {
    const config = loadExecutionConfig(base, "/");
    expect(config.tls).toBeUndefined();
    expect(config.storageUrl).toBe("https://storage.internal:7401");
  });

  (opensslAvailable ? describe : describe.skip)("with a certificate (skipped without the openssl CLI)", () => {
    let certificate: SelfSignedCertificate;
    beforeAll(async () => {
      certificate = await createSelfSignedCertificate();
    });
    afterAll(() => certificate.remove());

    it("reads the certificate and key", () => {
      const config = loadExecutionConfig(
        { ...base, RGRID_TLS_CERT_FILE: certificate.certFile, RGRID_TLS_KEY_FILE: certificate.keyFile },
        "/",
      );
      expect(config.tls).toEqual({ cert: certificate.cert, key: certificate.key });
    });
  });
});

describe("console settings", () => {
  it("serves the console, allows no other origin and keeps sign-ins a week by default", () => {
    const config = loadExecutionConfig(base, "/srv");
    expect(config.consoleEnabled).toBe(true);
    expect(config.consoleDir).toBeUndefined();
    expect(config.corsOrigins).toEqual([]);
    expect(config.sessionTtlSeconds).toBe(7 * 24 * 3600);
  });

  it("reads exact origins, an off switch and a console directory", () => {
    const config = loadExecutionConfig(
      { ...base, RGRID_CORS_ORIGINS: "https://app.example.com, http://localhost:5173", RGRID_CONSOLE: "off", RGRID_CONSOLE_DIR: "web/dist" },
      "/srv",
    );
    expect(config.corsOrigins).toEqual(["https://app.example.com", "http://localhost:5173"]);
    expect(config.consoleEnabled).toBe(false);
    expect(config.consoleDir).toBe("/srv/web/dist");
  });

  it("refuses anything but an exact origin, naming every bad entry", () => {
    expect(() =>
      loadExecutionConfig({ ...base, RGRID_CORS_ORIGINS: "https://app.example.com/, *, ftp://files.example.com, https://ok.example.com" }, "/"),
    ).toThrow(/RGRID_CORS_ORIGINS: "https:\/\/app.example.com\/" is not an exact origin[\s\S]*"\*" is not an origin[\s\S]*ftp:\/\/files.example.com/);
    expect(() => loadExecutionConfig({ ...base, RGRID_CONSOLE: "maybe" }, "/")).toThrow(/RGRID_CONSOLE must be one of on, off/);
  });
});

describe("the cluster channel", () => {
  it("is on unless RGRID_CLUSTER_CHANNEL is off, and refuses any other word", () => {
    expect(loadExecutionConfig(base, "/").clusterChannel).toBe(true);
    expect(loadExecutionConfig({ ...base, RGRID_CLUSTER_CHANNEL: "off" }, "/").clusterChannel).toBe(false);
    expect(() => loadExecutionConfig({ ...base, RGRID_CLUSTER_CHANNEL: "no" }, "/")).toThrow(/RGRID_CLUSTER_CHANNEL/);
  });
});

describe("log archiving and retention", () => {
  it("archives logs every 5 s and keeps executions for ever by default", () => {
    const config = loadExecutionConfig(base, "/");
    expect(config.logArchiveIntervalMillis).toBe(5_000);
    expect(config.retentionDays).toBe(0);
    expect(config.retentionIntervalMillis).toBe(3_600_000);
  });

  it("reads a retention in days, and refuses a negative one", () => {
    expect(loadExecutionConfig({ ...base, RGRID_RETENTION_DAYS: "30" }, "/").retentionDays).toBe(30);
    expect(() => loadExecutionConfig({ ...base, RGRID_RETENTION_DAYS: "-1" }, "/")).toThrow(/RGRID_RETENTION_DAYS/);
  });
});
