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
import type { UniversalServerResponse } from "@connectrpc/connect/protocol";
import { applyCors } from "./cors";
import { boundErrorMessages, boundMessage } from "./errors";
import type { Logger } from "./logger";
import { createRpcMetrics } from "./metrics";
import type { MetricsOptions } from "./metrics";
import { createMetricsHandler, isMetricsRequest } from "./metrics-endpoint";
import { guardRequestMessages, hasOneRequestMessage } from "./request-guard";
import { observeRpcs } from "./rpc-observer";
import type { RpcLines } from "./rpc-observer";

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
  /**
   * How much of a request answered before it was read to its end (one over readMaxBytes, say) is
   * read and thrown away so the client can take the answer (see drainableBody). Past it, an
   * HTTP/2 stream is reset with ENHANCE_YOUR_CALM and an HTTP/1.1 connection closed after the
   * answer. 1 GiB (or readMaxBytes, if larger) unless set; tests set less.
   */
  discardMaxBytes?: number;
  /**
   * How long a connection may carry nothing before the server ends it (an HTTP/2 session, or an
   * HTTP/1.1 connection kept alive between requests); 5 minutes unless set. Longer than clients
   * keep their own idle connections (Node's agent: 5 s), so that a client does not send a request
   * on a connection the server is just closing: Node's default of 5 s on both sides let a POST
   * meet a closed socket (EPIPE), which no client may safely send again.
   */
  idleSessionMillis?: number;
  /** With a certificate and key the port speaks TLS and picks HTTP/2 or HTTP/1.1 by ALPN. */
  tls?: { cert: string | Buffer; key: string | Buffer };
  /** Exact origins whose browser pages may call (CORS); none by default. */
  corsOrigins?: readonly string[];
  /** Serves GET /metrics and counts every RPC in the registry; no /metrics without it. */
  metrics?: MetricsOptions;
  /** Also gets one line per RPC, as its "rpc" child (rpc-observer.ts). */
  logger: Logger;
  /**
   * Which RPCs get that line: every one (the default; what production's JSON logs keep), or only
   * those answered with an error, so that `npm start`'s terminal is not a stream of heartbeats.
   */
  rpcLines?: RpcLines;
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

/** See ServerOptions.idleSessionMillis. */
const IDLE_SESSION_MILLIS = 5 * 60 * 1000;

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
  const metricsHandler = options.metrics && createMetricsHandler({ ...options.metrics, logger: options.logger });
  const handler: NodeHandler = (req, res) => {
    inFlight.track(res);
    // Before CORS: no browser page of another origin may read the metrics.
    if (metricsHandler && isMetricsRequest(req.url)) {
      metricsHandler(req, res);
      return;
    }
    if (applyCors(corsOrigins, req, res)) {
      return; // a preflight, answered
    }
    rpcHandler(req, res);
  };

  const idleMillis = options.idleSessionMillis ?? IDLE_SESSION_MILLIS;
  const sessions = new Set<http2.Http2Session>();
  const trackSession = (session: http2.Http2Session) => {
    sessions.add(session);
    session.once("close", () => sessions.delete(session));
    // Node never ends an idle HTTP/2 connection itself: one a client leaves open and forgets
    // would keep its socket and memory for good. GOAWAY lets its open calls finish.
    session.setTimeout(idleMillis, () => session.close());
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
        // Its HTTP/1.1 fallback reads the setting as an http.Server's, but the types do not carry it.
        (secure as unknown as Pick<http.Server, "keepAliveTimeout">).keepAliveTimeout = idleMillis;
        listener = secure;
      } else {
        const h2c = http2.createServer({}, handler);
        h2c.on("session", trackSession);
        const plain = http.createServer({ keepAliveTimeout: idleMillis }, handler);
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

const COMPRESS_MIN_BYTES = 16 * 1024;

/** See ServerOptions.discardMaxBytes. */
const DISCARD_MAX_BYTES = 1024 * 1024 * 1024;

/**
 * What connectNodeAdapter does — route by request path, else the fallback, else 404 — except that
 * every RPC first has its request message read and judged (request-guard.ts), which the adapter
 * gives no hook for, and every error leaves with a bounded message.
 */
function createRpcHandler(options: ServerOptions): NodeHandler {
  const compressions = [compressionGzip, compressionBrotli];
  const router = createConnectRouter({
    // Outermost, so that the code logged and counted is the one the client gets; then the
    // bound on messages, so that it sees every error the service's own interceptors let out.
    interceptors: [
      observeRpcs({ logger: options.logger.child("rpc"), lines: options.rpcLines, recordRpc: options.metrics && createRpcMetrics(options.metrics.registry) }),
      boundErrorMessages(),
      ...(options.interceptors ?? []),
    ],
    readMaxBytes: options.readMaxBytes,
    acceptCompression: compressions,
    // Answers smaller than this go uncompressed: gzip of a few kilobytes costs more CPU than it
    // saves on any network these services are reached over (connect's default is 1 KiB).
    compressMinBytes: COMPRESS_MIN_BYTES,
  });
  options.routes(router);
  const guardOptions = { readMaxBytes: options.readMaxBytes, compressions };
  const discardMaxBytes = options.discardMaxBytes ?? Math.max(DISCARD_MAX_BYTES, options.readMaxBytes);
  const byPath = new Map(
    router.handlers.map((handler) => [
      handler.requestPath,
      // A unary or server-streaming RPC answers once its one message is read; any other may
      // answer while its request still streams in.
      { handler, handle: guardRequestMessages(handler, guardOptions), singleMessage: hasOneRequestMessage(handler) },
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
    const body = drainableBody(req);
    route
      .handle({ ...universalRequestFromNodeRequest(req, res, undefined, undefined), body: body.iterable })
      .then(async (response) => {
        if (route.singleMessage && !(await body.drain(discardMaxBytes))) {
          if (req instanceof http2.Http2ServerRequest) {
            // gRPC maps this reset to ResourceExhausted; the answer itself would not get through.
            req.stream.close(http2.constants.NGHTTP2_ENHANCE_YOUR_CALM);
            return;
          }
          // The rest would be parsed as the connection's next request.
          res.setHeader("connection", "close");
        }
        await universalResponseToNodeResponse(withGrpcStatusBounded(response), res);
      })
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

/**
 * The last word on gRPC's status headers: `grpc-message` (and its binary details) travel in an
 * HTTP/2 header block, and one too large to send resets the stream, so the client sees Internal
 * instead of the answer. The error interceptors bound the messages they see; this also covers the
 * ones connect-es makes itself before any interceptor runs (e.g. quoting a malformed header).
 */
function withGrpcStatusBounded(response: UniversalServerResponse): UniversalServerResponse {
  if (response.header !== undefined) {
    boundGrpcStatus(response.header);
  }
  const { body, trailer } = response;
  if (body === undefined || trailer === undefined || !isAsyncIterable(body)) {
    if (trailer !== undefined) {
      boundGrpcStatus(trailer);
    }
    return response;
  }
  return {
    ...response,
    // The trailers are written after the body, and the status is set in them while it is read.
    body: (async function* () {
      yield* body;
      boundGrpcStatus(trailer);
    })(),
  };
}

/** A status details header larger than this is dropped rather than sent. */
const MAX_STATUS_DETAILS_BYTES = 8 * 1024;

function boundGrpcStatus(headers: Headers): void {
  const message = headers.get("grpc-message");
  if (message !== null && message.length > 3 * 1024) {
    let decoded = message;
    try {
      decoded = decodeURIComponent(message);
    } catch {
      // not percent-encoded as the protocol says; bound it as it is
    }
    headers.set("grpc-message", encodeURIComponent(boundMessage(decoded)));
  }
  const details = headers.get("grpc-status-details-bin");
  if (details !== null && details.length > MAX_STATUS_DETAILS_BYTES) {
    headers.delete("grpc-status-details-bin");
  }
}

const isAsyncIterable = (value: unknown): value is AsyncIterable<Uint8Array> =>
  typeof value === "object" && value !== null && Symbol.asyncIterator in value;

/**
 * The request body as connect-es reads it, with a way to read and throw away whatever it left
 * unread. An RPC answered before its request was read to the end (one over the size limit, an
 * unsupported media type) must not leave the rest unread. Over HTTP/2 the stream would stay
 * half-open for as long as the connection lives — the client cannot send the rest while nobody
 * reads it, and the server keeps the stream and everything the handler held — and a Node or
 * grpc-js client that still has megabytes queued resets the stream itself when the answer
 * arrives (ENHANCE_YOUR_CALM: over its session memory) instead of reading it. Over HTTP/1.1 the
 * rest would be parsed as the next request. So the rest is read, and nothing kept, before the
 * answer goes out — as Node's HTTP/1 server does after an answer — up to `maxBytes`.
 */
function drainableBody(req: Parameters<NodeHandler>[0]): { iterable: AsyncIterable<Uint8Array>; drain(maxBytes: number): Promise<boolean> } {
  let chunks: AsyncIterator<Uint8Array> | undefined;
  let ended = false;
  const next = async (): Promise<IteratorResult<Uint8Array>> => {
    chunks ??= (req as AsyncIterable<Uint8Array>)[Symbol.asyncIterator]();
    const result = await chunks.next();
    ended ||= result.done === true;
    return result;
  };
  return {
    // No return(): a reader that stops early (a refusal) leaves the request open, to be drained.
    iterable: { [Symbol.asyncIterator]: () => ({ next }) },
    async drain(maxBytes) {
      let discarded = 0;
      try {
        while (!ended) {
          const result = await next();
          discarded += result.done === true ? 0 : result.value.byteLength;
          if (discarded > maxBytes) {
            return false;
          }
        }
      } catch {
        // The client went away or reset the stream: nothing is left to read.
      }
      return true;
    },
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
