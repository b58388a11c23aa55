import * as http2 from "node:http2";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { Health } from "@rgrid/proto";
import { registerHealth } from "../src/health";
import { silentLogger } from "../src/logger";
import { createMetricsRegistry } from "../src/metrics";
import type { MetricsOptions } from "../src/metrics";
import { createConnectServer } from "../src/server";
import type { RunningServer } from "../src/server";

// GET /metrics over HTTP on the service's own port: the Prometheus text format, RPCs counted as
// they are answered, an optional bearer token, and no way for the path to reach RPC routing or
// the fallback (the console's app routes on execution-service).

const TOKEN = "metrics-token-0123456789";
const HEALTH_OK = 'rgrid_rpc_requests_total{service="grpc.health.v1.Health",method="Check",code="ok"}';

const servers: RunningServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => server.close(1000)));
});

async function serve(metrics?: MetricsOptions): Promise<RunningServer> {
  const server = await createConnectServer({
    routes: (router) => registerHealth(router, []),
    // What the console does with an extension-less path it does not know: the app's page.
    fallback: (_req, res) => {
      res.writeHead(200, { "content-type": "text/html" });
      res.end("<!doctype html>");
    },
    readMaxBytes: 64 * 1024,
    metrics,
    logger: silentLogger,
  }).listen(0, "127.0.0.1");
  servers.push(server);
  return server;
}

const check = (url: string) => createClient(Health, createConnectTransport({ baseUrl: url, httpVersion: "1.1" })).check({});

/** The value of the sample line starting with `series`, or undefined when there is none. */
function sample(text: string, series: string): number | undefined {
  const line = text.split("\n").find((candidate) => candidate.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

test("scrapes show the RPC counter and latency moving with each call, next to the process metrics", async () => {
  const server = await serve({ registry: createMetricsRegistry() });
  const before = await fetch(`${server.url}/metrics`);
  expect(before.status).toBe(200);
  expect(before.headers.get("content-type")).toBe("text/plain; version=0.0.4; charset=utf-8");
  expect(before.headers.get("cache-control")).toBe("no-store");
  const beforeText = await before.text();
  expect(sample(beforeText, HEALTH_OK)).toBeUndefined();
  expect(beforeText).toContain("# TYPE rgrid_rpc_requests_total counter");
  expect(beforeText).toContain("# TYPE rgrid_rpc_duration_seconds histogram");
  expect(sample(beforeText, "process_cpu_user_seconds_total")).toBeGreaterThan(0);
  expect(beforeText).toContain("nodejs_heap_size_used_bytes");

  await check(server.url);
  expect(sample(await (await fetch(`${server.url}/metrics`)).text(), HEALTH_OK)).toBe(1);
  await check(server.url);
  const after = await (await fetch(`${server.url}/metrics`)).text();
  expect(sample(after, HEALTH_OK)).toBe(2);
  expect(sample(after, 'rgrid_rpc_duration_seconds_count{service="grpc.health.v1.Health",method="Check",code="ok"}')).toBe(2);
});

test("each server counts in its own registry", async () => {
  const first = await serve({ registry: createMetricsRegistry() });
  const second = await serve({ registry: createMetricsRegistry() });
  await check(first.url);
  expect(sample(await (await fetch(`${first.url}/metrics`)).text(), HEALTH_OK)).toBe(1);
  expect(sample(await (await fetch(`${second.url}/metrics`)).text(), HEALTH_OK)).toBeUndefined();
});

test("with a token, a scrape without it or with another is refused 401, and one with it answered", async () => {
  const server = await serve({ registry: createMetricsRegistry(), token: TOKEN });
  const bare = await fetch(`${server.url}/metrics`);
  expect(bare.status).toBe(401);
  expect(bare.headers.get("www-authenticate")).toBe('Bearer realm="metrics"');
  expect(await bare.text()).not.toContain("rgrid_");
  expect((await fetch(`${server.url}/metrics`, { headers: { authorization: "Bearer wrong-token-0123456789" } })).status).toBe(401);
  expect((await fetch(`${server.url}/metrics`, { headers: { authorization: `Basic ${TOKEN}` } })).status).toBe(401);
  const scraped = await fetch(`${server.url}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } });
  expect(scraped.status).toBe(200);
  expect(await scraped.text()).toContain("rgrid_rpc_requests_total");
  // RPCs are not the token's business.
  await expect(check(server.url)).resolves.toBeDefined();
});

test("only GET is answered; other paths and servers without metrics go where they always went", async () => {
  const server = await serve({ registry: createMetricsRegistry() });
  const posted = await fetch(`${server.url}/metrics`, { method: "POST", body: "x" });
  expect(posted.status).toBe(405);
  expect(posted.headers.get("allow")).toBe("GET");
  expect(await (await fetch(`${server.url}/metrics?format=x`)).text()).toContain("rgrid_rpc_requests_total");
  expect(await (await fetch(`${server.url}/metricsx`)).text()).toBe("<!doctype html>");
  expect(await (await fetch(`${server.url}/metrics/`)).text()).toBe("<!doctype html>");

  const without = await serve();
  expect(await (await fetch(`${without.url}/metrics`)).text()).toBe("<!doctype html>");
});

test("a scrape over HTTP/2 (h2c) is answered too", async () => {
  const server = await serve({ registry: createMetricsRegistry() });
  const session = http2.connect(server.url);
  try {
    const { status, body } = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const stream = session.request({ ":path": "/metrics", ":method": "GET" });
      let status = 0;
      let body = "";
      stream.on("response", (headers) => (status = Number(headers[":status"])));
      stream.on("data", (chunk: Buffer) => (body += chunk.toString("utf8")));
      stream.on("end", () => resolve({ status, body }));
      stream.on("error", reject);
    });
    expect(status).toBe(200);
    expect(body).toContain("# TYPE rgrid_rpc_requests_total counter");
  } finally {
    session.close();
  }
});
