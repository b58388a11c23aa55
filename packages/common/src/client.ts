import type { DescService } from "@bufbuild/protobuf";
import type { Client, Interceptor } from "@connectrpc/connect";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";

/** Adds `Authorization: Bearer <token>` to every request. */
export function bearerAuth(token: string): Interceptor {
  return (next) => (req) => {
    req.header.set("authorization", `Bearer ${token}`);
    return next(req);
  };
}

/**
 * A client for service-to-service calls: the Connect protocol with binary messages over one
 * reused HTTP/2 connection. Same wire messages as gRPC, but unary calls need no trailers or
 * envelope, which measurably lowers per-call latency between our own processes.
 */
export function createInternalClient<T extends DescService>(
  service: T,
  baseUrl: string,
  token: string,
): Client<T> {
  const transport = createConnectTransport({
    baseUrl,
    httpVersion: "2",
    useBinaryFormat: true,
    interceptors: [bearerAuth(token)],
    pingIntervalMs: 30_000,
  });
  return createClient(service, transport);
}
