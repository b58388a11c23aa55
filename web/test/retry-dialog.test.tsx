import { fireEvent, screen, waitFor, within } from "@testing-library/react";
import { Code, ConnectError } from "@connectrpc/connect";
import { ExecutionStatus } from "../src/proto";
import { FakeGrid } from "./fake-grid";
import { currentUrl, renderApp } from "./render-app";

async function openRetryDialog() {
  fireEvent.click(await screen.findByRole("button", { name: "Retry…" }));
  return screen.getByRole("dialog", { name: "Retry execution" });
}

describe("retry dialog", () => {
  it("says what will be re-run and retries a finished execution", async () => {
    const grid = new FakeGrid();
    const original = grid.add({ status: ExecutionStatus.FAILED, exitCode: 2 });
    renderApp(grid, `/executions/${original.id}`);
    const dialog = await openRetryDialog();

    expect(within(dialog).getByText("process.py")).toBeTruthy();
    expect(within(dialog).getByText("sha256 ab12cd34ef56")).toBeTruthy();
    expect(within(dialog).getByText("python")).toBeTruthy();
    expect(within(dialog).getByText("API_TOKEN, MODE")).toBeTruthy();
    expect(within(dialog).queryByText(/secret-value/)).toBeNull();
    expect(within(dialog).getByText("300 s")).toBeTruthy();
    expect(within(dialog).queryByTestId("retry-warning")).toBeNull();
    expect(within(dialog).queryByRole("button", { name: "Force retry" })).toBeNull();
    // The page behind the dialog is out of reach while it is open.
    expect(screen.queryByRole("button", { name: "Retry…" })).toBeNull();

    fireEvent.click(within(dialog).getByRole("button", { name: "Retry" }));
    const link = await within(dialog).findByTestId("new-execution");
    const [request] = grid.requestsOf("retryExecution");
    expect(request).toMatchObject({ executionId: original.id, force: false });
    const retry = grid.executions.at(-1)!;
    expect(link.textContent).toBe(retry.id);
    expect(link.getAttribute("href")).toBe(`/executions/${retry.id}`);

    // The new execution's page shows the lineage both ways.
    fireEvent.click(link);
    await waitFor(() => expect(currentUrl()).toBe(`/executions/${retry.id}`));
    expect(screen.queryByRole("dialog")).toBeNull();
    expect((await screen.findByTestId("execution-status")).textContent).toBe("queued");
    expect(screen.getByText("Retry of:").querySelector("a")?.getAttribute("href")).toBe(`/executions/${original.id}`);
    await waitFor(() =>
      expect(within(screen.getByTestId("lineage")).getAllByRole("listitem").map((item) => item.dataset.executionId)).toEqual([
        original.id,
        retry.id,
      ]),
    );
  });

  it("warns like the CLI before forcing a retry of a running execution", async () => {
    const grid = new FakeGrid();
    const running = grid.add({ status: ExecutionStatus.RUNNING });
    renderApp(grid, `/executions/${running.id}`);
    const dialog = await openRetryDialog();

    const warning = within(dialog).getByTestId("retry-warning");
    expect(warning.textContent).toContain("Warning: Execution status is 'running'");
    expect(warning.textContent).toContain("retry anyway");
    expect(within(dialog).queryByRole("button", { name: "Retry" })).toBeNull();
    fireEvent.click(within(dialog).getByRole("button", { name: "Force retry" }));
    await within(dialog).findByTestId("new-execution");
    expect(grid.requestsOf("retryExecution")).toEqual([expect.objectContaining({ executionId: running.id, force: true })]);
  });

  it("sends one request_id per opening, however often it is clicked or re-sent", async () => {
    const grid = new FakeGrid();
    const original = grid.add({ status: ExecutionStatus.FAILED });
    const lost = () => new ConnectError("upstream connect error", Code.Unavailable);
    grid.failNext("retryExecution", lost(), lost(), lost(), lost());
    renderApp(grid, `/executions/${original.id}`);
    const dialog = await openRetryDialog();

    const confirm = within(dialog).getByRole("button", { name: "Retry" });
    // A double click: the second is ignored while the first is in flight.
    fireEvent.click(confirm);
    fireEvent.click(confirm);
    // A lost answer is re-sent automatically, three times; then the user asks again.
    expect(await within(dialog).findByRole("alert")).toBeTruthy();
    fireEvent.click(within(dialog).getByRole("button", { name: "Retry" }));
    await within(dialog).findByTestId("new-execution");

    const requests = grid.requestsOf("retryExecution");
    expect(requests).toHaveLength(5);
    expect(new Set(requests.map((request) => request.requestId)).size).toBe(1);
    expect(grid.executions.filter((execution) => execution.retryOf === original.id)).toHaveLength(1);

    // A new opening is a new request.
    fireEvent.click(within(dialog).getByRole("button", { name: "Close" }));
    const second = await openRetryDialog();
    fireEvent.click(within(second).getByRole("button", { name: "Retry" }));
    await within(second).findByTestId("new-execution");
    const ids = grid.requestsOf("retryExecution").map((request) => request.requestId);
    expect(new Set(ids).size).toBe(2);
  });

  it("shows the server's refusal in the dialog", async () => {
    const grid = new FakeGrid();
    const original = grid.add({ status: ExecutionStatus.FAILED });
    grid.failNext("retryExecution", new ConnectError("input data.csv of the original is gone from storage", Code.FailedPrecondition));
    renderApp(grid, `/executions/${original.id}`);
    const dialog = await openRetryDialog();
    fireEvent.click(within(dialog).getByRole("button", { name: "Retry" }));
    expect((await within(dialog).findByRole("alert")).textContent).toBe("input data.csv of the original is gone from storage");
    expect(within(dialog).queryByTestId("new-execution")).toBeNull();
  });
});

describe("cancel", () => {
  it("asks first, then cancels a queued execution", async () => {
    const grid = new FakeGrid();
    const queued = grid.add({ status: ExecutionStatus.QUEUED });
    renderApp(grid, `/executions/${queued.id}`);
    fireEvent.click(await screen.findByRole("button", { name: "Cancel…" }));
    const dialog = screen.getByRole("dialog", { name: "Cancel execution" });
    expect(grid.requestsOf("cancelExecution")).toHaveLength(0);

    fireEvent.click(within(dialog).getByRole("button", { name: "Cancel execution" }));
    expect(await within(dialog).findByText(/Cancelled\./)).toBeTruthy();
    expect(grid.requestsOf("cancelExecution")).toEqual([expect.objectContaining({ executionId: queued.id })]);
    fireEvent.click(within(dialog).getByRole("button", { name: "Close" }));
    await waitFor(() => expect(screen.getByTestId("execution-status").textContent).toBe("cancelled"));
    expect(screen.queryByRole("button", { name: "Cancel…" })).toBeNull();
  });

  it("reports a running execution's cancel as requested, and a refusal as text", async () => {
    const grid = new FakeGrid();
    const running = grid.add({ status: ExecutionStatus.RUNNING });
    renderApp(grid, `/executions/${running.id}`);
    fireEvent.click(await screen.findByRole("button", { name: "Cancel…" }));
    const dialog = screen.getByRole("dialog", { name: "Cancel execution" });
    expect(within(dialog).getByText(/runner will be told to stop/)).toBeTruthy();
    grid.failNext("cancelExecution", new ConnectError("execution already finished", Code.FailedPrecondition));
    fireEvent.click(within(dialog).getByRole("button", { name: "Cancel execution" }));
    expect((await within(dialog).findByRole("alert")).textContent).toBe("execution already finished");
    fireEvent.click(within(dialog).getByRole("button", { name: "Cancel execution" }));
    expect(await within(dialog).findByText(/Cancellation requested/)).toBeTruthy();
  });
});
