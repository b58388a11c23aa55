import { createInternalClient, createMetricsRegistry, newExecutionId, silentLogger } from "@rgrid/common";
import type { RunningServer } from "@rgrid/common";
import { ObjectKind, StorageService } from "@rgrid/proto";
import { openBackend } from "../src/backend";
import { systemClock } from "../src/clock";
import { createCopyMetrics, instrumentCopies } from "../src/copy-metrics";
import type { ObjectStore } from "../src/object-store";
import { createStorageServer } from "../src/server";
import { uploadThroughGrants } from "./copy-scenarios";
import { tempDir } from "./helpers";

// storage-service's copy metrics: over the wire on the filesystem backend, CopyInputs moves the
// byte counter by the sizes copied and times each copy; failures are timed apart.

const TOKEN = "internal-token-for-tests-0123456789";

/** The value of the sample line starting with `series`, or undefined when there is none. */
function sample(text: string, series: string): number | undefined {
  const line = text.split("\n").find((candidate) => candidate.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

let running: RunningServer;
let stopBackend: () => Promise<void>;

beforeEach(async () => {
  const dir = await tempDir("metrics");
  const listening: { url?: string } = {};
  const backend = await openBackend(
    { kind: "fs", dir: dir.path, signingKey: "signing-key-for-tests-0123456789" },
    { clock: systemClock, maxObjectBytes: 1024 ** 3, listeningUrl: () => listening.url, logger: silentLogger },
  );
  running = await createStorageServer({
    ...backend,
    internalTokens: [TOKEN],
    grantTtlSeconds: 300,
    readMaxBytes: 4 * 1024 * 1024,
    metrics: { registry: createMetricsRegistry() },
    logger: silentLogger,
  }).listen(0, "127.0.0.1");
  listening.url = running.url;
  stopBackend = async () => {
    await dir.remove();
  };
});

afterEach(async () => {
  await running.close(1000);
  await stopBackend();
});

const scrape = async () => (await fetch(`${running.url}/metrics`)).text();

test("CopyInputs counts the bytes it copied and times each copy", async () => {
  const client = createInternalClient(StorageService, running.url, TOKEN);
  const source = newExecutionId();
  await uploadThroughGrants(client, source, [
    { kind: ObjectKind.SCRIPT, name: "main.py", size: 1000 },
    { kind: ObjectKind.INPUT, name: "data.csv", size: 23_456 },
  ]);
  const before = await scrape();
  expect(sample(before, "rgrid_storage_copied_bytes_total")).toBe(0);
  expect(sample(before, 'rgrid_storage_copy_duration_seconds_count{outcome="ok"}')).toBeUndefined();

  await client.copyInputs({ sourceExecutionId: source, targetExecutionId: newExecutionId(), scriptName: "main.py", names: ["data.csv"] });
  const after = await scrape();
  expect(sample(after, "rgrid_storage_copied_bytes_total")).toBe(24_456);
  expect(sample(after, 'rgrid_storage_copy_duration_seconds_count{outcome="ok"}')).toBe(2);
  expect(sample(after, 'rgrid_rpc_requests_total{service="rgrid.v1.StorageService",method="CopyInputs",code="ok"}')).toBe(1);
});

test("a copy that fails in the backend is timed as an error and counts no bytes; a target not found counts none either", async () => {
  const registry = createMetricsRegistry();
  const failing = new Error("backend down");
  const inner = {
    copy: async (source: string, target: string) => {
      if (source === "bad") {
        throw failing;
      }
      return { source: { key: source, sizeBytes: 5 }, target: target === "unknown-size" ? undefined : { key: target, sizeBytes: 5 } };
    },
  } as Partial<ObjectStore> as ObjectStore;
  const store = instrumentCopies(inner, createCopyMetrics(registry));

  await expect(store.copy("bad", "target")).rejects.toBe(failing);
  await store.copy("good", "target");
  await store.copy("good", "unknown-size");
  const text = await registry.metrics();
  expect(sample(text, 'rgrid_storage_copy_duration_seconds_count{outcome="error"}')).toBe(1);
  expect(sample(text, 'rgrid_storage_copy_duration_seconds_count{outcome="ok"}')).toBe(2);
  expect(sample(text, "rgrid_storage_copied_bytes_total")).toBe(5);
});
