// A TCP proxy between an HTTP/1.1 client and a server that drops the connection the moment the
// server starts answering the first request whose path contains a given text: the server has
// done the work, the client never sees the answer. Later requests pass untouched.
import * as net from "node:net";
import type { AddressInfo } from "node:net";

export interface CuttingProxy {
  url: string;
  /** How many connections were cut (0 or 1). */
  readonly cuts: number;
  close(): Promise<void>;
}

export async function startCuttingProxy(upstreamUrl: string, pathPart: string): Promise<CuttingProxy> {
  const upstream = new URL(upstreamUrl);
  const marker = Buffer.from(pathPart, "latin1");
  let cuts = 0;
  const sockets = new Set<net.Socket>();

  const server = net.createServer((client) => {
    const server = net.connect(Number(upstream.port), upstream.hostname);
    for (const socket of [client, server]) {
      sockets.add(socket);
      socket.once("close", () => sockets.delete(socket));
      socket.on("error", () => undefined);
    }
    let carriesMarkedRequest = false;
    client.on("data", (chunk: Buffer) => {
      if (cuts === 0 && chunk.includes(marker)) carriesMarkedRequest = true;
      server.write(chunk);
    });
    server.on("data", (chunk: Buffer) => {
      if (carriesMarkedRequest && cuts === 0) {
        cuts++;
        client.destroy();
        server.destroy();
        return;
      }
      client.write(chunk);
    });
    client.once("close", () => server.destroy());
    server.once("close", () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    get cuts() {
      return cuts;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
