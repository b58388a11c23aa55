import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { createSecureContext } from "node:tls";
import type { EnvReader } from "./config";

/** A certificate and its private key, PEM; with them the port speaks TLS (ALPN h2 / http/1.1). */
export interface TlsFiles {
  cert: Buffer;
  key: Buffer;
}

/**
 * The TLS certificate and key, read once at start: RGRID_TLS_CERT_FILE and RGRID_TLS_KEY_FILE
 * (PEM, relative paths against `cwd`), both or neither. Reading and parsing them here turns a
 * wrong path or a key that does not match its certificate into a configuration error listed
 * with the others, instead of a failure when the port opens.
 */
export function readTlsFiles(reader: EnvReader, cwd: string): TlsFiles | undefined {
  const certFile = reader.optionalString("RGRID_TLS_CERT_FILE");
  const keyFile = reader.optionalString("RGRID_TLS_KEY_FILE");
  if (certFile === undefined && keyFile === undefined) {
    return undefined;
  }
  if (certFile === undefined || keyFile === undefined) {
    reader.problem("RGRID_TLS_CERT_FILE and RGRID_TLS_KEY_FILE must be set together (both for TLS, neither for plain text)");
    return undefined;
  }
  const cert = readPemFile(reader, "RGRID_TLS_CERT_FILE", resolve(cwd, certFile));
  const key = readPemFile(reader, "RGRID_TLS_KEY_FILE", resolve(cwd, keyFile));
  if (cert === undefined || key === undefined) {
    return undefined;
  }
  try {
    createSecureContext({ cert, key });
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    reader.problem(`RGRID_TLS_CERT_FILE and RGRID_TLS_KEY_FILE are not a usable certificate and key: ${reason}`);
    return undefined;
  }
  return { cert, key };
}

function readPemFile(reader: EnvReader, name: string, path: string): Buffer | undefined {
  try {
    return readFileSync(path);
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code ?? String(error);
    reader.problem(`${name} cannot be read from ${path} (${reason})`);
    return undefined;
  }
}
