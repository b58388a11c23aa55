import { randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Client } from "minio";
import { minioClient } from "../src/backend";

/** A fresh temporary directory and its removal. */
export async function tempDir(label: string): Promise<{ path: string; remove: () => Promise<void> }> {
  const path = await mkdtemp(join(tmpdir(), `rgrid-storage-${label}-`));
  return { path, remove: () => rm(path, { recursive: true, force: true }) };
}

/** Runs `work` in a fresh temporary directory, removed afterwards whatever happens. */
export async function inTempDir<T>(label: string, work: (path: string) => Promise<T>): Promise<T> {
  const dir = await tempDir(label);
  try {
    return await work(dir.path);
  } finally {
    await dir.remove();
  }
}

/** Writes `size` random bytes to `path` and returns them. */
export async function randomFile(path: string, size: number): Promise<Buffer> {
  const bytes = randomBytes(size);
  await writeFile(path, bytes);
  return bytes;
}

export async function readBytes(path: string): Promise<Buffer> {
  return readFile(path);
}

/** Resolves once `condition` holds, checking every 50 ms. */
export async function waitUntil(condition: () => boolean): Promise<void> {
  while (!condition()) {
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Listens on a free loopback port; returns its base URL and a close function. */
export async function listenOnFreePort(handler: http.RequestListener): Promise<{ url: string; close: () => Promise<void> }> {
  const server = http.createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

interface S3rverInstance {
  run(): Promise<{ port: number; address: string }>;
  close(): Promise<void>;
}
type S3rverConstructor = new (options: { port: number; address: string; directory: string; silent: boolean }) => S3rverInstance;
// s3rver ships no type declarations; this is the part of its API the tests use.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const S3rver = require("s3rver") as S3rverConstructor;

export interface S3rverFixture {
  endpoint: string;
  /** A minio client for the server with its built-in credentials. */
  client(): Client;
  stop(): Promise<void>;
}

/** A real S3 HTTP server (s3rver) on a free loopback port, storing into a temp directory. */
export async function startS3rver(): Promise<S3rverFixture> {
  const dir = await tempDir("s3rver");
  const server = new S3rver({ port: 0, address: "127.0.0.1", directory: dir.path, silent: true });
  const { port } = await server.run();
  const endpoint = `http://127.0.0.1:${port}`;
  return {
    endpoint,
    client: () => minioClient(endpoint, { accessKey: "S3RVER", secretKey: "S3RVER", region: "us-east-1" }),
    stop: async () => {
      await server.close();
      await dir.remove();
    },
  };
}

/** A bucket name no other test uses. */
export function uniqueBucketName(): string {
  return `rgrid-test-${randomBytes(6).toString("hex")}`;
}

/** Counts the event loop's turns until stopped. */
export function turnCounter(): { now: () => number; stop: () => void } {
  let turns = 0;
  let counting = true;
  const count = (): void => {
    turns += 1;
    if (counting) setImmediate(count);
  };
  setImmediate(count);
  return { now: () => turns, stop: () => (counting = false) };
}
