// An HTTP proxy in front of an S3 server that can hold server-side copies (PUT with
// x-amz-copy-source) at the door: the test decides exactly when a CopyInputs is "in the middle" —
// some objects copied, the rest waiting — instead of hoping to hit a moment in time.
import * as http from "node:http";
import type { AddressInfo } from "node:net";

export interface S3Gate {
  /** Point storage-service (and its presigned URLs) here. */
  endpoint: string;
  /** Let `count` more copies through, then hold every later one until `open()`. */
  holdCopiesAfter(count: number): void;
  /** Resolves once at least `count` copies are being held. */
  held(count: number): Promise<void>;
  /** Resolves once at least `count` copies have been answered by the S3 server. */
  copied(count: number): Promise<void>;
  /** Forwards the held copies (whose clients are still there) and every later one. */
  open(): void;
  close(): Promise<void>;
}

export async function startS3Gate(upstream: string): Promise<S3Gate> {
  const target = new URL(upstream);
  let allowance = Number.POSITIVE_INFINITY;
  const waiting: Array<() => void> = [];
  let copiesDone = 0;
  const watchers: Array<{ ready: () => boolean; wake: () => void }> = [];
  const wakeWatchers = () => {
    for (const watcher of watchers.splice(0)) {
      if (watcher.ready()) watcher.wake();
      else watchers.push(watcher);
    }
  };
  const when = (ready: () => boolean) =>
    new Promise<void>((wake) => {
      watchers.push({ ready, wake });
      wakeWatchers();
    });

  const forward = (req: http.IncomingMessage, res: http.ServerResponse, body: Buffer, isCopy: boolean) => {
    const upstreamRequest = http.request(
      { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers },
      (upstreamResponse) => {
        if (isCopy) {
          upstreamResponse.once("end", () => {
            copiesDone++;
            wakeWatchers();
          });
        }
        res.writeHead(upstreamResponse.statusCode ?? 502, upstreamResponse.headers);
        upstreamResponse.pipe(res);
      },
    );
    upstreamRequest.on("error", () => res.destroy());
    upstreamRequest.end(body);
  };

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      const body = Buffer.concat(chunks);
      const isCopy = req.method === "PUT" && req.headers["x-amz-copy-source"] !== undefined;
      if (!isCopy || allowance > 0) {
        if (isCopy) allowance--;
        forward(req, res, body, isCopy);
        return;
      }
      // Held: forwarded only if the gate opens while the caller is still connected.
      waiting.push(() => {
        if (!res.destroyed && !req.socket.destroyed) forward(req, res, body, true);
      });
      wakeWatchers();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;

  return {
    endpoint: `http://127.0.0.1:${port}`,
    holdCopiesAfter(count) {
      allowance = count;
    },
    held: (count) => when(() => waiting.length >= count),
    copied: (count) => when(() => copiesDone >= count),
    open() {
      allowance = Number.POSITIVE_INFINITY;
      for (const release of waiting.splice(0)) release();
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
