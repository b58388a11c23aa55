// A TCP proxy in front of a server that can simulate an outage: every open connection is cut
// and new ones are dropped until the outage ends. For clients that must notice and recover.
import * as net from "node:net";
import type { AddressInfo } from "node:net";

export interface OutageProxy {
  url: string;
  /** Cuts every open connection and drops new ones until `end()`. */
  begin(): void;
  end(): void;
  close(): Promise<void>;
}

export async function startOutageProxy(upstreamUrl: string): Promise<OutageProxy> {
  const upstream = new URL(upstreamUrl);
  const sockets = new Set<net.Socket>();
  let down = false;
  const server = net.createServer((client) => {
    if (down) {
      client.destroy();
      return;
    }
    const toServer = net.connect(Number(upstream.port), upstream.hostname);
    for (const socket of [client, toServer]) {
      sockets.add(socket);
      socket.once("close", () => sockets.delete(socket));
      socket.on("error", () => undefined);
    }
    client.pipe(toServer);
    toServer.pipe(client);
    client.once("close", () => toServer.destroy());
    toServer.once("close", () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    begin() {
      down = true;
      for (const socket of sockets) socket.destroy();
    },
    end() {
      down = false;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
