import { Counter, Gauge, Histogram } from "@rgrid/common";
import type { Logger, Registry } from "@rgrid/common";
import { TERMINAL_STATES } from "./db/entities";
import type { ExecutionState } from "./db/entities";
import type { Database } from "./db/orm";
import { countExecutions } from "./executions/queries";
import type { ExecutionCount } from "./executions/queries";

// execution-service's own metrics (docs/operations.md lists them with the RPC and process ones).

/** Who asked for a retry: a client (RetryExecution, forced or not), RetryBatch, or the service itself. */
export type RetryMetricKind = "manual" | "batch" | "automatic";

export interface ExecutionMetrics {
  /** A retry was recorded as a new execution (a replayed request records nothing). */
  retryCreated(kind: RetryMetricKind): void;
  /** A runner claimed an execution that had waited `seconds` to be claimed. */
  claimed(seconds: number): void;
}

export interface ExecutionMetricsDeps {
  registry: Registry;
  /** Counted at scrape time, so the numbers are the database's, whichever replica changed them. */
  db: Database;
  logger: Logger;
}

const RETRY_KINDS: readonly RetryMetricKind[] = ["manual", "batch", "automatic"];
const STATUSES: readonly ExecutionState[] = ["uploading", "queued", "running", ...TERMINAL_STATES];

/**
 * Runtime names are the clients' to choose, so the queue depth names at most this many (the
 * deepest queues) and sums the rest under OTHER_RUNTIMES: a client cannot grow the series without
 * bound.
 */
const MAX_RUNTIME_LABELS = 20;
const OTHER_RUNTIMES = "(other)";

// From a runner that was already waiting (well under a second) to a queue backed up for an hour.
const CLAIM_SECONDS_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600];

/** Registers execution-service's metrics in `registry`. */
export function createExecutionMetrics(deps: ExecutionMetricsDeps): ExecutionMetrics {
  const { registry } = deps;
  const retries = new Counter({
    name: "rgrid_retries_total",
    help: "Retries recorded as new executions, by who asked: manual (RetryExecution), batch (RetryBatch) or automatic.",
    labelNames: ["kind"] as const,
    registers: [registry],
  });
  // Present at zero from the start, so that rate() sees the first retry of each kind.
  for (const kind of RETRY_KINDS) {
    retries.inc({ kind }, 0);
  }
  const claimLatency = new Histogram({
    name: "rgrid_claim_latency_seconds",
    help: "Time from an execution being created (a retry: from the end of its backoff) to a runner claiming it.",
    buckets: CLAIM_SECONDS_BUCKETS,
    registers: [registry],
  });

  const counts = sharedWhileRunning(() => countExecutions(deps.db.fork()));
  new Gauge({
    name: "rgrid_executions",
    help: "Executions in the database, by status; the same from every replica.",
    labelNames: ["status"] as const,
    registers: [registry],
    async collect() {
      const rows = await countsOrNothing();
      this.reset();
      if (rows === undefined) {
        return;
      }
      for (const status of STATUSES) {
        this.set({ status }, 0);
      }
      for (const row of rows) {
        this.inc({ status: row.status }, row.count);
      }
    },
  });
  new Gauge({
    name: "rgrid_execution_queue_depth",
    help: "Queued executions (in a retry's backoff included) by runtime, the deepest 20 by name; the same from every replica.",
    labelNames: ["runtime"] as const,
    registers: [registry],
    async collect() {
      const rows = await countsOrNothing();
      this.reset();
      if (rows === undefined) {
        return;
      }
      const queued = rows.filter((row) => row.status === "queued").sort((a, b) => b.count - a.count);
      for (const [index, row] of queued.entries()) {
        this.inc({ runtime: index < MAX_RUNTIME_LABELS ? row.runtimeName : OTHER_RUNTIMES }, row.count);
      }
    },
  });

  /** The counts, or undefined when the database cannot say: the scrape goes on without them. */
  async function countsOrNothing(): Promise<ExecutionCount[] | undefined> {
    try {
      return await counts();
    } catch (error) {
      deps.logger.warn("could not count executions for /metrics", { error });
      return undefined;
    }
  }

  return {
    retryCreated: (kind) => retries.inc({ kind }),
    claimed: (seconds) => claimLatency.observe(seconds),
  };
}

/**
 * `run`, shared by the callers that ask while it runs: both gauges are collected in the same
 * scrape (prom-client collects all metrics at once), and they take their numbers from one query.
 */
function sharedWhileRunning<T>(run: () => Promise<T>): () => Promise<T> {
  let running: Promise<T> | undefined;
  return () => {
    running ??= run().finally(() => {
      running = undefined;
    });
    return running;
  };
}
