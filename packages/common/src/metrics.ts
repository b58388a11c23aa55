import { Counter, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { EnvReader } from "./config";

// Prometheus metrics. Each server records into a Registry it is given rather than prom-client's
// global one: tests run several servers in one process, and two registrations of one name in
// the same registry throw. docs/operations.md lists every metric.

// The services define their own metrics with these; prom-client is this package's dependency.
export { Counter, Gauge, Histogram, Registry } from "prom-client";

export interface MetricsOptions {
  /** What GET /metrics reports; the service's own metrics are registered in it. */
  registry: Registry;
  /** When set, GET /metrics requires `Authorization: Bearer <token>` (RGRID_METRICS_TOKEN). */
  token?: string;
}

/** A registry holding prom-client's default process metrics (CPU, memory, heap, event loop, GC). */
export function createMetricsRegistry(): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  return registry;
}

/** RGRID_METRICS_TOKEN: optional, but when set it is a secret and as long as one. */
export function readMetricsToken(reader: EnvReader): string | undefined {
  const token = reader.optionalString("RGRID_METRICS_TOKEN");
  if (token !== undefined && token.length < 16) {
    reader.problem("RGRID_METRICS_TOKEN must be at least 16 characters");
  }
  return token;
}

/** One finished RPC, as the RPC interceptor reports it. */
export interface RpcOutcome {
  service: string;
  method: string;
  /** The Connect code name: "ok", "invalid_argument", "internal", ... */
  code: string;
  seconds: number;
}

export type RecordRpc = (outcome: RpcOutcome) => void;

// From a health check's milliseconds to the 30 s a claim waits and the minutes a log stream
// follows an execution.
const RPC_SECONDS_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800];

/** Registers the RPC metrics in `registry` and returns what records one RPC in them. */
export function createRpcMetrics(registry: Registry): RecordRpc {
  const labelNames = ["service", "method", "code"] as const;
  const handled = new Counter({
    name: "rgrid_rpc_requests_total",
    help: "RPCs answered, by service, method and Connect code.",
    labelNames,
    registers: [registry],
  });
  const duration = new Histogram({
    name: "rgrid_rpc_duration_seconds",
    help: "Time from an RPC's request to its last response message, by service, method and Connect code.",
    labelNames,
    buckets: RPC_SECONDS_BUCKETS,
    registers: [registry],
  });
  return ({ service, method, code, seconds }) => {
    const labels = { service, method, code };
    handled.inc(labels);
    duration.observe(labels, seconds);
  };
}
