// The production shape — PostgreSQL for executions, S3 for objects (s3rver standing in for
// MinIO) — through the real processes and the built CLI: run → failed → retry → completed,
// a retry whose input vanished from the bucket leaves nothing behind, and a batch's one upload of
// its script becomes every execution's own copy.
import type { Client as MinioClient } from "minio";
import { keysUnder as keysUnderOf, objectDigest as objectDigestOf } from "../support/bucket";
import { pollUntil, runCli, startedId } from "../support/grid";
import type { TestGrid } from "../support/grid";
import { postgresServerUrl } from "../support/postgres";
import { startProductionGrid } from "../support/production-grid";
import type { ProductionGrid } from "../support/production-grid";

jest.setTimeout(60_000);

const BUCKET = "rgrid-e2e";

const suite = postgresServerUrl ? describe : describe.skip;

suite("on PostgreSQL and S3 (set RGRID_TEST_POSTGRES_URL to run)", () => {
  let production: ProductionGrid;
  let bucket: MinioClient;
  let grid: TestGrid;

  beforeAll(async () => {
    production = await startProductionGrid(BUCKET);
    ({ grid, bucket } = production);
  });

  afterAll(async () => {
    await production?.stop();
  });

  async function status(id: string): Promise<{ status: string; retry_of: string | null; attempt: number }> {
    const result = await runCli(grid, ["status", id, "--json"]);
    return JSON.parse(result.stdout) as { status: string; retry_of: string | null; attempt: number };
  }

  async function waitUntilFinished(id: string): Promise<string> {
    const finished = await pollUntil(
      () => status(id),
      (answer) => ["completed", "failed", "timed_out", "cancelled"].includes(answer.status),
      (answer) => `${id} did not finish, still ${answer.status}`,
    );
    return finished.status;
  }

  const objectDigest = (key: string) => objectDigestOf(bucket, BUCKET, key);
  const keysUnder = (prefix: string) => keysUnderOf(bucket, BUCKET, prefix);

  test("a failed run is retried with its inputs copied inside the bucket, and completes", async () => {
    // Long enough for the original to run and fail on a loaded machine; the retry waits it out.
    const readyAt = Math.floor(Date.now() / 1000) + 6;
    const run = await runCli(grid, [
      "run",
      "examples/flaky_fetch.py",
      "examples/data/orders.json",
      "--env",
      `UPSTREAM_READY_AT=${readyAt}`,
    ]);
    const originalId = startedId(run.stdout);
    expect(await waitUntilFinished(originalId)).toBe("failed");

    await new Promise((resolve) => setTimeout(resolve, Math.max(0, readyAt * 1000 - Date.now() + 200)));
    const retry = await runCli(grid, ["retry", originalId]);
    expect(retry.code).toBe(0);
    const retryId = startedId(retry.stdout);
    expect(retry.stdout).toContain(`Original: ${originalId}\n`);

    expect(await waitUntilFinished(retryId)).toBe("completed");
    expect(await status(retryId)).toMatchObject({ retry_of: originalId, attempt: 2 });
    const input = "inputs/examples/data/orders.json";
    expect(await objectDigest(`executions/${retryId}/${input}`)).toBe(
      await objectDigest(`executions/${originalId}/${input}`),
    );
  });

  test("a retry whose input is gone from the bucket fails and leaves no objects or rows", async () => {
    const run = await runCli(grid, ["run", "examples/word_count.py", "examples/data/poem.txt", "--wait", "--remote-only"]);
    const id = startedId(run.stdout);
    await bucket.removeObject(BUCKET, `executions/${id}/inputs/examples/data/poem.txt`);
    const listBefore = (await runCli(grid, ["list", "--json"])).stdout;
    const prefixesBefore = new Set((await keysUnder("executions/")).map((key) => key.split("/")[1]));

    const retry = await runCli(grid, ["retry", id]);
    expect(retry.code).toBe(1);
    expect(retry.stderr).toContain("examples/data/poem.txt");
    expect((await runCli(grid, ["list", "--json"])).stdout).toBe(listBefore);
    const prefixesAfter = new Set((await keysUnder("executions/")).map((key) => key.split("/")[1]));
    expect(prefixesAfter).toEqual(prefixesBefore);
  });

  test("a batch uploads its script once: each execution gets its own copy inside the bucket, and all complete", async () => {
    const run = await runCli(grid, ["run", "examples/word_count.py", "--batch", "examples/data/*.*", "--wait", "--json"]);
    expect(run.stderr).toBe("");
    expect(run.code).toBe(0);
    const { executions } = JSON.parse(run.stdout) as { executions: Array<{ id: string; status: string }> };
    expect(executions.map((execution) => execution.status)).toEqual(executions.map(() => "completed"));
    expect(executions.length).toBeGreaterThan(1);
    const digests = await Promise.all(executions.map((execution) => objectDigest(`executions/${execution.id}/script/word_count.py`)));
    expect(new Set(digests).size).toBe(1);
  });
});
