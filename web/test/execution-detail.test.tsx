import { act, fireEvent, screen, waitFor, within } from "@testing-library/react";
import { ExecutionStatus, FailureKind, LogEntry_Stream, RetryKind } from "../src/proto";
import { FakeGrid } from "./fake-grid";
import { renderApp } from "./render-app";

// jsdom lays nothing out: give the log viewport a size so the virtualizer renders a window of lines.
const clientHeight = Object.getOwnPropertyDescriptor(Element.prototype, "clientHeight");
beforeAll(() => {
  Object.defineProperty(HTMLElement.prototype, "clientHeight", {
    configurable: true,
    get(this: HTMLElement) {
      return this.dataset.testid === "logs" ? 360 : 0;
    },
  });
});
afterAll(() => {
  delete (HTMLElement.prototype as { clientHeight?: number }).clientHeight;
  if (clientHeight) Object.defineProperty(Element.prototype, "clientHeight", clientHeight);
});

function lineage(grid: FakeGrid) {
  const original = grid.add({ status: ExecutionStatus.FAILED, exitCode: 1, errorMessage: "ConnectionResetError: peer went away" });
  const automatic = grid.add({
    status: ExecutionStatus.FAILED,
    failureKind: FailureKind.RUNNER_LOST,
    exitCode: undefined,
    errorMessage: "runner runner-7 stopped heartbeating",
    retryOf: original.id,
    rootId: original.id,
    attempt: 2,
    retryKind: RetryKind.AUTOMATIC,
    autoRetryNumber: 1,
    retryReason: "runner lost",
    sandboxWarnings: ["no network namespace: the script may reach the network"],
    metadata: { team: "data" },
    outputs: [{ name: "out/result.csv", sizeBytes: 5000n, sha256: "9".repeat(64) }],
  });
  const manual = grid.add({
    status: ExecutionStatus.RUNNING,
    retryOf: automatic.id,
    rootId: original.id,
    attempt: 3,
    retryKind: RetryKind.MANUAL,
    retriedBy: "key_alice",
  });
  return { original, automatic, manual };
}

describe("execution detail", () => {
  it("shows the execution, its files and its lineage from root to latest", async () => {
    const grid = new FakeGrid();
    const { original, automatic, manual } = lineage(grid);
    grid.add(); // another lineage, not shown
    renderApp(grid, `/executions/${automatic.id}`);

    expect((await screen.findByTestId("execution-status")).textContent).toBe("failed");
    expect(screen.getByTestId("exit-code").textContent).toBe("—");
    expect(screen.getByTestId("error-message").textContent).toBe("runner runner-7 stopped heartbeating");
    expect(screen.getByText("runner lost", { selector: "dd" })).toBeTruthy();
    expect(screen.getByText("no network namespace: the script may reach the network")).toBeTruthy();
    expect(screen.getByText("team=data")).toBeTruthy();
    expect(screen.getByText("API_TOKEN, MODE")).toBeTruthy();
    expect(screen.queryByText(/secret-value/)).toBeNull();
    expect(within(screen.getByTestId("inputs")).getByText("input.json")).toBeTruthy();

    const steps = await waitFor(() => {
      const items = within(screen.getByTestId("lineage")).getAllByRole("listitem");
      expect(items).toHaveLength(3);
      return items;
    });
    expect(steps.map((step) => step.dataset.executionId)).toEqual([original.id, automatic.id, manual.id]);
    expect(steps.map((step) => step.dataset.kind)).toEqual(["original", "automatic", "manual"]);
    expect(steps.map((step) => step.getAttribute("aria-current"))).toEqual([null, "true", null]);
    expect(within(steps[1]!).getByText("runner lost")).toBeTruthy();
    expect(within(steps[2]!).getByText("key_alice")).toBeTruthy();
    expect(within(steps[0]!).getByRole("link", { name: original.id }).getAttribute("href")).toBe(`/executions/${original.id}`);
    expect(grid.requestsOf("listExecutions").some((request) => request.rootId === original.id && request.pageSize === 500)).toBe(true);

    expect(screen.getByText("Retry of:").querySelector("a")?.getAttribute("href")).toBe(`/executions/${original.id}`);
    expect(screen.getByText("Retried as:").querySelector("a")?.getAttribute("href")).toBe(`/executions/${manual.id}`);

    const download = await screen.findByRole("link", { name: "Download" });
    expect(download.getAttribute("href")).toBe(`https://storage.test/${automatic.id}/outputs/out/result.csv?signature=abc`);
    expect(download.getAttribute("download")).toBe("result.csv");

    expect(screen.getByRole("button", { name: "Retry…" })).toBeTruthy();
    expect(screen.queryByRole("button", { name: "Cancel…" })).toBeNull();
  });

  it("lists what a retry changed, naming env keys only, tags its lineage step and links to the comparison", async () => {
    const grid = new FakeGrid();
    const original = grid.add({ status: ExecutionStatus.FAILED, env: { API_TOKEN: "old-secret-value", DEBUG: "1" } });
    const before = { name: "process.py", sizeBytes: 120n, sha256: "1f2e".padEnd(64, "0") };
    const retry = grid.add({
      status: ExecutionStatus.COMPLETED,
      retryOf: original.id,
      rootId: original.id,
      attempt: 2,
      retryKind: RetryKind.MANUAL,
      env: { API_TOKEN: "new-secret-value", FIXED: "yes" },
      overrides: {
        env: [
          { key: "API_TOKEN", before: "old-secret-value", after: "new-secret-value" },
          { key: "DEBUG", before: "1" },
          { key: "FIXED", after: "yes" },
        ],
        args: { before: ["a"], after: ["a", "b"] },
        timeout: { before: 0, after: 120 },
        runtime: { before: "python", after: "python:3.12" },
        script: { before, after: { ...before, sha256: "9a0b".padEnd(64, "0") } },
      },
    });
    renderApp(grid, `/executions/${retry.id}`);

    const changes = await screen.findByTestId("overrides");
    expect(within(changes).getByText("Changed from the attempt before")).toBeTruthy();
    expect(within(changes).getAllByRole("listitem").map((item) => item.textContent)).toEqual([
      "env API_TOKEN changed",
      "env DEBUG removed",
      "env FIXED added",
      'args ["a"] → ["a","b"]',
      "timeout default → 120s",
      "runtime python → python:3.12",
      "script replaced (sha256 1f2e… → 9a0b…)",
    ]);
    const tag = await within(screen.getByTestId("lineage")).findByTestId("lineage-changed");
    expect(tag.closest("li")?.dataset.executionId).toBe(retry.id);
    expect(tag.textContent).toBe("changed: env, args, timeout, runtime, script");
    expect(screen.getByRole("link", { name: "Compare with the attempt before" }).getAttribute("href")).toBe(
      `/compare/${original.id}/${retry.id}`,
    );
    expect(document.body.textContent).not.toMatch(/secret-value/);
  });

  it("offers Cancel only while the execution can still be cancelled", async () => {
    const grid = new FakeGrid();
    const { manual } = lineage(grid);
    renderApp(grid, `/executions/${manual.id}`);
    expect((await screen.findByTestId("execution-status")).textContent).toBe("running");
    expect(screen.getByRole("button", { name: "Cancel…" })).toBeTruthy();
  });

  it("renders a refusal as the server's sentence", async () => {
    const grid = new FakeGrid();
    renderApp(grid, "/executions/exec_0123456789abcdef0123456789abcdef");
    expect((await screen.findByRole("alert")).textContent).toBe("execution exec_0123456789abcdef0123456789abcdef not found");
  });
});

describe("live logs", () => {
  it("follows the log until the execution ends, telling stdout, stderr and system lines apart", async () => {
    const grid = new FakeGrid();
    const execution = grid.add({ status: ExecutionStatus.RUNNING });
    grid.appendLogs(execution.id, [
      { line: "starting" },
      { stream: LogEntry_Stream.STDERR, line: "warning: low disk" },
      { stream: LogEntry_Stream.SYSTEM, line: "sandbox: no network" },
    ]);
    renderApp(grid, `/executions/${execution.id}`);

    const logs = await screen.findByTestId("logs");
    await waitFor(() => expect(within(logs).getAllByTestId("log-line")).toHaveLength(3));
    const lines = within(logs).getAllByTestId("log-line");
    expect(lines.map((line) => [line.dataset.sequence, line.dataset.stream])).toEqual([
      ["1", "stdout"],
      ["2", "stderr"],
      ["3", "system"],
    ]);
    expect(lines[1]!.textContent).toContain("warning: low disk");
    expect(lines[1]!.textContent).toContain("stderr");

    act(() => {
      grid.appendLogs(execution.id, [{ line: "done" }]);
      grid.finish(execution.id, ExecutionStatus.COMPLETED, 0);
    });
    await waitFor(() => expect(within(logs).getAllByTestId("log-line")).toHaveLength(4));
    expect(await screen.findByText("End of log")).toBeTruthy();
    await waitFor(() => expect(screen.getByTestId("execution-status").textContent).toBe("completed"));
    expect(grid.requestsOf("followLogs")).toHaveLength(1);
  });

  it("re-opens a dropped stream after the last line seen: nothing missed, nothing twice", async () => {
    const grid = new FakeGrid();
    const execution = grid.add({ status: ExecutionStatus.COMPLETED });
    grid.appendLogs(
      execution.id,
      Array.from({ length: 250 }, (_, index) => ({ line: `line ${index + 1}` })),
    );
    grid.breakStreamAfterMessages = 1;
    renderApp(grid, `/executions/${execution.id}`);

    expect(await screen.findByText("250 lines")).toBeTruthy();
    expect(await screen.findByText("End of log")).toBeTruthy();
    expect(screen.getByTestId("logs").dataset.lineCount).toBe("250");
    expect(screen.getByTestId("logs").dataset.lastSequence).toBe("250");
    expect(grid.requestsOf("followLogs").map((request) => request.afterSequence)).toEqual([0n, 100n]);
    const sequences = within(screen.getByTestId("logs"))
      .getAllByTestId("log-line")
      .map((line) => Number(line.dataset.sequence));
    expect(sequences).toEqual(Array.from({ length: sequences.length }, (_, index) => index + 1));
  });

  it("keeps only the visible lines of a long log in the page", async () => {
    const grid = new FakeGrid();
    const execution = grid.add({ status: ExecutionStatus.COMPLETED });
    grid.appendLogs(
      execution.id,
      Array.from({ length: 10_000 }, (_, index) => ({ line: `row ${index + 1}` })),
    );
    renderApp(grid, `/executions/${execution.id}`);
    expect(await screen.findByText("10,000 lines", {}, { timeout: 5000 })).toBeTruthy();
    const rendered = within(screen.getByTestId("logs")).getAllByTestId("log-line");
    expect(rendered.length).toBeGreaterThan(0);
    expect(rendered.length).toBeLessThan(200);
  });

  it("follows the stream through Follow tail", async () => {
    const grid = new FakeGrid();
    const execution = grid.add({ status: ExecutionStatus.RUNNING });
    grid.appendLogs(execution.id, [{ line: "one" }]);
    renderApp(grid, `/executions/${execution.id}`);
    const logs = await screen.findByTestId("logs");
    await waitFor(() => expect(within(logs).getAllByTestId("log-line")).toHaveLength(1));
    // Scrolled away from the bottom: the console stops following and offers to resume.
    Object.defineProperty(logs, "scrollHeight", { configurable: true, value: 5000 });
    fireEvent.scroll(logs, { target: { scrollTop: 0 } });
    fireEvent.click(await screen.findByRole("button", { name: "Follow tail" }));
    expect(screen.queryByRole("button", { name: "Follow tail" })).toBeNull();
  });
});
