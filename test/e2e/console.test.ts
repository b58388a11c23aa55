// The browser console end to end: real headless Chromium against the real grid (storage-service,
// execution-service serving the console, a runner), signed in with the link `npm start` prints.
import { createServer } from "node:http";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { createHash, randomUUID } from "node:crypto";
import { copyFile, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ExecutionService, ExecutionStatus, LogEntry_Stream, RetryKind } from "@rgrid/proto";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { launchChromium, screenshot } from "../support/browser";
import { clientFor } from "../support/executions";
import type { ExecutionClient } from "../support/executions";
import { REPO_ROOT, pollUntil, runCli, startTestGrid, startedId } from "../support/grid";
import { startOutageProxy } from "../support/outage-proxy";
import type { TestGrid } from "../support/grid";

jest.setTimeout(120_000);

const SCRIPTS: Record<string, string> = {
  // Fails until READY_AT (a Unix time), printing to both streams: what a retry is for.
  "fails_until.py": [
    "import os, sys, time",
    "print('fetching rates')",
    "if time.time() < float(os.environ['READY_AT']):",
    "    print('upstream answered 503', file=sys.stderr)",
    "    sys.exit(1)",
    "print('total: 587.38 EUR')",
  ].join("\n"),
  // Prints a numbered line every 50 ms for the given seconds.
  "ticks.py": [
    "import sys, time",
    "end = time.time() + float(sys.argv[1])",
    "n = 0",
    "while time.time() < end:",
    "    n += 1",
    "    print(f'tick {n}', flush=True)",
    "    time.sleep(0.05)",
  ].join("\n"),
  // As many numbered lines as asked, as fast as Python prints them.
  "many_lines.py": ["import sys", "for n in range(int(sys.argv[1])):", "    print(f'line {n + 1}')"].join("\n"),
  // Fails for odd numbers: half a batch to retry.
  "odd_fails.py": ["import json, sys", "n = json.load(open(sys.argv[1]))['n']", "print('n =', n)", "sys.exit(n % 2)"].join("\n"),
};

let grid: TestGrid;
let workDir: string;
let browser: Browser;
let context: BrowserContext;
let page: Page;
let api: ExecutionClient;
let thirdParty: Server;
let listedOrigin: string;
let unlistedOrigin: string;

beforeAll(async () => {
  // Another web app's page, on an origin the grid allows (127.0.0.1) and one it does not
  // (localhost): the same server under two names.
  thirdParty = createServer((_req, res) => {
    res.writeHead(200, { "content-type": "text/html" });
    res.end("<!doctype html><title>another app</title><p>another app</p>");
  });
  await new Promise<void>((resolve) => thirdParty.listen(0, "127.0.0.1", resolve));
  const port = (thirdParty.address() as AddressInfo).port;
  listedOrigin = `http://127.0.0.1:${port}`;
  unlistedOrigin = `http://localhost:${port}`;

  grid = await startTestGrid({ executionEnv: { RGRID_CORS_ORIGINS: listedOrigin } });
  workDir = await mkdtemp(join(tmpdir(), "rgrid-console-e2e-"));
  for (const [name, text] of Object.entries(SCRIPTS)) {
    await writeFile(join(workDir, name), `${text}\n`);
  }
  await copyFile(join(REPO_ROOT, "examples", "word_count.py"), join(workDir, "word_count.py"));
  await copyFile(join(REPO_ROOT, "examples", "data", "poem.txt"), join(workDir, "poem.txt"));
  for (const n of [1, 2, 3, 4]) {
    await writeFile(join(workDir, `item-${n}.json`), JSON.stringify({ n }));
  }
  api = clientFor(ExecutionService, grid.executionUrl, grid.apiKey);
  browser = await launchChromium();
  ({ context, page } = await signedInContext());
});

/** A fresh browser profile signed in through a new sign-in link, as `npm start` prints one. */
async function signedInContext(): Promise<{ context: BrowserContext; page: Page }> {
  const signedIn = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const signedInPage = await signedIn.newPage();
  await signedInPage.goto(await grid.createSignInLink());
  await signedInPage.waitForURL(`${grid.executionUrl}/`);
  return { context: signedIn, page: signedInPage };
}

afterAll(async () => {
  await browser?.close();
  await grid?.shutdown();
  await new Promise((resolve) => thirdParty?.close(resolve));
  await rm(workDir, { recursive: true, force: true });
});

async function cli(...args: string[]) {
  const result = await runCli(grid, args, { cwd: workDir });
  return result;
}

async function statusOf(id: string): Promise<ExecutionStatus> {
  return (await api.getExecution({ executionId: id })).execution?.status ?? ExecutionStatus.UNSPECIFIED;
}

async function waitForStatus(id: string, wanted: ExecutionStatus[]): Promise<void> {
  await pollUntil(() => statusOf(id), (status) => wanted.includes(status), (status) => `${id} is ${ExecutionStatus[status]}`);
}

const statusText = () => page.getByTestId("execution-status");

/** Waits until the execution page shows `status` (the page follows it live). */
async function waitForStatusShown(status: string): Promise<void> {
  await page.locator('[data-testid="execution-status"]', { hasText: new RegExp(`^${status}$`) }).waitFor({ timeout: 30_000 });
}

test("the printed sign-in link signs in once; the cookie is invisible to page scripts", async () => {
  const link = await grid.createSignInLink();
  expect(link).toMatch(new RegExp(`^${grid.executionUrl}/sign-in#token=[A-Za-z0-9_-]{43}$`));
  const first = await browser.newContext();
  const firstPage = await first.newPage();
  await firstPage.goto(link);
  await firstPage.waitForURL(`${grid.executionUrl}/`);
  await firstPage.getByTestId("account-name").filter({ hasText: "local" }).waitFor();
  expect(firstPage.url()).not.toContain("token");
  expect(await firstPage.evaluate("document.cookie")).not.toContain("rgrid_session");
  const cookies = await first.cookies(grid.executionUrl);
  expect(cookies.find((cookie) => cookie.name === "rgrid_session")).toMatchObject({ httpOnly: true, sameSite: "Strict" });
  await first.close();

  // The same link again, in a fresh browser profile: refused with a readable message.
  const other = await browser.newContext();
  const otherPage = await other.newPage();
  await otherPage.goto(link);
  await expect(otherPage.getByRole("alert").textContent()).resolves.toMatch(/already used or has expired/);
  await screenshot(otherPage, "sign-in-link-used");
  await other.close();
});

test("find a failed run, read its logs, retry it and watch the retry complete, lineage both ways", async () => {
  // Long enough for the original to run and fail on a loaded machine.
  const readyAtMillis = Date.now() + 6000;
  const run = await cli("run", "fails_until.py", "--env", `READY_AT=${readyAtMillis / 1000}`);
  const failedId = startedId(run.stdout);
  await waitForStatus(failedId, [ExecutionStatus.FAILED]);

  await page.goto(`${grid.executionUrl}/?unresolved=1`);
  const row = page.locator(`[data-testid="execution-row"][data-execution-id="${failedId}"]`);
  await row.waitFor();
  expect(await row.getAttribute("data-status")).toBe("failed");
  await screenshot(page, "executions-list");
  await row.getByRole("link", { name: failedId }).click();
  await page.waitForURL(`**/executions/${failedId}`);
  await expect(statusText().textContent()).resolves.toBe("failed");
  await expect(page.getByTestId("exit-code").textContent()).resolves.toContain("1");
  await page.locator('[data-testid="log-line"][data-stream="stderr"]', { hasText: "upstream answered 503" }).waitFor();
  await page.locator('[data-testid="log-line"][data-stream="stdout"]', { hasText: "fetching rates" }).waitFor();
  await screenshot(page, "execution-failed");

  // Wait out the upstream, then retry from the page.
  await new Promise((resolve) => setTimeout(resolve, Math.max(0, readyAtMillis - Date.now() + 200)));
  await page.getByRole("button", { name: "Retry…" }).click();
  const dialog = page.getByRole("dialog", { name: "Retry execution" });
  await expect(dialog.textContent()).resolves.toContain("fails_until.py");
  await screenshot(page, "retry-dialog");
  await dialog.getByRole("button", { name: "Retry", exact: true }).click();
  const newLink = page.getByTestId("new-execution");
  await newLink.waitFor();
  const retryId = ((await newLink.textContent()) ?? "").match(/exec_[0-9a-f]{32}/)?.[0] ?? "";
  expect(retryId).toMatch(/^exec_/);
  if (!page.url().endsWith(retryId)) {
    await newLink.click();
  }
  await page.waitForURL(`**/executions/${retryId}`);
  await waitForStatusShown("completed");
  await page.locator('[data-testid="log-line"]', { hasText: "total: 587.38 EUR" }).waitFor();

  const lineage = page.getByTestId("lineage");
  await expect(lineage.locator("li").evaluateAll((items) => items.map((item) => [item.getAttribute("data-execution-id"), item.getAttribute("data-kind")]))).resolves.toEqual([
    [failedId, "original"],
    [retryId, "manual"],
  ]);
  expect(await lineage.locator('li[aria-current="true"]').getAttribute("data-execution-id")).toBe(retryId);
  await screenshot(page, "execution-retried");

  // And from the original, the retry.
  await lineage.getByRole("link", { name: failedId }).first().click();
  await page.waitForURL(`**/executions/${failedId}`);
  await page.getByRole("link", { name: retryId }).first().waitFor();
  const stored = (await api.getExecution({ executionId: retryId })).execution;
  expect(stored).toMatchObject({ retryOf: failedId, attempt: 2, retryKind: RetryKind.MANUAL });
  expect(stored?.retriedBy).toMatch(/^sess_[0-9a-f]{32}$/);
});

test("a double click on Retry makes exactly one retry", async () => {
  const run = await cli("run", "odd_fails.py", "item-1.json");
  const failedId = startedId(run.stdout);
  await waitForStatus(failedId, [ExecutionStatus.FAILED]);
  await page.goto(`${grid.executionUrl}/executions/${failedId}`);
  await page.getByRole("button", { name: "Retry…" }).click();
  const confirm = page.getByRole("dialog", { name: "Retry execution" }).getByRole("button", { name: "Retry", exact: true });
  await confirm.dblclick();
  await page.getByTestId("new-execution").waitFor();
  // Give a second request every chance to land before counting.
  await new Promise((resolve) => setTimeout(resolve, 500));
  const lineage = await api.listExecutions({ rootId: failedId });
  expect(lineage.executions.map((execution) => execution.retryOf).filter((id) => id === failedId)).toHaveLength(1);
});

test("retrying a running execution needs Force, and Cancel stops it", async () => {
  const run = await cli("run", "ticks.py", "60");
  const runningId = startedId(run.stdout);
  await waitForStatus(runningId, [ExecutionStatus.RUNNING]);
  await page.goto(`${grid.executionUrl}/executions/${runningId}`);
  await waitForStatusShown("running");
  await page.locator('[data-testid="log-line"]', { hasText: "tick 3" }).waitFor();
  await screenshot(page, "execution-running");

  await page.getByRole("button", { name: "Retry…" }).click();
  const dialog = page.getByRole("dialog", { name: "Retry execution" });
  await expect(dialog.getByTestId("retry-warning").textContent()).resolves.toContain("Warning: Execution status is 'running'");
  expect(await dialog.getByRole("button", { name: "Retry", exact: true }).count()).toBe(0);
  await screenshot(page, "retry-dialog-force");
  await dialog.getByRole("button", { name: "Force retry" }).click();
  const forcedLink = page.getByTestId("new-execution");
  await forcedLink.waitFor();
  const forcedId = ((await forcedLink.textContent()) ?? "").match(/exec_[0-9a-f]{32}/)?.[0] ?? "";
  expect((await api.getExecution({ executionId: forcedId })).execution?.retryKind).toBe(RetryKind.FORCED);
  expect(await statusOf(runningId)).toBe(ExecutionStatus.RUNNING);

  for (const id of [runningId, forcedId]) {
    await page.goto(`${grid.executionUrl}/executions/${id}`);
    await page.getByRole("button", { name: "Cancel…" }).click();
    await page.getByRole("dialog", { name: "Cancel execution" }).getByRole("button", { name: "Cancel execution" }).click();
    await waitForStatusShown("cancelled");
  }
  await screenshot(page, "execution-cancelled");
  expect(await statusOf(runningId)).toBe(ExecutionStatus.CANCELLED);
});

test("a cancel that arrives after the execution finished shows how it finished, from the refusal itself", async () => {
  const run = await cli("run", "ticks.py", "2");
  const id = startedId(run.stdout);
  await waitForStatus(id, [ExecutionStatus.RUNNING]);
  await page.goto(`${grid.executionUrl}/executions/${id}`);
  await waitForStatusShown("running");
  await page.getByRole("button", { name: "Cancel…" }).click();
  const dialog = page.getByRole("dialog", { name: "Cancel execution" });
  // The question stays open while the script finishes on its own.
  await waitForStatus(id, [ExecutionStatus.COMPLETED]);
  await dialog.getByRole("button", { name: "Cancel execution" }).click();

  await expect(dialog.getByRole("alert").textContent()).resolves.toBe(
    `execution ${id} is already completed; there is nothing to cancel`,
  );
  await expect(dialog.getByTestId("finished-first").textContent()).resolves.toContain("completed");
  expect(await dialog.getByRole("button", { name: "Cancel execution" }).count()).toBe(0);
  await screenshot(page, "cancel-refused-finished");
  await dialog.getByRole("button", { name: "Close" }).first().click();
  expect(await statusOf(id)).toBe(ExecutionStatus.COMPLETED);
});

test("live logs resume after the connection drops, with nothing missed or repeated", async () => {
  // The console reached through a proxy that can fail: its own origin is the proxy's, and the
  // session cookie (scoped to the host, not the port) goes with it.
  const proxy = await startOutageProxy(grid.executionUrl);
  try {
    const run = await cli("run", "ticks.py", "5");
    const id = startedId(run.stdout);
    await page.goto(`${proxy.url}/executions/${id}`);
    await page.locator('[data-testid="log-line"]', { hasText: "tick 5" }).waitFor();
    proxy.begin();
    await page.getByRole("status").filter({ hasText: "Connection lost" }).waitFor();
    await screenshot(page, "connection-lost");
    await new Promise((resolve) => setTimeout(resolve, 1500));
    proxy.end();
    await waitForStatusShown("completed");
    await waitForStatus(id, [ExecutionStatus.COMPLETED]);

    const stored = await api.getLogs({ executionId: id, limit: 10_000 });
    const logs = page.getByTestId("logs");
    await page.locator(`[data-testid="logs"][data-line-count="${stored.entries.length}"]`).waitFor({ timeout: 15_000 });
    expect(await logs.getAttribute("data-last-sequence")).toBe(String(stored.entries.at(-1)?.sequence));
    await page.getByRole("status").filter({ hasText: "Connection lost" }).waitFor({ state: "hidden", timeout: 15_000 });
  } finally {
    await proxy.close();
  }
});

test("a 10,000-line log arrives whole and only the visible lines are in the page", async () => {
  const run = await cli("run", "many_lines.py", "10000");
  const id = startedId(run.stdout);
  await page.goto(`${grid.executionUrl}/executions/${id}`);
  await page.locator('[data-testid="logs"][data-line-count="10000"]').waitFor({ timeout: 30_000 });
  expect(await page.getByTestId("logs").getAttribute("data-last-sequence")).toBe("10000");
  // Following the tail: the last line is on screen, and the page holds a window, not 10,000 rows.
  await page.locator('[data-testid="log-line"][data-sequence="10000"]', { hasText: "line 10000" }).waitFor();
  expect(await page.getByTestId("log-line").count()).toBeLessThan(200);
  await screenshot(page, "execution-long-log");
});

test("a batch's failed executions are retried together", async () => {
  const run = await cli("run", "odd_fails.py", "--batch", "item-*.json");
  const batchId = /batch_[0-9a-f]{32}/.exec(run.stdout + run.stderr)?.[0] ?? "";
  expect(batchId).not.toBe("");
  const members = await pollUntil(
    () => api.listExecutions({ batchId }),
    (page) => page.executions.length === 4 && page.executions.every((e) => [ExecutionStatus.FAILED, ExecutionStatus.COMPLETED].includes(e.status)),
    () => `batch ${batchId} did not finish`,
  );
  const failed = members.executions.filter((e) => e.status === ExecutionStatus.FAILED).map((e) => e.id);
  expect(failed).toHaveLength(2);

  await page.goto(`${grid.executionUrl}/batches/${batchId}`);
  const counts = page.getByTestId("batch-counts");
  await counts.locator('[data-status="failed"][data-count="2"]').waitFor();
  await counts.locator('[data-status="completed"][data-count="2"]').waitFor();
  await screenshot(page, "batch");
  await page.getByRole("button", { name: "Retry failed…" }).click();
  await page.getByRole("dialog", { name: "Retry failed executions" }).getByRole("button", { name: "Retry failed", exact: true }).click();
  const result = page.getByTestId("batch-retry-result");
  await result.waitFor();
  const pairs = await result.locator("[data-original-id]").evaluateAll((rows) =>
    rows.map((row) => [row.getAttribute("data-original-id"), row.getAttribute("data-retry-id")]),
  );
  // Completed members are listed as skipped, with no retry.
  const retried = pairs.filter(([, retry]) => retry !== null && retry !== "");
  expect(retried.map(([original]) => original).sort()).toEqual([...failed].sort());
  expect(pairs).toHaveLength(4);
  for (const [original, retry] of retried) {
    expect((await api.getExecution({ executionId: retry ?? "" })).execution?.retryOf).toBe(original);
  }
  await screenshot(page, "batch-retried");
});

// Env values a retry with changes sets or replaces: the console names the keys, never these.
const OLD_TOKEN = "tok-old-7f3a91c2e5";
const NEW_TOKEN = "tok-new-b84d06e1f9";

/**
 * A failed run of fails_until.py (upstream down for an hour, a token, a debug level), retried
 * through the API with changes: the upstream is ready, a new token, no debug level, a new
 * variable and a timeout. The retry completes.
 */
async function retriedWithChanges(): Promise<{ originalId: string; retryId: string }> {
  const readyAt = Date.now() / 1000 + 3600;
  const run = await cli("run", "fails_until.py", "--env", `READY_AT=${readyAt}`, "--env", `UPSTREAM_TOKEN=${OLD_TOKEN}`, "--env", "DEBUG_LEVEL=3");
  const originalId = startedId(run.stdout);
  await waitForStatus(originalId, [ExecutionStatus.FAILED]);
  const retry = await api.retryExecution({
    executionId: originalId,
    requestId: randomUUID(),
    overrides: { setEnv: { FIXED: "yes", READY_AT: "0", UPSTREAM_TOKEN: NEW_TOKEN }, unsetEnv: ["DEBUG_LEVEL"], timeoutSeconds: 120 },
  });
  const retryId = retry.execution?.id ?? "";
  expect(retryId).toMatch(/^exec_/);
  await waitForStatus(retryId, [ExecutionStatus.COMPLETED]);
  return { originalId, retryId };
}

/** Everything the page shows as text, and its markup: neither may hold an env value. */
async function expectNoEnvValues(): Promise<void> {
  const shown = (await page.locator("body").innerText()) + (await page.content());
  for (const value of [OLD_TOKEN, NEW_TOKEN]) expect(shown).not.toContain(value);
}

test("a retry with changes lists each change on its page and tags its lineage step, naming env keys only", async () => {
  const { originalId, retryId } = await retriedWithChanges();
  await page.goto(`${grid.executionUrl}/executions/${retryId}`);
  await waitForStatusShown("completed");
  const changes = page.getByTestId("overrides");
  await expect(changes.locator("strong").textContent()).resolves.toBe("Changed from the attempt before");
  await expect(changes.locator("li").allTextContents()).resolves.toEqual([
    "env DEBUG_LEVEL removed",
    "env FIXED added",
    "env READY_AT changed",
    "env UPSTREAM_TOKEN changed",
    "timeout default → 120s",
  ]);
  const lineage = page.getByTestId("lineage");
  await expect(lineage.locator(`li[data-execution-id="${retryId}"]`).getByTestId("lineage-changed").textContent()).resolves.toBe(
    "changed: env, timeout",
  );
  expect(await lineage.locator(`li[data-execution-id="${originalId}"]`).getByTestId("lineage-changed").count()).toBe(0);
  await page.locator('[data-testid="log-line"]', { hasText: "total: 587.38 EUR" }).waitFor();
  await expectNoEnvValues();
  await screenshot(page, "execution-changes");

  // The original changed nothing: no box, and its lineage (listed, not read alone) still tags the retry.
  await lineage.getByRole("link", { name: originalId }).click();
  await page.waitForURL(`**/executions/${originalId}`);
  await waitForStatusShown("failed");
  await expect(lineage.locator(`li[data-execution-id="${retryId}"]`).getByTestId("lineage-changed").textContent()).resolves.toBe(
    "changed: env, timeout",
  );
  expect(await page.getByTestId("overrides").count()).toBe(0);
  expect(await page.getByTestId("compare-previous").count()).toBe(0);
});

test("Compare with the attempt before shows how the outcome and the logs differ, and what stayed the same", async () => {
  const { originalId, retryId } = await retriedWithChanges();
  const expected = await api.diffExecutions({ executionA: originalId, executionB: retryId });
  expect(expected.logs?.line).toBeGreaterThan(0n);

  await page.goto(`${grid.executionUrl}/executions/${retryId}`);
  await waitForStatusShown("completed");
  await page.getByRole("link", { name: "Compare with the attempt before" }).click();
  await page.waitForURL(`**/compare/${originalId}/${retryId}`);
  await expect(page.getByTestId("compare-a").getAttribute("data-execution-id")).resolves.toBe(originalId);
  await expect(page.getByTestId("compare-b").getAttribute("data-execution-id")).resolves.toBe(retryId);
  await expect(page.getByTestId("compare-a").textContent()).resolves.toMatch(/attempt 1.*failed$/);
  await expect(page.getByTestId("compare-b").textContent()).resolves.toMatch(/attempt 2 of exec_.*completed$/);

  const group = (name: string) => page.locator(`[data-testid="diff-group"][data-group="${name}"]`);
  const side = (name: string, which: "a" | "b") => group(name).locator(`dd[data-side="${which}"]`).textContent();
  await expect(side("outcome", "a")).resolves.toMatch(/^failed, exit code 1, script failure/);
  await expect(side("outcome", "b")).resolves.toMatch(/^completed, exit code 0/);
  await expect(group("logs").locator("h3").textContent()).resolves.toBe(`Logs differ from line ${expected.logs?.line}`);
  for (const [which, entry] of [["a", expected.logs?.a], ["b", expected.logs?.b]] as const) {
    // The stream's name in its tag, then the line.
    expect(await side("logs", which)).toBe(entry ? `${LogEntry_Stream[entry.stream].toLowerCase()}${entry.line}` : "(end of log)");
  }
  await expect(group("env").locator("h3").textContent()).resolves.toBe("Env 2 changed, 1 added, 1 removed");
  await expect(
    group("env").locator("li").evaluateAll((items) => items.map((item) => [item.getAttribute("data-change"), item.textContent])),
  ).resolves.toEqual([
    ["removed", "removedDEBUG_LEVEL"],
    ["added", "addedFIXED"],
    ["changed", "changedREADY_AT"],
    ["changed", "changedUPSTREAM_TOKEN"],
  ]);
  await expect(group("timeout").textContent()).resolves.toContain("default → 120s");
  // The same script ran with the same args, runtime and network: named once, not shown.
  const same = (await page.getByTestId("diff-same").textContent()) ?? "";
  expect(same).toMatch(/^Same: Script, Args, Runtime, .*Network/);
  for (const part of ["script", "args", "runtime", "network"]) expect(await group(part).count()).toBe(0);
  await expectNoEnvValues();
  await screenshot(page, "compare");
});

test("the audit lists a retry with its reason, the action filter narrows it, and the execution's History shows it", async () => {
  const run = await cli("run", "odd_fails.py", "item-3.json");
  const failedId = startedId(run.stdout);
  await waitForStatus(failedId, [ExecutionStatus.FAILED]);
  const reason = "input fixed upstream (INC-4711)";
  const retryId = (await api.retryExecution({ executionId: failedId, requestId: randomUUID(), reason })).execution?.id ?? "";
  expect(retryId).toMatch(/^exec_/);

  await page.goto(`${grid.executionUrl}/`);
  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Audit" }).click();
  await page.waitForURL("**/audit");
  const row = page.locator(`[data-testid="audit-row"][data-execution-id="${failedId}"]`);
  await row.waitFor();
  expect(await row.getAttribute("data-action")).toBe("retry");
  await expect(row.textContent()).resolves.toContain(reason);
  await expect(row.getByRole("link", { name: failedId }).getAttribute("href")).resolves.toBe(`/executions/${failedId}`);
  await expect(row.getByRole("link", { name: /→ exec_/ }).getAttribute("href")).resolves.toBe(`/executions/${retryId}`);
  // Newest first: the retry just made leads.
  expect(await page.getByTestId("audit-row").first().getAttribute("data-execution-id")).toBe(failedId);
  // Sign-ins are there too, until the filter narrows the list to retries.
  await page.locator('[data-testid="audit-row"][data-action="sign_in"]').first().waitFor();
  await screenshot(page, "audit");

  await page.getByLabel("Action").selectOption("retry");
  await page.waitForURL("**/audit?action=retry");
  await page.locator('[data-testid="audit-row"][data-action="sign_in"]').first().waitFor({ state: "detached" });
  await row.waitFor();
  expect(new Set(await page.getByTestId("audit-row").evaluateAll((rows) => rows.map((item) => item.getAttribute("data-action"))))).toEqual(
    new Set(["retry"]),
  );
  await page.getByLabel("Action").selectOption("cancel");
  await page.waitForURL("**/audit?action=cancel");
  await row.waitFor({ state: "detached" });
  await screenshot(page, "audit-filtered");

  // The retry's page: the lineage's history holds the entry of the retry that made it.
  await page.goto(`${grid.executionUrl}/executions/${retryId}`);
  const entry = page.getByTestId("history").locator(`[data-testid="audit-row"][data-execution-id="${failedId}"]`);
  await expect(entry.textContent()).resolves.toContain(reason);
  expect(await entry.getAttribute("data-action")).toBe("retry");
  await screenshot(page, "execution-history");
});

test("an execution shows its inputs and offers its outputs for download through storage grants", async () => {
  const run = await cli("run", "word_count.py", "poem.txt");
  const id = startedId(run.stdout);
  await waitForStatus(id, [ExecutionStatus.COMPLETED]);
  await page.goto(`${grid.executionUrl}/executions/${id}`);
  const poem = await readFile(join(workDir, "poem.txt"));
  const input = page.getByTestId("inputs").locator('tr[data-name="poem.txt"]');
  await expect(input.textContent()).resolves.toContain(createHash("sha256").update(poem).digest("hex"));
  const download = page.getByTestId("outputs").locator('tr[data-name="word_counts.json"]').getByRole("link", { name: "Download" });
  const href = (await download.getAttribute("href")) ?? "";
  expect(href.startsWith(grid.storageUrl)).toBe(true);
  const fetched = await fetch(href);
  expect(fetched.status).toBe(200);
  expect(await fetched.json()).toMatchObject({ words: expect.any(Number), top: expect.any(Array) });
  await screenshot(page, "execution-outputs");
});

test("server errors read as messages, never a blank page", async () => {
  await page.goto(`${grid.executionUrl}/executions/exec_${"0".repeat(32)}`);
  await page.getByText(/not found/i).first().waitFor();
  await screenshot(page, "execution-not-found");
});

test("pages on a listed origin call the API with a Bearer key over Connect and gRPC-Web; others cannot, nor with the cookie", async () => {
  const thirdPartyPage = await context.newPage();
  await thirdPartyPage.goto(`${listedOrigin}/`);
  const calls = await thirdPartyPage.evaluate(callTheApi, { api: grid.executionUrl, key: grid.apiKey });
  expect(calls).toEqual({ connect: 200, connectHasExecutions: true, grpcWeb: "0", withCookie: "refused" });

  await thirdPartyPage.goto(`${unlistedOrigin}/`);
  const refused = await thirdPartyPage.evaluate(callTheApi, { api: grid.executionUrl, key: grid.apiKey });
  expect(refused).toEqual({ connect: "refused", connectHasExecutions: false, grpcWeb: "refused", withCookie: "refused" });
  await thirdPartyPage.close();
});

test("signing out ends the session", async () => {
  const { context: leaving, page: leavingPage } = await signedInContext();
  const [sessionCookie] = (await leaving.cookies(grid.executionUrl)).filter((cookie) => cookie.name === "rgrid_session");
  await leavingPage.getByRole("button", { name: "Sign out" }).click();
  await leavingPage.waitForURL("**/sign-in");
  await screenshot(leavingPage, "signed-out");
  expect((await leaving.cookies(grid.executionUrl)).find((cookie) => cookie.name === "rgrid_session")).toBeUndefined();
  await leavingPage.goto(`${grid.executionUrl}/`);
  await leavingPage.waitForURL("**/sign-in");
  // The old cookie, replayed, names a revoked session.
  const replayed = await fetch(`${grid.executionUrl}/rgrid.v1.ExecutionService/GetSession`, {
    method: "POST",
    headers: { "content-type": "application/json", cookie: `rgrid_session=${sessionCookie?.value}` },
    body: "{}",
  });
  expect(await replayed.json()).toMatchObject({ code: "unauthenticated" });
  await leaving.close();
});

/**
 * Runs in the other app's page: ListExecutions over Connect (JSON) and over gRPC-Web (an empty
 * request is one empty frame), each with the Bearer key, then once with the browser's cookies
 * instead. "refused" is what a page sees when CORS says no: fetch rejects.
 */
async function callTheApi({ api, key }: { api: string; key: string }) {
  const url = `${api}/rgrid.v1.ExecutionService/ListExecutions`;
  const attempt = async <T,>(call: () => Promise<T>): Promise<T | "refused"> => {
    try {
      return await call();
    } catch {
      return "refused";
    }
  };
  let connectHasExecutions = false;
  const connect = await attempt(async () => {
    const response = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json", "connect-protocol-version": "1", authorization: `Bearer ${key}` },
      body: "{}",
    });
    connectHasExecutions = Array.isArray(((await response.json()) as { executions?: unknown[] }).executions);
    return response.status;
  });
  const grpcWeb = await attempt(async () => {
    const response = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/grpc-web+proto", "x-grpc-web": "1", "x-user-agent": "third-party-page", authorization: `Bearer ${key}` },
      body: new Uint8Array([0, 0, 0, 0, 0]),
    });
    const body = new Uint8Array(await response.arrayBuffer());
    // The status is in the trailers frame (flag 0x80) at the end of the body, or in a header.
    const trailers = new TextDecoder().decode(body.subarray(body.lastIndexOf(0x80) + 5));
    return response.headers.get("grpc-status") ?? /grpc-status:\s*(\d+)/.exec(trailers)?.[1] ?? "none";
  });
  const withCookie = await attempt(async () => {
    const response = await fetch(`${api}/rgrid.v1.ExecutionService/GetSession`, {
      method: "POST",
      credentials: "include",
      headers: { "content-type": "application/json" },
      body: "{}",
    });
    return response.ok ? "accepted" : `status ${response.status}`;
  });
  return { connect, connectHasExecutions, grpcWeb, withCookie };
}
