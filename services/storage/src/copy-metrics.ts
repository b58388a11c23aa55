import { performance } from "node:perf_hooks";
import { Counter, Histogram } from "@rgrid/common";
import type { Registry } from "@rgrid/common";
import type { ObjectStore } from "./object-store";

// Copies are what a retry costs storage (CopyInputs): their time and volume, measured around the
// object store so that the handlers stay unaware of metrics.

type CopyOutcome = "ok" | "error";

export interface CopyMetrics {
  /** One object copy attempted in the backend; `bytes` only when it succeeded and its size is known. */
  copied(outcome: CopyOutcome, seconds: number, bytes?: number): void;
}

// From a hard link on a local disk (well under a millisecond) to a server-side copy of a
// multi-gigabyte object on S3.
const COPY_SECONDS_BUCKETS = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300];

/** Registers the copy metrics in `registry`. */
export function createCopyMetrics(registry: Registry): CopyMetrics {
  const duration = new Histogram({
    name: "rgrid_storage_copy_duration_seconds",
    help: "Time of one object copy inside the backend (CopyInputs), by outcome.",
    labelNames: ["outcome"] as const,
    buckets: COPY_SECONDS_BUCKETS,
    registers: [registry],
  });
  const bytesCopied = new Counter({
    name: "rgrid_storage_copied_bytes_total",
    help: "Bytes of objects copied inside the backend (CopyInputs).",
    registers: [registry],
  });
  return {
    copied(outcome, seconds, bytes) {
      duration.observe({ outcome }, seconds);
      if (bytes !== undefined) {
        bytesCopied.inc(bytes);
      }
    },
  };
}

/** `store` with its copies measured: time, and the bytes of the target each copy answers with. */
export function instrumentCopies(store: ObjectStore, metrics: CopyMetrics): ObjectStore {
  return {
    uploadGrant: (...args) => store.uploadGrant(...args),
    downloadGrant: (...args) => store.downloadGrant(...args),
    stat: (...args) => store.stat(...args),
    list: (...args) => store.list(...args),
    listExecutions: (...args) => store.listExecutions(...args),
    move: (...args) => store.move(...args),
    delete: (...args) => store.delete(...args),
    put: (...args) => store.put(...args),
    async copy(sourceKey, targetKey) {
      const started = performance.now();
      let copied;
      try {
        copied = await store.copy(sourceKey, targetKey);
      } catch (error) {
        metrics.copied("error", secondsSince(started));
        throw error;
      }
      metrics.copied("ok", secondsSince(started), copied.target?.sizeBytes);
      return copied;
    },
  };
}

const secondsSince = (started: number) => (performance.now() - started) / 1000;
