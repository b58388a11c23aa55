import { execFileSync, spawnSync } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

// Test support shared by the TLS tests of every package: a certificate made at test time, so
// no key material is ever committed. Services import it relatively from packages/common/test.

/** Whether the `openssl` CLI can be run here; TLS tests skip visibly when it cannot. */
export const opensslAvailable = spawnSync("openssl", ["version"], { stdio: "ignore" }).status === 0;

export interface SelfSignedCertificate {
  certFile: string;
  keyFile: string;
  cert: Buffer;
  key: Buffer;
  remove(): Promise<void>;
}

/** A fresh self-signed certificate for 127.0.0.1 and localhost, in a temp directory of its own. */
export async function createSelfSignedCertificate(): Promise<SelfSignedCertificate> {
  const dir = await mkdtemp(join(tmpdir(), "rgrid-tls-"));
  const certFile = join(dir, "cert.pem");
  const keyFile = join(dir, "key.pem");
  execFileSync(
    "openssl",
    [
      "req", "-x509", "-nodes", "-days", "1",
      "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
      "-subj", "/CN=localhost",
      // Clients check the address they dialled against the subject alternative names.
      "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
      "-keyout", keyFile, "-out", certFile,
    ],
    { stdio: "ignore" },
  );
  return {
    certFile,
    keyFile,
    cert: await readFile(certFile),
    key: await readFile(keyFile),
    remove: () => rm(dir, { recursive: true, force: true }),
  };
}
