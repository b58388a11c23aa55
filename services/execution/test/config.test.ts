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
