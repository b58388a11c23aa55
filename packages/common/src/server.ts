import * as http from "node:http";
import * as http2 from "node:http2";
import * as net from "node:net";
import type { AddressInfo } from "node:net";
import { Code, ConnectError, createConnectRouter } from "@connectrpc/connect";
import type { ConnectRouter, Interceptor } from "@connectrpc/connect";
import {
  compressionBrotli,
  compressionGzip,
  universalRequestFromNodeRequest,
  universalResponseToNodeResponse,
} from "@connectrpc/connect-node";
import type { ConnectNodeAdapterOptions } from "@connectrpc/connect-node";
import { applyCors } from "./cors";
import type { Logger } from "./logger";
import { rejectUndecodableRequests } from "./undecodable-request";

/** A request listener for both the http and http2 modules. */
export type NodeHandler = NonNullable<ConnectNodeAdapterOptions["fallback"]>;

export interface ServerOptions {
  /** Registers the services this server answers. */
  routes: (router: ConnectRouter) => void;
  /** Serves plain HTTP requests that match no RPC (e.g. signed object URLs). */
  fallback?: NodeHandler;
  interceptors?: Interceptor[];
  /** Largest request message accepted; larger ones fail with ResourceExhausted. */
  readMaxBytes: number;
  /** With a certificate and key the port speaks TLS and picks HTTP/2 or HTTP/1.1 by ALPN. */
  tls?: { cert: string | Buffer; key: string | Buffer };
  /** Exact origins whose browser pages may call (CORS); none by default. */
  corsOrigins?: readonly string[];
  logger: Logger;
}

export interface RunningServer {
  /** Where the server listens, e.g. "http://127.0.0.1:43121". */
  readonly url: string;
  readonly port: number;
  /**
   * Stops accepting connections, lets in-flight requests finish for up to `graceMillis`, then
   * cuts whatever is left.
   */
  close(graceMillis?: number): Promise<void>;
}

export interface ConnectServer {
  listen(port: number, host: string): Promise<RunningServer>;
}

// "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n": a connection opening with this is HTTP/2 with prior
// knowledge (h2c); anything else on a plain-text port is HTTP/1.x.
const HTTP2_PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "latin1");

/**
 * Builds a server that answers Connect, gRPC and gRPC-Web on ONE port, to HTTP/2 clients (gRPC,
 * service-to-service) and HTTP/1.1 clients (browsers, curl) alike. Built apart from listening so
 * that tests and main.ts decide where it listens.
 */
export function createConnectServer(options: ServerOptions): ConnectServer {
  const inFlight = new InFlightRequests();
  const rpcHandler = createRpcHandler(options);
  const corsOrigins = new Set(options.corsOrigins ?? []);
  const handler: NodeHandler = (req, res) => {
    inFlight.track(res);
    if (applyCors(corsOrigins, req, res)) {
      return; // a preflight, answered
    }
    rpcHandler(req, res);
  };

  const sessions = new Set<http2.Http2Session>();
  const trackSession = (session: http2.Http2Session) => {
    sessions.add(session);
    session.once("close", () => sessions.delete(session));
  };

  return {
    async listen(port, host) {
      let listener: net.Server;
      if (options.tls) {
        const secure = http2.createSecureServer(
          { ...options.tls, allowHTTP1: true, ALPNProtocols: ["h2", "http/1.1"] },
          handler,
        );
        secure.on("session", trackSession);
        listener = secure;
      } else {
        const h2c = http2.createServer({}, handler);
        h2c.on("session", trackSession);
        const plain = http.createServer(handler);
        listener = net.createServer((socket) => routeByPreface(socket, h2c, plain));
      }
      // Our HTTP/1 server never listens itself, so it cannot track its connections; we do.
      const sockets = new Set<net.Socket>();
      listener.on("connection", (socket: net.Socket) => {
        sockets.add(socket);
        socket.once("close", () => sockets.delete(socket));
      });
      listener.on("error", (error) => options.logger.error("listener error", { error }));
      await new Promise<void>((resolve, reject) => {
        listener.once("error", reject);
        listener.listen(port, host, () => {
          listener.off("error", reject);
          resolve();
        });
      });
      const address = listener.address() as AddressInfo;
      const shownHost = address.family === "IPv6" ? `[${address.address}]` : address.address;
      const url = `${options.tls ? "https" : "http"}://${shownHost}:${address.port}`;

      return {
        url,
        port: address.port,
        async close(graceMillis = 10_000) {
          const closed = new Promise<void>((resolve) => listener.close(() => resolve()));
          // GOAWAY tells HTTP/2 clients to open no new streams; open ones may finish.
          for (const session of sessions) {
            session.close();
          }
          const drained = await inFlight.drained(graceMillis);
          if (!drained) {
            options.logger.warn("shutdown grace period over; cutting open requests", {
              open: inFlight.count,
            });
          }
          for (const session of sessions) {
            session.destroy();
          }
          // Whatever is left is idle keep-alive connections or requests past the grace period.
          for (const socket of sockets) {
            socket.destroy();
          }
          await closed;
        },
      };
    },
  };
}

/**
 * What connectNodeAdapter does — route by request path, else the fallback, else 404 — except that
 * every RPC first rejects an undecodable binary request with InvalidArgument (see
 * undecodable-request.ts), which the adapter gives no hook for.
 */
function createRpcHandler(options: ServerOptions): NodeHandler {
  const compressions = [compressionGzip, compressionBrotli];
  const router = createConnectRouter({
    interceptors: options.interceptors,
    readMaxBytes: options.readMaxBytes,
    acceptCompression: compressions,
  });
  options.routes(router);
  const byPath = new Map(
    router.handlers.map((handler) => [
      handler.requestPath,
      { handler, handle: rejectUndecodableRequests(handler, { readMaxBytes: options.readMaxBytes, compressions }) },
    ]),
  );
  return (req, res) => {
    const route = byPath.get(req.url?.split("?", 1)[0] ?? "");
    if (!route) {
      if (options.fallback) {
        options.fallback(req, res);
      } else {
        res.writeHead(404);
        res.end();
      }
      return;
    }
    route
      .handle(universalRequestFromNodeRequest(req, res, undefined, undefined))
      .then((response) => universalResponseToNodeResponse(response, res))
      .catch((reason: unknown) => {
        // Aborted means the client went away mid-response; nothing is wrong on our side.
        if (ConnectError.from(reason).code === Code.Aborted) {
          return;
        }
        options.logger.error("rpc handler failed", {
          rpc: `${route.handler.service.typeName}/${route.handler.method.name}`,
          error: reason,
        });
      });
  };
}

function routeByPreface(socket: net.Socket, h2c: http2.Http2Server, http1: http.Server): void {
  let received = Buffer.alloc(0);
  const onData = (chunk: Buffer) => {
    received = Buffer.concat([received, chunk]);
    const compared = Math.min(received.length, HTTP2_PREFACE.length);
    const isPrefacePrefix = received.subarray(0, compared).equals(HTTP2_PREFACE.subarray(0, compared));
    if (isPrefacePrefix && received.length < HTTP2_PREFACE.length) {
      return; // not enough bytes yet to tell
    }
    socket.off("data", onData);
    socket.pause();
    socket.unshift(received);
    if (isPrefacePrefix) {
      // The HTTP/2 session reads what is already buffered on the socket itself; resuming here
      // would emit those bytes to no listener and lose the preface.
      h2c.emit("connection", socket);
    } else {
      http1.emit("connection", socket);
      socket.resume();
    }
  };
  socket.on("data", onData);
  socket.on("error", () => socket.destroy());
}

/** Counts responses not yet finished, so shutdown can wait for them. */
class InFlightRequests {
  count = 0;
  private waiters: Array<() => void> = [];

  track(res: Parameters<NodeHandler>[1]): void {
    this.count++;
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      this.count--;
      if (this.count === 0) {
        this.waiters.splice(0).forEach((wake) => wake());
      }
    };
    res.once("finish", finish);
    res.once("close", finish);
  }

  drained(timeoutMillis: number): Promise<boolean> {
    if (this.count === 0) {
      return Promise.resolve(true);
    }
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMillis);
      this.waiters.push(() => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }
}
