import type { Registry } from "prom-client";
import { bearerToken, matchesAnySecret } from "./auth";
import type { Logger } from "./logger";
import type { NodeHandler } from "./server";

/**
 * Where Prometheus scrapes. No RPC path can be this (those are /<package>.<Service>/<Method>),
 * and createConnectServer answers it before the fallback, so the console's app routes, which
 * would otherwise take any extension-less path, never see it.
 */
export const METRICS_PATH = "/metrics";

export interface MetricsEndpointOptions {
  registry: Registry;
  /** Required as `Authorization: Bearer <token>` when set. */
  token?: string;
  logger: Logger;
}

/** GET /metrics in the Prometheus text exposition format. */
export function createMetricsHandler(options: MetricsEndpointOptions): NodeHandler {
  const tokens = options.token === undefined ? undefined : [options.token];
  return (req, res) => {
    if (req.method !== "GET") {
      res.writeHead(405, { Allow: "GET" });
      res.end();
      return;
    }
    if (tokens !== undefined) {
      const presented = bearerToken(new Headers({ authorization: req.headers.authorization ?? "" }));
      // Compared in constant time, as every other secret of the service.
      if (presented === undefined || !matchesAnySecret(presented, tokens)) {
        res.writeHead(401, { "WWW-Authenticate": 'Bearer realm="metrics"', "Content-Type": "text/plain; charset=utf-8" });
        res.end("GET /metrics needs Authorization: Bearer <RGRID_METRICS_TOKEN>\n");
        return;
      }
    }
    options.registry.metrics().then(
      (text) => {
        // Every scrape must see current values, never a cache's.
        res.writeHead(200, { "Content-Type": options.registry.contentType, "Cache-Control": "no-store" });
        res.end(text);
      },
      (error: unknown) => {
        options.logger.error("could not collect metrics", { error });
        res.writeHead(500, { "Content-Type": "text/plain; charset=utf-8" });
        res.end("could not collect metrics\n");
      },
    );
  };
}

/** Whether a request is a scrape of METRICS_PATH (with or without a query string). */
export function isMetricsRequest(url: string | undefined): boolean {
  return (url ?? "").split("?", 1)[0] === METRICS_PATH;
}
