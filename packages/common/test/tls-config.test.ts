import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { EnvReader } from "../src/config";
import { readTlsFiles } from "../src/tls-config";
import type { SelfSignedCertificate } from "./self-signed";
import { createSelfSignedCertificate, opensslAvailable } from "./self-signed";

function read(env: Record<string, string>, cwd = "/") {
  const reader = new EnvReader(env);
  const tls = readTlsFiles(reader, cwd);
  reader.finish();
  return tls;
}

it("is off without either variable", () => {
  expect(read({})).toBeUndefined();
});

it.each([
  ["only a certificate", { RGRID_TLS_CERT_FILE: "cert.pem" }],
  ["only a key", { RGRID_TLS_KEY_FILE: "key.pem" }],
])("refuses %s: both or neither", (_what, env) => {
  expect(() => read(env)).toThrow("RGRID_TLS_CERT_FILE and RGRID_TLS_KEY_FILE must be set together");
});

it("names a file it cannot read, resolved against the working directory", () => {
  const dir = mkdtempSync(join(tmpdir(), "rgrid-tls-missing-"));
  try {
    expect(() => read({ RGRID_TLS_CERT_FILE: "cert.pem", RGRID_TLS_KEY_FILE: "key.pem" }, dir)).toThrow(
      `RGRID_TLS_CERT_FILE cannot be read from ${join(dir, "cert.pem")} (ENOENT)`,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

(opensslAvailable ? describe : describe.skip)("with a certificate (skipped without the openssl CLI)", () => {
  let certificate: SelfSignedCertificate;
  beforeAll(async () => {
    certificate = await createSelfSignedCertificate();
  });
  afterAll(() => certificate.remove());

  it("reads the certificate and key", () => {
    expect(read({ RGRID_TLS_CERT_FILE: certificate.certFile, RGRID_TLS_KEY_FILE: certificate.keyFile })).toEqual({
      cert: certificate.cert,
      key: certificate.key,
    });
  });

  it("refuses a key that is not a key", () => {
    expect(() => read({ RGRID_TLS_CERT_FILE: certificate.certFile, RGRID_TLS_KEY_FILE: certificate.certFile })).toThrow(
      "are not a usable certificate and key",
    );
  });
});
