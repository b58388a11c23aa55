// The browser console: its bundle size, and how soon Chromium shows the executions list of an
// account with 10,000 executions — from navigation to the first row on screen, measured in the
// page — beside the ListExecutions call the list makes, timed from Node against the same grid.
//
//   node bench/dist/console.js
import { readFileSync, readdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { gzipSync } from "node:zlib";
import { create } from "@bufbuild/protobuf";
import { newBatchId, newExecutionId } from "@rgrid/common";
import { Execution, openDatabase, originalRecord } from "@rgrid/execution";
import type { ExecutionState } from "@rgrid/execution";
import { CreateExecutionRequestSchema } from "@rgrid/proto";
import { startBenchGrid } from "./bench-grid";
import { launchChromium } from "./chromium";
import { runBenchmark } from "./entry";
import { ms, percentile, printTable } from "./stats";

const EXECUTIONS = 10_000;
const ROUNDS = 9;
const CONSOLE_DIST = resolve(__dirname, "../../web/dist");

/** Every built file's size, and the JavaScript's raw and gzipped totals. */
function bundleSizes(): { js: number; jsGzip: number; css: number; cssGzip: number } {
  const assets = join(CONSOLE_DIST, "assets");
  const sizes = { js: 0, jsGzip: 0, css: 0, cssGzip: 0 };
  for (const name of readdirSync(assets)) {
    const bytes = readFileSync(join(assets, name));
    if (name.endsWith(".js")) {
      sizes.js += bytes.length;
      sizes.jsGzip += gzipSync(bytes, { level: 9 }).length;
    } else if (name.endsWith(".css")) {
      sizes.css += bytes.length;
      sizes.cssGzip += gzipSync(bytes, { level: 9 }).length;
    }
  }
  return sizes;
}

/** Executions as the service stores them: lineages of one to three attempts, some in batches. */
function executionRows(accountId: string, count: number): Execution[] {
  const statuses: ExecutionState[] = ["completed", "failed", "failed", "timed_out", "cancelled", "completed"];
  const rows: Execution[] = [];
  const start = Date.now() - count * 1000;
  const batchId = newBatchId();
  while (rows.length < count) {
    const rootId = newExecutionId();
    const attempts = 1 + (rows.length % 3);
    for (let attempt = 1; attempt <= attempts && rows.length < count; attempt++) {
      const id = attempt === 1 ? rootId : newExecutionId();
      const createdAt = start + rows.length * 1000;
      const request = create(CreateExecutionRequestSchema, {
        script: { name: `jobs/report_${rows.length % 40}.py`, sizeBytes: 1200n, sha256: "a".repeat(64) },
        runtime: "python",
        args: ["input.json"],
        inputs: [{ name: "input.json", sizeBytes: 88n, sha256: "b".repeat(64) }],
        batchId: rows.length % 10 === 0 ? batchId : "",
      });
      rows.push(
        Object.assign(new Execution(), originalRecord(request, { id, accountId, createdAt: new Date(createdAt) }), {
          status: statuses[rows.length % statuses.length] as ExecutionState,
          startedAt: new Date(createdAt + 20),
          finishedAt: new Date(createdAt + 900),
          exitCode: 1,
          retryOf: attempt === 1 ? null : (rows[rows.length - 1] as Execution).id,
          rootId,
          attempt,
          retryKind: attempt === 1 ? "original" : "manual",
        } satisfies Partial<Execution>),
      );
    }
  }
  return rows;
}

async function main(): Promise<void> {
  const sizes = bundleSizes();
  const bench = await startBenchGrid({ runners: 1 });
  try {
    await bench.stopRunners();
    const accountId = (await bench.client.getSession({})).session?.accountId ?? "";
    const db = await openDatabase({ dialect: "sqlite", file: join(bench.dataDir, "rgrid.db") });
    try {
      await db.fork().insertMany(Execution, executionRows(accountId, EXECUTIONS));
    } finally {
      await db.close();
    }

    const browser = await launchChromium();
    try {
      const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
      const signIn = await context.newPage();
      await signIn.goto(await bench.grid.createSignInLink());
      await signIn.waitForURL(`${bench.grid.executionUrl}/`);
      await signIn.close();

      const firstRow = [];
      const wall = [];
      const listCall = [];
      for (let round = 0; round < ROUNDS; round++) {
        // A fresh page each round; the second and later rounds have the hashed assets cached, as
        // a returning user does.
        const page = await context.newPage();
        const started = performance.now();
        await page.goto(`${bench.grid.executionUrl}/`);
        await page.locator('[data-testid="execution-row"]').first().waitFor();
        wall.push(performance.now() - started);
        firstRow.push(Number(await page.evaluate("performance.now()")));
        await page.close();

        const callStarted = performance.now();
        await bench.client.listExecutions({ pageSize: 50 });
        listCall.push(performance.now() - callStarted);
      }
      const rows: Array<[string, string, string]> = [
        ["measure", "p50", "p99 / note"],
        ["console JS (raw / gzip)", `${(sizes.js / 1024).toFixed(1)} KiB`, `${(sizes.jsGzip / 1024).toFixed(1)} KiB gzip`],
        ["console CSS (raw / gzip)", `${(sizes.css / 1024).toFixed(1)} KiB`, `${(sizes.cssGzip / 1024).toFixed(1)} KiB gzip`],
        [`first row of the list, ${EXECUTIONS} executions (in page)`, ms(percentile(firstRow, 50)), ms(percentile(firstRow, 99))],
        ["goto → first row visible (from Node)", ms(percentile(wall, 50)), ms(percentile(wall, 99))],
        ["first cold load (round 1, in page)", ms(firstRow[0] ?? Number.NaN), "assets not yet cached"],
        ["ListExecutions, page of 50 (floor, from Node)", ms(percentile(listCall, 50)), ms(percentile(listCall, 99))],
      ];
      printTable(rows);
    } finally {
      await browser.close();
    }
  } finally {
    await bench.stop();
  }
}

runBenchmark(main);
