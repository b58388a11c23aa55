import { createHash, randomBytes } from "node:crypto";
import { createServer } from "node:http";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { existsSync } from "node:fs";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { digestFile, downloadFile, TransferError, uploadFile } from "../src/transfer";

// A real HTTP server that stores PUT bodies and serves them back, as a grant's URL would.
const objects = new Map<string, Buffer>();
let server: Server;
let baseUrl: string;
let dir: string;

beforeAll(async () => {
  server = createServer((req, res) => {
    if (req.method === "PUT") {
      const chunks: Buffer[] = [];
      req.on("data", (chunk: Buffer) => chunks.push(chunk));
      req.on("end", () => {
        if (req.headers["content-length"] === undefined) {
          res.writeHead(411).end("length required");
          return;
        }
        objects.set(req.url ?? "", Buffer.concat(chunks));
        res.writeHead(200).end();
      });
      return;
    }
    const body = objects.get(req.url ?? "");
    if (!body) {
      res.writeHead(404).end("<Error><Code>NoSuchKey</Code></Error>");
      return;
    }
    res.writeHead(200, { "content-length": body.length }).end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  dir = await mkdtemp(join(tmpdir(), "rgrid-transfer-"));
});

afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
  await rm(dir, { recursive: true, force: true });
});

test("a file goes up and comes back byte-identical, with its digest checked", async () => {
  const content = randomBytes(3 * 1024 * 1024 + 17);
  const source = join(dir, "source.bin");
  await writeFile(source, content);
  const digest = await digestFile(source);
  expect(digest).toEqual({ sizeBytes: content.length, sha256: createHash("sha256").update(content).digest("hex") });

  await uploadFile({ method: "PUT", url: `${baseUrl}/a`, headers: {} }, source, digest.sizeBytes);
  const target = join(dir, "nested", "target.bin");
  await downloadFile({ method: "GET", url: `${baseUrl}/a`, headers: {} }, target, digest);
  expect(await readFile(target)).toEqual(content);
});

test("a download whose content does not match leaves no file behind", async () => {
  objects.set("/tampered", Buffer.from("not what was uploaded"));
  const target = join(dir, "tampered.txt");
  await expect(
    downloadFile({ method: "GET", url: `${baseUrl}/tampered`, headers: {} }, target, { sizeBytes: 3, sha256: "0".repeat(64) }),
  ).rejects.toThrow("does not match");
  expect(existsSync(target)).toBe(false);
  expect((await readdir(dir)).filter((name) => name.includes(".part-"))).toEqual([]);
});

test("a refused download says what the server answered", async () => {
  const error = await downloadFile({ method: "GET", url: `${baseUrl}/missing`, headers: {} }, join(dir, "m")).catch(
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(TransferError);
  expect((error as TransferError).status).toBe(404);
  expect((error as TransferError).message).toContain("NoSuchKey");
});
