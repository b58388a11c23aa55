// A tiny object store for tests: serves GET and accepts PUT on /objects/<key>, the way presigned
// grant URLs are used, so downloads and uploads go over real HTTP.

import { createHash } from "node:crypto";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import type { TransferGrant } from "@rgrid/proto";

export interface GrantServer {
  objects: Map<string, Buffer>;
  /** The key of every GET, in order. */
  gets: string[];
  urlFor(key: string): string;
  close(): Promise<void>;
}

export async function startGrantServer(): Promise<GrantServer> {
  const objects = new Map<string, Buffer>();
  const gets: string[] = [];
  const server = http.createServer((req, res) => {
    const key = decodeURIComponent((req.url ?? "").replace(/^\/objects\//, ""));
    if (req.method === "GET") {
      gets.push(key);
      const body = objects.get(key);
      res.writeHead(body === undefined ? 404 : 200).end(body ?? "NoSuchKey");
      return;
    }
    if (req.method === "PUT") {
      const chunks: Buffer[] = [];
      req.on("data", (chunk: Buffer) => chunks.push(chunk));
      req.on("end", () => {
        const body = Buffer.concat(chunks);
        if (Number(req.headers["content-length"]) !== body.length) {
          res.writeHead(400).end("BadContentLength");
          return;
        }
        objects.set(key, body);
        res.writeHead(200).end();
      });
      return;
    }
    res.writeHead(405).end();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    objects,
    gets,
    urlFor: (key) => `http://127.0.0.1:${port}/objects/${encodeURIComponent(key)}`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

export function sha256(content: Buffer | string): string {
  return createHash("sha256").update(content).digest("hex");
}

/** Grants for a runner's outputs that `grants` answers; a `method` other than PUT it refuses with 405. */
export function outputGrantsOn(grants: GrantServer, method = "PUT"): (name: string, executionId: string) => TransferGrant {
  return (name, executionId) => ({
    $typeName: "rgrid.v1.TransferGrant",
    name,
    method,
    url: grants.urlFor(`executions/${executionId}/outputs/${name}`),
    headers: {},
  });
}
