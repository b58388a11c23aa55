// A real HTTP server standing in for object storage: grant PUTs store bodies by URL path, grant
// GETs serve them back. Tests reach into `objects` to see uploads or plant outputs.
import { createServer } from "node:http";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";

export interface FakeObjectStorage {
  url: string;
  /** Bodies by decoded URL path, e.g. /executions/<id>/outputs/out/result.txt. */
  objects: Map<string, Buffer>;
  /** The x-grant header of each PUT, by path: proof the grant's headers were sent. */
  grantHeaders: Map<string, string | undefined>;
  close(): Promise<void>;
}

export async function startObjectStorage(): Promise<FakeObjectStorage> {
  const objects = new Map<string, Buffer>();
  const grantHeaders = new Map<string, string | undefined>();
  const server: Server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => {
      const path = decodeURIComponent(request.url ?? "");
      if (request.method === "PUT") {
        objects.set(path, Buffer.concat(chunks));
        grantHeaders.set(path, request.headers["x-grant"] as string | undefined);
        response.writeHead(200).end();
        return;
      }
      if (request.method === "GET") {
        const body = objects.get(path);
        if (body === undefined) {
          response.writeHead(404).end("<Code>NoSuchKey</Code>");
          return;
        }
        response.writeHead(200, { "content-length": String(body.length) }).end(body);
        return;
      }
      response.writeHead(405).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    objects,
    grantHeaders,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

/** The path an object of an execution has on this server, as the fake's grants address it. */
export function objectPath(executionId: string, kind: "script" | "inputs" | "outputs", name: string): string {
  return `/executions/${executionId}/${kind}/${name}`;
}
